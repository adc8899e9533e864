// A plan grouped by NetBox object, as an operator looks at NetBox: nodes with their VMs, a
// VM with its interfaces, MACs, IPs and VLANs, SDN zones with their VNets. Every operation
// sits under the object it creates or changes; objects sit under their NetBox parent.

const ACTIONS = ['create', 'update', 'delete', 'skip'];

/** Top-level objects of these models stand on their own; other top-level objects are
 *  gathered by model ("Tags", "Custom fields"...). Their order is the order shown. */
const CONTAINERS = [
  'virtualization.cluster',
  'dcim.device',
  'virtualization.virtualmachine',
  'netbox_proxbox.proxmoxsdnzone',
];

/** Objects several parents use (a VLAN on interfaces of many VMs): under the one VM that
 *  uses them, else top level. `fields` are where users name them. */
const SHARED = {
  'ipam.vlan': { users: 'virtualization.vminterface', fields: ['untagged_vlan', 'tagged_vlans'], under: 'virtualization.virtualmachine' },
};

const emptyCounts = () => Object.fromEntries([...ACTIONS, 'total'].map((a) => [a, 0]));

function addCounts(into, from) {
  for (const key of Object.keys(into)) into[key] += from[key] ?? 0;
}

/** An operation that covers a whole stage, not one object (the core marks it
 *  `stage_wide`). A skip of one object NetBox does not have (no target, no fields) is
 *  still about that object. */
export const isStageWide = (op) => op.stage_wide === true;

/**
 * @param {import('./describe.js').PlanCatalog} catalog
 * @param {object[]} ops  the operations to place (all, or those a filter keeps)
 * @returns {object[]} roots: {kind: 'object'|'group'|'stage-wide', key, model, ops, children, counts}
 */
export function buildTree(catalog, ops) {
  const nodes = new Map();
  const node = (key) => {
    if (!nodes.has(key)) nodes.set(key, { kind: 'object', key, model: catalog.describe(key).model, ops: [], children: [], parent: null });
    return nodes.get(key);
  };
  const stageWide = [];
  for (const op of ops) {
    if (isStageWide(op)) stageWide.push(op);
    else node(catalog.objectKey(op)).ops.push(op);
  }
  const users = sharedUsers(catalog, nodes);
  // Parents, up to the top (an existing VM with only a new interface still shows under its node).
  const pending = [...nodes.keys()];
  const placed = new Set();
  while (pending.length) {
    const key = pending.pop();
    if (placed.has(key)) continue;
    placed.add(key);
    const parentKey = catalog.parentKey(key) ?? sharedParent(catalog, users, key);
    if (!parentKey || parentKey === key || isAncestor(nodes, key, parentKey)) continue;
    const child = node(key);
    const parent = node(parentKey);
    child.parent = parent;
    parent.children.push(child);
    pending.push(parentKey);
  }
  const roots = [...nodes.values()].filter((n) => !n.parent);
  for (const n of roots) count(n);
  const out = [];
  const groups = new Map();
  for (const n of roots) {
    if (CONTAINERS.includes(n.model)) {
      out.push(n);
      continue;
    }
    if (!groups.has(n.model)) groups.set(n.model, { kind: 'group', key: `group:${n.model}`, model: n.model, ops: [], children: [], counts: emptyCounts() });
    const group = groups.get(n.model);
    group.children.push(n);
    addCounts(group.counts, n.counts);
  }
  out.push(...groups.values());
  if (stageWide.length) {
    const counts = emptyCounts();
    for (const op of stageWide) { counts[op.action] += 1; counts.total += 1; }
    out.push({ kind: 'stage-wide', key: 'stage-wide', model: null, ops: stageWide, children: [], counts });
  }
  sortNodes(catalog, out);
  return out;
}

function count(n) {
  n.counts = emptyCounts();
  for (const op of n.ops) {
    if (n.counts[op.action] !== undefined) n.counts[op.action] += 1;
    n.counts.total += 1;
  }
  for (const child of n.children) addCounts(n.counts, count(child));
  return n.counts;
}

function isAncestor(nodes, key, candidate) {
  for (let at = nodes.get(key)?.parent; at; at = at.parent) if (at.key === candidate) return true;
  for (let at = nodes.get(candidate)?.parent; at; at = at.parent) if (at.key === key) return true;
  return false;
}

/** Shared object key -> keys of the objects using it (interfaces naming a VLAN). */
function sharedUsers(catalog, nodes) {
  const users = new Map();
  for (const user of nodes.values()) {
    for (const spec of Object.values(SHARED)) {
      if (user.model !== spec.users) continue;
      const { model, op, row } = catalog.describe(user.key);
      const sources = [op?.fields, row, ...user.ops.filter((o) => o.changes).map(afterValues)];
      for (const source of sources) {
        for (const field of source ? spec.fields : []) {
          for (const value of [source[field]].flat()) {
            const used = value == null ? null : catalog.referenceKey(model, field, value, source);
            if (!used) continue;
            if (!users.has(used)) users.set(used, new Set());
            users.get(used).add(user.key);
          }
        }
      }
    }
  }
  return users;
}

const afterValues = (op) => Object.fromEntries(Object.entries(op.changes).map(([field, change]) => [field, change?.after]));

/** A shared object's place: under the one `under` ancestor its users have, if only one. */
function sharedParent(catalog, users, key) {
  const spec = SHARED[catalog.describe(key).model];
  if (!spec) return null;
  const owners = new Set();
  for (const user of users.get(key) ?? []) {
    let at = user;
    for (let depth = 0; at && catalog.describe(at).model !== spec.under && depth < 8; depth += 1) at = catalog.parentKey(at);
    if (at) owners.add(at);
  }
  return owners.size === 1 ? [...owners][0] : null;
}

function sortNodes(catalog, list) {
  const rank = (n) => (n.kind === 'stage-wide' ? 99 : n.kind === 'group' ? 50 : CONTAINERS.indexOf(n.model) + 1 || 40);
  const name = (n) => (n.kind === 'object' ? String(catalog.describe(n.key).name) : catalog.modelPlural(n.model ?? ''));
  list.sort((a, b) => rank(a) - rank(b) || name(a).localeCompare(name(b), undefined, { numeric: true }));
  for (const n of list) sortNodes(catalog, n.children);
}
