// How a plan reads to a NetBox operator: NetBox's names for models and fields, objects by
// their names instead of op ids, sizes with units, links to the NetBox objects. No DOM and
// no sync rule here: the plan says what happens, this file only names it.

/** NetBox's verbose names (Django's, as NetBox 4.7 + Proxbox 0.0.29 have them). Inside
 *  NetBox the plugin sends the live ones; these stand in for the standalone page. */
export const MODEL_NAMES = {
  'virtualization.virtualmachine': ['Virtual machine', 'Virtual machines'],
  'virtualization.vminterface': ['Interface', 'Interfaces'],
  'virtualization.cluster': ['Cluster', 'Clusters'],
  'virtualization.clustertype': ['Cluster type', 'Cluster types'],
  'dcim.device': ['Device', 'Devices'],
  'dcim.interface': ['Interface', 'Interfaces'],
  'dcim.macaddress': ['MAC address', 'MAC addresses'],
  'dcim.site': ['Site', 'Sites'],
  'dcim.manufacturer': ['Manufacturer', 'Manufacturers'],
  'dcim.devicetype': ['Device type', 'Device types'],
  'dcim.devicerole': ['Device role', 'Device roles'],
  'ipam.ipaddress': ['IP address', 'IP addresses'],
  'ipam.vlan': ['VLAN', 'VLANs'],
  'ipam.prefix': ['Prefix', 'Prefixes'],
  'ipam.routetarget': ['Route target', 'Route targets'],
  'extras.tag': ['Tag', 'Tags'],
  'extras.customfield': ['Custom field', 'Custom fields'],
  'vpn.l2vpn': ['L2VPN', 'L2VPNs'],
  'vpn.l2vpntermination': ['L2VPN termination', 'L2VPN terminations'],
  'netbox_proxbox.proxmoxstorage': ['Proxmox Storage', 'Proxmox Storages'],
  'netbox_proxbox.proxmoxvmtemplate': ['Proxmox VM Template', 'Proxmox VM Templates'],
  'netbox_proxbox.replication': ['Replication', 'Replications'],
  'netbox_proxbox.proxmoxsdnzone': ['SDN Zone', 'SDN Zones'],
  'netbox_proxbox.proxmoxsdnvnet': ['SDN VNet', 'SDN VNets'],
  'netbox_proxbox.proxmoxsdnsubnet': ['SDN Subnet', 'SDN Subnets'],
  'netbox_proxbox.proxmoxsdncontroller': ['SDN Controller', 'SDN Controllers'],
  'netbox_proxbox.proxmoxsdnfabric': ['SDN Fabric', 'SDN Fabrics'],
  'netbox_proxbox.proxmoxsdnroutemap': ['SDN Route Map', 'SDN Route Maps'],
  'netbox_proxbox.proxmoxsdnprefixlist': ['SDN Prefix List', 'SDN Prefix Lists'],
  'netbox_proxbox.proxmoxsdnbinding': ['SDN Binding', 'SDN Bindings'],
  'netbox_proxbox.proxmoxcluster': ['Proxmox cluster', 'Proxmox clusters'],
  'netbox_proxbox.proxmoxnode': ['Proxmox node', 'Proxmox nodes'],
  'netbox_proxbox.proxboxclustersyncstate': ['Proxbox cluster sync state', 'Proxbox cluster sync states'],
  'netbox_proxbox.proxboxdevicesyncstate': ['Proxbox device sync state', 'Proxbox device sync states'],
  'netbox_proxbox.proxboxvirtualmachinesyncstate': ['Proxbox virtual machine sync state', 'Proxbox virtual machine sync states'],
};

/** Collections of models that plans reference but may not write (learned from ops too). */
const MODEL_COLLECTIONS = {
  'virtualization.virtualmachine': '/api/virtualization/virtual-machines/',
  'virtualization.vminterface': '/api/virtualization/interfaces/',
  'virtualization.cluster': '/api/virtualization/clusters/',
  'dcim.device': '/api/dcim/devices/',
  'dcim.interface': '/api/dcim/interfaces/',
  'dcim.macaddress': '/api/dcim/mac-addresses/',
  'ipam.ipaddress': '/api/ipam/ip-addresses/',
  'ipam.vlan': '/api/ipam/vlans/',
};

