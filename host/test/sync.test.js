// The sync loop offline: plugin settings and endpoint read from NetBox (or
// stood in for without the plugin), discover → fetch → repeat until
// complete, snapshots without secrets. In-process fake transports stand in
// for NetBox and Proxmox; e2e.test.js runs the loop against real servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as planner from 'proxbox-planner';
import { NetBoxClient } from '../netbox.js';
import { collectInput, loadSnapshot, readContext, saveSnapshot, syncOnce, ENDPOINTS_PATH, SETTINGS_PATH } from '../sync.js';
import { FAKE_URL } from '../test-support/fake-netbox.js';
import { aliceSetsMemory, CHANGELOG, doubledMemory, fakeNetBox, fakeProxmox, JOURNAL, NB_TOKEN, sample } from '../test-support/sample-fakes.js';
import { planOutcome } from '../outcome.js';
import { renderPlan } from '../render.js';
import { withChoices } from '../apply.js';

test('readContext: plugin settings and the chosen endpoint, flags over them, secrets dropped', async () => {
  const { client } = fakeNetBox();
  const context = await readContext(client, { endpoint: 'lab', settings: { delete_orphans: true } });
  assert.equal(context.plugin, true);
  assert.equal(context.endpoint.id, sample.endpoint.id);
  assert.equal(context.settings.delete_orphans, true);
  assert.equal(context.settings.sync_mode_vm, sample.settings.sync_mode_vm);
  const text = JSON.stringify(context);
  for (const secret of ['never-in-a-snapshot', 'endpoint-secret-value', '"pw"']) assert.ok(!text.includes(secret), secret);
  await assert.rejects(readContext(client), /2 Proxmox endpoints .*choose one with --endpoint/);
  assert.equal((await readContext(client, { endpoint: 2 })).endpoint.name, 'other');
  const empty = fakeNetBox();
  empty.fake.collections.set(ENDPOINTS_PATH, []);
  await assert.rejects(readContext(empty.client), /no Proxmox endpoint in NetBox.*--endpoint-set id=N/);
  assert.equal((await readContext(empty.client, { endpointOverrides: { id: 1, name: 'lab' } })).endpoint.id, 1);
});

test('without the plugin, flags stand in for settings and endpoint', async () => {
  const { client } = fakeNetBox({ plugin: false });
  const context = await readContext(client, { endpoint: 'lab', settings: { sync_mode_vm: 'disabled' }, endpointOverrides: { id: 7 } });
  const origin = { netbox_url: FAKE_URL, netbox_version: '4.7.3', instance: null };
  assert.deepEqual(context, { plugin: false, settings: { sync_mode_vm: 'disabled' }, endpoint: { id: 7 }, origin, syncUser: { id: 1, username: 'admin' } });
  const named = await readContext(client, { endpoint: 'lab' });
  assert.deepEqual(named.endpoint, { name: 'lab' });
  // The plugin's collections answer 404: the core skips its stages and says why.
  const events = [];
  const { plan, input } = await syncOnce({ netbox: client, proxmox: fakeProxmox(), endpoint: '1', emit: (e, d) => events.push({ e, d }) });
  assert.deepEqual(input.netbox['/api/plugins/proxbox/storage/'], {
    error: { status: 404, message: 'GET /api/plugins/proxbox/storage/?fields=…&limit=1000 → 404: Not found.' },
  });
  assert.ok(plan.warnings.some((w) => w.code === 'proxbox-plugin-absent'), JSON.stringify(plan.warnings));
  assert.ok(events.some(({ e, d }) => e === 'error_detail' && d.category === 'plugin'));
});

test('the NetBox preflight: /api/status/ once per client; the plugin from its answer; the origin for the plan', async () => {
  const { fake, client } = fakeNetBox();
  const { plan, input, result } = await syncOnce({ netbox: client, proxmox: fakeProxmox(), endpoint: 1 });
  assert.equal(fake.log.filter((e) => e.path === '/api/status/').length, 1);
  await readContext(client, { endpoint: 1 });
  assert.equal(fake.log.filter((e) => e.path === '/api/status/').length, 1, 'cached for the run');
  assert.equal(fake.log.filter((e) => e.path === SETTINGS_PATH).length, 1, 'plugin records read once');
  assert.deepEqual(input.origin, { netbox_url: FAKE_URL, netbox_version: '4.7.3', instance: '1' });
  assert.deepEqual({ ...plan.origin, input_fingerprint: undefined }, { ...input.origin, input_fingerprint: undefined });
  assert.match(plan.origin.input_fingerprint, /^fnv1a64:/);
  assert.deepEqual([result.ok, result.outcome, result.changes], [true, planOutcome(plan), plan.summary.create + plan.summary.update + plan.summary.delete]);
  // The next run on the same client reads again: a setting changed in the plugin takes effect.
  fake.find(SETTINGS_PATH, 1).sync_mode_vm = 'disabled';
  const next = await syncOnce({ netbox: client, proxmox: fakeProxmox(), endpoint: 1 });
  assert.equal(next.plan.modes.effective.vm, 'disabled');
  assert.equal(fake.log.filter((e) => e.path === '/api/status/').length, 2);
  const old = fakeNetBox();
  old.fake.version = '4.1.11';
  await assert.rejects(readContext(old.client), {
    outcome: 'failed',
    message: `NetBox 4.1.11 at ${FAKE_URL} is too old: proxbox-planner needs NetBox 4.2 or later (plans write MAC addresses as dcim.macaddress objects, ` +
      `which NetBox 4.2 introduced)`,
  });
});

