// plan, planJson and discover through the built wasm package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as planner from 'proxbox-planner';

const sampleText = readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url), 'utf8');
const sample = () => JSON.parse(sampleText);

test('plan: the sample against an empty NetBox', () => {
  const plan = planner.plan(sample());
  assert.equal(plan.format_version, 1);
  assert.equal(plan.endpoint.cluster, 'lab');
  assert.ok(plan.summary.create > 50);
  assert.equal(plan.summary.delete, 0);
  const vm = plan.operations.find((op) => op.id === 'virtual-machines:virtualization.virtualmachine:qemu/101');
  assert.equal(vm.action, 'create');
  assert.equal(vm.collection, '/api/virtualization/virtual-machines/');
  assert.deepEqual(vm.fields.cluster, { $ref: 'devices:virtualization.cluster:lab' });
  assert.ok(vm.depends_on.includes('devices:virtualization.cluster:lab'));
  const ids = new Set(plan.operations.map((op) => op.id));
  assert.equal(ids.size, plan.operations.length, 'operation ids are unique');
  const seen = new Set();
  for (const op of plan.operations) {
    for (const dep of op.depends_on ?? []) assert.ok(seen.has(dep), `${op.id} after ${dep}`);
    seen.add(op.id);
  }
});

test('planJson gives the same plan as plan, byte for byte deterministic', () => {
  const text = planner.planJson(sampleText);
  assert.deepEqual(JSON.parse(text), planner.plan(sample()));
  assert.equal(planner.planJson(sampleText), text);
});

test('planJson takes UTF-8 bytes as well as text, and non-ASCII text arrives intact', () => {
  const text = planner.planJson(sampleText);
  assert.equal(planner.planJson(readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url))), text, 'a Buffer');
  assert.equal(planner.planJson(new TextEncoder().encode(sampleText)), text, 'a Uint8Array');

  // Two-, three- and four-byte UTF-8 (and an escaped one), early in the text and at its end.
  const note = 'Café ☃ 😀 \u00e9 — naïve';
  const input = sample();
  input.proxmox['/nodes/pve1/qemu/101/config'].description = note;
  const description = (plan) => plan.operations.find((op) => op.id === 'virtual-machines:virtualization.virtualmachine:qemu/101').fields.description;
  const ordered = JSON.stringify({ comment: note, ...input }); // an unknown key, read first
  assert.equal(description(JSON.parse(planner.planJson(ordered))), note);
  assert.equal(description(JSON.parse(planner.planJson(new TextEncoder().encode(ordered)))), note);
  assert.equal(description(planner.plan(input)), note);
});

test('planJson refuses what is not JSON text, with code and path', () => {
  // Not text on purpose: what an untyped caller may pass.
  assert.throws(() => planner.planJson(/** @type {any} */ (42)), { code: 'wrong-type', path: '$' });
  assert.throws(() => planner.planJson(/** @type {any} */ ({ proxmox: {} })), { code: 'wrong-type', path: '$' });
  assert.throws(() => planner.planJson(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d])), { code: 'invalid-json', path: '$ (byte 2)' });
  assert.throws(() => planner.planJson(''), { code: 'invalid-json' });
});

test('memoryBytes reports the module\'s linear memory in whole pages, never shrinking', () => {
  const before = planner.memoryBytes();
  assert.ok(before >= 64 * 1024 && before % (64 * 1024) === 0, String(before));
  planner.planJson(sampleText);
  assert.ok(planner.memoryBytes() >= before);
});

test('plan errors carry code and path', () => {
  const input = sample();
  delete input.proxmox['/cluster/status'];
  assert.throws(() => planner.plan(input), { code: 'missing-field', path: '$.proxmox["/cluster/status"]' });
  assert.throws(() => planner.planJson('{"settings": '), { code: 'invalid-json' });
  const bad = sample();
  bad.settings.sync_mode_vm = 'sometimes';
  assert.throws(() => planner.planJson(JSON.stringify(bad)), { code: 'unknown-sync-mode', path: '$.settings.sync_mode_vm' });
});

test('discover: round by round until complete', () => {
  const full = sample();
  const input = { settings: full.settings, endpoint: full.endpoint, sync_types: ['all'], proxmox: {}, netbox: {} };
  let rounds = 0;
  for (;;) {
    const next = planner.discover(input);
    if (next.complete) break;
    rounds += 1;
    assert.ok(rounds < 6, 'discovery terminates');
    for (const path of next.proxmox) {
      assert.ok(path in full.proxmox, `the sample has ${path}`);
      input.proxmox[path] = full.proxmox[path];
    }
    for (const path of next.netbox) input.netbox[path] = [];
  }
  assert.equal(rounds, 3, 'status/resources, then configs, then guest agents');
  assert.deepEqual(planner.plan(input).summary, planner.plan(full).summary);
});

test('the demo command prints a readable plan', () => {
  const cli = new URL('../cli.js', import.meta.url).pathname;
  const out = execFileSync(process.execPath, [cli, 'demo'], { encoding: 'utf8' });
  assert.match(out, /\+ create +virtualization\.virtualmachine +qemu\/101 web01/);
  assert.match(out, /Plan: \d+ to create, \d+ to update, 0 to delete/);
  assert.match(out, /skip sdn: sync_mode_sdn=disabled/);
});

test('isProxmoxReadPath: the paths discover names, and nothing else', () => {
  const full = sample();
  const input = { ...full, proxmox: {}, netbox: {} };
  const named = [];
  for (let next = planner.discover(input); !next.complete; next = planner.discover(input)) {
    for (const path of next.proxmox) input.proxmox[path] = full.proxmox[path] ?? { error: { status: 500, message: 'not in the sample' } };
    for (const collection of next.netbox) input.netbox[collection] = full.netbox[collection] ?? [];
    named.push(...next.proxmox);
  }
  assert.ok(named.length > 5, named.join(' '));
  for (const path of named) assert.equal(planner.isProxmoxReadPath(path), true, path);
  for (const path of ['/access/users', '/nodes/pve1/qemu/101/status/stop', '/nodes/../qemu/101/config', '/cluster/status?x=1', '']) {
    assert.equal(planner.isProxmoxReadPath(path), false, path);
  }
});

test('hostile JS values (5,000 deep, cyclic, BigInt) get an error with a path, and the module still plans', () => {
  /** @type {any} */
  const deep = {};
  let at = deep;
  for (let i = 0; i < 5000; i++) {
    at.x = {};
    at = at.x;
  }
  const cyclic = { name: 'loop' };
  cyclic.self = cyclic;
  const refused = (path) => (error) => error.code === 'invalid-value' && error.path === path;
  for (const hostile of [deep, cyclic, { sync_mode_vm: 10n }]) {
    assert.throws(() => planner.effectiveSyncMode(hostile, null, 'vm'), refused('$.settings'));
    assert.throws(() => planner.resolveSyncModes(null, hostile, ['all']), refused('$.endpoint'));
    assert.throws(() => planner.discover({ settings: hostile }), refused('$'));
    assert.throws(() => planner.plan({ settings: hostile }), refused('$'));
    assert.throws(() => planner.matchesExisting(hostile, { id: 1 }), refused('$.payload'));
  }
  const plan = JSON.parse(planner.planJson(sampleText));
  assert.ok(plan.summary.create > 50, 'the module is still whole');
  assert.equal(planner.effectiveSyncMode(null, null, 'vm'), 'always');
});