/** Foreign keys by field: the collection a number (or `{id}`) in that field points into. */
const REFERENCES = {
  '*': {
    cluster: '/api/virtualization/clusters/',
    device: '/api/dcim/devices/',
    site: '/api/dcim/sites/',
    role: '/api/dcim/device-roles/',
    device_type: '/api/dcim/device-types/',
    manufacturer: '/api/dcim/manufacturers/',
    virtual_machine: '/api/virtualization/virtual-machines/',
    untagged_vlan: '/api/ipam/vlans/',
    tagged_vlans: '/api/ipam/vlans/',
    primary_ip: '/api/ipam/ip-addresses/',
    primary_ip4: '/api/ipam/ip-addresses/',
    primary_ip6: '/api/ipam/ip-addresses/',
    primary_mac_address: '/api/dcim/mac-addresses/',
    tenant: '/api/tenancy/tenants/',
    platform: '/api/dcim/platforms/',
    l2vpn: '/api/vpn/l2vpns/',
    netbox_cluster: '/api/virtualization/clusters/',
    netbox_device: '/api/dcim/devices/',
    prefix: '/api/ipam/prefixes/',
    vrf: '/api/ipam/vrfs/',
  },
  'virtualization.cluster': { type: '/api/virtualization/cluster-types/' },
};

/** Where an object sits in NetBox: the field naming its parent (a foreign key, or a name
 *  for the plugin's SDN rows). Objects of models not listed here are top level. */
const PARENTS = {
  'virtualization.vminterface': [{ field: 'virtual_machine' }],
  'dcim.interface': [{ field: 'device' }],
  'dcim.macaddress': [{ field: 'assigned_object_id' }],
  'ipam.ipaddress': [{ field: 'assigned_object_id' }],
  'virtualization.virtualmachine': [{ field: 'device' }, { field: 'cluster' }],
  'netbox_proxbox.proxmoxstorage': [{ field: 'cluster' }],
  'netbox_proxbox.replication': [{ field: 'virtual_machine' }],
  'virtualization.virtualdisk': [{ field: 'virtual_machine' }],
  'netbox_proxbox.vmbackup': [{ field: 'virtual_machine' }],
  'netbox_proxbox.vmsnapshot': [{ field: 'virtual_machine' }],
  'netbox_proxbox.vmtaskhistory': [{ field: 'virtual_machine' }],
  'netbox_proxbox.backuproutine': [{ field: 'node' }],
  'netbox_proxbox.proxmoxsdnvnet': [{ field: 'zone_name', byName: 'netbox_proxbox.proxmoxsdnzone' }],
  'netbox_proxbox.proxmoxsdnsubnet': [{ field: 'vnet_name', byName: 'netbox_proxbox.proxmoxsdnvnet' }],
  // The Proxbox plugin's records about an object sit beneath it.
  'netbox_proxbox.proxmoxcluster': [{ field: 'netbox_cluster' }],
  'netbox_proxbox.proxmoxnode': [{ field: 'netbox_device' }],
  'netbox_proxbox.proxboxclustersyncstate': [{ field: 'cluster' }],
  'netbox_proxbox.proxboxdevicesyncstate': [{ field: 'device' }],
  'netbox_proxbox.proxboxvirtualmachinesyncstate': [{ field: 'virtual_machine' }],
  'netbox_proxbox.proxboxvirtualdisksyncstate': [{ field: 'virtual_disk' }],
  'netbox_proxbox.proxboxvminterfacesyncstate': [{ field: 'vm_interface' }],
};

/** The field that names an object of a model, where `name` is not it. */
const NAME_FIELDS = {
  'ipam.ipaddress': 'address',
  'dcim.macaddress': 'mac_address',
  'ipam.prefix': 'prefix',
  'dcim.devicetype': 'model',
  'netbox_proxbox.replication': 'replication_id',
  'netbox_proxbox.vmbackup': 'volume_id',
  'netbox_proxbox.vmtaskhistory': 'upid',
  'netbox_proxbox.backuproutine': 'job_id',
  'netbox_proxbox.proxmoxsdnzone': 'zone_name',
  'netbox_proxbox.proxmoxsdnvnet': 'vnet_name',
  'netbox_proxbox.proxmoxsdnsubnet': 'subnet',
  'netbox_proxbox.proxmoxsdncontroller': 'controller_name',
  'netbox_proxbox.proxmoxsdnfabric': 'fabric_name',
};
const FALLBACK_NAME_FIELDS = ['name', 'display', 'slug', 'address', 'vid'];

/** Sizes: the unit a field's number is in (NetBox stores VM memory and disk in MB as Proxmox
 *  reports MiB; the plugin's templates keep disk in GiB). */
const UNITS = {
  'virtualization.virtualmachine': { memory: 'MiB', disk: 'MiB' },
  'netbox_proxbox.proxmoxvmtemplate': { memory: 'MiB', disk: 'GiB' },
};
const SIZE_UNITS = ['MiB', 'GiB', 'TiB', 'PiB'];

