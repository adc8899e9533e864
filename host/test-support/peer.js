// The peer: proxbox-api 0.0.30 (the original Proxbox backend, installed from
// PyPI by host/test/servers/proxbox-api.sh) configured against the test
// servers and run the way the Proxbox plugin runs it (`GET /full-update/stream`).
// The migration test uses it to write a Proxbox-synced NetBox with the real
// peer; the benchmark uses it to time the peer next to us.
//
//   const peer = await startPeer({ netbox: nbEnv, pve: pveEnv });
//   const run = await peer.sync();   // {ok, message, counts, stages, errors, failures, logged, duration_ms, netbox_requests}
//   await peer.stop();
//
// What it takes to run it on this stack (measured; /work/shared/research/proxbox-api-on-the-test-stack.md):
// - PROXBOX_ALLOW_PLAINTEXT_CREDENTIALS=1 (proxbox-api.sh sets it): no key store on a test stack.
// - The plugin's ProxmoxEndpoint must have the same host as proxbox-api's own Proxmox endpoint
//   (it is found by host and port): `localhost` in both.
// - fakepve's `"online"` on the cluster row of /cluster/status, which proxbox-api's model rejects:
//   fixed in our simulator (host/test/servers/fakepve_seeded.py), as real PVE has no such field.
// - netbox-proxbox 0.0.29 has no `sync-cluster` action, which proxbox-api 0.0.30 calls to claim the
//   NetBox cluster; without it proxbox-api adopts, read-only, a cluster that the plugin's
//   `proxmox-clusters` row already binds to the endpoint. `claimCluster` below makes that cluster
//   and row with the payloads proxbox-api itself would send (so proxbox-api finds them as its own);
//   because the adoption is read-only, proxbox-api then writes no sync-state record for the cluster.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { NetBoxClient } from '../netbox.js';
import { ProxmoxClient } from '../proxmox.js';
import { createEndpoint, startProxboxApi, stopProxboxApi } from './servers.js';
import { listenLoopback } from './listen.js';

const ENDPOINTS = '/api/plugins/proxbox/endpoints/proxmox/';
const TRACKING = '/api/plugins/proxbox/proxmox-clusters/';
const PEER_HOST = 'localhost'; // fakepve's certificate names it; proxbox-api matches endpoints by it
const HOUR = 60 * 60 * 1000;

/** The Proxbox tag, site, cluster type and cluster payloads as proxbox-api 0.0.30 writes them. */
const PROXBOX_TAG = { name: 'Proxbox', slug: 'proxbox', color: 'ff5722', description: 'Proxbox Identifier (used to identify the items the plugin created)' };
const TAGGED = [{ slug: PROXBOX_TAG.slug }];
const slugify = (text) => text.trim().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'cluster';
const sitePayload = (cluster) => ({
  name: `Proxmox Default Site - ${cluster}`, slug: `proxmox-default-site-${slugify(cluster)}`, status: 'active', tags: TAGGED,
});
const clusterTypePayload = (mode) => ({ name: mode[0].toUpperCase() + mode.slice(1), slug: mode, description: `Proxmox ${mode} mode`, tags: TAGGED });
// proxbox-api places the nodes in the cluster's site: a cluster without one stops the devices stage.
const clusterPayload = (name, mode, typeId, siteId) => ({
  name, type: typeId, description: `Proxmox ${mode} cluster.`, scope_type: 'dcim.site', scope_id: siteId, tags: TAGGED,
});

/** The row of `collection` matching `query`, created from `payload` when there is none. */
async function ensure(netbox, collection, query, payload) {
  const found = await netbox.list(collection, { query });
  if (found.length > 1) throw new Error(`${collection} ${JSON.stringify(query)}: ${found.length} rows, expected at most one`);
  if (found.length) return found[0];
  return (await netbox.request('POST', collection, { body: payload })).data;
}

