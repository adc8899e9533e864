// Checks before a run trusts what it reads or writes anything, one request
// each and cached for the run (per client, until `startRun` forgets them:
// syncOnce starts a run, so a client that lives for many runs re-checks):
//
//   netboxStatus   GET /api/status/: NetBox answers as NetBox (version >= 4.2)
//                  and accepts the token; says whether the Proxbox plugin is there
//   netboxUser     GET /api/authentication-check/: the token's user, who is the
//                  sync in NetBox's change log
//   checkProxmox   GET /cluster/resources: Proxmox answers, trusts the token and
//                  shows it the cluster (its answer is the run's own, not read twice)
//   checkWrites    OPTIONS on each collection the plan writes: the token may add
//                  and change there (NetBox lists the methods the token may use;
//                  nothing is written)
//   checkPlanOrigin  a saved plan is applied only to the NetBox, instance and
//                  endpoint it was made against, by a planner that reads it
//
// Each failure is a RunError: one line naming the variable or flag to fix.
import * as planner from 'proxbox-planner';
import { mapLimit, publicUrl } from './http.js';
import { isAuthRefusal } from './netbox.js';
import { RunError, UsageError } from './outcome.js';

export const STATUS_PATH = '/api/status/';
export const SETTINGS_PATH = '/api/plugins/proxbox/settings/';
export const ENDPOINTS_PATH = '/api/plugins/proxbox/endpoints/proxmox/';
export const PROXMOX_PROBE_PATH = '/cluster/resources';
const TOKENS_PATH = '/api/users/tokens/';
export const AUTH_CHECK_PATH = '/api/authentication-check/';

/** The oldest NetBox the plans fit, and why. */
/** @type {{ version: [number, number], why: string }} */
const MIN_NETBOX = { version: [4, 2], why: 'plans write MAC addresses as dcim.macaddress objects, which NetBox 4.2 introduced' };

/** The plan format the executor reads. */
export const PLAN_FORMAT = 1;

/** Methods an OPTIONS answer lists when the token may write (`actions`); NetBox does not list DELETE. */
const PROBED_METHOD = { create: ['POST', 'add to'], update: ['PUT', 'change'] };

const cache = new WeakMap();

/** A new run: what the clients' earlier runs learnt (status, plugin records, permissions) is read again. */
export function startRun(...clients) {
  for (const client of clients) if (client) cache.delete(client);
}

/** `compute()` once per client, key and run; a failure is kept too (the run stops on it). */
function once(client, key, compute) {
  if (!cache.has(client)) cache.set(client, new Map());
  const entries = cache.get(client);
  if (!entries.has(key)) entries.set(key, compute());
  return entries.get(key);
}

const newer = (version, [major, minor]) => {
  const [a, b] = String(version).split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
};

/**
 * NetBox's `/api/status/`: `{version, plugin, plugins, url}`.
 * @param {import('./netbox.js').NetBoxClient} netbox
 */
export function netboxStatus(netbox) {
  return once(netbox, 'status', async () => {
    const url = publicUrl(netbox.base);
    let data;
    try {
      ({ data } = await netbox.request('GET', STATUS_PATH, { retries: Math.min(netbox.retries, 2) }));
    } catch (error) {
      throw statusFailure(netbox, url, error);
    }
    const version = data && typeof data === 'object' ? data['netbox-version'] : undefined;
    if (typeof version !== 'string') {
      throw new RunError(`${url} is not NetBox: ${STATUS_PATH} answers, but without a netbox-version: check ${netbox.hints.url}`);
    }
    if (!newer(version, MIN_NETBOX.version)) {
      throw new RunError(`NetBox ${version} at ${url} is too old: proxbox-planner needs NetBox ${MIN_NETBOX.version.join('.')} or later (${MIN_NETBOX.why})`);
    }
    const plugins = data.plugins && typeof data.plugins === 'object' ? data.plugins : {};
    return { url, version, plugins, plugin: 'netbox_proxbox' in plugins };
  });
}