/** Words of field names that NetBox writes its own way. */
const WORDS = {
  id: 'ID', ip: 'IP', ip4: 'IPv4', ip6: 'IPv6', ipv4: 'IPv4', ipv6: 'IPv6', mac: 'MAC', vlan: 'VLAN', vlans: 'VLANs', vm: 'VM',
  vcpus: 'vCPUs', vrf: 'VRF', sdn: 'SDN', vnet: 'VNet', os: 'OS', url: 'URL', cidr: 'CIDR', dns: 'DNS',
  vni: 'VNI', ssl: 'SSL', snat: 'SNAT', vmid: 'VMID', cf: 'CF',
};

/** The planner's reasons, as a sentence part. */
export const REASONS = {
  'missing-in-netbox': 'missing in NetBox',
  'new-in-proxmox': 'new in Proxmox',
  'changed-in-proxmox': 'changed in Proxmox',
  'gone-from-proxmox': 'gone from Proxmox',
  'back-in-proxmox': 'back in Proxmox',
  'bootstrap-only-tag': 'tagged bootstrap-only: created once, never updated',
  'mode-disabled': 'sync mode disabled',
  'ambiguous-identity': 'ambiguous: more than one candidate',
  'not-owned': 'not owned by this sync',
  'incomplete-snapshot': 'Proxmox data incomplete',
  'max-deletes-exceeded': 'more deletes than max_deletes allows',
  'orphan-kept': 'gone from Proxmox, kept',
  'has-manual-objects': 'has objects added by hand',
  'is-template': 'a template, not a VM',
  'unknown-vm': 'no NetBox VM for it',
  'sdn-conflict': 'SDN conflict',
  'unsupported-by-netbox': 'NetBox cannot hold it',
  'unidentified-same-name': 'a same-name NetBox object without a Proxmox identity',
  'operator-edited': 'edited in NetBox and changed in Proxmox',
  'ownership-unknown': "NetBox's change log could not be read: whether an operator changed it is unknown",
};

export const isRef = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  && Object.keys(v).length === 1 && typeof v.$ref === 'string';

/** `primary_mac_address` → "Primary MAC address". */
export function humanizeField(name) {
  const words = String(name).split('_').filter(Boolean);
  if (!words.length) return String(name);
  const text = words.map((w) => WORDS[w] ?? w).join(' ');
  return WORDS[words[0]] ? text : text[0].toUpperCase() + text.slice(1);
}

/** 8192 (MiB) → "8 GiB"; null when the field has no unit. */
export function formatSize(model, field, value) {
  const unit = UNITS[model]?.[field];
  if (!unit || typeof value !== 'number' || !Number.isFinite(value)) return null;
  let at = SIZE_UNITS.indexOf(unit);
  let n = value;
  while (Math.abs(n) >= 1024 && at < SIZE_UNITS.length - 1) {
    n /= 1024;
    at += 1;
  }
  return `${Number.isInteger(n) ? n : Number(n.toFixed(2))} ${SIZE_UNITS[at]}`;
}

export function reasonText(reason) {
  return REASONS[reason] ?? String(reason ?? '').replaceAll('-', ' ');
}

const keyOf = (collection, id) => `nb:${collection}|${id}`;
const idOf = (v) => (typeof v === 'number' ? v : v && typeof v === 'object' && typeof v.id === 'number' ? v.id : null);

/**
 * Names and places for everything a plan touches, from the plan and the input it was made
 * from (the NetBox rows give names, parents and links of existing objects).
 * Object keys: `op:<id of the op creating it>` or `nb:<collection>|<NetBox id>`.
 */
export class PlanCatalog {
  constructor(plan, input, { models = {} } = {}) {
    this.ops = plan?.operations ?? [];
    this.opsById = new Map(this.ops.map((op) => [op.id, op]));
    this.netbox = input?.netbox ?? {};
    this.models = models;
    this.collections = new Map(Object.entries(MODEL_COLLECTIONS));
    this.modelsOf = new Map(Object.entries(MODEL_COLLECTIONS).map(([m, c]) => [c, m]));
    for (const op of this.ops) {
      if (op.model && op.collection && !this.collections.has(op.model)) this.collections.set(op.model, op.collection);
      if (op.model && op.collection && !this.modelsOf.has(op.collection)) this.modelsOf.set(op.collection, op.model);
    }
    this.rowIndex = new Map();
    this.info = new Map();
    this.tagNames = new Map();
    for (const row of this.rowsOf('/api/extras/tags/')) this.tagNames.set(row.slug, row.name);
    this.customFieldLabels = new Map();
    for (const row of this.rowsOf('/api/extras/custom-fields/')) this.customFieldLabels.set(row.name, row.label || row.name);
    for (const op of this.ops) {
      if (op.action !== 'create' || !op.fields) continue;
      if (op.model === 'extras.tag') this.tagNames.set(op.fields.slug, op.fields.name);
      if (op.model === 'extras.customfield') this.customFieldLabels.set(op.fields.name, op.fields.label || op.fields.name);
    }
  }

