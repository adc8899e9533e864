// The executor: batching, $ref resolution, preconditions (stale), dependents
// of failures, per-item bulk errors, lost answers, re-runs without
// duplicates, and its progress events. NetBox's REST semantics come from the
// in-process fake transport; e2e.test.js runs the same paths on a real NetBox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as planner from 'proxbox-planner';
import { NetBoxClient } from '../netbox.js';
import { applyPlan, batches, lookupGroups, resolveRefs } from '../apply.js';
import { FakeNetBox, FAKE_URL } from '../test-support/fake-netbox.js';

const TOKEN = '0123456789abcdef0123456789abcdef01234567';
const sample = JSON.parse(readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url), 'utf8'));

function setup(options = {}) {
  const fake = new FakeNetBox(options);
  const client = new NetBoxClient({ url: FAKE_URL, token: TOKEN, transport: fake.transport, sleep: async () => {}, batchSize: 100 });
  return { fake, client };
}

/** An empty NetBox holding every collection the sample plan writes to. */
function emptyNetBox(options) {
  const env = setup(options);
  for (const op of planner.plan(sample).operations) env.fake.objects(op.collection);
  return env;
}

const op = (id, collection, action, extra = {}) => ({ id, stage: extra.stage ?? 's', model: 'm', key: id, reason: 'r', collection, action, ...extra });

test('batches: consecutive same collection+action, split on in-batch dependencies, size and repeated targets', () => {
  const ops = [
    op('a', '/x/', 'create'),
    op('b', '/x/', 'create'),
    op('c', '/x/', 'create', { depends_on: ['a'] }),
    op('d', '/y/', 'create'),
    op('e', '/y/', 'update', { target: { id: 1 } }),
    op('f', '/y/', 'update', { target: { id: 2 } }),
    op('g', '/y/', 'update', { target: { id: 1 } }),
    op('h', '/y/', 'skip'),
    op('i', '/y/', 'update', { target: { id: 3 } }),
  ];
  assert.deepEqual(batches(ops).map((b) => b.map((o) => o.id).join('')), ['ab', 'c', 'd', 'ef', 'g', 'h', 'i']);
  assert.deepEqual(batches(ops.slice(0, 2), { batchSize: 1 }).map((b) => b.length), [1, 1]);
});

test('resolveRefs: anywhere in fields, lists and nested objects; a missing one throws', () => {
  const ids = new Map([['x', 7], ['y', 9]]);
  assert.deepEqual(
    resolveRefs({ a: { $ref: 'x' }, b: [{ $ref: 'y' }, 3], c: { d: { $ref: 'x' }, e: { $ref: 'x', other: 1 } } }, ids),
    { a: 7, b: [9, 3], c: { d: 7, e: { $ref: 'x', other: 1 } } },
  );
  assert.throws(() => resolveRefs({ a: { $ref: 'nope' } }, ids), /unresolved \$ref nope/);
});

test('matchesExisting, the core rule: NetBox read shapes against the write payload', () => {
  const read = {
    id: 4, name: 'web01', status: { value: 'active', label: 'Active' }, vcpus: 2.0, cluster: { id: 3, name: 'lab' },
    mac_address: 'BC:24:11:00:00:01', tags: [{ id: 1, slug: 'proxbox' }], custom_fields: { proxmox_vmid: 100, other: null },
    import_targets: [{ id: 5 }, { id: 6 }], raw_config: { b: 1, a: [1, 2] }, comments: 'x', site: { id: 2, slug: 'lab' },
  };
  const matches = (payload) => planner.matchesExisting(payload, read);
  assert.ok(matches({ name: 'web01', status: 'active', vcpus: 2, cluster: 3, tags: [{ slug: 'other' }], custom_fields: { proxmox_vmid: 100 }, import_targets: [6, 5], raw_config: { a: [1, 2], b: 1 }, comments: 'x\n', site: 2 }));
  assert.ok(!matches({ name: 'Web01' }), 'names are compared exactly');
  assert.ok(!matches({ custom_fields: { proxmox_vmid: 101 } }));
  assert.ok(!matches({ cluster: 4 }));
  assert.ok(!matches({ description: 'x' }), 'a field NetBox does not show is not a match');
  assert.throws(() => planner.matchesExisting({ name: 'x' }, { name: 'no id' }), (error) => error.code === 'missing-field' && error.path === '$.object.id');
  // Lookup queries: same filter keys share one query; a key only some operations have gets its own.
  assert.deepEqual(
    lookupGroups([
      { lookup: { name: 'a', vid: 1, cluster_id: 3 } },
      { lookup: { name: 'b', vid: 1 } },
      { lookup: { name: 'c', vid: 2, cluster_id: 4 } },
      { lookup: {} },
    ]),
    [{ name: ['a', 'c'], vid: [1, 2], cluster_id: [3, 4] }, { name: ['b'], vid: [1] }],
  );
});

