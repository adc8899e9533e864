// The preview's pure parts, in Node: names and units (describe.js), the grouping by NetBox
// object (tree.js), the plan-to-plan diff (plan-diff.js) and the browser discover loop
// (discover.js), against plans the real core makes from the bundled sample.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as planner from 'proxbox-planner';
import { PlanCatalog, formatSize, humanizeField } from '../preview/describe.js';
import { buildTree } from '../preview/tree.js';
import { diffPlans } from '../preview/plan-diff.js';
import { collectInput } from '../preview/discover.js';
import { CHANGELOG, JOURNAL, memoryConflictInput } from '../test-support/sample-fakes.js';

const sampleText = readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url), 'utf8');
const sample = () => JSON.parse(sampleText);
const VM = 'virtualization.virtualmachine';

/** Every operation of a tree, depth first. */
function opsIn(nodes) {
  return nodes.flatMap((n) => [...n.ops, ...opsIn(n.children)]);
}

test('sizes read in units, field names read as NetBox writes them', () => {
  assert.equal(formatSize(VM, 'memory', 8192), '8 GiB');
  assert.equal(formatSize(VM, 'disk', 32768), '32 GiB');
  assert.equal(formatSize(VM, 'memory', 1536), '1.5 GiB');
  assert.equal(formatSize(VM, 'memory', 512), '512 MiB');
  assert.equal(formatSize('netbox_proxbox.proxmoxvmtemplate', 'disk', 8), '8 GiB');
  assert.equal(formatSize(VM, 'vcpus', 4), null, 'no unit, no size');
  assert.equal(humanizeField('primary_mac_address'), 'Primary MAC address');
  assert.equal(humanizeField('primary_ip4'), 'Primary IPv4');
  assert.equal(humanizeField('vcpus'), 'vCPUs');
});

test('objects are named, not op ids: a MAC reads "MAC address … on <its interface>"', () => {
  const input = sample();
  const plan = planner.plan(input);
  const catalog = new PlanCatalog(plan, input);
  const mac = plan.operations.find((op) => op.id === 'ip-addresses:dcim.macaddress:lxc/200/eth0/BC:24:11:CC:02:00');
  assert.equal(catalog.referenceText(catalog.objectKey(mac)), 'MAC address BC:24:11:CC:02:00 on eth0');
  const ip = plan.operations.find((op) => op.model === 'ipam.ipaddress' && op.fields.address === '10.0.20.11/24');
  assert.equal(catalog.referenceText(catalog.objectKey(ip)), 'IP address 10.0.20.11/24 on net0');
  const iface = plan.operations.find((op) => op.id === 'vm-interfaces:virtualization.vminterface:lxc/200/eth0');
  assert.equal(catalog.referenceText(catalog.objectKey(iface)), 'Interface eth0 on dns01');
  // NetBox's own names win where the page has them.
  const named = new PlanCatalog(plan, input, { models: { [VM]: { name: 'VM', plural: 'VMs', fields: { memory: 'RAM' } } } });
  assert.equal(named.modelName(VM), 'VM');
  assert.equal(named.fieldLabel(VM, 'memory'), 'RAM');
  assert.equal(named.fieldLabel(VM, 'primary_ip4'), 'Primary IPv4');
});

