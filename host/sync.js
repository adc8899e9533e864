// The sync loop: read the plugin's settings and endpoint from NetBox (flags
// override them, or stand in when the plugin is absent), then ask the core
// what to fetch (`discover`) until it has everything, then `plan`. The
// planner input ("snapshot") can be saved and loaded; it never holds a token.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import * as planner from 'proxbox-planner';
import { applyPlan, countChanges } from './apply.js';
import { checkProxmox, checkWrites, netboxStatus, netboxUser, originOf, pluginRecords, PROXMOX_PROBE_PATH, startRun } from './preflight.js';
import { collectInput as discoverLoop } from './preview/discover.js';
import { applyMessage, incompleteReason, OUTCOMES, planOutcome, warningsOf } from './outcome.js';

export { ENDPOINTS_PATH, SETTINGS_PATH } from './preflight.js';

/** Keys that hold secrets in plugin objects (write-only there, but never trusted to stay so). */
const SECRET_KEY = /(password|secret|token_value|private_key|encryption_key|api_key|^token$)/i;

/** A copy without secret-looking keys, at any depth. */
export function scrubSecrets(value) {
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => !SECRET_KEY.test(k)).map(([k, v]) => [k, scrubSecrets(v)]));
  }
  return value;
}

/**
 * Settings and endpoint for the planner input, after the NetBox preflight
 * (`/api/status/`, which also says whether the plugin is installed).
 * @param {import('./netbox.js').NetBoxClient} netbox
 * @param {object} [o]
 * @param {number|string} [o.endpoint]  the plugin endpoint to sync: id or name
 * @param {object} [o.settings]         values over the plugin's settings (or the whole settings without the plugin)
 * @param {object} [o.endpointOverrides] values over the endpoint (or the endpoint without the plugin: {id, name, ...})
 * @returns {Promise<{plugin: boolean, settings: object, endpoint: object, origin: object, syncUser: {id: number, username: string|null}}>}
 */
export async function readContext(netbox, { endpoint: wanted, settings: overrides = {}, endpointOverrides = {} } = {}) {
  const status = await netboxStatus(netbox);
  const [records, syncUser] = await Promise.all([pluginRecords(netbox), netboxUser(netbox)]);
  const plugin = Boolean(records);
  let endpoint = {};
  if (plugin) {
    const { endpoints } = records;
    const given = (v) => v !== undefined && v !== null && v !== '';
    if (given(wanted)) endpoint = pickEndpoint(endpoints, wanted);
    else if (given(endpointOverrides.id) || given(endpointOverrides.name)) {
      // Overrides name the endpoint: use the plugin's row when there is one, else they stand in.
      endpoint = endpoints.find((e) => (given(endpointOverrides.id) ? e.id === Number(endpointOverrides.id) : e.name === endpointOverrides.name)) ?? {};
    } else endpoint = pickEndpoint(endpoints, undefined) ?? {};
  }
  if (!plugin && wanted !== undefined && wanted !== null && endpointOverrides.id === undefined && endpointOverrides.name === undefined) {
    endpointOverrides = /^\d+$/.test(String(wanted)) ? { id: Number(wanted), ...endpointOverrides } : { name: String(wanted), ...endpointOverrides };
  }
  if (plugin && endpoint.id === undefined && endpointOverrides.id === undefined) {
    throw new Error(
      'the Proxbox plugin has no Proxmox endpoint in NetBox: create one (Plugins → Proxbox → Endpoints) or pass --endpoint-set id=N --endpoint-set name=NAME'
    );
  }
  return {
    plugin,
    settings: scrubSecrets({ ...(records?.settings ?? {}), ...overrides }),
    endpoint: scrubSecrets({ ...endpoint, ...endpointOverrides }),
    origin: originOf(status, records?.settings.id),
    syncUser,
  };
}

/** The endpoint by id or name; the only one when none is asked for. */
export function pickEndpoint(endpoints, wanted) {
  if (wanted === undefined || wanted === null || wanted === '') {
    if (endpoints.length === 1) return endpoints[0];
    if (!endpoints.length) return null;
    throw new Error(
      `NetBox has ${endpoints.length} Proxmox endpoints (${endpoints.map((e) => `${e.id} ${e.name}`).join(', ')}): choose one with --endpoint ID|NAME`
    );
  }
  const byId = /^\d+$/.test(String(wanted)) ? endpoints.find((e) => e.id === Number(wanted)) : null;
  const found = byId ?? endpoints.filter((e) => e.name === String(wanted));
  if (byId) return byId;
  if (found.length === 1) return found[0];
  if (found.length > 1) throw new Error(`several Proxmox endpoints are named ${JSON.stringify(wanted)}: choose one by id`);
  throw new Error(`no Proxmox endpoint ${JSON.stringify(wanted)} in NetBox (have: ${endpoints.map((e) => `${e.id} ${e.name}`).join(', ') || 'none'})`);
}