/**
 * The NetBox user the token belongs to, `{id, username}`: the core tells the
 * sync's changes from operators' by it (`$.sync_user`).
 * @param {import('./netbox.js').NetBoxClient} netbox
 */
export function netboxUser(netbox) {
  return once(netbox, 'user', async () => {
    let data;
    try {
      ({ data } = await netbox.request('GET', AUTH_CHECK_PATH, { retries: Math.min(netbox.retries, 2) }));
    } catch (error) {
      throw statusFailure(netbox, publicUrl(netbox.base), error);
    }
    if (!Number.isInteger(data?.id)) {
      throw new RunError(`NetBox at ${publicUrl(netbox.base)} does not name the token's user (GET ${AUTH_CHECK_PATH}): check ${netbox.hints.url}`);
    }
    return { id: data.id, username: data.username ?? null };
  });
}

function statusFailure(netbox, url, error) {
  const { status } = error;
  if (!status) return new RunError(error.message, { code: error.code });
  if (isAuthRefusal(error)) {
    return new RunError(`NetBox at ${url} refused the token (${status} ${error.body?.detail}): check ${netbox.hints.token}`, { status });
  }
  if (status === 404 || status === 401 || status === 403) {
    return new RunError(
      `${url} is not a NetBox API (GET ${STATUS_PATH} → ${status}${status === 404 ? '' : ' without NetBox\'s answer'}): check ${netbox.hints.url}: NetBox's ` +
        `base URL, with its path prefix if it has one`,
      { status }
    );
  }
  if (status >= 300 && status < 400) {
    return new RunError(
      `${url} redirects (GET ${STATUS_PATH} → ${status}): set ${netbox.hints.url} to where NetBox answers (https:// or a path prefix?)`,
      { status }
    );
  }
  return new RunError(`NetBox at ${url} did not answer ${STATUS_PATH}: ${error.message}`, { status });
}

/**
 * The Proxbox plugin's records, read once per run: `{settings, endpoints}`
 * (`settings` is `results[0]`, or `{}`), or null when NetBox says the plugin
 * is not installed.
 */
export function pluginRecords(netbox) {
  return once(netbox, 'plugin', async () => {
    if (!(await netboxStatus(netbox)).plugin) return null;
    const [settings, endpoints] = await Promise.all([netbox.list(SETTINGS_PATH), netbox.list(ENDPOINTS_PATH)]);
    return { settings: settings[0] ?? {}, endpoints };
  });
}

/** `plan.origin` as the host gives it to the core: where NetBox was read, no token. */
export function originOf(status, instance) {
  return { netbox_url: status.url, netbox_version: status.version, instance: instance === undefined || instance === null ? null : String(instance) };
}

/**
 * The first Proxmox request of a run, strict: a refused token, an untrusted
 * certificate or an unreachable host fails the run here instead of becoming
 * one failed path among many. Resolves to the `/cluster/resources` answer.
 * @param {import('./proxmox.js').ProxmoxClient} pve
 */
export function checkProxmox(pve) {
  return once(pve, PROXMOX_PROBE_PATH, async () => {
    let data;
    try {
      data = await pve.get(PROXMOX_PROBE_PATH);
    } catch (error) {
      throw proxmoxFailure(pve, error);
    }
    if (!Array.isArray(data)) {
      throw new RunError(`${pve.where} does not answer as Proxmox VE (GET /api2/json${PROXMOX_PROBE_PATH} has no list): check ${pve.hints.url}`);
    }
    // A token without audit rights reads an empty cluster, which would look like "every guest is gone".
    if (!data.some((resource) => resource?.type === 'node')) {
      throw new RunError(`the Proxmox token sees no node in ${PROXMOX_PROBE_PATH} at ${pve.where}: give it the PVEAuditor role on / (${pve.hints.token})`);
    }
    return data;
  });
}

