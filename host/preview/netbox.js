// The preview inside NetBox (the proxbox_planner_netbox plugin's pages): live data read in
// the browser with the page's own session, Proxmox answers through the plugin's view (the
// Proxbox backend holds the token), Apply through the Proxbox plugin's own sync job.

import { createPreview } from './preview.js';
import { collectInput } from './discover.js';

const PAGE_SIZE = 1000; // NetBox's MAX_PAGE_SIZE
const JOB_POLL_MS = 1000;
const JOB_DONE = new Set(['completed', 'errored', 'failed']);

/**
 * JSON from this NetBox; errors carry NetBox's (or our view's) message.
 * @param {string} url @param {{ method?: string, body?: unknown, csrf?: string }} [request]  `csrf`: the page's token, for writes
 */
async function requestJson(url, { method = 'GET', body, csrf } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'X-CSRFToken': csrf });
  const res = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // an answer without JSON: the status says it
  }
  if (!res.ok) {
    const message = data?.error?.message ?? data?.detail ?? `HTTP ${res.status}`;
    throw Object.assign(new Error(`${method} ${new URL(url, location.href).pathname}: ${message}`), { status: res.status });
  }
  return data;
}

/** Every row of a NetBox collection (limit/offset, following `next` on this origin), or of
 *  its filtered list (`query`: name -> value or list of values, as discover gives them). */
async function readCollection(path, query = {}) {
  const rows = [];
  const seen = new Set();
  let url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(one));
  }
  url.searchParams.set('limit', String(PAGE_SIZE));
  while (url) {
    let page;
    try {
      page = await requestJson(url.pathname + url.search);
    } catch (err) {
      // A collection of a plugin that is not installed: the planner decides what that means.
      if (err.status === 404) return { error: { status: 404, message: err.message } };
      throw err;
    }
    for (const row of page.results ?? []) {
      if (seen.has(row?.id)) continue; // a write between two pages shifts offsets
      seen.add(row?.id);
      rows.push(row);
    }
    url = page.next ? new URL(page.next, location.origin) : null;
  }
  return rows;
}

/** The rows the filtered lists of one collection find, each once. A list this user may not
 *  read is `{error}` for the planner (NetBox's change log: it holds what an operator may own). */
async function readQueried(path, queries) {
  const found = new Map();
  for (const query of queries) {
    let rows;
    try {
      rows = await readCollection(path, query);
    } catch (err) {
      return { error: { status: err.status ?? 0, message: err.message } };
    }
    if (!Array.isArray(rows)) return rows;
    for (const row of rows) found.set(row.id, row);
  }
  return [...found.values()];
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const at = next++;
      out[at] = await fn(items[at]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function netboxAdapter(config) {
  const base = config.base_path ?? '';
  const csrf = config.csrf_token;
  const endpointId = config.endpoint.id;
  const readNetbox = async (collections, { queries = {} } = {}) => {
    const rows = await mapLimit(collections, 4, (c) => (queries[c] ? readQueried(`${base}${c}`, queries[c]) : readCollection(`${base}${c}`)));
    return Object.fromEntries(collections.map((c, i) => [c, rows[i]]));
  };
  const readProxmox = (paths) => requestJson(config.urls.proxmox, { method: 'POST', csrf, body: { endpoint_id: endpointId, paths } });
  return {
    label: config.vm ? `NetBox + Proxmox, VM ${config.vm.name}` : 'NetBox + Proxmox',
    applyRefusal: config.apply?.allowed ? null : config.apply?.refusal ?? 'You may not run Proxbox syncs.',

    /** @param {{ planner: any, status?: (message: string) => void }} o  the loaded planner; where to say how far it got */
    async loadInput({ planner, status = () => {} }) {
      const [settings, endpoint] = await Promise.all([
        readCollection(`${base}/api/plugins/proxbox/settings/`).then((rows) => (Array.isArray(rows) ? rows[0] ?? {} : {})),
        requestJson(`${base}/api/plugins/proxbox/endpoints/proxmox/${endpointId}/`),
      ]);
      const { input } = await collectInput({
        planner,
        base: {
          settings, endpoint, sync_types: ['all'],
          origin: { netbox_url: `${location.origin}${base}`, ...(config.netbox_version ? { netbox_version: config.netbox_version } : {}) },
          ...(config.subset ? { subset: config.subset } : {}),
          // The NetBox user the Proxbox backend writes as: the sync, in NetBox's change log.
          ...(config.sync_user ? { sync_user: config.sync_user } : {}),
        },
        readProxmox,
        readNetbox,
        onRound: ({ round, proxmox, netbox }) => status(`Reading round ${round}: ${proxmox} Proxmox paths, ${netbox} NetBox collections…`),
      });
      return input;
    },

    /** A field conflict's chosen operation (an update of the field, or the journal entry
     *  that keeps it), written as the signed-in user with the plan's change-log message. */
    /** @param {import('proxbox-planner').Operation} op @param {{ changelogMessage?: string }} [options] */
    async choose(op, { changelogMessage } = {}) {
      const marked = (body) => ({ ...body, ...(changelogMessage ? { changelog_message: changelogMessage } : {}) });
      if (JSON.stringify(op).includes('"$ref"')) throw new Error('this choice refers to an object the plan still has to create: apply the plan first');
      if (op.action === 'update') {
        const changes = Object.fromEntries(Object.entries(op.changes ?? {}).map(([field, change]) => [field, change.after]));
        return requestJson(`${base}${op.collection}${op.target.id}/`, { method: 'PATCH', csrf, body: marked(changes) });
      }
      if (op.action === 'create') return requestJson(`${base}${op.collection}`, { method: 'POST', csrf, body: marked(op.fields) });
      throw new Error(`a choice is an update or a create, not a ${op.action}`);
    },

    async describeModels(labels) {
      const url = new URL(config.urls.models, location.origin);
      for (const label of labels) url.searchParams.append('label', label);
      return requestJson(url.pathname + url.search);
    },

    async apply({ stages, progress }) {
      const { job } = await requestJson(config.urls.apply, {
        method: 'POST', csrf,
        body: { endpoint_id: endpointId, stages, ...(config.vm ? { netbox_vm_ids: [config.vm.id] } : {}) },
      });
      progress({ message: `Proxbox sync job #${job.id} queued (${job.sync_types.join(', ')}).`, url: job.url, status: 'pending' });
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
        const now = await requestJson(job.api_url);
        const status = now.status?.value ?? now.status;
        const log = (now.log_entries ?? []).map((e) => ({ level: e.level, message: e.message }));
        if (JOB_DONE.has(status)) {
          const ok = status === 'completed';
          return { ok, status, url: job.url, log, message: ok ? `Job #${job.id} completed.` : `Job #${job.id} ${status}${now.error ? `: ${now.error}` : ''}.` };
        }
        progress({ message: `Job #${job.id} is ${status}…`, url: job.url, log, status });
      }
    },
  };
}

const root = document.getElementById('proxbox-preview');
if (root) {
  const config = JSON.parse(document.getElementById(root.dataset.config).textContent);
  createPreview(root, {
    plannerUrl: config.planner_url,
    adapter: netboxAdapter(config),
    autoload: 'adapter',
    theme: 'netbox',
    files: false,
    title: config.vm ? `Sync preview for ${config.vm.name}` : 'Sync preview',
  }).then((preview) => {
    /** @type {any} */ (window).proxboxPreview = preview; // for the browser tests and the curious
  }).catch((err) => console.error('preview:', err));
}