/** `https://host:port` of a plugin endpoint (domain, else its IP address), or null. */
export function endpointUrl(endpoint) {
  const host = endpoint?.domain || endpoint?.ip_address?.address?.split('/')[0];
  if (!host) return null;
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return `https://${bracketed}:${endpoint.port ?? 8006}`;
}

/**
 * Reads NetBox collections, all at once (the client's gate bounds the
 * requests): in full, or (those in `queries`, as the core's `discover` gives
 * them) each query's results together; each with only the fields the core
 * reads when `fields` names them (discover's `fields`: NetBox 4.x answers
 * `?fields=` with those, nested objects and custom fields in their usual
 * shape, and skips what it would compute for the others, a VM's config
 * context among them). One that cannot be read becomes `{error}` for the
 * core, which knows what it means (404 of a plugin collection: the plugin is
 * absent; the change log: updates held; anything else: the plan is
 * incomplete).
 */
export async function fetchCollections(netbox, collections, { fields = {}, queries = {} } = {}) {
  const out = {};
  await Promise.all(collections.map(async (collection) => {
    const query = fields[collection]?.length ? { fields: fields[collection].join(',') } : {};
    try {
      out[collection] = queries[collection]
        ? await listQueried(netbox, collection, queries[collection].map((q) => ({ ...q, ...query })))
        : await netbox.list(collection, { query });
    } catch (error) {
      out[collection] = { error: { status: error.status ?? 0, message: error.message } };
    }
  }));
  return Object.fromEntries(collections.map((c) => [c, out[c]]));
}

/** The objects the filtered lists of one collection find, each once. */
async function listQueried(netbox, collection, queries) {
  const found = new Map();
  for (const query of queries) {
    for (const object of await netbox.list(collection, { query })) found.set(object.id, object);
  }
  return [...found.values()];
}

/**
 * Proxmox paths for the core. The first read of a run is the strict preflight
 * (GET /cluster/resources: a refused token or an untrusted certificate fails
 * the run); its answer is used, not read twice. Later failures are recorded
 * per path as `{error}` for the core.
 */
async function readProxmox(proxmox, paths) {
  if (!paths.length) return {};
  const resources = await checkProxmox(proxmox);
  const rest = await proxmox.fetchAll(paths.filter((p) => p !== PROXMOX_PROBE_PATH));
  return Object.fromEntries(paths.map((p) => [p, p === PROXMOX_PROBE_PATH ? resources : rest[p]]));
}

/**
 * Builds the complete planner input: discover → fetch, pipelined, until the
 * core says `complete` (`preview/discover.js`, the loop the browser runs too).
 * `leanReads: false` reads NetBox's full objects instead of the fields the
 * core names (the same plan, more bytes: for comparison, or a proxy that
 * mishandles `?fields=`). `maxRounds` only catches a discovery that never
 * converges.
 * @param {object} o
 * @param {import('./netbox.js').NetBoxClient} o.netbox
 * @param {import('./proxmox.js').ProxmoxClient} o.proxmox
 * @param {object} o.settings  the plugin's settings (readContext), as the input's `settings`
 * @param {object} o.endpoint  the plugin endpoint (readContext), as the input's `endpoint`
 * @param {string[]} [o.syncTypes]  stages or sync types (default: all)
 * @param {import('proxbox-planner').SubsetIn} [o.subset]  the guests of a per-VM sync
 * @param {object} [o.origin]  where NetBox was read (readContext)
 * @param {{ id: number, username: string | null }} [o.syncUser]  the token's user (readContext)
 * @param {import('./events.js').Emit} [o.emit]
 * @param {number} [o.maxRounds]
 * @param {boolean} [o.leanReads]
 * @returns {Promise<import('proxbox-planner').PlanInput>}
 */