test('grouped by NetBox object: every operation exactly once; nodes hold their VMs, VMs their interfaces, MACs and IPs', () => {
  const input = sample();
  const plan = planner.plan(input);
  const catalog = new PlanCatalog(plan, input);
  const roots = buildTree(catalog, plan.operations);
  const placed = opsIn(roots).map((op) => op.id).sort();
  assert.deepEqual(placed, plan.operations.map((op) => op.id).sort());
  const total = roots.reduce((n, r) => n + r.counts.total, 0);
  assert.equal(total, plan.operations.length);
  const pve1 = roots.find((r) => r.model === 'dcim.device' && catalog.describe(r.key).name === 'pve1');
  const vms = pve1.children.filter((c) => c.model === VM).map((c) => catalog.describe(c.key).name).sort();
  const fields = (op) => /** @type {Record<string, any>} */ (op.fields);
  const onPve1 = plan.operations.filter((op) => op.action === 'create' && op.model === VM && fields(op).device?.$ref === 'devices:dcim.device:pve1');
  assert.deepEqual(vms, onPve1.map((op) => op.fields.name).sort());
  const dns01 = pve1.children.find((c) => catalog.describe(c.key).name === 'dns01');
  const eth0 = dns01.children.find((c) => c.model === 'virtualization.vminterface');
  // ...and the plugin's sync-state record of the interface (its bridge).
  assert.deepEqual(eth0.children.map((c) => c.model).sort(), ['dcim.macaddress', 'ipam.ipaddress', 'netbox_proxbox.proxboxvminterfacesyncstate']);
  // The interface's later update (its primary MAC) sits with the interface, not elsewhere.
  assert.deepEqual(eth0.ops.map((op) => op.action).sort(), ['create', 'update']);
  // A VLAN only one VM uses is beneath that VM; VLANs several VMs use are a group of their own.
  const vlanUsers = new Map();
  for (const op of plan.operations.filter((o) => o.model === 'virtualization.vminterface' && o.action === 'create')) {
    const vlan = fields(op).untagged_vlan?.$ref;
    if (vlan) vlanUsers.set(vlan, new Set([...(vlanUsers.get(vlan) ?? []), fields(op).virtual_machine.$ref]));
  }
  const vlanGroup = roots.find((r) => r.kind === 'group' && r.model === 'ipam.vlan');
  const topVlans = new Set((vlanGroup?.children ?? []).map((c) => c.key.slice(3)));
  for (const [vlan, users] of vlanUsers) assert.equal(topVlans.has(vlan), users.size > 1, `${vlan}: used by ${users.size} VMs`);
  assert.ok([...vlanUsers.values()].some((u) => u.size === 1) && [...vlanUsers.values()].some((u) => u.size > 1));
  // The stage skipped as a whole is not an object.
  const wide = roots.find((r) => r.kind === 'stage-wide');
  assert.deepEqual(wide.ops.map((op) => op.id), plan.operations.filter((op) => op.stage === 'sdn').map((op) => op.id));
});

test('existing objects are placed through the NetBox rows and linked to their NetBox pages', () => {
  const input = sample();
  const web = {
    id: 41, name: 'web01', display: 'web01', display_url: 'https://netbox.example/virtualization/virtual-machines/41/',
    device: { id: 5, display: 'pve1' },
  };
  input.netbox['/api/virtualization/virtual-machines/'] = [web];
  input.netbox['/api/dcim/devices/'] = [{ id: 5, name: 'pve1', display: 'pve1', display_url: 'https://netbox.example/dcim/devices/5/' }];
  const op = { id: 'x:virtualization.vminterface:qemu/101/net9', stage: 'vm-interfaces', model: 'virtualization.vminterface',
    collection: '/api/virtualization/interfaces/', action: 'create', key: 'qemu/101/net9', reason: 'new-in-proxmox', fields
      : { name: 'net9', virtual_machine: 41 } };
  const catalog = new PlanCatalog({ operations: [op] }, input);
  const [root] = buildTree(catalog, [op]);
  assert.equal(root.key, 'nb:/api/dcim/devices/|5');
  assert.equal(catalog.describe(root.key).url, 'https://netbox.example/dcim/devices/5/');
  assert.equal(catalog.describe(root.key).changelogUrl, 'https://netbox.example/dcim/devices/5/changelog/');
  assert.equal(root.children[0].key, 'nb:/api/virtualization/virtual-machines/|41');
  assert.equal(catalog.referenceText(catalog.objectKey(op)), 'Interface net9 on web01');
});

test('plan-to-plan diff: an override makes operations vanish and change; the same input gives no diff', () => {
  const before = planner.plan(sample());
  assert.equal(diffPlans(before, planner.plan(sample())).empty, true);
  const input = sample();
  input.endpoint.sync_mode_ip_address = 'disabled';
  const after = planner.plan(input);
  const diff = diffPlans(before, after);
  assert.equal(diff.empty, false);
  const ids = (ops) => new Set(ops.map((op) => op.id));
  const was = ids(before.operations);
  const now = ids(after.operations);
  assert.deepEqual(diff.appeared.map((op) => op.id).sort(), [...now].filter((id) => !was.has(id)).sort());
  assert.deepEqual(diff.vanished.map((op) => op.id).sort(), [...was].filter((id) => !now.has(id)).sort());
  assert.equal(diff.appeared.length + diff.changed.length + diff.same, after.operations.length);
  assert.ok(diff.vanished.length + diff.appeared.length + diff.changed.length > 0);
  for (const { before: b, after: a, parts } of diff.changed) assert.ok(parts.length && JSON.stringify(b) !== JSON.stringify(a));
});