function proxmoxFailure(pve, error) {
  const { status } = error;
  const detail = `${status} ${error.message}`;
  if (!status) return new RunError(error.message, { code: error.code });
  if (status === 401) return new RunError(
    `Proxmox at ${pve.where} refused the token (${detail}): check ${pve.hints.token} (user@realm!tokenid=secret)`, { status }
  );
  if (status === 403) return new RunError(
    `the Proxmox token may not read ${PROXMOX_PROBE_PATH} (${detail}): give it the PVEAuditor role on / (${pve.hints.token})`, { status }
  );
  return new RunError(`Proxmox at ${pve.where} failed GET ${PROXMOX_PROBE_PATH} (${detail}): check ${pve.hints.url}`, { status });
}

/** The write methods the token may use on a collection (`OPTIONS` → `actions`), or null when NetBox does not say. */
function allowedWrites(netbox, collection) {
  return once(netbox, `OPTIONS ${collection}`, async () => {
    try {
      const { data } = await netbox.request('OPTIONS', collection);
      return new Set(Object.keys(data?.actions ?? {}));
    } catch (error) {
      if (isAuthRefusal(error)) throw statusFailure(netbox, publicUrl(netbox.base), error);
      // No answer to OPTIONS (a proxy that blocks it, a collection NetBox lacks): the writes themselves will tell.
      return null;
    }
  });
}

/**
 * Before the first write: the token may add and change objects in every
 * collection the plan writes. A read-only token is found out here, in one
 * line, not by a failed request per batch.
 */
export function checkWrites(netbox, plan, { concurrency = 4 } = {}) {
  const needs = new Map();
  for (const op of plan.operations) {
    const probe = PROBED_METHOD[op.action];
    if (!probe) continue;
    if (!needs.has(op.collection)) needs.set(op.collection, new Set());
    needs.get(op.collection).add(op.action);
  }
  const key = `writes ${[...needs].map(([c, a]) => `${c}:${[...a].sort()}`).sort().join(' ')}`;
  return once(netbox, key, async () => {
    const probes = await mapLimit(
      [...needs], concurrency, async ([collection, actions]) => ({ collection, actions, allowed: await allowedWrites(netbox, collection) })
    );
    const missing = [];
    for (const { collection, actions, allowed } of probes) {
      if (!allowed) continue;
      const verbs = [...actions].sort().map((action) => PROBED_METHOD[action]).filter(([method]) => !allowed.has(method)).map(([, verb]) => verb);
      if (verbs.length) missing.push(`${verbs.join(' or ')} ${collection}`);
    }
    if (!missing.length) return;
    const known = probes.filter((p) => p.allowed);
    if (known.every((p) => p.allowed.size === 0)) {
      const readOnly = await readOnlyToken(netbox);
      if (readOnly) throw readOnly;
      if (known.length > 1) {
        const some = known.slice(0, 3).map((p) => p.collection).join(', ');
        throw new RunError(
          `the NetBox token may write none of the ${known.length} collections the plan writes (${some}${known.length > 3 ? ', …' : ''}): it is read-only ` +
            `(write disabled), or its user has no add/change permission: check ${netbox.hints.token}`
        );
      }
    }
    throw new RunError(
      `the NetBox token may not ${missing.join(', ')}: grant its user those permissions in NetBox, or use another token (${netbox.hints.token})`
    );
  });
}

/** A RunError when NetBox's record of the (v2) token says it is read-only; null when it does not say. */
async function readOnlyToken(netbox) {
  const key = netbox.tokenKey;
  if (!key) return null;
  try {
    const [record] = await netbox.list(TOKENS_PATH, { query: { key } });
    if (record?.write_enabled !== false) return null;
  } catch {
    return null; // its user may not read tokens: what OPTIONS showed is all there is
  }
  return new RunError(
    `the NetBox token ${key} is read-only (write_enabled is off): enable "Write enabled" on it in NetBox, or use another token (${netbox.hints.token})`
  );
}

/** The command that makes a fresh plan, to quote in refusals. */
const replanCommand = (name, flags = '') => `proxbox-planner plan${flags} --out ${name === 'the plan' ? 'PLAN.json' : name}`;