export async function collectInput({
  netbox, proxmox, settings, endpoint, syncTypes = ['all'], subset, origin, syncUser, emit = () => {}, maxRounds, leanReads = true,
}) {
  const base = {
    settings, endpoint, sync_types: syncTypes, ...(subset ? { subset } : {}), ...(origin ? { origin } : {}),
    ...(syncUser ? { sync_user: syncUser } : {}),
  };
  emit('step', { step: 'discovery', status: 'started', message: 'Discovering what to read from Proxmox and NetBox' });
  const { input, rounds } = await discoverLoop({
    planner,
    base,
    maxRounds,
    onRound: ({ round, proxmox: paths, netbox: collections }) => emit('discovery', {
      phase: 'discovery', step: 'discovery', round, count: paths + collections, proxmox: paths, netbox: collections,
      message: `Round ${round}: ${paths} Proxmox paths, ${collections} NetBox collections`,
    }),
    readProxmox: async (paths) => {
      const read = await readProxmox(proxmox, paths);
      for (const [path, data] of Object.entries(read)) {
        if (data && typeof data === 'object' && !Array.isArray(data) && data.error) {
          emit('error_detail', { phase: 'discovery', category: 'proxmox', message: `GET ${path}: ${data.error.message}`, status: data.error.status });
        }
      }
      return read;
    },
    readNetbox: async (collections, { queries, fields }) => {
      const read = await fetchCollections(netbox, collections, { fields: leanReads ? fields : {}, queries });
      for (const data of Object.values(read)) {
        if (data?.error && data.error.status !== 404) {
          emit('error_detail', { phase: 'discovery', category: 'netbox', message: data.error.message, status: data.error.status });
        }
      }
      return read;
    },
  });
  emit('step', {
    step: 'discovery', status: 'completed',
    message: `Read ${Object.keys(input.proxmox).length} Proxmox paths and ${Object.keys(input.netbox).length} NetBox collections in ${rounds} rounds`,
  });
  return input;
}

/**
 * Settings + endpoint from NetBox, then the full input, then the plan.
 * @param {object} o
 * @param {import('./netbox.js').NetBoxClient} o.netbox
 * @param {import('./proxmox.js').ProxmoxClient} o.proxmox
 * @param {number|string} [o.endpoint]  the plugin endpoint: id or name (readContext)
 * @param {object} [o.settings]  values over the plugin's settings (readContext)
 * @param {object} [o.endpointOverrides]  values over the endpoint (readContext)
 * @param {string[]} [o.syncTypes]
 * @param {import('./events.js').Emit} [o.emit]
 */
export async function planLive({ netbox, proxmox, endpoint, settings, endpointOverrides, syncTypes = ['all'], emit = () => {} }) {
  const context = await readContext(netbox, { endpoint, settings, endpointOverrides });
  if (!context.plugin) {
    emit('error_detail', {
      phase: 'discovery', category: 'plugin',
      message: 'the Proxbox plugin is not installed in NetBox: using the settings and endpoint given on the command line',
    });
  }
  const input = await collectInput({
    netbox, proxmox, settings: context.settings, endpoint: context.endpoint, origin: context.origin, syncUser: context.syncUser, syncTypes,
    emit,
  });
  const plan = makePlan(input, emit);
  return { context, input, plan };
}

/**
 * The core's plan, with `step` events around it.
 * @param {import('proxbox-planner').PlanInput} input @param {import('./events.js').Emit} [emit]
 */
export function makePlan(input, emit = () => {}) {
  emit('step', { step: 'plan', status: 'started', message: 'Planning' });
  const plan = planner.plan(input);
  const s = plan.summary;
  emit('step', {
    step: 'plan', status: 'completed',
    message: `Plan: ${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.skip} skipped, ${s.unchanged} unchanged`,
    summary: s,
  });
  for (const warning of plan.warnings ?? []) emit('error_detail', { phase: 'plan', category: 'warning', message: `${warning.code}: ${warning.message}` });
  return plan;
}