test('the Proxmox preflight: the first read is strict and its answer is used, not read twice', async () => {
  const proxmox = fakeProxmox();
  await syncOnce({ netbox: fakeNetBox().client, proxmox, endpoint: 1 });
  assert.equal(proxmox.asked.filter((p) => p === '/cluster/resources').length, 1);
  const refused = fakeProxmox({});
  await assert.rejects(syncOnce({ netbox: fakeNetBox().client, proxmox: refused, endpoint: 1 }), {
    outcome: 'failed',
    message: 'Proxmox at https://pve.test:8006 failed GET /cluster/resources (500 no such path /cluster/resources): check PVE_URL (--pve-url)',
  });
  assert.deepEqual(refused.asked, ['/cluster/resources'], 'nothing else is read after a refusal');
  const blind = fakeProxmox({ ...sample.proxmox, '/cluster/resources': [] });
  await assert.rejects(
    syncOnce({ netbox: fakeNetBox().client, proxmox: blind, endpoint: 1 }),
    /the Proxmox token sees no node in \/cluster\/resources at https:\/\/pve\.test:8006: give it the PVEAuditor role on \/ \(PVE_TOKEN\)/
  );
});

test('an incomplete plan is a failed run: never applied, never "nothing to do"', async () => {
  const { fake, client } = fakeNetBox();
  const data = { ...sample.proxmox };
  delete data['/cluster/status'];
  const { plan, result, report } = await syncOnce({ netbox: client, proxmox: fakeProxmox(data), endpoint: 1, apply: true });
  assert.equal(plan.complete, false);
  assert.deepEqual([result.ok, result.outcome, report], [false, 'failed', null]);
  assert.match(result.message, /^the plan is incomplete, so it cannot be applied: proxmox-unreadable: /);
  assert.deepEqual(fake.log.filter((e) => e.method !== 'GET'), [], 'nothing written');
});

test('the write preflight: a token that may not write is found out before the first write, in one line', async () => {
  const { fake, client } = fakeNetBox();
  fake.writable = false;
  const writes = () => fake.log.filter((e) => !['GET', 'OPTIONS'].includes(e.method));
  await assert.rejects(syncOnce({
    netbox: client, proxmox: fakeProxmox(), endpoint: 1, apply: true,
  }), (/** @type {import('../outcome.js').RunError} */ error) => {
    assert.equal(error.outcome, 'failed');
    assert.match(
      error.message,
      new RegExp(String.raw`^the NetBox token may write none of the \d+ collections the plan writes \(/api/[^,]+/, /api/[^,]+/, /api/[^,]+/, …\): ` +
        String.raw`it is read-only \(write disabled\), or its user has no add/change permission: check NETBOX_TOKEN$`),
    );
    return true;
  });
  assert.deepEqual(writes(), []);
  const options = fake.log.filter((e) => e.method === 'OPTIONS');
  assert.ok(options.length > 1);
  assert.equal(options.length, new Set(options.map((e) => e.path)).size, 'one OPTIONS per collection and run');
  // NetBox's token record says why (v2 tokens are found by their key).
  fake.seed('/api/users/tokens/', { key: 'syncTestKey1', version: 2, write_enabled: false });
  const again = new NetBoxClient({ url: FAKE_URL, token: NB_TOKEN, transport: fake.transport, sleep: async () => {} });
  await assert.rejects(syncOnce({ netbox: again, proxmox: fakeProxmox(), endpoint: 1, apply: true }), {
    message: 'the NetBox token syncTestKey1 is read-only (write_enabled is off): enable "Write enabled" on it in NetBox, or use another token (NETBOX_TOKEN)',
  });
  assert.deepEqual(writes(), []);
  // One collection without the add permission: named.
  fake.writable = true;
  const { transport } = fake;
  const partial = {
    request: async (req) => (
      req.method === 'OPTIONS' && req.url.includes('/api/dcim/devices/') ? {
        status: 200, headers: {}, text: JSON.stringify({ actions: { PUT: {} } }),
      } : transport.request(req)
    ),
    close() {},
  };
  const limited = new NetBoxClient({ url: FAKE_URL, token: NB_TOKEN, transport: partial, sleep: async () => {} });
  await assert.rejects(syncOnce({ netbox: limited, proxmox: fakeProxmox(), endpoint: 1, apply: true }), {
    message: 'the NetBox token may not add to /api/dcim/devices/: grant its user those permissions in NetBox, or use another token (NETBOX_TOKEN)',
  });
  assert.deepEqual(writes(), []);
});