/** `major` of a semantic version; for 0.x, `0.minor` (0.x releases may break the plan format). */
function releaseLine(version) {
  const [major, minor] = String(version ?? '').split('.');
  return major === '0' ? `0.${minor}` : major;
}

/**
 * A saved plan's format and planner version: refused when this host cannot
 * apply it. `name` is how the user named the plan (its file).
 */
export function checkPlanFormat(plan, name = 'the plan') {
  if (!plan || typeof plan !== 'object' || !Array.isArray(plan.operations)) {
    throw new UsageError(`${name} is not a plan (no operations list): give a file written by \`proxbox-planner plan --out\``);
  }
  const replan = `re-plan with this version: ${replanCommand(name)}`;
  if (plan.format_version !== PLAN_FORMAT) {
    throw new RunError(`${name} is a plan of format ${plan.format_version ?? '?'}; this proxbox-planner reads format ${PLAN_FORMAT}: ${replan}`);
  }
  const mine = planner.version();
  if (releaseLine(plan.planner_version) !== releaseLine(mine)) {
    throw new RunError(`${name} was made by proxbox-planner ${plan.planner_version ?? '?'}, which ${mine} cannot apply: ${replan}`);
  }
  if (plan.complete === false) {
    throw new RunError(`${name} is incomplete (its input could not be read whole), there is nothing safe to apply: re-plan once both servers can be read`);
  }
}

/**
 * A saved plan is applied only where it was made: the same NetBox URL, the
 * same instance (the Proxbox plugin's settings object), an endpoint of that
 * NetBox with the plan's id and name, and the endpoint asked for, if any.
 * No override: a plan for another NetBox is re-planned, never forced.
 * @param {import('./netbox.js').NetBoxClient} netbox
 * @param {import('proxbox-planner').Plan} plan
 * @param {{ name?: string, endpoint?: number | string }} [options]  the plan's name in messages (its file); the endpoint asked for
 */
export async function checkPlanOrigin(netbox, plan, { name = 'the plan', endpoint: wanted } = {}) {
  checkPlanFormat(plan, name);
  const status = await netboxStatus(netbox);
  const replan = `re-plan here: ${replanCommand(name)}`;
  /** @type {Partial<import('proxbox-planner').Origin>} */
  const origin = plan.origin ?? {};
  if (!origin.netbox_url) throw new RunError(`${name} does not say which NetBox it was made against (no origin): ${replan}`);
  if (origin.netbox_url !== status.url) {
    throw new RunError(`${name} was made against NetBox ${origin.netbox_url}, not ${status.url} (${netbox.hints.url}): ${replan}`);
  }
  const plugin = await pluginRecords(netbox);
  const here = originOf(status, plugin?.settings.id).instance;
  if ((origin.instance ?? null) !== here) {
    throw new RunError(
      `${name} was made against another NetBox instance at ${status.url} (Proxbox settings ${origin.instance ?? 'none'}, here ${here ?? 'none'}): ${replan}`
    );
  }
  const { id, name: endpointName } = plan.endpoint ?? {};
  const label = `endpoint ${endpointName ?? '?'} (id ${id ?? '?'})`;
  if (wanted !== undefined && wanted !== null && wanted !== '' && String(wanted) !== String(id) && String(wanted) !== endpointName) {
    throw new RunError(
      `${name} is for ${label}, not for endpoint ${wanted} that was asked for: re-plan for it: ${replanCommand(name, ` --endpoint ${wanted}`)}`
    );
  }
  if (plugin) {
    const same = plugin.endpoints.find((e) => e.id === id);
    if (!same || same.name !== endpointName) {
      const have = plugin.endpoints.map((e) => `${e.name} (id ${e.id})`).join(', ') || 'none';
      throw new RunError(`${name} is for ${label}, which NetBox at ${status.url} does not have (its endpoints: ${have}): ${replan}`);
    }
  }
}
