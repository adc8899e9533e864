// The CLI offline (snapshot files, saved plans, usage errors, redaction) and
// the SSE server's routing, framing, keepalives and one-run-at-a-time rule.
// The live commands run against real servers in e2e.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { CLI, runCli } from '../test-support/servers.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as planner from 'proxbox-planner';
import { createSyncServer, routeFor } from '../server.js';
import { parseSSE } from '../events.js';
import { parseAssignments, resolveOptions } from '../config.js';
import { scrubSecrets, pickEndpoint, endpointUrl } from '../sync.js';
import { runInPty } from '../test-support/pty.js';
import { listenLoopback } from '../test-support/listen.js';

const SAMPLE = new URL('../../fixtures/sample/snapshot.json', import.meta.url).pathname;
const TOKEN = 'nbt_cliTestKey01.CliTestSecretValue0123456789abcdef';

const firstLine = (text) => text.split('\n')[0];

const run = (args, env = {}) => runCli(args, env, { timeout: 60000 });

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
    writeFileSync(planFile, JSON.stringify(planner.plan({ ...JSON.parse(readFileSync(SAMPLE, 'utf8')), origin: { netbox_url: 'http://127.0.0.1:9' } })));
    const r = await run(['apply', planFile], { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN });
    assert.equal(r.code, 64);
    assert.equal(firstLine(r.stderr), 'error: refusing to apply without confirmation: pass --yes (stdin is not a terminal)');
    const stream = await run(['apply', planFile, '--stream']);
    assert.equal(stream.code, 64);
    assert.equal(firstLine(stream.stderr), 'error: --stream needs --yes (a stream is read by a program, which cannot answer the question)');
    const empty = {
      format_version: 1, planner_version: planner.version(),
      operations: [{ id: 'sdn:x', stage: 'sdn', action: 'skip', model: 'm', key: 'k', reason: 'mode-disabled', collection: '/x/' }],
      summary: { create: 0, update: 0, delete: 0, skip: 1 },
    };
    writeFileSync(planFile, JSON.stringify(empty));
    const e = await run(['apply', planFile]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, 'Nothing to apply.\n');
    const bad = await run(['apply', SAMPLE, '--yes']);
    assert.equal(bad.code, 64);
    assert.equal(firstLine(bad.stderr), `error: ${SAMPLE} is not a plan (no operations list): give a file written by \`proxbox-planner plan --out\``);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plan and snapshot files: a corrupt one, a missing one, one of another planner version, an incomplete one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pbp-cli-'));
  try {
    const file = join(dir, 'plan.json');
    const plan = planner.plan(JSON.parse(readFileSync(SAMPLE, 'utf8')));
    const text = JSON.stringify(plan, null, 2);
    writeFileSync(file, `${text.slice(0, 3000)}{`);
    const corrupt = await run(['apply', file, '--yes']);
    assert.equal(corrupt.code, 64);
    assert.match(
      firstLine(corrupt.stderr),
      new RegExp(`^error: ${file} is not valid JSON \\(.+ at position \\d+.*\\): give a plan written by proxbox-planner$`)
    );
    const snapshot = await run(['plan', file]);
    assert.equal(snapshot.code, 64);
    assert.match(firstLine(snapshot.stderr), new RegExp(`^error: ${file} is not valid JSON .*: give a snapshot written by proxbox-planner$`));
    const missing = await run(['apply', join(dir, 'nope.json'), '--yes']);
    assert.equal(missing.code, 64);
    assert.equal(firstLine(missing.stderr), `error: ${join(dir, 'nope.json')}: cannot read the plan (no such file)`);
    writeFileSync(file, JSON.stringify({ ...plan, planner_version: '9.1.0' }));
    const newer = await run(['apply', file, '--yes']);
    assert.equal(newer.code, 2);
    assert.equal(
      firstLine(newer.stderr),
      `error: ${file} was made by proxbox-planner 9.1.0, which ${planner.version()} cannot apply: re-plan with this version: proxbox-planner plan --out ${file}`
    );
    // A snapshot whose Proxmox side could not be read: the plan says so, and the command fails.
    const input = JSON.parse(readFileSync(SAMPLE, 'utf8'));
    const unreadable = Object.fromEntries(Object.keys(input.proxmox).map((path) => [path, { error: { status: 401, message: 'authentication failure' } }]));
    writeFileSync(file, JSON.stringify({ ...input, proxmox: unreadable }));
    for (const args of [['plan', file], ['plan', file, '--json']]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(firstLine(r.stderr), /^error: the plan is incomplete, so it cannot be applied: proxmox-unreadable: .*HTTP 401: authentication failure/);
    }
    const shown = await run(['plan', file]);
    assert.match(shown.stdout, /Incomplete: the input could not be read whole, so this plan cannot be applied/);
    writeFileSync(file, JSON.stringify(planner.plan({ ...input, proxmox: unreadable })));
    const incomplete = await run(['apply', file, '--yes']);
    assert.equal(incomplete.code, 2);
    assert.match(
      firstLine(incomplete.stderr),
      /^error: .* is incomplete \(its input could not be read whole\), there is nothing safe to apply: re-plan once both servers can be read$/
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('live commands: missing settings are usage errors; an unreachable NetBox fails in one line that names the variable, never the token', async () => {
  const none = await run(['plan']);
  assert.equal(none.code, 64);
  assert.equal(firstLine(none.stderr), 'error: no NetBox URL: set NETBOX_URL or --netbox-url');
  const noPve = await run(['snapshot', '--out', '/dev/null', '--retries', '0'], { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN });
  assert.equal(noPve.code, 2);
  assert.equal(
    firstLine(noPve.stderr),
    'error: GET /api/status/: cannot reach NetBox at http://127.0.0.1:9 (connection refused, ECONNREFUSED): check NETBOX_URL'
  );
  for (const [args, variable] of [
    [['plan', '--retries', '0'], 'NETBOX_URL'], [['apply', '--yes', '--retries', '0'], 'NETBOX_URL'],
    [['plan', '--retries', '0', '--netbox-url', 'http://127.0.0.1:9/netbox', '--netbox-token', TOKEN], '--netbox-url'],
  ]) {
    const r = await run(args, { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN, PVE_TOKEN: 'root@pam!t=SecretPveValue-123456' });
    assert.equal(r.code, 2);
    const where = variable === 'NETBOX_URL' ? 'http://127.0.0.1:9' : 'http://127.0.0.1:9/netbox';
    assert.equal(
      firstLine(r.stderr),
      `error: GET ${new URL(where).pathname.replace(/\/$/, '')}/api/status/: cannot reach NetBox at ${where} (connection refused, ECONNREFUSED): check ` +
        `${variable}`
    );
    assert.ok(!r.stderr.includes('CliTestSecretValue') && !r.stdout.includes('CliTestSecretValue'));
  }
  const stream = await run(['apply', '--yes', '--stream', '--retries', '0'], { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN });
  assert.equal(stream.code, 2);
  assert.equal(
    firstLine(stream.stderr),
    'error: GET /api/status/: cannot reach NetBox at http://127.0.0.1:9 (connection refused, ECONNREFUSED): check NETBOX_URL'
  );
  const events = stream.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.event), ['error', 'complete']);
  assert.deepEqual(events[1].data, {
    ok: false, outcome: 'failed', message: `Apply failed: ${firstLine(stream.stderr).slice('error: '.length)}`,
    errors: [{ message: firstLine(stream.stderr).slice('error: '.length) }],
  });
});