/** The id of the plugin's ProxmoxEndpoint for this fakepve (host `localhost`, its port), created when absent. */
export async function pluginEndpointId(netbox, pve) {
  const port = Number(pve.PVE_PORT);
  const rows = (await netbox.list(ENDPOINTS)).filter((e) => e.domain === PEER_HOST && Number(e.port) === port);
  if (rows.length > 1) throw new Error(`${rows.length} plugin endpoints for ${PEER_HOST}:${port}; proxbox-api needs exactly one`);
  return rows.length ? rows[0].id : createEndpoint(netbox, pve); // createEndpoint's host is `localhost` too
}

/** Cluster name and mode as proxbox-api derives them from /cluster/status. */
function clusterIdentity(status) {
  const cluster = status.find((row) => row.type === 'cluster');
  const nodes = status.filter((row) => row.type === 'node');
  if (!cluster && nodes.length === 1) return { name: nodes[0].name, mode: 'standalone', nodes: 1, quorate: true, version: null };
  if (!cluster) throw new Error('/cluster/status has no cluster row');
  return { name: cluster.name, mode: 'cluster', nodes: cluster.nodes ?? nodes.length, quorate: Boolean(cluster.quorate), version: cluster.version ?? null };
}

/**
 * What netbox-proxbox 0.0.31's `sync-cluster` action would have made before proxbox-api's first run:
 * the Proxbox tag, the cluster's default site, the cluster type, the NetBox cluster and the plugin's `proxmox-clusters` row
 * binding it to the endpoint. Idempotent.
 */
export async function claimCluster(netbox, endpointId, status) {
  const id = clusterIdentity(status);
  await ensure(netbox, '/api/extras/tags/', { slug: PROXBOX_TAG.slug }, PROXBOX_TAG);
  const site = sitePayload(id.name);
  const siteId = (await ensure(netbox, '/api/dcim/sites/', { slug: site.slug }, site)).id;
  const type = await ensure(netbox, '/api/virtualization/cluster-types/', { slug: id.mode }, clusterTypePayload(id.mode));
  const cluster = await ensure(netbox, '/api/virtualization/clusters/', { name: id.name }, clusterPayload(id.name, id.mode, type.id, siteId));
  const row = await ensure(netbox, TRACKING, { endpoint_id: endpointId, name: id.name }, {
    endpoint: endpointId, netbox_cluster: cluster.id, name: id.name, mode: id.mode,
    nodes_count: id.nodes, quorate: id.quorate, version: id.version,
  });
  return { cluster, tracking: row };
}

/** A tiny JSON client for proxbox-api's own API (its key in `X-Proxbox-API-Key`). */
function peerApi(baseUrl, apiKey) {
  return async (method, path, body) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', ...(apiKey ? { 'X-Proxbox-API-Key': apiKey } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`proxbox-api ${method} ${path}: HTTP ${response.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Registers the key and the two endpoints in proxbox-api's own database (a fresh one per start). */
async function configurePeer(peerEnv, apiKey, { netboxPort, nbToken, pve }) {
  await peerApi(peerEnv.PROXBOX_API_URL)('POST', '/auth/register-key', { api_key: apiKey, label: 'proxbox-planner tests' });
  const api = peerApi(peerEnv.PROXBOX_API_URL, apiKey);
  // http, because the port is not 443 and verify_ssl is off.
  await api('POST', '/netbox/endpoint', {
    name: 'netbox', ip_address: '127.0.0.1', domain: '', port: netboxPort, token_version: 'v1', token: nbToken, verify_ssl: false,
  });
  await api('POST', '/proxmox/endpoints', {
    name: 'lab', ip_address: PEER_HOST, domain: PEER_HOST, port: Number(pve.PVE_PORT), username: pve.PVE_TOKEN_ID.split('!')[0],
    token_name: pve.PVE_TOKEN_ID.split('!')[1], token_value: pve.PVE_TOKEN_SECRET, verify_ssl: false,
  });
  return api;
}

/** SSE frames of a GET, as they arrive; resolves when the server ends the stream. */
function readStream(url, headers, onFrame, { timeout }) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => reject(new Error(`GET ${new URL(url).pathname}: HTTP ${res.statusCode} ${text.slice(0, 500)}`)));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame = parseFrame(block);
          if (frame) onFrame(frame);
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`no answer from proxbox-api within ${timeout} ms`)));
    req.on('error', reject);
  });
}

