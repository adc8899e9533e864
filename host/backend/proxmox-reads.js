// The Proxmox reads the plugin makes through its backend for the work it does
// itself (jobs.py: the cluster/node, firewall, datacenter and VM-template
// phases that run before the stage streams; the endpoint cards; the timezone
// probe). Each route reads Proxmox with the pushed endpoint's token and
// answers in the shape the plugin parses (netbox_proxbox services/sync_*.py,
// schemas/proxmox_node.py, views/cards.py). A Proxmox failure is an HTTP 502
// naming the endpoint and the path, never an empty answer: the plugin would
// take an empty firewall summary for "no rules" and mark its rows stale.
import { HttpError } from './errors.js';

const SEGMENT = '([A-Za-z0-9][A-Za-z0-9._-]*)';
const enc = encodeURIComponent;

/** The plugin endpoint's name: the backend row name without its " (nb:<pk>)" suffix. */
const pluginName = (row) => String(row.name).replace(/\s*\(nb:\d+\)\s*$/, '');

/** The cluster name the plugin stored from `/cluster/status` (its ProxmoxCluster.name). */
function clusterName(status, row) {
  const cluster = Array.isArray(status) ? status.find((r) => r?.type === 'cluster') : null;
  return cluster?.name || pluginName(row);
}

async function firewallSummary(pve, row) {
  const [status, rules, groups, ipSets, aliases, options] = await Promise.all(
    [
      '/cluster/status', '/cluster/firewall/rules', '/cluster/firewall/groups', '/cluster/firewall/ipset', '/cluster/firewall/aliases',
      '/cluster/firewall/options',
    ].map((p) => pve.get(p)),
  );
  const groupRules = await Promise.all((groups ?? []).map((g) => pve.get(`/cluster/firewall/groups/${enc(g.group)}`)));
  const setEntries = await Promise.all((ipSets ?? []).map((s) => pve.get(`/cluster/firewall/ipset/${enc(s.name)}`)));
  return {
    cluster_name: clusterName(status, row),
    security_groups: (groups ?? []).map((g, i) => ({ ...g, name: g.group, rules: groupRules[i] ?? [] })),
    rules: rules ?? [],
    ip_sets: (ipSets ?? []).map((s, i) => ({ ...s, entries: setEntries[i] ?? [] })),
    aliases: aliases ?? [],
    options: options ?? {},
  };
}

/** Custom CPU models (PVE 9.2+); a Proxmox without the path has none. */
async function cpuModels(pve, row) {
  let models;
  try {
    models = await pve.get('/cluster/qemu/custom-cpu-models');
  } catch (error) {
    if (error.status === 501 || error.status === 404) return [];
    throw error;
  }
  const name = clusterName(await pve.get('/cluster/status'), row);
  return (models ?? []).map((m) => ({ ...m, cluster_name: name }));
}

const eachEndpoint = (read) => ({ read, combine: (parts) => parts });
const concatenated = (path) => ({
  read: (pve, row, match, query) => pve.get(typeof path === 'function' ? path(match, query) : path), combine: (parts) => parts.flat(),
});
const oneEndpoint = (path) => ({ read: (pve, row, match) => pve.get(path(match)), combine: (parts) => parts[0], single: true });

/** Route → how to read it. `single`: the request must name exactly one endpoint. */
export const PROXMOX_READ_ROUTES = [
  { pattern: /^\/proxmox\/version$/, ...eachEndpoint(async (pve, row) => ({ [row.name]: await pve.get('/version') })) },
  {
    pattern: /^\/proxmox\/sessions$/,
    ...eachEndpoint(async (pve, row) => ({
      name: row.name, domain: row.domain, ip_address: row.ip_address, http_port: row.port, user: row.username, proxmox_version: await pve.get('/version'),
    })),
  },
  { pattern: /^\/proxmox\/cluster\/status$/, ...concatenated('/cluster/status') },
  { pattern: /^\/proxmox\/nodes\/?$/, ...concatenated('/nodes') },
  {
    pattern: /^\/proxmox\/cluster\/resources$/,
    ...concatenated(
      (m, query) => (/^(vm|storage|node|sdn)$/.test(query.get('type') ?? '') ? `/cluster/resources?type=${query.get('type')}` : '/cluster/resources')
    ),
  },
  { pattern: new RegExp(`^/proxmox/${SEGMENT}/(qemu|lxc)/(\\d+)/config$`), ...oneEndpoint((m) => `/nodes/${m[1]}/${m[2]}/${m[3]}/config`) },
  { pattern: new RegExp(`^/proxmox/firewall/nodes/${SEGMENT}/rules$`), ...oneEndpoint((m) => `/nodes/${m[1]}/firewall/rules`) },
  { pattern: /^\/proxmox\/firewall\/summary$/, ...eachEndpoint(firewallSummary) },
  { pattern: /^\/proxmox\/datacenter\/cpu-models$/, read: cpuModels, combine: (parts) => parts.flat() },
  { pattern: new RegExp(`^/proxmox/api2/nodes/${SEGMENT}/time$`), ...oneEndpoint((m) => `/nodes/${m[1]}/time`) },
];

export function proxmoxReadFor(pathname) {
  for (const route of PROXMOX_READ_ROUTES) {
    const match = route.pattern.exec(pathname);
    if (match) return { route, match };
  }
  return null;
}

/**
 * Runs one read route over the endpoints in scope.
 * @param {{route, match}} found
 * @param {object[]} rows       the pushed Proxmox endpoints in scope
 * @param {(row) => {get(path): Promise<any>}} clientFor
 * @param {URLSearchParams} query
 */
export async function runProxmoxRead({ route, match }, rows, clientFor, query) {
  if (!rows.length) throw new HttpError(404, 'no Proxmox endpoint is configured: the plugin pushes its endpoints at the start of every sync job');
  if (route.single && rows.length !== 1) {
    throw new HttpError(400, `this path reads one Proxmox endpoint: name it with proxmox_endpoint_ids or target_name (${rows.length} in scope)`);
  }
  const parts = await Promise.all(rows.map(async (row) => {
    try {
      return await route.read(clientFor(row), row, match, query);
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new HttpError(502, `Proxmox endpoint "${row.name}": ${error.message}`);
    }
  }));
  return route.combine(parts);
}