test('usage errors exit 64 with one line naming the flag or variable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pbp-cli-'));
  const env = { NETBOX_URL: 'http://127.0.0.1:9', NETBOX_TOKEN: TOKEN, PVE_TOKEN: 'root@pam!t=SecretPveValue-123456' };
  try {
    writeFileSync(join(dir, 'not-a-cert.pem'), 'hello');
    /** @type {[string[], string][]} the arguments, and the first line of the error */
    const cases = [
      [['plan', '--bogus'], "error: Unknown option '--bogus' (see proxbox-planner plan --help)"],
      [['plan', '--timeout', 'abc'], 'error: --timeout must be a whole number of milliseconds, 1 or more; got "abc"'],
      [['apply', '--yes', '--batch-size', '0'], 'error: --batch-size must be a whole number, 1 or more; got "0"'],
      [['apply', '--yes', '--concurrency', '0'], 'error: --concurrency must be a whole number, 1 or more; got "0"'],
      [['plan', '--retries=-1'], 'error: --retries must be a whole number, 0 or more; got "-1"'],
      [['apply', '--yes', '--verify-creates', 'sometimes'], 'error: --verify-creates must be one of always, retry, never; got "sometimes"'],
      [
        ['plan', '--sync-types', 'vms'],
        `error: --sync-types: unknown sync type "vms"; valid sync types: all, ` +
          `${planner.resolveSyncModes(null, null, ['all']).stages.map((s) => s.stage).join(', ')}`,
      ],
      [['plan', '--set', 'novalue'], 'error: --set expects key=value, got "novalue"'],
      [['serve', '--port', '99999'], 'error: --port must be a whole number, 0 to 65535; got "99999"'],
      [['serve', '--keepalive', '1s'], 'error: --keepalive must be a whole number of milliseconds, 1 or more; got "1s"'],
      [['plan', '--netbox-url', 'netbox.example.org'], 'error: --netbox-url is not a valid URL: "netbox.example.org" (expected http(s)://host[:port][/path])'],
      [['plan', '--pve-url', 'ftp://pve:8006'], 'error: --pve-url must be an http:// or https:// URL, got "ftp://pve:8006"'],
      [['plan', '--pve-ca-file', join(dir, 'nope.pem')], `error: --pve-ca-file ${join(dir, 'nope.pem')}: cannot read the CA file (no such file)`],
      [
        ['plan', '--pve-ca-file', join(dir, 'not-a-cert.pem')],
        `error: --pve-ca-file ${join(dir, 'not-a-cert.pem')}: not a PEM certificate (no BEGIN CERTIFICATE line)`,
      ],
      [['plan', '--netbox-token-file', join(dir, 'nope')], `error: --netbox-token-file ${join(dir, 'nope')}: cannot read the token (no such file)`],
      [['plan', 'a.json', 'b.json'], 'error: unexpected argument "b.json" (see proxbox-planner plan --help)'],
      [['frobnicate'], 'error: unknown command "frobnicate"'],
    ];
    for (const [args, line] of cases) {
      const r = await run(args, env);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(firstLine(r.stderr), line);
    }
    const pveUrl = await run(['plan'], { ...env, PVE_URL: 'https://user:pw@pve host:8006' });
    assert.equal(firstLine(pveUrl.stderr), 'error: PVE_URL is not a valid URL: "https://***@pve host:8006" (expected http(s)://host[:port][/path])');
    const ca = await run(['plan'], { ...env, PVE_CA_FILE: join(dir, 'nope.pem') });
    assert.equal(firstLine(ca.stderr), `error: PVE_CA_FILE ${join(dir, 'nope.pem')}: cannot read the CA file (no such file)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('help: --help and -h print to stdout and exit 0; each command lists its own flags', async () => {
  for (const args of [['--help'], ['-h'], ['help'], []]) {
    const r = await run(args);
    assert.equal(r.code, 0, args.join(' '));
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^usage: proxbox-planner <command> \[options\]/);
    assert.match(r.stdout, /Exit status: 0 ok .* 64 usage error/s);
  }
  const own = {
    plan: ['--verbose', '--out PLAN.json', '--netbox-url URL'], apply: ['--yes', '--stream', '--out PLAN.json', '--pve-insecure'],
    serve: ['--port PORT', '--api-key-file FILE', '--keepalive MS'], snapshot: ['--out FILE'], demo: ['--json'],
  };
  for (const [command, flags] of Object.entries(own)) {
    for (const args of [[command, '--help'], [command, '-h'], ['help', command]]) {
      const r = await run(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, new RegExp(`^usage: proxbox-planner ${command}`));
      for (const flag of flags) assert.ok(r.stdout.includes(flag), `${args.join(' ')} lists ${flag}`);
    }
  }
  assert.ok(!(await run(['demo', '--help'])).stdout.includes('--netbox-url'), 'demo has no live options');
  assert.match((await run(['apply', '--help'])).stdout, /--pve-insecure +skip Proxmox certificate verification \(or PVE_INSECURE=1\)/);
});

test('colours only on a terminal, and not with NO_COLOR or --no-color', async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NO_COLOR'));
  const colored = await runInPty([process.execPath, CLI, 'demo'], { env });
  assert.equal(colored.code, 0);
  // eslint-disable-next-line no-control-regex -- terminal colour codes start with ESC (\x1b): matching it is the point
  assert.match(colored.output, /\x1b\[32malways/);
  for (const [args, extra] of /** @type {[string[], Record<string, string>][]} */ ([[['demo'], { NO_COLOR: '1' }], [['demo', '--no-color'], {}]])) {
    const plain = await runInPty([process.execPath, CLI, ...args], { env: { ...env, ...extra } });
    assert.equal(plain.code, 0);
    assert.ok(!plain.output.includes('\x1b['), `${args.join(' ')} ${JSON.stringify(extra)}`);
    assert.match(plain.output, /Plan: \d+ to create/);
  }
  const piped = await run(['demo']);
  assert.ok(!piped.stdout.includes('\x1b['), 'no colour into a pipe');
});

test('npx proxbox-planner runs the CLI from the repository', async () => {
  const out = await new Promise((resolve) => {
    execFile(
      'npx', ['--no-install', 'proxbox-planner', 'version'], { cwd: new URL('../../', import.meta.url).pathname, timeout: 60000 },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr })
    );
  });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `proxbox-planner ${planner.version()}\n`);
});

test('options: flags over environment, key=value settings, secret scrubbing, endpoint choice', () => {
  const o = resolveOptions(
    { 'netbox-url': 'https://nb', set: ['sync_mode_vm=disabled', 'max_deletes=5', 'delete_orphans=true'], 'sync-types': 'devices, storage' },
    { NETBOX_URL: 'https://other', NETBOX_TOKEN: 't', PVE_INSECURE: '1' }
  );
  assert.equal(o.netboxUrl, 'https://nb');
  assert.equal(o.netboxToken, 't');
  assert.equal(o.pveInsecure, true);
  assert.deepEqual(o.settings, { sync_mode_vm: 'disabled', max_deletes: 5, delete_orphans: true });
  assert.deepEqual(o.syncTypes, ['devices', 'storage']);
  assert.throws(() => parseAssignments(['novalue']), /key=value/);
  assert.deepEqual(
    scrubSecrets({ token_name: 'a', token_value: 'x', password: 'y', nested: { ssh_password: 1, keep: 2 } }),
    { token_name: 'a', nested: { keep: 2 } }
  );
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
  const base = await listenLoopback(server);
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
    assert.deepEqual(events.at(-1).data, { ok: true, outcome: 'ok', message: 'Plan completed', result: { ok: true, summary: { create: 1 } } });
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
  const base = await listenLoopback(server);
  try {
    const events = parseSSE(await (await fetch(`${base}/full-update/stream`)).text());
    assert.deepEqual(events.map((e) => e.event), ['error', 'complete']);
    assert.equal(events[1].data.ok, false);
    assert.equal(events[1].data.outcome, 'failed');
    assert.equal(events[1].data.errors[0].status, 403);
  } finally {
    server.close();
  }
});