test('the browser discover loop reads exactly what discover names, round by round, and ends complete', async () => {
  const full = sample();
  const asked = { proxmox: [], netbox: [] };
  const rounds = [];
  const { input, rounds: n } = await collectInput({
    planner,
    base: { settings: full.settings, endpoint: full.endpoint, sync_types: ['all'] },
    readProxmox: async (paths) => {
      asked.proxmox.push(...paths);
      return Object.fromEntries(paths.map((p) => [p, full.proxmox[p] ?? { error: { status: 404, message: 'not in the sample' } }]));
    },
    readNetbox: async (collections) => { asked.netbox.push(...collections); return Object.fromEntries(collections.map((c) => [c, full.netbox[c] ?? []])); },
    onRound: (r) => rounds.push(r),
  });
  assert.equal(n, rounds.length);
  assert.ok(n >= 2, `rounds: ${n}`);
  assert.equal(planner.discover(input).complete, true);
  assert.equal(new Set(asked.proxmox).size, asked.proxmox.length, 'no path asked twice');
  assert.deepEqual(planner.plan(input).summary, planner.plan(full).summary);
  // A reader that leaves a path out makes discover ask again: the loop says so instead of spinning.
  await assert.rejects(collectInput({
    planner,
    base: { settings: full.settings, endpoint: full.endpoint, sync_types: ['all'] },
    readProxmox: async () => ({}),
    readNetbox: async (collections) => Object.fromEntries(collections.map((c) => [c, []])),
  }), /discovery does not converge/);
});

test('the discover loop is pipelined: the next Proxmox reads start while NetBox is still being read', async () => {
  const full = sample();
  let proxmoxReads = 0;
  let netboxOutstanding = 0;
  let proxmoxDuringNetbox = 0;
  let secondProxmoxRead;
  const secondStarted = new Promise((resolve) => { secondProxmoxRead = resolve; });
  const { input } = await collectInput({
    planner,
    base: { settings: full.settings, endpoint: full.endpoint, sync_types: ['all'] },
    readProxmox: async (paths) => {
      proxmoxReads += 1;
      if (netboxOutstanding) proxmoxDuringNetbox += 1;
      if (proxmoxReads === 2) secondProxmoxRead();
      return Object.fromEntries(paths.map((p) => [p, full.proxmox[p] ?? { error: { status: 404, message: 'not in the sample' } }]));
    },
    readNetbox: async (collections) => {
      netboxOutstanding += 1;
      // In lock-step rounds the second Proxmox read would wait for this one: the timer ends the wait then.
      await Promise.race([secondStarted, new Promise((resolve) => { setTimeout(resolve, 2000); })]);
      netboxOutstanding -= 1;
      return Object.fromEntries(collections.map((c) => [c, full.netbox[c] ?? []]));
    },
  });
  assert.ok(proxmoxDuringNetbox >= 1, `Proxmox reads started while NetBox was read: ${proxmoxDuringNetbox}`);
  assert.deepEqual(planner.plan(input).summary, planner.plan(full).summary);
});

test('the browser discover loop reads NetBox\'s history filtered, as discover asks, and plans the field conflict the Node host plans', async () => {
  const { input: full, vm } = await memoryConflictInput();
  const history = [CHANGELOG, JOURNAL];
  const asked = [];
  const { input } = await collectInput({
    planner,
    base: { settings: full.settings, endpoint: full.endpoint, sync_types: full.sync_types, sync_user: full.sync_user },
    readProxmox: async (paths) => Object.fromEntries(paths.map((p) => [p, full.proxmox[p]])),
    readNetbox: async (collections, { queries }) => {
      asked.push(...collections.filter((c) => history.includes(c)).map((c) => [c, queries[c]]));
      return Object.fromEntries(collections.map((c) => [c, full.netbox[c]]));
    },
  });
  assert.deepEqual(asked, [
    [CHANGELOG, [{ action: 'update', changed_object_id: [vm.id], changed_object_type: VM, user_id__n: 1 }]],
    [JOURNAL, [{ assigned_object_id: [vm.id], assigned_object_type: VM, q: 'keep-netbox:' }]],
  ]);
  const plan = planner.plan(input);
  assert.deepEqual(plan.conflicts, planner.plan(full).conflicts);
  assert.deepEqual(plan.conflicts.map((c) => [c.kind, c.kind === 'operator-edited' && c.field, c.kind === 'operator-edited' && c.changed_by]),
    [['operator-edited', 'memory', 'alice']]);
});