function parseFrame(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (!data.length) return null;
  return { event, data: JSON.parse(data.join('\n')) };
}

/** The `*_count` figures of the complete event's result, without the suffix. */
function countsOf(result = {}) {
  return Object.fromEntries(
    Object.entries(result).filter(([k, v]) => k.endsWith('_count') && typeof v === 'number').map(([k, v]) => [k.slice(0, -'_count'.length), v])
  );
}

/** Requests through the counting proxy, by method and by collection (`GET /api/dcim/devices/`). */
function requestCounter() {
  let counts;
  const reset = () => (counts = { total: 0, by_method: {}, by_collection: {}, proxy_errors: 0 });
  reset();
  return {
    record(method, path) {
      const collection = path.split('?')[0].replace(/\/\d+\/$/, '/');
      counts.total += 1;
      counts.by_method[method] = (counts.by_method[method] ?? 0) + 1;
      counts.by_collection[`${method} ${collection}`] = (counts.by_collection[`${method} ${collection}`] ?? 0) + 1;
    },
    failed() {
      counts.proxy_errors += 1;
    },
    take() {
      const taken = counts;
      reset();
      return taken;
    },
  };
}

/**
 * A transparent loopback proxy in front of NetBox that counts what passes. It streams both ways,
 * keeps the client's Host header (so the `url` and `next` links NetBox answers with name the proxy
 * and a client following them stays counted), opens one upstream connection per request (no stale
 * pooled socket to fail on) and keeps idle client connections as long as nginx's default (75 s).
 */
async function startCountingProxy(target, counter) {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    counter.record(req.method, req.url);
    const forward = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent: false,
    }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => {
      counter.failed();
      req.socket.destroy();
    });
    req.pipe(forward);
  });
  server.keepAliveTimeout = 75000;
  const base = await listenLoopback(server);
  return {
    port: Number(new URL(base).port),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The peer for a started NetBox (netbox.sh env) and fakepve (fakepve.sh env): proxbox-api with its
 * own server and database (started here, or `proxboxApi`: a proxbox-api.sh env started alongside
 * the other servers, which start-up takes half a minute or more), a counting loopback proxy in front
 * of NetBox (every NetBox request the peer makes goes through it), its key and endpoints, the
 * plugin's ProxmoxEndpoint and the cluster claim. Resolves to {env, endpointId, timings, sync(),
 * stop()}; `sync()` runs one full update and resolves to what proxbox-api reported; `stop()` stops
 * proxbox-api too.
 * @param {{ netbox: Record<string, string>, pve: Record<string, string>, proxboxApi?: Record<string, string> }} servers  their env
 */
