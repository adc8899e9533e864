// The stage stream paths netbox-proxbox 0.0.29.post6 calls (sync_types.py:
// `_SYNC_TYPE_PATH`, and `_VM_SCOPED_PATH_TEMPLATES` when a job targets VMs),
// what serve runs for each, and how the plugin's query flags become planner
// input. `core: null` marks a stage the core does not plan yet: serve answers
// it with a well-formed stream that says so (`skipped`) and ends `ok: true`,
// which is what lets the plugin finish its job instead of failing it.
import { HttpError } from './errors.js';

const VM_NETWORK = ['vm-interfaces', 'ip-addresses'];

/** Plugin sync type → base path (before `/stream`) and the core stages it runs. */
export const PLUGIN_STAGES = [
  { stage: 'devices', path: 'dcim/devices/create', core: ['devices'] },
  { stage: 'storage', path: 'virtualization/virtual-machines/storage/create', core: ['storage'] },
  { stage: 'virtual-machines', path: 'virtualization/virtual-machines/create', core: ['virtual-machines'], network: VM_NETWORK },
  { stage: 'task-history', path: 'virtualization/virtual-machines/task-history/create', core: ['task-history'] },
  { stage: 'vm-disks', path: 'virtualization/virtual-machines/virtual-disks/create', core: ['vm-disks'] },
  { stage: 'vm-backups', path: 'virtualization/virtual-machines/backups/all/create', core: ['vm-backups'] },
  { stage: 'vm-snapshots', path: 'virtualization/virtual-machines/snapshots/all/create', core: ['vm-snapshots'] },
  { stage: 'network-interfaces', path: 'dcim/devices/interfaces/create', core: ['network-interfaces'] },
  { stage: 'vm-interfaces', path: 'virtualization/virtual-machines/interfaces/create', core: ['vm-interfaces'] },
  { stage: 'ip-addresses', path: 'virtualization/virtual-machines/interfaces/ip-address/create', core: ['ip-addresses'] },
  { stage: 'sdn', path: 'proxmox/sdn/create', core: ['sdn'] },
  { stage: 'replications', path: 'proxmox/replication', core: ['replications'] },
  { stage: 'backup-routines', path: 'proxmox/cluster/backup', core: ['backup-routines'] },
];

/** The per-VM paths of a targeted run (`netbox_vm_ids`): `{vm_id}` is the NetBox VM id. */
export const VM_SCOPED_STAGES = [
  { stage: 'virtual-machines', path: 'virtualization/virtual-machines/{vm_id}/create', core: ['virtual-machines'], network: VM_NETWORK },
  { stage: 'vm-disks', path: 'virtualization/virtual-machines/{vm_id}/virtual-disks/create', core: ['vm-disks'] },
  { stage: 'vm-backups', path: 'virtualization/virtual-machines/{vm_id}/backups/create', core: ['vm-backups'] },
  { stage: 'vm-snapshots', path: 'virtualization/virtual-machines/{vm_id}/snapshots/create', core: ['vm-snapshots'] },
];

/** serve's own paths (scripts, `curl`): not called by the plugin. */
export const OWN_STAGES = [
  { stage: 'all', path: 'full-update', core: ['all'] },
  { stage: 'vm-templates', path: 'virtualization/virtual-machines/templates/create', core: ['vm-templates'] },
  { stage: 'replications', path: 'virtualization/virtual-machines/replications/create', core: ['replications'] },
];

export const NOT_IMPLEMENTED = 'not implemented by this backend';

const STATIC = new Map([...PLUGIN_STAGES, ...OWN_STAGES].map((spec) => [`/${spec.path}`, spec]));
const SCOPED = VM_SCOPED_STAGES.map((spec) => ({ spec, pattern: new RegExp(`^/${spec.path.replace('{vm_id}', '(\\d+)')}$`) }));

/**
 * The stage a request path names: `{spec, stream, vmId?}` or null. `/stream`
 * at the end asks for SSE; without it the same run answers one JSON document.
 * `/sync/<stage>[/stream]` runs any one core stage.
 */