/** Writes a planner input (atomically) after checking it carries no secret-looking key. */
export function saveSnapshot(file, input, { secrets = [] } = {}) {
  const clean = { ...input, settings: scrubSecrets(input.settings ?? {}), endpoint: scrubSecrets(input.endpoint ?? {}) };
  const text = `${JSON.stringify(clean, null, 1)}\n`;
  for (const secret of secrets) {
    if (secret && secret.length >= 8 && text.includes(secret)) throw new Error('refusing to write a snapshot that contains a token');
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

export function loadSnapshot(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** The `result` of a plan that is not applied: its outcome, counts and warnings. */
export function planResult(plan, planning) {
  const outcome = planOutcome(plan);
  const s = plan.summary;
  const warnings = warningsOf(plan);
  const message = outcome === 'failed'
    ? incompleteReason(plan)
    : `Plan: ${s.create} to create, ${s.update} to update, ${s.delete} to delete${warnings.length ? ` (${warnings.length} warnings)` : ''}`;
  return {
    ok: OUTCOMES[outcome].ok, outcome, message, endpoint: plan.endpoint, summary: s, changes: countChanges(plan), warnings,
    ...(planning ? { planning } : {}),
  };
}

/** The same `result` after an apply: the report's outcome, counts and what did not go through. */
export function applyResult(result, report) {
  const c = report.counts;
  return {
    ...result,
    ok: report.ok,
    outcome: report.outcome,
    message: applyMessage(c),
    applied: { counts: c, requests: report.requests, ms: report.duration_ms },
    failures: report.operations.filter((o) => !['done', 'skipped'].includes(o.status)).map(({ id, status, error }) => ({ id, status, error: error?.message })),
  };
}

/**
 * One sync: NetBox preflight → context → Proxmox client (its URL defaults to
 * the endpoint's) and preflight → discovery → plan → (optionally) the write
 * preflight and the apply. Resolves to the plan, the input, the apply report
 * and `result` (what the `complete` event carries: `{ok, outcome, message,
 * summary, changes, warnings, ...}`); an incomplete plan resolves with
 * outcome `failed` and is not applied. Rejects (with a one-line message)
 * when a server cannot be read or refuses the token. NetBox requests in
 * flight: the client's `concurrency` (reads and writes); `applyOptions`
 * go to applyPlan (`concurrency` there can only narrow the batches).
 * @param {object} o
 * @param {import('./netbox.js').NetBoxClient} o.netbox
 * @param {import('./proxmox.js').ProxmoxClient} [o.proxmox]  or, to make one once the endpoint is known:
 * @param {(endpointUrl: string | null) => import('./proxmox.js').ProxmoxClient} [o.makeProxmox]  closed after the run
 * @param {number|string} [o.endpoint]  the plugin endpoint: id or name (readContext)
 * @param {object} [o.settings]  values over the plugin's settings (readContext)
 * @param {object} [o.endpointOverrides]  values over the endpoint (readContext)
 * @param {string[]} [o.syncTypes]
 * @param {import('proxbox-planner').SubsetIn} [o.subset]  the guests of a per-VM sync
 * @param {boolean} [o.apply]  apply the plan (else plan only)
 * @param {import('./apply.js').ApplyOptions} [o.applyOptions]
 * @param {import('./events.js').Emit} [o.emit]
 * @param {(plan: import('proxbox-planner').Plan, input: import('proxbox-planner').PlanInput) => unknown} [o.onPlan]
 *   called (and awaited) before the apply
 * @param {boolean} [o.leanReads]
 */
export async function syncOnce({
  netbox, proxmox, makeProxmox, endpoint, settings, endpointOverrides, syncTypes = ['all'], subset, apply = false, applyOptions = {},
  emit = () => {}, onPlan, leanReads = true,
}) {
  const started = Date.now();
  const requestsBefore = netbox.stats.requests;
  startRun(netbox, proxmox);
  const context = await readContext(netbox, { endpoint, settings, endpointOverrides });
  if (!context.plugin) {
    emit('error_detail', {
      phase: 'discovery', category: 'plugin',
      message: 'the Proxbox plugin is not installed in NetBox: using the settings and endpoint given on the command line',
    });
  }
  const pve = proxmox ?? makeProxmox(endpointUrl(context.endpoint));
  try {
    const input = await collectInput({
      netbox, proxmox: pve, settings: context.settings, endpoint: context.endpoint, origin: context.origin, syncUser: context.syncUser,
      syncTypes, subset, emit, leanReads,
    });
    const plan = makePlan(input, emit);
    const result = planResult(plan, { requests: netbox.stats.requests - requestsBefore, proxmox_requests: pve.stats.requests, ms: Date.now() - started });
    if (onPlan) await onPlan(plan, input);
    if (!apply || result.outcome === 'failed') return { result, plan, input, report: null };
    if (result.changes) await checkWrites(netbox, plan);
    const report = await applyPlan(plan, netbox, { ...applyOptions, emit });
    return { result: { ...applyResult(result, report), ms: Date.now() - started }, plan, input, report };
  } finally {
    if (!proxmox) pve.close();
  }
}
