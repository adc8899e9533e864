// `proxbox-planner serve`: the Proxbox backend (a drop-in for proxbox-api as
// netbox-proxbox 0.0.29.post6 uses it) and serve's own script routes.
//
// One route table below; each route is a small handler. What the plugin calls:
//   /health, /version, /auth/*                  readiness and the API-key lifecycle (backend/keys.js)
//   /netbox/endpoint*, /proxmox/endpoints*      the endpoint push (backend/endpoints.js)
//   /proxmox/cluster/status, /proxmox/nodes/ …  Proxmox reads for the plugin's own phases (backend/proxmox-reads.js)
//   <stage path>/stream                         one sync stage as SSE (backend/stages.js)
// serve's own: /planner/status, /planner/proxmox (the NetBox-side preview),
// /sync/active, /full-update/stream and /sync/<stage>/stream for scripts.
//
// Auth: `X-Proxbox-API-Key`. Open: /, /health, /auth/bootstrap-status,
// /auth/register-key. Once a key exists (registered, or --api-key-file) every
// other route needs one; before that the run routes answer with the
// connection given by flags/environment and the configuration routes refuse.
import { createServer as createHttpServer } from 'node:http';
import * as planner from 'proxbox-planner';
import { EventStream, runWithEvents } from './events.js';
import { syncOnce } from './sync.js';
import { ProxmoxClient } from './proxmox.js';
import { netboxClient, proxmoxClient, secretsOf } from './config.js';
import { redact } from './http.js';
import { StateFile } from './backend/state.js';
import { KeyStore } from './backend/keys.js';
import { EndpointRegistry, pluginEndpointId } from './backend/endpoints.js';
import { HttpError } from './backend/errors.js';
import { NOT_IMPLEMENTED, PLUGIN_STAGES, VM_SCOPED_STAGES, idList, runRequestFromQuery, stageForPath } from './backend/stages.js';
import { proxmoxReadFor, runProxmoxRead } from './backend/proxmox-reads.js';
import { RunBoard } from './backend/runs.js';

/** Who may call a route: anyone; a key once one exists (else flag-configured use); always a key. */
const OPEN = 'open';
const KEY_IF_ANY = 'key-if-any';
const KEY = 'key';

const MAX_BODY = 1024 * 1024;
const MAX_PREVIEW_PATHS = 2000;

/** Whether the core reads `$.subset`: one that does refuses a malformed one, one that does not ignores it. */
const CORE_READS_SUBSET = (() => {
  try {
    // Malformed on purpose (ids are numbers): only a core that reads `subset` notices.
    planner.discover(/** @type {any} */ ({ subset: { netbox_vm_ids: ['probe'] } }));
    return false;
  } catch (error) {
    return String(error.path ?? '').startsWith('$.subset');
  }
})();

/** `{syncTypes, stream}` for a stage path, or null (syncTypes null: a stage the core does not plan). */
export function routeFor(pathname) {
  const found = stageForPath(pathname);
  return found ? { syncTypes: found.spec.core, stream: found.stream } : null;
}

const endpointRoutes = (kind, base) => {
  const one = new RegExp(`^${base}/(\\d+)$`);
  return [
    ['GET', base, (c) => c.endpoints.list(kind)],
    ['POST', base, (c, { body }) => [201, c.endpoints.create(kind, body)]],
    ['GET', one, (c, { match }) => c.endpoints.get(kind, Number(match[1]))],
    ['PUT', one, (c, { match, body }) => c.endpoints.update(kind, Number(match[1]), body)],
    ['DELETE', one, (c, { match }) => c.endpoints.remove(kind, Number(match[1]))],
  ];
};