test('collectInput: discover → fetch → repeat until complete gives the same plan as the full sample', async () => {
  const { client } = fakeNetBox();
  const proxmox = fakeProxmox();
  const events = [];
  const context = await readContext(client, { endpoint: 1 });
  const input = await collectInput({
    netbox: client, proxmox, settings: context.settings, endpoint: context.endpoint, emit: (event, data) => events.push({ event, data }),
  });
  assert.deepEqual(planner.plan(input).summary, planner.plan(sample).summary);
  assert.ok(Object.keys(input.proxmox).every((p) => p in sample.proxmox), 'only paths the core asked for');
  assert.deepEqual([...proxmox.asked].sort(), Object.keys(input.proxmox).sort(), 'each fetched once');
  // Pipelined: the planner is asked again after each read, so a round is a set of reads started together.
  const rounds = events.filter((e) => e.event === 'discovery').map((e) => e.data.round);
  assert.deepEqual(rounds, rounds.map((_, at) => at + 1));
  assert.ok(rounds.length >= 3, 'status/resources, then configs, then guest agents at least');
  assert.deepEqual(events.at(-1), {
    event: 'step',
    data: {
      step: 'discovery', status: 'completed',
      message: `Read ${Object.keys(input.proxmox).length} Proxmox paths and ${Object.keys(sample.netbox).length} NetBox collections in ${rounds.length} rounds`,
    },
  });
});

test('a failed Proxmox path is recorded for the core, which plans around it and warns', async () => {
  const { client } = fakeNetBox();
  const data = { ...sample.proxmox };
  delete data['/nodes/pve1/qemu/101/agent/network-get-interfaces'];
  const events = [];
  const { plan, input } = await syncOnce({ netbox: client, proxmox: fakeProxmox(data), endpoint: 1, emit: (e, d) => events.push({ e, d }) });
  assert.deepEqual(input.proxmox['/nodes/pve1/qemu/101/agent/network-get-interfaces'], {
    error: { status: 500, message: 'no such path /nodes/pve1/qemu/101/agent/network-get-interfaces' },
  });
  assert.ok(plan.warnings.some((w) => w.proxmox_path === '/nodes/pve1/qemu/101/agent/network-get-interfaces'));
  assert.ok(events.some(({ e, d }) => e === 'error_detail' && d.category === 'proxmox'));
});