test('every create of the sample plan carries a lookup that finds its object again', () => {
  const creates = planner.plan(sample).operations.filter((o) => o.action === 'create');
  assert.ok(creates.length > 50);
  for (const create of creates) assert.ok(Object.keys(create.lookup ?? {}).length > 0, create.id);
});

test('the sample plan applies in order, with $refs resolved to the ids NetBox returned', async () => {
  const { fake, client } = emptyNetBox();
  const plan = planner.plan(sample);
  const events = [];
  const report = await applyPlan(plan, client, { emit: (event, data) => events.push({ event, data }) });
  assert.equal(report.ok, true);
  assert.equal(report.counts.done, plan.summary.create + plan.summary.update);
  assert.equal(report.counts.skipped, plan.summary.skip);
  // The identity lives in the plugin's sync-state record (the sample has the plugin).
  const state = fake.objects('/api/plugins/proxbox/sync-state/virtual-machines/').find((s) => s.proxmox_vm_id === 101);
  const vm = fake.objects('/api/virtualization/virtual-machines/').find((v) => v.id === (state.virtual_machine?.id ?? state.virtual_machine));
  assert.equal(vm.name, 'web01');
  const cluster = fake.objects('/api/virtualization/clusters/')[0];
  assert.equal(vm.cluster, cluster.id, 'a $ref became the cluster id');
  const net0 = fake.objects('/api/virtualization/interfaces/').find((i) => i.virtual_machine === vm.id && i.name === 'net0');
  const mac = fake.objects('/api/dcim/mac-addresses/').find((m) => m.assigned_object_id === net0.id);
  assert.equal(net0.primary_mac_address, mac.id, 'update target.id and changes.after $refs resolved');
  const ip = fake.objects('/api/ipam/ip-addresses/').find((i) => i.address === '10.0.20.11/24');
  assert.equal(vm.primary_ip4, ip.id);
  // Batches: one POST per run of consecutive creates of one collection.
  const posts = fake.log.filter((e) => e.method === 'POST');
  assert.equal(posts.reduce((n, p) => n + p.body.length, 0), plan.summary.create);
  assert.equal(posts.length, batches(plan.operations).filter((b) => b[0].action === 'create').length);
  // Events: one item_progress per operation, percent 100 at the end, one phase_summary per stage.
  // The counter counts changes, as the prompt and the report do: a planned skip does not advance it.
  const items = events.filter((e) => e.event === 'item_progress');
  const changes = plan.summary.create + plan.summary.update + plan.summary.delete;
  assert.ok(plan.summary.skip > 0 && changes < plan.operations.length, 'the sample has a planned skip');
  assert.equal(items.length, plan.operations.length);
  assert.deepEqual(items.map((e) => e.data.progress.total), items.map(() => changes));
  assert.deepEqual(items.filter((e) => e.data.action !== 'skip').map((e) => e.data.progress.current), Array.from({ length: changes }, (_, i) => i + 1));
  assert.deepEqual(items.at(-1).data.progress, { current: changes, total: changes, percent: 100 });
  assert.equal(report.counts.changes, changes);
  // The sample's passthrough disk (no size=) cannot be a NetBox virtual disk: the one warning.
  assert.deepEqual(plan.warnings.map((w) => w.code), ['unsized-disk']);
  assert.equal(report.outcome, 'ok-with-warnings');
  assert.ok(items.every((e) => e.data.status === 'progress' && ['created', 'updated', 'skipped'].includes(e.data.outcome)));
  const stages = [...new Set(plan.operations.map((o) => o.stage))];
  assert.deepEqual(events.filter((e) => e.event === 'phase_summary').map((e) => e.data.phase).sort(), stages.sort());
  assert.deepEqual(events[0], { event: 'step', data: { step: 'apply', status: 'started', message: `Applying ${changes} changes` } });
  assert.equal(events.at(-1).data.status, 'completed');
});