const ROUTES = [
  ['GET', '/', identity, OPEN],
  ['GET', '/health', () => ({ status: 'ready', init_ok: true }), OPEN],
  ['GET', '/auth/bootstrap-status', (c) => c.keys.bootstrapStatus(), OPEN],
  ['POST', '/auth/register-key', (c, { body }) => [201, c.keys.registerFirst(body?.api_key, body?.label)], OPEN],
  ['GET', '/version', () => ({ version: planner.version(), name: 'proxbox-planner', capabilities: {} }), KEY_IF_ANY],
  ['GET', '/auth/keys', (c) => c.keys.list()],
  ['POST', '/auth/keys', (c, { body }) => [201, c.keys.create(typeof body?.label === 'string' ? body.label : '')]],
  ['DELETE', /^\/auth\/keys\/(\d+)$/, (c, { match }) => [204, c.keys.remove(Number(match[1]))]],
  ['POST', /^\/auth\/keys\/(\d+)\/(activate|deactivate)$/, (c, { match }) => c.keys.setActive(Number(match[1]), match[2] === 'activate')],
  ...endpointRoutes('netbox', '/netbox/endpoint'),
  ...endpointRoutes('proxmox', '/proxmox/endpoints'),
  ['GET', '/sync/active', syncActive, KEY_IF_ANY],
  ['GET', '/planner/status', plannerStatus],
  ['POST', '/planner/proxmox', plannerProxmox],
];

function identity() {
  const names = (specs) => specs.map((s) => `${s.stage} /${s.path}/stream`);
  return {
    message: 'Proxbox Backend compatible: proxbox-planner serve',
    name: 'proxbox-planner',
    version: planner.version(),
    stages: {
      implemented: names([...PLUGIN_STAGES, ...VM_SCOPED_STAGES].filter((s) => s.core)),
      not_implemented: names([...PLUGIN_STAGES, ...VM_SCOPED_STAGES].filter((s) => !s.core)),
    },
  };
}

function syncActive(c) {
  const [first] = c.board.active();
  return first ? { active: true, started_at: first.started_at, kind: first.stage, runs: c.board.active() } : { active: false, runs: [] };
}

function plannerStatus(c) {
  return {
    name: 'proxbox-planner',
    version: planner.version(),
    endpoints: c.endpoints.summary(),
    active: c.board.active(),
    recent_runs: c.board.recent(),
  };
}

/** The preview's Proxmox reads: only paths the core's `discover` can name, with the endpoint's pushed token. */
async function plannerProxmox(c, { body }) {
  if (typeof planner.isProxmoxReadPath !== 'function') throw new HttpError(501, 'this build of the core has no isProxmoxReadPath: update proxbox-planner');
  const { endpoint_id: endpointId, paths } = body ?? {};
  if (!Number.isInteger(endpointId)) throw new HttpError(400, 'endpoint_id (the plugin ProxmoxEndpoint id) must be an integer');
  if (!Array.isArray(paths) || !paths.length || paths.length > MAX_PREVIEW_PATHS) throw new HttpError(
    400, `paths must be a list of 1..${MAX_PREVIEW_PATHS} Proxmox API paths`
  );
  const refused = paths.find((p) => typeof p !== 'string' || !planner.isProxmoxReadPath(p));
  if (refused !== undefined) throw new HttpError(400, `not a Proxmox read path the planner uses: ${JSON.stringify(refused)}`);
  const row = c.endpoints.list('proxmox').find((r) => pluginEndpointId(r) === endpointId && r.enabled);
  if (!row) throw new HttpError(
    404, `no Proxmox endpoint pushed for plugin endpoint ${endpointId}: the plugin pushes its endpoints at the start of every sync job`
  );
  const pve = c.proxmoxClientFor(row);
  try {
    return await pve.fetchAll([...new Set(paths)]);
  } finally {
    pve.close();
  }
}

/**
 * @param {object} o
 * @param {object} [o.options]   resolved options (config.js resolveOptions): the flag/environment connection
 * @param {string} [o.apiKey]    a key accepted besides the registered ones (--api-key-file / PROXBOX_API_KEY)
 * @param {string} [o.stateDir]  where the key hashes and pushed endpoints are kept (none: memory only)
 * @param {number} [o.keepaliveMs=15000]
 * @param {(line: string) => void} [o.log]
 * @param {Function} [o.run]     the sync (tests inject one); default: syncOnce with the request's connections
 */