test('snapshots: exactly the planner input; never written with a token in it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pbp-sync-'));
  try {
    const file = join(dir, 's.json');
    saveSnapshot(file, { ...sample, endpoint: { ...sample.endpoint, token_value: 'x', password: 'y' } }, { secrets: [NB_TOKEN] });
    const back = loadSnapshot(file);
    assert.deepEqual(back, sample);
    assert.throws(
      () => saveSnapshot(file, { ...sample, settings: { ...sample.settings, note: `copied ${NB_TOKEN}` } }, { secrets: [NB_TOKEN] }),
      /contains a token/
    );
    assert.deepEqual(loadSnapshot(file), sample, 'the refused write left the old file');
    writeFileSync(file, '{');
    assert.throws(() => loadSnapshot(file), SyntaxError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('NetBox history: read filtered as discover asks, only for what the plan would update; writes carry the plan\'s change-log message', async () => {
  const { fake, client } = fakeNetBox();
  fake.objects(CHANGELOG);
  fake.objects(JOURNAL);
  const history = () => fake.log.filter((e) => e.path === CHANGELOG || e.path === JOURNAL);
  const first = await syncOnce({ netbox: client, proxmox: fakeProxmox(), endpoint: 1, apply: true });
  assert.equal(first.report.ok, true);
  assert.deepEqual(first.input.sync_user, { id: 1, username: 'admin' });
  assert.deepEqual(history(), [], 'creates need no history');
  const written = fake.log.filter((e) => ['POST', 'PATCH', 'DELETE'].includes(e.method)).flatMap((e) => e.body);
  assert.equal(fake.changelogMessages.length, written.length);
  assert.ok(fake.changelogMessages.every((m) => m === first.plan.changelog_message), fake.changelogMessages[0]);
  assert.match(first.plan.changelog_message, /^proxbox-planner /);

  const converged = await syncOnce({ netbox: client, proxmox: fakeProxmox(), endpoint: 1 });
  assert.equal(converged.result.changes, 0);
  assert.deepEqual(history(), [], 'a converged NetBox reads no history');

  // Proxmox doubles web01's memory; Alice had changed it in NetBox.
  const drifted = doubledMemory();
  const { vm, before } = await aliceSetsMemory(fake);
  const next = await syncOnce({ netbox: client, proxmox: fakeProxmox(drifted), endpoint: 1 });
  const asked = history().map((e) => `${e.path}${decodeURIComponent(e.query)}`);
  // Lean reads: the history too is asked for only the fields the core reads.
  assert.ok(asked.every((q) => /&fields=id,[a-z_,]+&/.test(q)), asked.join('\n'));
  assert.deepEqual(asked.map((q) => q.replace(/&fields=[^&]*/, '')), [
    `${CHANGELOG}?action=update&changed_object_id=${vm.id}&changed_object_type=virtualization.virtualmachine&user_id__n=1&limit=1000`,
    `${JOURNAL}?assigned_object_id=${vm.id}&assigned_object_type=virtualization.virtualmachine&q=keep-netbox:&limit=1000`,
  ]);
  const id = 'virtual-machines:virtualization.virtualmachine:qemu/101@memory';
  const kept = next.plan.operations.find((o) => o.id === id);
  assert.deepEqual([kept.action, kept.reason], ['skip', 'operator-edited']);
  const conflict = /** @type {import('proxbox-planner').FieldConflict} */ (next.plan.conflicts.find((c) => c.kind === 'operator-edited' && c.id === id));
  assert.deepEqual([conflict.base, conflict.netbox, conflict.proxmox, conflict.changed_by], [before, 6000, before * 2, 'alice']);

  // The two ways out, as the core planned them, and what the listing says of each.
  const { 'accept-proxmox': accept, 'keep-netbox': keep } = conflict.choices;
  assert.deepEqual([accept.action, accept.target.id, accept.changes], ['update', vm.id, { memory: { before: 6000, after: before * 2 } }]);
  assert.deepEqual(
    [keep.action, keep.collection, keep.fields.assigned_object_type, keep.fields.assigned_object_id],
    ['create', JOURNAL, 'virtualization.virtualmachine', vm.id]
  );
  assert.match(/** @type {string} */ (keep.fields.comments), /\nkeep-netbox: memory$/);
  const listing = (plan) => {
    const lines = renderPlan(plan).split('\n');
    const at = lines.findIndex((line) => line.trim().startsWith('memory: NetBox'));
    return lines.slice(at, at + 2).map((line) => line.trim());
  };
  const sides = `memory: NetBox 6000 (alice, 2026-11-23T11:00:00.000000Z) · Proxmox ${before * 2} · last synced ${before}`;
  assert.deepEqual(listing(next.plan), [sides, 'NetBox\'s value is kept (on_operator_edit = keep)']);
  assert.deepEqual(listing(withChoices(next.plan, { acceptProxmox: [id] })), [sides, 'Proxmox\'s value, as chosen']);
  assert.deepEqual(listing(withChoices(next.plan, { keepNetbox: [id] })), [sides, 'kept for good (a journal entry on the object)']);
  assert.match(renderPlan(next.plan), new RegExp(`Edited in NetBox and changed in Proxmox .*\\n  ${id.replace(/[.@/]/g, '\\$&')}  \\(keep\\)`));

  // A token that may not read the change log: what an operator may own is held, nothing overwritten.
  fake.fault = (req) => (req.path === CHANGELOG ? { status: 403, body: { detail: 'You do not have permission to perform this action.' } } : undefined);
  const blind = await syncOnce({ netbox: client, proxmox: fakeProxmox(drifted), endpoint: 1 });
  assert.deepEqual(
    blind.plan.operations.filter((o) => o.id.startsWith('virtual-machines:virtualization.virtualmachine:qemu/101')).map((o) => [o.id, o.action, o.reason]),
    [[id, 'skip', 'ownership-unknown']]
  );
  // (unsized-disk: the sample's passthrough disk, in every plan of it.)
  assert.deepEqual(blind.plan.warnings.map((w) => w.code), ['unsized-disk', 'changelog-unreadable']);
  assert.equal(blind.result.outcome, 'ok-with-warnings');
});