test('applying the same plan twice duplicates nothing: creates find their objects, deletes of gone objects are done', async () => {
  const { fake, client } = emptyNetBox();
  const plan = planner.plan(sample);
  await applyPlan(plan, client);
  const counts = fake.counts();
  const again = await applyPlan(plan, client);
  assert.deepEqual(fake.counts(), counts, 'no new object anywhere');
  assert.equal(again.ok, true);
  const creates = again.operations.filter((o) => o.action === 'create');
  assert.ok(creates.every((o) => o.status === 'done' && o.existing), 'every create found its object');
  assert.equal(fake.log.filter((e) => e.method === 'POST').length, batches(plan.operations).filter((b) => b[0].action === 'create').length, 'the second apply posted nothing');
});

test('without the lookup, a second apply meets NetBox uniqueness and fails honestly (dependents skipped)', async () => {
  const { fake, client } = emptyNetBox({ unique: { '/api/extras/tags/': ['slug'], '/api/virtualization/clusters/': ['name'], '/api/dcim/sites/': ['slug'], '/api/dcim/manufacturers/': ['slug'], '/api/dcim/device-roles/': ['slug'], '/api/dcim/device-types/': ['slug'], '/api/virtualization/cluster-types/': ['slug'], '/api/extras/custom-fields/': ['name'], '/api/plugins/proxbox/vm-templates/': ['vmid'], '/api/plugins/proxbox/storage/': ['name'], '/api/plugins/proxbox/replications/': ['replication_id'], '/api/ipam/vlans/': ['vid'], '/api/virtualization/virtual-machines/': ['name'] } });
  const plan = planner.plan(sample);
  await applyPlan(plan, client, { verifyCreates: 'never' });
  const counts = fake.counts();
  const again = await applyPlan(plan, client, { verifyCreates: 'never' });
  assert.deepEqual(fake.counts(), counts);
  assert.equal(again.ok, false);
  assert.ok(again.counts.failed > 0 && again.counts['skipped-dependency'] > 0);
  const failed = again.operations.find((o) => o.status === 'failed');
  assert.equal(failed.error.status, 400);
  assert.match(JSON.stringify(failed.error.body), /already exists/);
});

test('stale: an update whose object changed since planning is refused, its dependents skipped; one changed by this plan is not', async () => {
  const { fake, client } = setup();
  const vms = '/api/virtualization/virtual-machines/';
  const a = fake.seed(vms, { name: 'a' });
  const b = fake.seed(vms, { name: 'b' });
  fake.objects('/api/x/');
  const plan = {
    format_version: 1,
    operations: [
      op('u-a', vms, 'update', { target: { id: a.id, last_updated: a.last_updated }, changes: { name: { before: 'a', after: 'a2' } } }),
      op('u-b', vms, 'update', { target: { id: b.id, last_updated: b.last_updated }, changes: { name: { before: 'b', after: 'b2' } } }),
      op('after-a', '/api/x/', 'create', { fields: { vm: a.id }, depends_on: ['u-a'] }),
      op('u-b-again', vms, 'update', { stage: 't', target: { id: b.id, last_updated: b.last_updated }, changes: { comments: { before: '', after: 'x' } } }),
    ],
  };
  // An operator edits `a` after planning.
  await client.updateBatch(vms, [{ id: a.id, comments: 'operator' }]);
  const report = await applyPlan(plan, client);
  const by = Object.fromEntries(report.operations.map((o) => [o.id, o]));
  assert.equal(by['u-a'].status, 'stale');
  assert.match(by['u-a'].error.message, /changed since planning/);
  assert.equal(fake.find(vms, a.id).name, 'a', 'not written');
  assert.equal(by['after-a'].status, 'skipped-dependency');
  assert.equal(by['u-b'].status, 'done');
  assert.equal(by['u-b-again'].status, 'done', 'b changed since planning, but by this apply');
  assert.equal(fake.find(vms, b.id).comments, 'x');
  assert.equal(report.ok, false);
});