export function stageForPath(pathname) {
  const path = pathname.replace(/\/+$/, '') || '/';
  const stream = path.endsWith('/stream');
  const base = stream ? path.slice(0, -'/stream'.length) : path;
  const fixed = STATIC.get(base);
  if (fixed) return { spec: fixed, stream };
  for (const { spec, pattern } of SCOPED) {
    const match = pattern.exec(base);
    if (match) return { spec, stream, vmId: Number(match[1]) };
  }
  const own = /^\/sync\/([a-z_-]+)$/i.exec(base);
  if (own && own[1] !== 'active') return { spec: { stage: own[1], path: `sync/${own[1]}`, core: [own[1]] }, stream };
  return null;
}

const isTrue = (v) => /^(1|true|yes|on)$/i.test(String(v ?? ''));
const isFalse = (v) => /^(0|false|no|off)$/i.test(String(v ?? ''));

/** Plugin flags that are settings of the core (ProxboxPluginSettings fields), with their type. */
const SETTING_FLAGS = {
  use_guest_agent_interface_name: 'bool',
  vm_interface_sync_strategy: 'string',
  ignore_ipv6_link_local_addresses: 'bool',
  primary_ip_preference: 'string',
  parse_description_metadata: 'bool',
};

function flagValue(name, raw, type) {
  if (type === 'string') return raw;
  if (isTrue(raw)) return true;
  if (isFalse(raw)) return false;
  throw new HttpError(400, `query flag ${name}=${JSON.stringify(raw)} is not a boolean`);
}

/** Comma-separated ids (`proxmox_endpoint_ids=3`, `netbox_vm_ids=7,9`) → numbers. */
export function idList(name, raw) {
  if (raw === null || raw === undefined || raw === '') return [];
  return String(raw).split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    if (!/^\d+$/.test(s)) throw new HttpError(400, `query flag ${name} must be comma-separated ids (got ${JSON.stringify(raw)})`);
    return Number(s);
  });
}

/**
 * The planner-input parts one stage request asks for. The plugin sends the
 * *effective* sync modes and overwrite flags of the endpoint it runs
 * (sync_stages.py `_build_base_query_params`): they become endpoint values,
 * which win over the plugin settings the core reads from NetBox. The VM stage
 * also syncs interfaces and IPs unless the plugin says `sync_vm_network=false`
 * (it does whenever the job has the dedicated interface/IP stages).
 */
export function runRequestFromQuery(match, query) {
  const endpointOverrides = {};
  const settings = {};
  for (const [name, raw] of query) {
    if (name.startsWith('sync_mode_')) endpointOverrides[name] = raw;
    else if (name.startsWith('overwrite_')) endpointOverrides[name] = flagValue(name, raw, 'bool');
    else if (name in SETTING_FLAGS) settings[name] = flagValue(name, raw, SETTING_FLAGS[name]);
  }
  const { spec } = match;
  const withNetwork = spec.network && !isFalse(query.get('sync_vm_network'));
  const vmIds = match.vmId !== undefined ? [match.vmId] : idList('netbox_vm_ids', query.get('netbox_vm_ids'));
  const concurrency = query.get('fetch_max_concurrency');
  if (concurrency !== null && !/^[1-9]\d*$/.test(concurrency)) throw new HttpError(
    400, `fetch_max_concurrency must be a positive integer (got ${JSON.stringify(concurrency)})`
  );
  return {
    stage: spec.stage,
    syncTypes: spec.core ? [...spec.core, ...(withNetwork ? spec.network : [])] : null,
    endpointOverrides,
    settings,
    subset: vmIds.length ? { netbox_vm_ids: vmIds } : null,
    dryRun: isTrue(query.get('dry_run')),
    branch: query.get('netbox_branch_schema_id') || null,
    proxmoxConcurrency: concurrency ? Number(concurrency) : null,
    runId: query.get('run_id') || null,
  };
}