export function createSyncServer({ options, apiKey, stateDir, keepaliveMs = 15000, log = () => {}, run } = {}) {
  const state = new StateFile(stateDir ?? null);
  const endpoints = new EndpointRegistry(state);
  const c = {
    options,
    keys: new KeyStore(state, { extraKey: apiKey }),
    endpoints,
    board: new RunBoard(),
    keepaliveMs,
    run: run ?? defaultRun,
    secrets: () => [...(options ? secretsOf(options) : []), ...(apiKey ? [apiKey] : []), ...endpoints.secrets()],
    proxmoxClientFor: (row, extra = {}) => {
      const conn = endpoints.proxmoxConnection(row);
      return new ProxmoxClient({
        url: conn.url, token: conn.token, insecure: conn.insecure, ca: options?.pveCaFile,
        ...(options?.timeout ? { timeout: options.timeout } : {}), ...extra,
      });
    },
  };
  c.log = (line) => log(redact(line, c.secrets()));
  const server = createHttpServer((req, res) => {
    handle(c, req, res).catch((error) => fail(c, res, error, req));
  });
  return server;
}

async function handle(c, req, res) {
  const url = new URL(req.url, 'http://localhost');
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  const found = findRoute(req.method, path, url.pathname);
  if (!found) throw new HttpError(404, `no route ${url.pathname}`);
  if (found.wrongMethod) throw new HttpError(405, `${req.method} is not allowed on ${url.pathname} (allowed: ${found.wrongMethod.join(', ')})`);
  authorize(c, req, found.auth);
  const body = ['POST', 'PUT'].includes(req.method) ? await readJson(req) : undefined;
  const answer = await found.handler(c, { req, res, url, path, match: found.match, body });
  if (answer === undefined && res.headersSent) return;
  const [status, value] = Array.isArray(answer) && typeof answer[0] === 'number' ? answer : [200, answer];
  send(res, status, value);
}

/** The route for a request: the table first, then Proxmox reads, then stage streams. */
function findRoute(method, path, rawPath) {
  const allowed = [];
  for (const [m, pattern, handler, auth = KEY] of ROUTES) {
    const match = typeof pattern === 'string' ? (pattern === path ? [path] : null) : pattern.exec(path);
    if (!match) continue;
    if (m === method) return { handler, auth, match };
    allowed.push(m);
  }
  if (allowed.length) return { wrongMethod: allowed };
  const read = proxmoxReadFor(path);
  if (read) return method === 'GET' ? { handler: (c, ctx) => proxmoxRead(c, ctx, read), auth: KEY } : { wrongMethod: ['GET'] };
  const stage = stageForPath(rawPath);
  if (stage) return ['GET', 'POST'].includes(method) ? { handler: (c, ctx) => stageRun(c, ctx, stage), auth: KEY_IF_ANY } : { wrongMethod: ['GET', 'POST'] };
  return null;
}

function authorize(c, req, policy) {
  if (policy === OPEN || (policy === KEY_IF_ANY && !c.keys.configured)) return;
  if (!c.keys.configured) throw new HttpError(401, 'No API key configured. Register a key via POST /auth/register-key.');
  if (!c.keys.verify(req.headers['x-proxbox-api-key'])) throw new HttpError(401, 'Invalid or missing API key (X-Proxbox-API-Key).');
}

// ------------------------------------------------------------- Proxmox reads

async function proxmoxRead(c, { url }, read) {
  const rows = scopeRows(c, url.searchParams);
  const clients = new Map();
  const clientFor = (row) => {
    if (!clients.has(row.id)) clients.set(row.id, c.proxmoxClientFor(row));
    return clients.get(row.id);
  };
  try {
    return await runProxmoxRead(read, rows, clientFor, url.searchParams);
  } finally {
    for (const client of clients.values()) client.close();
  }
}

/** The pushed Proxmox endpoints a request names (`proxmox_endpoint_ids`, or `target_name`), else all enabled. */
function scopeRows(c, query) {
  const name = query.get('target_name');
  if (name) {
    const row = c.endpoints.list('proxmox').find((r) => r.name === name && r.enabled);
    if (!row) throw new HttpError(404, `no enabled Proxmox endpoint named ${JSON.stringify(name)}`);
    return [row];
  }
  return c.endpoints.proxmoxScope(idList('proxmox_endpoint_ids', query.get('proxmox_endpoint_ids')));
}

// ------------------------------------------------------------ stage streams

/**
 * Which endpoint a stage request runs for, and how to reach NetBox and
 * Proxmox: the pushed endpoint the plugin names (`proxmox_endpoint_ids`, its
 * backend id; or the only one pushed), else the flag/environment connection.
 * One run per endpoint at a time: `key` is what the 409 is about.
 */
