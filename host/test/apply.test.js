// The executor: batching, $ref resolution, preconditions (stale), dependents
// of failures, per-item bulk errors, lost answers, re-runs without
// duplicates, and its progress events. NetBox's REST semantics come from the
// in-process fake transport; e2e.test.js runs the same paths on a real NetBox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as planner from 'proxbox-planner';
import { NetBoxClient } from '../netbox.js';
import { applyPlan, batches, lookupGroups, resolveRefs, withChoices, workUnits } from '../apply.js';
import { delayedTransport, FakeNetBox, FAKE_URL } from '../test-support/fake-netbox.js';

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

/** @typedef {import('proxbox-planner').Plan} Plan @typedef {import('proxbox-planner').Operation} Operation */

/** An operation with a made-up stage, model and reason: the executor only passes them on. @returns {Operation} */
const op = (id, collection, action, extra = {}) => /** @type {Operation} */ (/** @type {unknown} */ ({
  id, stage: extra.stage ?? 's', model: 'm', key: id, reason: 'r', collection, action, ...extra,
}));

/**
 * A hand-made plan: the executor reads its operations (and `complete`, `warnings`, `changelog_message`),
 * none of what else a planned one has (summary, origin, versions).
 * @param {Record<string, unknown>} plan @returns {Plan}
 */
const handMade = (plan) => /** @type {Plan} */ (/** @type {unknown} */ (plan));