test('a failed create fails its dependents transitively; independent operations go on', async () => {
  const { fake, client } = setup();
  for (const c of ['/a/', '/b/', '/c/']) fake.objects(c);
  const plan = {
    format_version: 1,
    operations: [
      op('bad', '/a/', 'create', { fields: { name: 'bad', invalid: true } }),
      op('good', '/a/', 'create', { fields: { name: 'good' } }),
      op('child', '/b/', 'create', { fields: { parent: { $ref: 'bad' } }, depends_on: ['bad'] }),
      op('grandchild', '/c/', 'create', { fields: { parent: { $ref: 'child' } }, depends_on: ['child'] }),
      op('other-child', '/b/', 'create', { fields: { parent: { $ref: 'good' } }, depends_on: ['good'] }),
      op('skip', '/c/', 'skip'),
      op('needs-skip', '/c/', 'create', { fields: { parent: { $ref: 'skip' } }, depends_on: ['skip'] }),
    ],
  };
  const events = [];
  const report = await applyPlan(plan, client, { emit: (event, data) => events.push({ event, data }) });
  const status = Object.fromEntries(report.operations.map((o) => [o.id, o.status]));
  assert.deepEqual(status, { bad: 'failed', good: 'done', child: 'skipped-dependency', grandchild: 'skipped-dependency', 'other-child': 'done', skip: 'skipped', 'needs-skip': 'failed' });
  assert.equal(fake.objects('/a/').length, 1, 'the bad item did not block its batch: only it failed');
  assert.equal(fake.objects('/b/')[0].parent, fake.objects('/a/')[0].id);
  const bad = report.operations[0];
  assert.equal(bad.error.status, 400);
  assert.deepEqual(bad.error.body, { invalid: ['This field is invalid.'] });
  assert.match(report.operations.find((o) => o.id === 'needs-skip').error.message, /unresolved \$ref skip/);
  assert.deepEqual(report.counts.by_action.create, { failed: 2, done: 2, 'skipped-dependency': 2 });
  const details = events.filter((e) => e.event === 'error_detail');
  assert.deepEqual(details.map((e) => e.data.operation), ['bad', 'child', 'grandchild', 'needs-skip']);
  assert.deepEqual(details.map((e) => e.data.category), ['netbox', 'dependency', 'dependency', 'netbox']);
});

test('a create batch whose answer is lost is found, not re-created', async () => {
  const { fake, client } = setup();
  const vlans = '/api/ipam/vlans/';
  fake.objects(vlans);
  fake.objects('/api/virtualization/interfaces/');
  let dropped = 0;
  fake.fault = (req) => (req.method === 'POST' && req.path === vlans && dropped++ === 0 ? 'drop-after' : undefined);
  const plan = {
    format_version: 1,
    operations: [
      op('v20', vlans, 'create', { fields: { vid: 20, name: 'VLAN 20', status: 'active' }, lookup: { vid: 20, name: 'VLAN 20' } }),
      op('v30', vlans, 'create', { fields: { vid: 30, name: 'VLAN 30', status: 'active' }, lookup: { vid: 30, name: 'VLAN 30' } }),
      op('if', '/api/virtualization/interfaces/', 'create', { fields: { name: 'net0', untagged_vlan: { $ref: 'v30' } }, depends_on: ['v30'] }),
    ],
  };
  for (const verifyCreates of ['always', 'retry']) {
    dropped = 0;
    fake.collections.set(vlans, []);
    fake.collections.set('/api/virtualization/interfaces/', []);
    const report = await applyPlan(plan, client, { verifyCreates });
    assert.equal(report.ok, true, verifyCreates);
    assert.equal(fake.objects(vlans).length, 2, `${verifyCreates}: created once`);
    assert.ok(report.operations.slice(0, 2).every((o) => o.status === 'done' && o.existing));
    assert.equal(fake.objects('/api/virtualization/interfaces/')[0].untagged_vlan, fake.objects(vlans)[1].id);
  }
  // With the lookup off, an unknown outcome is a failure that says so (and dependents wait).
  dropped = 0;
  fake.collections.set(vlans, []);
  const report = await applyPlan(plan, client, { verifyCreates: 'never' });
  assert.equal(report.operations[0].status, 'failed');
  assert.match(report.operations[0].error.message, /outcome unknown/);
  assert.equal(report.operations[2].status, 'skipped-dependency');
});