function runTarget(c, query, request) {
  const rows = scopeRows(c, query);
  if (rows.length > 1) {
    throw new HttpError(400, `name one Proxmox endpoint per run with proxmox_endpoint_ids (backend ids: ${rows.map((r) => `${r.id} ${r.name}`).join(', ')})`);
  }
  const netbox = () => netboxFor(c, request);
  if (rows.length === 1) {
    const [row] = rows;
    return {
      key: `proxmox:${row.id}`,
      label: row.name,
      backendId: row.id,
      endpoint: pluginEndpointId(row) ?? row.name.trim(),
      connections: { netbox, proxmox: () => c.proxmoxClientFor(row, request.proxmoxConcurrency ? { concurrency: request.proxmoxConcurrency } : {}) },
    };
  }
  const endpoint = query.get('endpoint') ?? query.get('endpoint_id') ?? c.options?.endpoint ?? undefined;
  return {
    key: 'flags',
    label: endpoint !== undefined ? String(endpoint) : 'given by flags',
    endpoint,
    connections: {
      netbox,
      proxmox: (fallbackUrl) => proxmoxClient(c.options ?? {}, fallbackUrl, request.proxmoxConcurrency ? { concurrency: request.proxmoxConcurrency } : {}),
    },
  };
}

/** The pushed NetBox endpoint, else the flag/environment one. */
function netboxFor(c, request) {
  const pushed = c.endpoints.netboxConnection();
  const branch = request.branch ? { branch: request.branch } : {};
  if (!pushed) {
    if (!c.options?.netboxUrl) throw new Error(
      'no NetBox to write to: the plugin pushes its NetBox endpoint at the start of every sync job (or set NETBOX_URL and NETBOX_TOKEN for serve)'
    );
    return netboxClient(c.options, branch);
  }
  // The pushed URL and token, with serve's own request options (timeout, retries, batch size, concurrency).
  return netboxClient({ ...c.options, netboxUrl: pushed.url, netboxToken: pushed.token, sources: {} }, { insecure: pushed.insecure, ...branch });
}

async function stageRun(c, { req, res, url }, found) {
  const request = runRequestFromQuery(found, url.searchParams);
  if (!request.syncTypes) return skippedStage(c, { req, res, url }, found, request);
  const target = runTarget(c, url.searchParams, request);
  const claim = c.board.begin(target.key, {
    stage: request.stage, path: `/${found.spec.path}`, endpoint: target.label, backend_endpoint_id: target.backendId ?? null,
    sync_types: request.syncTypes, dry_run: request.dryRun,
    ...(request.subset ? { subset: request.subset } : {}), ...(request.runId ? { run_id: request.runId } : {}),
  });
  if (claim.busy) {
    const { stage, started_at: since, endpoint } = claim.busy;
    throw new HttpError(
      409,
      `proxbox-planner is already syncing Proxmox endpoint "${endpoint}" (stage ${stage}, started ${since}); this request was refused: run it again when ` +
        `that run has finished`
    );
  }
  c.log(
    `${req.method} ${url.pathname} → ${request.stage} for ${target.label} ` +
      `(${request.syncTypes.join(',')}${request.dryRun ? ', dry run' : ''}${request.subset ? `, VMs ${request.subset.netbox_vm_ids.join(',')}` : ''})`
  );
  const o = c.options ?? {};
  const stream = runWithEvents(
    (emit) => c.run({
      ...request,
      endpoint: target.endpoint,
      settings: { ...request.settings, ...o.settings },
      endpointOverrides: { ...request.endpointOverrides, ...o.endpointOverrides },
      applyOptions: {
        verifyCreates: o.verifyCreates, ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      },
      connections: target.connections,
      emit,
    }),
    { secrets: c.secrets(), message: request.dryRun ? 'Plan' : 'Sync' },
  );
  stream.done.then((result) => {
    claim.finish(result);
    c.log(`${request.stage} for ${target.label}: ${describeResult(result)}`);
    for (const failure of result?.failures ?? []) c.log(`  ${failure.id} ${failure.status}: ${failure.error ?? ''}`);
  });
  return deliver(c, req, res, stream, found.stream);
}