export async function startPeer({ netbox: nbEnv, pve: pveEnv, proxboxApi }) {
  const counter = requestCounter();
  const proxy = await startCountingProxy(nbEnv.NETBOX_URL, counter);
  let env = proxboxApi;
  const netbox = new NetBoxClient({ url: nbEnv.NETBOX_URL, token: nbEnv.NETBOX_TOKEN_V2, timeout: 60000 });
  const proxmox = new ProxmoxClient({ url: pveEnv.PVE_URL, token: pveEnv.PVE_TOKEN, ca: pveEnv.PVE_CA_FILE });
  const stop = async () => {
    netbox.close();
    proxmox.close();
    await Promise.allSettled([env && stopProxboxApi(env), proxy.close()]);
  };
  const timings = {};
  const timed = async (name, step) => {
    const started = Date.now();
    const value = await step();
    timings[`${name}_ms`] = Date.now() - started;
    return value;
  };
  try {
    env ??= await timed('start', () => startProxboxApi());
    const apiKey = randomBytes(24).toString('hex');
    await timed('configure', () => configurePeer(env, apiKey, { netboxPort: proxy.port, nbToken: nbEnv.NETBOX_TOKEN, pve: pveEnv }));
    const endpointId = await timed('claim', async () => {
      const id = await pluginEndpointId(netbox, pveEnv);
      await claimCluster(netbox, id, await proxmox.get('/cluster/status'));
      return id;
    });
    counter.take(); // the set-up's own requests are not the peer's
    const sync = (options) => fullUpdate(env, apiKey, counter, options);
    return { env, endpointId, timings, sync, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One `GET /full-update/stream`, read to its end. */
/** proxbox-api's own log from `offset` on: its WARNING and ERROR lines, without colours. */
function loggedProblems(env, offset) {
  const log = readFileSync(`${env.RUN_DIR}/proxbox-api.log`).subarray(offset).toString('utf8');
  // eslint-disable-next-line no-control-regex -- terminal colour codes start with ESC (\x1b): matching it is the point
  return log.split('\n').map((line) => line.replace(/\x1b\[[0-9;]*m/g, '')).filter((line) => /\[(WARNING|ERROR|CRITICAL)\]/.test(line));
}

/**
 * @param {Record<string, string>} env  proxbox-api's (proxbox-api.sh) @param {string} apiKey
 * @param {{ take: () => any }} counter  the NetBox proxy's request counter
 * @param {{ timeout?: number, onFrame?: (frame: { event: string, data: any }) => void }} [options]
 */
async function fullUpdate(env, apiKey, counter, { timeout = HOUR, onFrame = () => {} } = {}) {
  counter.take();
  // Why an object failed is in proxbox-api's log, not in its stream (the phase summary only counts).
  const logOffset = statSync(`${env.RUN_DIR}/proxbox-api.log`).size;
  const started = Date.now();
  const stages = [];
  const errors = [];
  const failures = [];
  /** @type {any} the `complete` event's data (set by the frame callback, so TS cannot follow it) */
  let complete = null;
  let frames = 0;
  await readStream(`${env.PROXBOX_API_URL}/full-update/stream`, { 'X-Proxbox-API-Key': apiKey }, (frame) => {
    frames += 1;
    onFrame(frame);
    const { data } = frame;
    // A stage's own `completed` step carries its duration; the per-object steps do not.
    if (frame.event === 'step' && data.status === 'completed' && data.duration_seconds !== undefined) {
      stages.push({ stage: data.step, seconds: data.duration_seconds, result: data.result ?? null });
    } else if (frame.event === 'error' || frame.event === 'error_detail') {
      errors.push({ event: frame.event, ...data });
    } else if (frame.event === 'phase_summary' && data.result?.failed > 0) {
      failures.push({ phase: data.phase, message: data.message, failed: data.result.failed });
    } else if (frame.event === 'complete') {
      complete = data;
    }
  }, { timeout });
  const result = complete?.result ?? {};
  const requests = counter.take();
  return {
    // proxbox-api's own `ok` stays true when a phase failed some objects; ours does not, nor when a
    // request to NetBox failed in the proxy (then the run was not the peer's own).
    ok: complete?.ok === true && !errors.length && !failures.length && !requests.proxy_errors,
    reported_ok: complete?.ok === true,
    message: complete ? complete.message : 'the stream ended without a complete event',
    degraded: result.degraded === true,
    warnings: result.warnings ?? [],
    errors,
    failures,
    logged: loggedProblems(env, logOffset),
    counts: countsOf(result),
    stages,
    frames,
    duration_ms: Date.now() - started,
    netbox_requests: requests,
  };
}