  rowsOf(collection) {
    const rows = this.netbox[collection];
    return Array.isArray(rows) ? rows : [];
  }

  row(collection, id) {
    if (!this.rowIndex.has(collection)) {
      this.rowIndex.set(collection, new Map(this.rowsOf(collection).map((r) => [r?.id, r])));
    }
    return this.rowIndex.get(collection).get(id) ?? null;
  }

  modelName(model) {
    return this.models[model]?.name ?? MODEL_NAMES[model]?.[0] ?? String(model ?? 'Object');
  }

  modelPlural(model) {
    return this.models[model]?.plural ?? MODEL_NAMES[model]?.[1] ?? `${this.modelName(model)}s`;
  }

  fieldLabel(model, field) {
    return this.models[model]?.fields?.[field] ?? humanizeField(field);
  }

  customFieldLabel(name) {
    return this.customFieldLabels.get(name) ?? humanizeField(name);
  }

  tagName(slug) {
    return this.tagNames.get(slug) ?? slug;
  }

  /** The object an operation is about: the one it creates, or its target. */
  objectKey(op) {
    if (op.action === 'create') return `op:${op.id}`;
    const id = op.target?.id;
    if (isRef(id)) return `op:${id.$ref}`;
    if (typeof id === 'number') return keyOf(op.collection, id);
    return `op:${op.id}`;
  }

  /** {key, model, name, netboxId, row, op, url, changelogUrl} of an object key (cached). */
  describe(key) {
    let info = this.info.get(key);
    if (info) return info;
    if (key.startsWith('op:')) {
      const op = this.opsById.get(key.slice(3)) ?? null;
      const model = op?.model ?? null;
      info = { key, model, op, row: null, netboxId: null, url: null, changelogUrl: null,
        name: nameFrom(model, op?.fields) ?? op?.key ?? key.slice(3) };
    } else {
      const [collection, rawId] = key.slice(3).split('|');
      const netboxId = Number(rawId);
      const row = this.row(collection, netboxId);
      const url = row?.display_url ?? `${collection.replace(/^\/api\//, '/')}${netboxId}/`;
      info = { key, model: this.modelsOf.get(collection) ?? null, op: null, row, netboxId, url,
        changelogUrl: `${url.replace(/\/?$/, '/')}changelog/`,
        name: row ? (row.display ?? nameFrom(this.modelsOf.get(collection), row) ?? `#${netboxId}`) : `#${netboxId}` };
    }
    this.info.set(key, info);
    return info;
  }

  /** The object key a field value points to (`{$ref}`, a NetBox id, `{id, ...}`), or null. */
  referenceKey(model, field, value, source = {}) {
    if (isRef(value)) return `op:${value.$ref}`;
    const id = idOf(value);
    if (id === null) return null;
    const collection = field === 'assigned_object_id'
      ? this.collections.get(source.assigned_object_type)
      : REFERENCES[model]?.[field] ?? REFERENCES['*'][field];
    return collection ? keyOf(collection, id) : null;
  }

  /** The key of the object's parent in NetBox (the VM of an interface...), or null. */
  parentKey(key) {
    const { model, op, row } = this.describe(key);
    const source = op?.fields ?? row;
    if (!source) return null;
    for (const spec of PARENTS[model] ?? []) {
      const value = source[spec.field];
      const parent = spec.byName ? this.keyByName(spec.byName, value) : this.referenceKey(model, spec.field, value, source);
      if (parent) return parent;
    }
    return null;
  }

  /** The object of `model` named `name`: created by this plan, else a NetBox row. */
  keyByName(model, name) {
    if (typeof name !== 'string' || !name) return null;
    const field = NAME_FIELDS[model] ?? 'name';
    const op = this.ops.find((o) => o.action === 'create' && o.model === model && o.fields?.[field] === name);
    if (op) return `op:${op.id}`;
    const collection = this.collections.get(model);
    const row = collection ? this.rowsOf(collection).find((r) => r?.[field] === name) : null;
    return row ? keyOf(collection, row.id) : null;
  }

  /** "MAC address BC:24:11:CC:02:00 on eth0": how a reference to the object reads. */
  referenceText(key) {
    const { model, name } = this.describe(key);
    const parent = this.parentKey(key);
    const modelName = this.modelName(model);
    const named = String(name).toLowerCase().startsWith(modelName.toLowerCase()) ? String(name) : `${modelName} ${name}`;
    return parent ? `${named} on ${this.describe(parent).name}` : named;
  }
}

function nameFrom(model, source) {
  if (!source || typeof source !== 'object') return null;
  for (const field of [NAME_FIELDS[model], ...FALLBACK_NAME_FIELDS]) {
    const v = field && source[field];
    if (typeof v === 'string' && v) return v;
    if (typeof v === 'number') return String(v);
  }
  return null;
}
