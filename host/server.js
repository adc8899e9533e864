// `proxbox-planner serve`: an HTTP server answering the Proxbox backend's
// stream paths with server-sent events of a plan-and-apply run:
//
//   GET /full-update/stream                                        every stage
//   GET /dcim/devices/create/stream                                devices
//   GET /virtualization/virtual-machines/create/stream             virtual-machines
//   GET /virtualization/virtual-machines/interfaces/create/stream  vm-interfaces
//   GET /virtualization/virtual-machines/interfaces/ip-address/create/stream  ip-addresses
//   GET /virtualization/virtual-machines/storage/create/stream     storage
//   GET /virtualization/virtual-machines/templates/create/stream   vm-templates
//   GET /virtualization/virtual-machines/replications/create/stream replications
//   GET /proxmox/sdn/create/stream                                 sdn
//   GET /sync/<stage>/stream                                       any stage (or "all")
//   (the same paths without /stream answer one JSON document: the `complete` payload)
//   GET /sync/active      {active, started_at, kind}
//   GET /                 {name, version}
//
// Query: `dry_run=true` plans without applying; `endpoint=<id|name>` (or
// `endpoint_id`) picks the plugin endpoint. One run at a time (409 while busy).
// With an API key configured, requests need `X-Proxbox-API-Key`.
import { createServer as createHttpServer } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import * as planner from 'proxbox-planner';
import { runWithEvents } from './events.js';
import { syncOnce } from './sync.js';
import { netboxClient, proxmoxClient, secretsOf } from './config.js';

export const STREAM_ROUTES = {
  '/full-update': ['all'],
  '/dcim/devices/create': ['devices'],
  '/virtualization/virtual-machines/create': ['virtual-machines'],
  '/virtualization/virtual-machines/interfaces/create': ['vm-interfaces'],
  '/virtualization/virtual-machines/interfaces/ip-address/create': ['ip-addresses'],
  '/virtualization/virtual-machines/storage/create': ['storage'],
  '/virtualization/virtual-machines/templates/create': ['vm-templates'],
  '/virtualization/virtual-machines/replications/create': ['replications'],
  '/proxmox/sdn/create': ['sdn'],
};

/** `{syncTypes, stream}` for a request path, or null. */
export function routeFor(pathname) {
  const path = pathname.replace(/\/+$/, '') || '/';
  const stream = path.endsWith('/stream');
  const base = stream ? path.slice(0, -'/stream'.length) : path;
  if (STREAM_ROUTES[base]) return { syncTypes: STREAM_ROUTES[base], stream };
  const m = /^\/sync\/([a-z_-]+)$/i.exec(base);
  if (m && m[1] !== 'active') return { syncTypes: [m[1]], stream };
  return null;
}

const truthy = (v) => /^(1|true|yes|on)$/i.test(String(v ?? ''));

/**
 * @param {object} o
 * @param {object} o.options   resolved options (config.js resolveOptions)
 * @param {string} [o.apiKey]  required `X-Proxbox-API-Key` when set
 * @param {number} [o.keepaliveMs=15000]
 * @param {(line: string) => void} [o.log]
 * @param {Function} [o.run]   the sync (tests inject one); default: syncOnce with clients from `options`
 */
export function createSyncServer({ options, apiKey, keepaliveMs = 15000, log = () => {}, run } = {}) {
  let active = null;
  const secrets = options ? secretsOf(options) : [];
  const runSync = run ?? (async ({ syncTypes, dryRun, endpoint, emit }) => {
    const netbox = netboxClient(options);
    try {
      const { result } = await syncOnce({
        netbox,
        makeProxmox: (fallback) => proxmoxClient(options, fallback),
        endpoint: endpoint ?? options.endpoint,
        settings: options.settings,
        endpointOverrides: options.endpointOverrides,
        syncTypes,
        apply: !dryRun,
        applyOptions: { verifyCreates: options.verifyCreates, ...(options.batchSize ? { batchSize: options.batchSize } : {}) },
        emit,
      });
      return result;
    } finally {
      netbox.close();
    }
  });

  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const send = (status, body) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (apiKey && !sameKey(req.headers['x-proxbox-api-key'], apiKey)) return send(401, { detail: 'missing or wrong X-Proxbox-API-Key' });
    if (req.method !== 'GET' && req.method !== 'POST') return send(405, { detail: 'GET or POST' });
    if (url.pathname === '/' ) return send(200, { name: 'proxbox-planner', version: planner.version(), streams: Object.keys(STREAM_ROUTES).map((p) => `${p}/stream`) });
    if (url.pathname === '/sync/active') {
      return send(200, active ? { active: true, started_at: active.started_at, kind: active.kind } : { active: false });
    }
    const route = routeFor(url.pathname);
    if (!route) return send(404, { detail: `no route ${url.pathname}` });
    if (active) return send(409, { detail: 'a sync is already running', started_at: active.started_at, kind: active.kind });
    const dryRun = truthy(url.searchParams.get('dry_run'));
    const endpoint = url.searchParams.get('endpoint') ?? url.searchParams.get('endpoint_id') ?? undefined;
    active = { started_at: new Date().toISOString(), kind: route.syncTypes.join(',') };
    log(`${req.method} ${url.pathname} (${active.kind}${dryRun ? ', dry run' : ''})`);
    const stream = runWithEvents((emit) => runSync({ syncTypes: route.syncTypes, dryRun, endpoint, emit }), { secrets, message: dryRun ? 'Plan' : 'Sync' });
    stream.done.finally(() => {
      active = null;
    });
    if (!route.stream) {
      let last = null;
      for await (const item of stream) if (item.event === 'complete') last = item.data;
      return send(last?.ok ? 200 : 500, last);
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    let open = true;
    req.on('close', () => {
      open = false;
    });
    // The run goes on when the client leaves: stopping an apply half-way helps nobody.
    for await (const chunk of stream.sse({ keepaliveMs })) {
      if (open) res.write(chunk);
    }
    res.end();
  });
  return server;
}

function sameKey(given, expected) {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