test('batches: consecutive same collection+action, split where one needs the id of another, size and repeated targets', () => {
  const ops = [
    op('a', '/x/', 'create'),
    op('b', '/x/', 'create', { depends_on: ['a'] }), // waits for a, needs no id of it: NetBox writes a list in order
    op('c', '/x/', 'create', { fields: { parent: { $ref: 'a' } }, depends_on: ['a'] }),
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
  assert.ok(
    matches({
      name: 'web01', status: 'active', vcpus: 2, cluster: 3, tags: [{ slug: 'other' }], custom_fields: { proxmox_vmid: 100 },
      import_targets: [6, 5], raw_config: { a: [1, 2], b: 1 }, comments: 'x\n', site: 2,
    })
  );
  assert.ok(!matches({ name: 'Web01' }), 'names are compared exactly');
  assert.ok(!matches({ custom_fields: { proxmox_vmid: 101 } }));
  assert.ok(!matches({ cluster: 4 }));
  assert.ok(!matches({ description: 'x' }), 'a field NetBox does not show is not a match');
  assert.throws(() => planner.matchesExisting({ name: 'x' }, { name: 'no id' }), { code: 'missing-field', path: '$.object.id' });
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
  assert.equal(
    fake.log.filter((e) => e.method === 'POST').length, batches(plan.operations).filter((b) => b[0].action === 'create').length,
    'the second apply posted nothing'
  );
});

test('without the lookup, a second apply meets NetBox uniqueness and fails honestly (dependents skipped)', async () => {
  const { fake, client } = emptyNetBox({
    unique: {
      '/api/extras/tags/': ['slug'], '/api/virtualization/clusters/': ['name'], '/api/dcim/sites/': ['slug'],
      '/api/dcim/manufacturers/': ['slug'], '/api/dcim/device-roles/': ['slug'], '/api/dcim/device-types/': ['slug'],
      '/api/virtualization/cluster-types/': ['slug'], '/api/extras/custom-fields/': ['name'],
      '/api/plugins/proxbox/vm-templates/': ['vmid'], '/api/plugins/proxbox/storage/': ['name'],
      '/api/plugins/proxbox/replications/': ['replication_id'], '/api/ipam/vlans/': ['vid'],
      '/api/virtualization/virtual-machines/': ['name'],
    },
  });
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
  const plan = handMade({
    format_version: 1,
    operations: [
      op('u-a', vms, 'update', { target: { id: a.id, last_updated: a.last_updated }, changes: { name: { before: 'a', after: 'a2' } } }),
      op('u-b', vms, 'update', { target: { id: b.id, last_updated: b.last_updated }, changes: { name: { before: 'b', after: 'b2' } } }),
      op('after-a', '/api/x/', 'create', { fields: { vm: a.id }, depends_on: ['u-a'] }),
      op('u-b-again', vms, 'update', { stage: 't', target: { id: b.id, last_updated: b.last_updated }, changes: { comments: { before: '', after: 'x' } } }),
    ],
  });
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

test('in one batch, an operation waiting for a refused one is skipped, and the rest of the batch goes on', async () => {
  const { fake, client } = setup();
  fake.objects('/a/');
  const plan = handMade({
    format_version: 1,
    operations: [
      op('first', '/a/', 'create', { fields: { name: 'first', invalid: true } }),
      op('second', '/a/', 'create', { fields: { name: 'second' }, depends_on: ['first'] }),
      op('third', '/a/', 'create', { fields: { name: 'third' }, depends_on: ['second'] }),
      op('other', '/a/', 'create', { fields: { name: 'other' } }),
    ],
  });
  assert.equal(batches(plan.operations).length, 1, 'one request');
  const report = await applyPlan(plan, client);
  const status = Object.fromEntries(report.operations.map((o) => [o.id, o.status]));
  assert.deepEqual(status, { first: 'failed', second: 'skipped-dependency', third: 'skipped-dependency', other: 'done' });
  assert.deepEqual(fake.objects('/a/').map((o) => o.name), ['other']);
});

test('a failed create fails its dependents transitively; independent operations go on', async () => {
  const { fake, client } = setup();
  for (const c of ['/a/', '/b/', '/c/']) fake.objects(c);
  const plan = handMade({
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
  });
  const events = [];
  const report = await applyPlan(plan, client, { emit: (event, data) => events.push({ event, data }) });
  const status = Object.fromEntries(report.operations.map((o) => [o.id, o.status]));
  assert.deepEqual(status, {
    bad: 'failed', good: 'done', child: 'skipped-dependency', grandchild: 'skipped-dependency', 'other-child': 'done', skip: 'skipped',
    'needs-skip': 'failed',
  });
  assert.equal(fake.objects('/a/').length, 1, 'the bad item did not block its batch: only it failed');
  assert.equal(fake.objects('/b/')[0].parent, fake.objects('/a/')[0].id);
  const bad = report.operations[0];
  assert.equal(bad.error.status, 400);
  assert.deepEqual(bad.error.body, { invalid: ['This field is invalid.'] });
  assert.match(report.operations.find((o) => o.id === 'needs-skip').error.message, /unresolved \$ref skip/);
  assert.deepEqual(report.counts.by_action.create, { failed: 2, done: 2, 'skipped-dependency': 2 });
  // One error_detail per operation that did not go through, causes before their consequences
  // ('needs-skip' waits only for a skip, so it runs beside 'bad' and may come first).
  const details = events.filter((e) => e.event === 'error_detail');
  const category = Object.fromEntries(details.map((e) => [e.data.operation, e.data.category]));
  assert.deepEqual(category, { bad: 'netbox', child: 'dependency', grandchild: 'dependency', 'needs-skip': 'netbox' });
  const order = details.map((e) => e.data.operation);
  assert.ok(order.indexOf('bad') < order.indexOf('child') && order.indexOf('child') < order.indexOf('grandchild'), order.join(', '));
});

test('a create batch whose answer is lost is found, not re-created', async () => {
  const { fake, client } = setup();
  const vlans = '/api/ipam/vlans/';
  fake.objects(vlans);
  fake.objects('/api/virtualization/interfaces/');
  let dropped = 0;
  fake.fault = (req) => (req.method === 'POST' && req.path === vlans && dropped++ === 0 ? 'drop-after' : undefined);
  const plan = handMade({
    format_version: 1,
    operations: [
      op('v20', vlans, 'create', { fields: { vid: 20, name: 'VLAN 20', status: 'active' }, lookup: { vid: 20, name: 'VLAN 20' } }),
      op('v30', vlans, 'create', { fields: { vid: 30, name: 'VLAN 30', status: 'active' }, lookup: { vid: 30, name: 'VLAN 30' } }),
      op('if', '/api/virtualization/interfaces/', 'create', { fields: { name: 'net0', untagged_vlan: { $ref: 'v30' } }, depends_on: ['v30'] }),
    ],
  });
  for (const verifyCreates of /** @type {const} */ (['always', 'retry'])) {
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
  const plan = handMade({ format_version: 1, operations: [del(a), del(b), del(c), del(d, { target: { id: 99, last_updated: null } })] });
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
  const plan = handMade({
    format_version: 1, warnings: [],
    operations: [op('a', '/x/', 'create', { fields: { name: 'a' } }), op('b', '/x/', 'create', { fields: { name: 'b' } })],
  });
  const none = await applyPlan(plan, client, { verifyCreates: 'never' });
  assert.deepEqual([none.ok, none.outcome, none.counts.failed], [false, 'failed', 2]);
  fake.fault = null;
  const warned = await applyPlan({ ...plan, warnings: [{ code: 'duplicate-ip', message: 'x' }] }, client);
  assert.deepEqual([warned.ok, warned.outcome, warned.warnings], [true, 'ok-with-warnings', [{ code: 'duplicate-ip', message: 'x' }]]);
  const writes = fake.log.filter((e) => e.method !== 'GET').length;
  await assert.rejects(applyPlan(
    { ...plan, complete: false, warnings: [{ code: 'proxmox-unreadable', message: '/cluster/status could not be read' }] }, client
  ), (/** @type {import('../outcome.js').RunError} */ error) => {
    assert.equal(error.outcome, 'failed');
    assert.equal(error.message, 'the plan is incomplete, so it cannot be applied: proxmox-unreadable: /cluster/status could not be read');
    return true;
  });
  assert.equal(fake.log.filter((e) => e.method !== 'GET').length, writes, 'nothing written');
});

test('withChoices: a named conflict\'s chosen operation stands in for the planned one; unknown or doubly named ids are usage errors', () => {
  const skip = op('x@description', '/api/virtualization/virtual-machines/', 'skip', { target: { id: 7 } });
  const accept = op('x@description', '/api/virtualization/virtual-machines/', 'update', {
    target: { id: 7 }, changes: { description: { before: 'a', after: 'b' } },
  });
  const keep = op('x@description', '/api/extras/journal-entries/', 'create', { fields: { assigned_object_id: 7 } });
  const plan = handMade({
    operations: [op('other', '/y/', 'create'), skip],
    conflicts: [{ kind: 'operator-edited', id: 'x@description', choices: { 'accept-proxmox': accept, 'keep-netbox': keep } }],
  });
  assert.equal(withChoices(plan, {}), plan);
  assert.deepEqual(withChoices(plan, { acceptProxmox: ['x@description'] }).operations, [plan.operations[0], accept]);
  assert.deepEqual(withChoices(plan, { keepNetbox: ['x@description'] }).operations, [plan.operations[0], keep]);
  assert.equal(plan.operations[1], skip, 'the plan itself is left as it was');
  assert.throws(() => withChoices(plan, { acceptProxmox: ['nope'] }), {
    name: 'UsageError', message: '--accept-proxmox nope: the plan has no such conflict (its conflicts: x@description)',
  });
  assert.throws(
    () => withChoices(plan, { acceptProxmox: ['x@description'], keepNetbox: ['x@description'] }),
    /named for both --accept-proxmox and --keep-netbox/
  );
});

test('every write carries the plan\'s changelog_message (deletes too), which NetBox keeps in its change log', async () => {
  const { fake, client } = setup();
  const vms = '/api/virtualization/virtual-machines/';
  fake.seed(vms, { id: 1, name: 'a' });
  fake.seed(vms, { id: 2, name: 'b' });
  const plan = handMade({
    changelog_message: 'proxbox-planner 0.1.0',
    operations: [
      op('c', vms, 'create', { fields: { name: 'c' } }),
      op('u', vms, 'update', { target: { id: 1 }, changes: { name: { before: 'a', after: 'a2' } } }),
      op('d', vms, 'delete', { target: { id: 2 } }),
    ],
  });
  const report = await applyPlan(plan, client, { verifyCreates: 'never' });
  assert.equal(report.ok, true, JSON.stringify(report.operations));
  assert.deepEqual(fake.changelogMessages, ['proxbox-planner 0.1.0', 'proxbox-planner 0.1.0', 'proxbox-planner 0.1.0']);
  assert.deepEqual(fake.objects(vms).map((o) => [o.id, o.name, 'changelog_message' in o]), [[1, 'a2', false], [3, 'c', false]]);
});

/** 250 parents in /p/ and a child in /c/ for each (its `parent` a $ref): three batches each. */
function familyPlan(n = 250) {
  const operations = [];
  for (let i = 0; i < n; i++) operations.push(op(`p${i}`, '/p/', 'create', { stage: 'parents', fields: { name: `p${i}` }, lookup: { name: `p${i}` } }));
  for (let i = 0; i < n; i++) operations.push(
    op(`c${i}`, '/c/', 'create', { stage: 'children', fields: { name: `c${i}`, parent: { $ref: `p${i}` } }, lookup: { name: `c${i}` }, depends_on: [`p${i}`] })
  );
  return handMade({ format_version: 1, warnings: [], operations });
}

test('concurrent batches: at most N in flight, children start as soon as their parents are done (a pipeline), every $ref right', async () => {
  const fake = new FakeNetBox();
  for (const c of ['/p/', '/c/']) fake.objects(c);
  const transport = delayedTransport(fake);
  const client = new NetBoxClient({ url: FAKE_URL, token: TOKEN, transport, sleep: async () => {}, batchSize: 100, concurrency: 2 });
  const events = [];
  const report = await applyPlan(familyPlan(), client, { emit: (event, data) => events.push({ event, data }) });
  assert.equal(report.ok, true);
  assert.equal(transport.max, 2, 'two requests at once, never more');
  const parents = new Map(fake.objects('/p/').map((p) => [p.id, p.name]));
  assert.equal(parents.size, 250);
  assert.ok(fake.objects('/c/').every((c) => parents.get(c.parent) === c.name.replace('c', 'p')), 'each child points at its own parent');
  // Parents' batches first (plan order), and the first children's batch went out while the last parents' was still on its way.
  const posts = fake.log.filter((e) => e.method === 'POST');
  assert.deepEqual(posts.map((e) => e.path), ['/p/', '/p/', '/p/', '/c/', '/c/', '/c/']);
  assert.ok(fake.log.find((e) => e.path === '/c/').alongside.some((r) => r.endsWith(' /p/')), 'a pipeline, not a barrier per stage');
  // Progress still counts up by one, and each stage is summed up once, when its last operation is done.
  const items = events.filter((e) => e.event === 'item_progress');
  assert.deepEqual(items.map((e) => e.data.progress.current), Array.from({ length: 500 }, (_, i) => i + 1));
  assert.deepEqual(events.filter((e) => e.event === 'phase_summary').map((e) => [e.data.phase, e.data.result.created]), [['parents', 250], ['children', 250]]);
  assert.ok(
    events.findIndex((e) => e.event === 'step' && e.data.step === 'children') < events.findIndex((e) => e.event === 'phase_summary'),
    'children started before the parents were all done'
  );
});

test('concurrent batches: two operations on one object run in plan order; deletes run alone, after everything else', async () => {
  const { fake, client } = setup();
  const vms = '/api/virtualization/virtual-machines/';
  const a = fake.seed(vms, { name: 'a' });
  const gone = fake.seed(vms, { name: 'gone' });
  fake.objects('/x/');
  const update = (id, field, value, extra = {}) => op(id, vms, 'update', {
    target: { id: a.id, last_updated: a.last_updated }, changes: { [field]: { before: null, after: value } }, ...extra,
  });
  const plan = handMade({
    format_version: 1,
    operations: [
      update('first', 'comments', 'one'),
      op('other', '/x/', 'create', { fields: { name: 'x' } }),
      update('second', 'comments', 'two', { stage: 't' }),
      op('del', vms, 'delete', { target: { id: gone.id, last_updated: gone.last_updated } }),
    ],
  });
  const units = workUnits(plan.operations);
  assert.deepEqual(units.map((u) => [u.ops.map((o) => o.id), [...u.after], u.alone]), [
    [['first'], [], false], [['other'], [], false], [['second'], ['first'], false], [['del'], [], true],
  ]);
  const report = await applyPlan(plan, client, { concurrency: 4 });
  assert.equal(report.ok, true, JSON.stringify(report.operations));
  assert.equal(fake.find(vms, a.id).comments, 'two', 'the later change last; not stale: this apply made the first');
  const writes = fake.log.filter((e) => e.method !== 'GET').map((e) => `${e.method} ${e.path}`);
  assert.equal(writes.at(-1), `DELETE ${vms}`);
});

test('429/503: the apply lowers its concurrency to what NetBox takes, and finishes', async () => {
  const fake = new FakeNetBox();
  for (const c of ['/p/', '/c/']) fake.objects(c);
  const transport = delayedTransport(fake);
  // A NetBox (or the proxy in front of it) that takes two requests at a time.
  fake.fault = (req) => (req.inFlight > 2 ? { status: 429, body: { detail: 'Request was throttled.' } } : undefined);
  const client = new NetBoxClient({ url: FAKE_URL, token: TOKEN, transport, sleep: async () => {}, batchSize: 50, concurrency: 8 });
  const report = await applyPlan(familyPlan(), client);
  assert.equal(report.ok, true, JSON.stringify(report.counts));
  assert.equal(fake.objects('/c/').length, 250);
  assert.ok(client.gate.stats.throttled > 0 && client.gate.stats.lowest <= 2, JSON.stringify(client.gate.stats));
  const throttled = fake.log.filter((e) => e.inFlight > 2).length;
  assert.ok(throttled < fake.log.length / 4, `${throttled} of ${fake.log.length} requests refused: the limit came down, not only the pace`);
});

test('a plan whose operations wait for each other ends, each failed with the reason, instead of waiting forever', async () => {
  const { fake, client } = setup();
  fake.objects('/x/');
  const plan = handMade({
    format_version: 1,
    operations: [
      op('a', '/x/', 'create', { fields: { name: 'a' }, depends_on: ['b'] }),
      op('b', '/x/', 'update', { target: { id: { $ref: 'a' } }, changes: { name: { before: 'a', after: 'b' } }, depends_on: ['a'] }),
    ],
  });
  const report = await applyPlan(plan, client);
  assert.deepEqual(report.operations.map((o) => [o.id, o.status]), [['a', 'failed'], ['b', 'failed']]);
  assert.match(report.operations[0].error.message, /not in dependency order/);
  assert.equal(fake.log.filter((e) => e.method !== 'GET').length, 0);
});

test('a create re-sent after no answer, refused as a duplicate because the first attempt landed late, is found, not failed', async () => {
  const vlans = '/api/ipam/vlans/';
  const { fake, client } = setup({ unique: { [vlans]: ['vid'] } });
  fake.objects(vlans);
  // The first POST times out on our side while NetBox goes on; its objects appear after our look.
  let late = null;
  fake.fault = (req) => {
    if (req.method !== 'POST' || req.path !== vlans) return undefined;
    if (!late) {
      late = req.body;
      return 'drop-before';
    }
    if (late !== 'landed') {
      for (const item of late) fake.seed(vlans, item);
      late = 'landed';
    }
    return undefined;
  };
  const plan = handMade({
    format_version: 1,
    operations: [20, 30].map(
      (vid) => op(`v${vid}`, vlans, 'create', { fields: { vid, name: `VLAN ${vid}`, status: 'active' }, lookup: { vid, name: `VLAN ${vid}` } })
    ),
  });
  const report = await applyPlan(plan, client);
  assert.equal(report.ok, true, JSON.stringify(report.operations));
  assert.equal(fake.objects(vlans).length, 2, 'each once');
  assert.ok(report.operations.every((o) => o.status === 'done' && o.existing && o.netbox_id === fake.objects(vlans).find((v) => `v${v.vid}` === o.id).id));
});