test('a crash mid-apply, then the same plan again, converges with no duplicates', async () => {
  const reference = emptyNetBox();
  const plan = planner.plan(sample);
  await applyPlan(plan, reference.client);
  const { fake, client } = emptyNetBox();
  let posts = 0;
  // "Crash": from the 6th POST on, NetBox is unreachable (nothing more is written).
  fake.fault = (req) => (req.method === 'POST' && ++posts >= 6 ? 'drop-before' : undefined);
  const first = await applyPlan(plan, client);
  assert.equal(first.ok, false);
  assert.ok(first.counts.done > 0 && first.counts.failed > 0);
  assert.equal(first.outcome, 'partial', 'some done, some failed');
  fake.fault = null;
  const second = await applyPlan(plan, client);
  assert.equal(second.ok, true);
  assert.deepEqual(fake.counts(), reference.fake.counts());
});

test('deletes: already gone is done, changed since planning is stale, others deleted in one request', async () => {
  const { fake, client } = setup();
  const ips = '/api/ipam/ip-addresses/';
  const [a, b, c, d] = ['10.0.0.1/24', '10.0.0.2/24', '10.0.0.3/24', '10.0.0.4/24'].map((address) => fake.seed(ips, { address }));
  const del = (x, extra) => op(`del-${x.id}`, ips, 'delete', { target: { id: x.id, last_updated: x.last_updated }, ...extra });
  const plan = { format_version: 1, operations: [del(a), del(b), del(c), del(d, { target: { id: 99, last_updated: null } })] };
  fake.collections.set(ips, fake.objects(ips).filter((o) => o.id !== b.id)); // a cascade took b
  await client.updateBatch(ips, [{ id: c.id, description: 'operator' }]);
  const report = await applyPlan(plan, client);
  const status = report.operations.map((o) => o.status);
  assert.deepEqual(status, ['done', 'done', 'stale', 'done']);
  assert.deepEqual(fake.objects(ips).map((o) => o.id), [c.id, d.id]);
  assert.ok(report.operations[1].existing && report.operations[3].existing, 'reported as already gone');
  assert.equal(fake.log.filter((e) => e.method === 'DELETE').length, 2, 'one bulk DELETE, then its missing id left out');
});

test('outcomes: nothing done of several is failed, warnings make ok-with-warnings, an incomplete plan is refused unwritten', async () => {
  const { fake, client } = setup();
  fake.objects('/x/');
  fake.fault = (req) => (req.method === 'POST' ? { status: 500, body: { error: 'boom', exception: 'X', netbox_version: '4.7.3' } } : undefined);
  const plan = { format_version: 1, warnings: [], operations: [op('a', '/x/', 'create', { fields: { name: 'a' } }), op('b', '/x/', 'create', { fields: { name: 'b' } })] };
  const none = await applyPlan(plan, client, { verifyCreates: 'never' });
  assert.deepEqual([none.ok, none.outcome, none.counts.failed], [false, 'failed', 2]);
  fake.fault = null;
  const warned = await applyPlan({ ...plan, warnings: [{ code: 'duplicate-ip', message: 'x' }] }, client);
  assert.deepEqual([warned.ok, warned.outcome, warned.warnings], [true, 'ok-with-warnings', [{ code: 'duplicate-ip', message: 'x' }]]);
  const writes = fake.log.filter((e) => e.method !== 'GET').length;
  await assert.rejects(applyPlan({ ...plan, complete: false, warnings: [{ code: 'proxmox-unreadable', message: '/cluster/status could not be read' }] }, client), (error) => {
    assert.equal(error.outcome, 'failed');
    assert.equal(error.message, 'the plan is incomplete, so it cannot be applied: proxmox-unreadable: /cluster/status could not be read');
    return true;
  });
  assert.equal(fake.log.filter((e) => e.method !== 'GET').length, writes, 'nothing written');
});