/** A stage the core does not plan: a short stream that says so and ends `ok: true`. */
function skippedStage(c, { req, res, url }, found, request) {
  const { spec } = found;
  const reason = `${spec.what ?? spec.stage}: ${NOT_IMPLEMENTED} (proxbox-planner ${planner.version()}); nothing was read or written`;
  const result = { ok: true, skipped: true, stage: spec.stage, reason };
  const stream = new EventStream();
  stream.emit('step', { step: spec.stage, status: 'started', message: `Stage ${spec.stage}` });
  stream.emit('step', { step: spec.stage, status: 'skipped', message: reason });
  stream.emit('complete', { ok: true, message: `Stage ${spec.stage} skipped: ${NOT_IMPLEMENTED}`, result });
  stream.end();
  const endpoint = url.searchParams.get('proxmox_endpoint_ids') ?? url.searchParams.get('endpoint') ?? null;
  c.board.record({ stage: spec.stage, path: `/${spec.path}`, endpoint, ...(request.runId ? { run_id: request.runId } : {}) }, result);
  c.log(`${req.method} ${url.pathname} → ${spec.stage}: skipped (${NOT_IMPLEMENTED})`);
  return deliver(c, req, res, stream, found.stream);
}

/** The default sync: syncOnce with the request's connections, wrapped in the stage's step events. */
async function defaultRun({ stage, syncTypes, dryRun, endpoint, settings, endpointOverrides, subset, applyOptions, connections, emit }) {
  // A core that ignores `subset` would plan every guest for a one-VM sync.
  if (subset && !CORE_READS_SUBSET) throw new Error(
    'this build of the core cannot plan a subset of guests (the per-VM sync): nothing was read or written; update proxbox-planner'
  );
  const netbox = connections.netbox();
  try {
    emit('step', {
      step: stage, status: 'started',
      message: `Stage ${stage}: ${dryRun ? 'planning' : 'planning and applying'} ${syncTypes.join(', ')} with proxbox-planner ${planner.version()}`,
    });
    const { result } = await syncOnce({
      netbox, makeProxmox: connections.proxmox, endpoint, settings, endpointOverrides, syncTypes, subset, apply: !dryRun, applyOptions, emit,
    });
    emit('step', {
      step: stage, status: 'completed', message: `Stage ${stage}: ${describeResult(result)}`,
      result: { summary: result.summary, applied: result.applied?.counts },
    });
    return result;
  } finally {
    netbox.close();
  }
}

function describeResult(result) {
  if (!result) return 'failed';
  if (result.skipped) return `skipped (${NOT_IMPLEMENTED})`;
  const s = result.summary ?? {};
  const plan = `${s.create ?? 0} to create, ${s.update ?? 0} to update, ${s.delete ?? 0} to delete`;
  const done = result.applied?.counts ? `; applied ${result.applied.counts.done ?? 0}, failed ${result.applied.counts.failed ?? 0}` : '';
  return `${result.ok === false ? 'finished with errors' : 'ok'}: ${plan}${done}`;
}

/** SSE for `/stream` paths (keepalives while idle); the `complete` payload as JSON otherwise. */
async function deliver(c, req, res, stream, asStream) {
  if (!asStream) {
    let last = null;
    for await (const item of stream) if (item.event === 'complete') last = item.data;
    send(res, last?.ok ? 200 : 500, last);
    return undefined;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  let open = true;
  req.on('close', () => {
    open = false;
  });
  // The run goes on when the client leaves: stopping an apply half-way helps nobody.
  for await (const chunk of stream.sse({ keepaliveMs: c.keepaliveMs })) {
    if (open) res.write(chunk);
  }
  res.end();
  return undefined;
}

// ------------------------------------------------------------------ plumbing

function send(res, status, body) {
  if (status === 204) {
    res.writeHead(204, { 'Cache-Control': 'no-store' });
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(`${JSON.stringify(body ?? null)}\n`);
}

function fail(c, res, error, req) {
  const status = error instanceof HttpError ? error.status : 500;
  const detail = redact(error.message, c.secrets());
  if (status >= 500 || status === 409) c.log(`${req.method} ${req.url?.split('?')[0]}: ${status} ${detail}`);
  if (res.headersSent) {
    res.end();
    return;
  }
  send(res, status, { detail });
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}
