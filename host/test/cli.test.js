// The CLI offline (snapshot files, saved plans, usage errors, redaction) and
// the SSE server's routing, framing, keepalives and one-run-at-a-time rule.
// The live commands run against real servers in e2e.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as planner from 'proxbox-planner';
import { createSyncServer, routeFor } from '../server.js';
import { parseSSE } from '../events.js';
import { parseAssignments, resolveOptions } from '../config.js';
import { scrubSecrets, pickEndpoint, endpointUrl } from '../sync.js';

const CLI = new URL('../cli.js', import.meta.url).pathname;
const SAMPLE = new URL('../../fixtures/sample/snapshot.json', import.meta.url).pathname;
const TOKEN = 'nbt_cliTestKey01.CliTestSecretValue0123456789abcdef';

function run(args, env = {}) {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NETBOX|PVE|PROXBOX)_/.test(k)));
    execFile(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, timeout: 60000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

test('plan SNAPSHOT --out writes the plan JSON and prints the readable plan; --json prints JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pbp-cli-'));
  try {
    const out = join(dir, 'plan.json');
    const r = await run(['plan', SAMPLE, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\+ create +virtualization\.virtualmachine +qemu\/101 web01/);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), planner.plan(JSON.parse(readFileSync(SAMPLE, 'utf8'))));
    const j = await run(['plan', SAMPLE, '--json']);
    assert.equal(j.stdout, `${planner.planJson(readFileSync(SAMPLE, 'utf8'))}\n`);
    const v = await run(['plan', SAMPLE, '--verbose', '--out', out]);
    assert.match(v.stdout, /\+ name: "web01"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('apply: refuses without --yes when nobody can answer; an all-skip plan needs no NetBox', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pbp-cli-'));
  try {
    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(planner.plan(JSON.parse(readFileSync(SAMPLE, 'utf8')))));
    const r = await run(['apply', planFile], { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to apply without confirmation: pass --yes/);
    const empty = { format_version: 1, operations: [{ id: 'sdn:x', stage: 'sdn', action: 'skip', model: 'm', key: 'k', reason: 'mode-disabled', collection: '/x/' }], summary: {} };
    writeFileSync(planFile, JSON.stringify(empty));
    const e = await run(['apply', planFile]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, 'Nothing to apply.\n');
    const bad = await run(['apply', SAMPLE, '--yes']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not a plan/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('live commands: missing settings are usage errors; a NetBox failure never prints the token', async () => {
  const none = await run(['plan']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no NetBox URL: set NETBOX_URL/);
  const noPve = await run(['snapshot', '--out', '/dev/null', '--retries', '0'], { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN });
  assert.equal(noPve.code, 1);
  assert.match(noPve.stderr, /127\.0\.0\.1|ECONNREFUSED|connect/);
  for (const args of [['plan', '--retries', '0'], ['apply', '--yes', '--retries', '0'], ['plan', '--retries', '0', '--netbox-token', TOKEN]]) {
    const r = await run(args, { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN, PVE_TOKEN: 'root@pam!t=SecretPveValue-123456' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: GET \/api\/plugins\/proxbox\/settings\/\?limit=1000: connect ECONNREFUSED/);
    assert.ok(!r.stderr.includes('CliTestSecretValue') && !r.stdout.includes('CliTestSecretValue'));
  }
  const stream = await run(['apply', '--yes', '--stream', '--retries', '0'], { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN });
  assert.equal(stream.code, 1);
  const events = stream.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.event), ['error', 'complete']);
  assert.equal(events[1].data.ok, false);
  const usage = await run(['plan', '--bogus']);
  assert.equal(usage.code, 2);
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /usage: proxbox-planner/);
});

test('npx proxbox-planner runs the CLI from the repository', async () => {
  const out = await new Promise((resolve) => {
    execFile('npx', ['--no-install', 'proxbox-planner', 'version'], { cwd: new URL('../../', import.meta.url).pathname, timeout: 60000 }, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `proxbox-planner ${planner.version()}\n`);
});

test('options: flags over environment, key=value settings, secret scrubbing, endpoint choice', () => {
  const o = resolveOptions({ 'netbox-url': 'https://nb', set: ['sync_mode_vm=disabled', 'max_deletes=5', 'delete_orphans=true'], 'sync-types': 'devices, storage' }, { NETBOX_URL: 'https://other', NETBOX_TOKEN: 't', PVE_INSECURE: '1' });
  assert.equal(o.netboxUrl, 'https://nb');
  assert.equal(o.netboxToken, 't');
  assert.equal(o.pveInsecure, true);
  assert.deepEqual(o.settings, { sync_mode_vm: 'disabled', max_deletes: 5, delete_orphans: true });
  assert.deepEqual(o.syncTypes, ['devices', 'storage']);
  assert.throws(() => parseAssignments(['novalue']), /key=value/);
  assert.deepEqual(scrubSecrets({ token_name: 'a', token_value: 'x', password: 'y', nested: { ssh_password: 1, keep: 2 } }), { token_name: 'a', nested: { keep: 2 } });
  const eps = [{ id: 1, name: 'lab', domain: 'pve.lab', port: 8006 }, { id: 2, name: 'dc', ip_address: { address: '10.0.0.5/24' }, port: 443 }];
  assert.equal(pickEndpoint(eps, '2').name, 'dc');
  assert.equal(pickEndpoint(eps, 'lab').id, 1);
  assert.throws(() => pickEndpoint(eps, undefined), /choose one with --endpoint/);
  assert.throws(() => pickEndpoint(eps, 'nope'), /no Proxmox endpoint "nope"/);
  assert.equal(pickEndpoint([eps[0]], undefined).id, 1);
  assert.equal(endpointUrl(eps[0]), 'https://pve.lab:8006');
  assert.equal(endpointUrl(eps[1]), 'https://10.0.0.5:443');
});

test('serve: routes map the Proxbox stream paths to sync types', () => {
  assert.deepEqual(routeFor('/full-update/stream'), { syncTypes: ['all'], stream: true });
  assert.deepEqual(routeFor('/full-update'), { syncTypes: ['all'], stream: false });
  assert.deepEqual(routeFor('/dcim/devices/create/stream'), { syncTypes: ['devices'], stream: true });
  assert.deepEqual(routeFor('/virtualization/virtual-machines/create/stream/'), { syncTypes: ['virtual-machines'], stream: true });
  assert.deepEqual(routeFor('/virtualization/virtual-machines/interfaces/ip-address/create/stream'), { syncTypes: ['ip-addresses'], stream: true });
  assert.deepEqual(routeFor('/sync/vm-templates/stream'), { syncTypes: ['vm-templates'], stream: true });
  assert.equal(routeFor('/nope/stream'), null);
});

async function listen(server) {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${server.address().port}`;
}

test('serve: SSE of a run (keepalives while idle, complete last), 409 while busy, API key', async () => {
  let release;
  const calls = [];
  const server = createSyncServer({
    keepaliveMs: 30,
    apiKey: 'k-123',
    run: async ({ syncTypes, dryRun, endpoint, emit }) => {
      calls.push({ syncTypes, dryRun, endpoint });
      emit('step', { step: 'discovery', status: 'started', message: 'x' });
      await new Promise((r) => (release = r));
      emit('item_progress', { phase: 'devices', status: 'progress', outcome: 'created', progress: { current: 1, total: 1, percent: 100 } });
      return { ok: true, summary: { create: 1 } };
    },
  });
  const base = await listen(server);
  try {
    assert.equal((await fetch(`${base}/full-update/stream`)).status, 401);
    const headers = { 'X-Proxbox-API-Key': 'k-123' };
    const response = await fetch(`${base}/virtualization/virtual-machines/create/stream?dry_run=true&endpoint_id=3&sync_vm_network=false`, { headers });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    const busy = await fetch(`${base}/full-update/stream`, { headers });
    assert.equal(busy.status, 409);
    assert.equal((await (await fetch(`${base}/sync/active`, { headers })).json()).active, true);
    setTimeout(() => release(), 120);
    const text = await response.text();
    assert.match(text, /^: keepalive$/m);
    const events = parseSSE(text);
    assert.deepEqual(events.map((e) => e.event), ['step', 'item_progress', 'complete']);
    assert.deepEqual(events.at(-1).data, { ok: true, message: 'Plan completed', result: { ok: true, summary: { create: 1 } } });
    assert.deepEqual(calls, [{ syncTypes: ['virtual-machines'], dryRun: true, endpoint: '3' }]);
    assert.equal((await (await fetch(`${base}/sync/active`, { headers })).json()).active, false);
    // The same path without /stream: one JSON document.
    setTimeout(() => release(), 20);
    const plain = await fetch(`${base}/dcim/devices/create`, { headers });
    assert.equal(plain.status, 200);
    assert.equal((await plain.json()).ok, true);
    assert.equal((await fetch(`${base}/nope`, { headers })).status, 404);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('serve: a failing run streams error and complete {ok: false}', async () => {
  const server = createSyncServer({
    run: async () => {
      throw Object.assign(new Error('GET /api/plugins/proxbox/settings/ → 403: Invalid v1 token'), { status: 403 });
    },
  });
  const base = await listen(server);
  try {
    const events = parseSSE(await (await fetch(`${base}/full-update/stream`)).text());
    assert.deepEqual(events.map((e) => e.event), ['error', 'complete']);
    assert.equal(events[1].data.ok, false);
    assert.equal(events[1].data.errors[0].status, 403);
  } finally {
    server.close();
  }
});
