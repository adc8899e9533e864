// A failed sync never looks like a successful one, and a plan applies only
// where it was made: against REAL servers this file starts and stops itself
// (NetBox 4.7.3 + Proxbox plugin, fakepve with the sample cluster). Each case
// asserts the exit status, the first (and only) line of stderr, the
// `complete` event of `apply --stream`, and that NetBox's change log did not
// move. The one stand-in is a pass-through proxy: the same NetBox at another
// URL, for a plan made elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as planner from 'proxbox-planner';
import { NetBoxClient } from '../netbox.js';
import { ProxmoxClient } from '../proxmox.js';
import { syncOnce } from '../sync.js';
import { countChanges } from '../apply.js';
import { parseSSE } from '../events.js';
import { createSyncServer } from '../server.js';
import { resolveOptions } from '../config.js';
import {
  cleanEnv, CLI, createEndpoint, createLimitedToken, installFakepve, installNetbox, pveWrite, runCli, serverEnv, startFakepve, startNetbox,
  stopFakepve, stopNetbox,
} from '../test-support/servers.js';
import { startFaultProxy } from '../test-support/fault-proxy.js';
import { runInPty } from '../test-support/pty.js';
import { listenLoopback } from '../test-support/listen.js';

const MINUTE = 60 * 1000;
const VMS = '/api/virtualization/virtual-machines/';
// The sample's passthrough device (qemu/101 scsi2, no size=) is no NetBox disk: a warning in every plan of it.
const UNSIZED_DISK = 'unsized-disk';

let nb;
let pve;
let admin; // NetBoxClient with the v2 admin token
let dir;
let readOnlyToken;

const cli = (args, env = {}) => runCli(args, { ...serverEnv(nb, pve), ...env });
/** The CLI's environment on a terminal: the servers, no colours, nothing else of ours. */
const ptyEnv = () => ({ ...cleanEnv(), ...serverEnv(nb, pve), NO_COLOR: '1' });
// eslint-disable-next-line no-control-regex -- terminal colour codes start with ESC (\x1b): matching it is the point
const COLOUR = /\x1b\[[0-9;]*m/;
const events = (stdout) => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
/** NetBox's change log length: every write NetBox accepts adds to it. */
const changeLog = async () => (await admin.request('GET', '/api/core/object-changes/', { query: { limit: 1 } })).data.count;

/** `apply --yes --stream` (and `plan`, unless only writing fails) fail with exactly this line, a failed `complete`, and no write. */
async function assertFails(args, env, line, { planFails = true } = {}) {
  const before = await changeLog();
  const stream = await cli(['apply', '--yes', '--stream', ...args], env);
  assert.equal(stream.code, 2, stream.stderr);
  assert.equal(stream.stderr, `error: ${line}\n`, 'one line on stderr, nothing else');
  const complete = events(stream.stdout).at(-1);
  assert.equal(complete.event, 'complete');
  assert.deepEqual(
    [complete.data.ok, complete.data.outcome, complete.data.message, complete.data.errors[0].message],
    [false, 'failed', `Apply failed: ${line}`, line]
  );
  const plan = await cli(['plan', ...args], env);
  if (planFails) {
    assert.equal(plan.code, 2);
    assert.equal(plan.stderr, `error: ${line}\n`);
    assert.equal(plan.stdout, '', 'no "Plan: 0 to create" for a run that could not look');
  } else {
    assert.equal(plan.code, 0, plan.stderr);
  }
  assert.equal(await changeLog(), before, 'nothing written');
  for (const out of [stream, plan]) {
    const text = `${out.stdout}${out.stderr}`;
    for (
      const secret of [nb.NETBOX_TOKEN, nb.NETBOX_TOKEN_V2.split('.')[1], pve.PVE_TOKEN_SECRET, readOnlyToken?.split('.')[1]].filter(Boolean)
    ) assert.ok(!text.includes(secret));
  }
}

describe('failures against real servers: NetBox 4.7.3 + Proxbox plugin, fakepve', { timeout: 60 * MINUTE }, () => {
  before(async () => {
    await installNetbox();
    await installFakepve();
    [pve, nb] = await Promise.all([startFakepve(), startNetbox()]);
    admin = new NetBoxClient({ url: nb.NETBOX_URL, token: nb.NETBOX_TOKEN_V2, timeout: 60000 });
    await createEndpoint(admin, pve);
    // A read-only v2 token, made the way an operator makes one.
    const { data: user } = await admin.request('GET', '/api/authentication-check/');
    const { data: token } = await admin.request('POST', '/api/users/tokens/', {
      body: { user: user.id, version: 2, write_enabled: false, description: 'read-only (failures.test.js)' },
    });
    readOnlyToken = `nbt_${token.key}.${token.token}`;
    dir = mkdtempSync(join(tmpdir(), 'pbp-failures-'));
  }, { timeout: 45 * MINUTE });

  after(async () => {
    admin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await Promise.allSettled([stopNetbox(nb), stopFakepve(pve)]);
  });

  test('a wrong Proxmox token (401)', async () => {
    await assertFails([], { PVE_TOKEN: `${pve.PVE_TOKEN_ID}=00000000-0000-4000-8000-000000000000` },
      `Proxmox at ${pve.PVE_URL} refused the token (401 authentication failure): check PVE_TOKEN (user@realm!tokenid=secret)`);
  });

  test('a self-signed Proxmox certificate without PVE_CA_FILE, and a CA file that did not sign it', async () => {
    await assertFails([], { PVE_CA_FILE: '' },
      `GET /cluster/resources: cannot verify the TLS certificate of Proxmox at ${pve.PVE_URL} (self-signed certificate): set PVE_CA_FILE (--pve-ca-file) to ` +
        `the cluster's CA (/etc/pve/pve-root-ca.pem), or PVE_INSECURE=1 (--pve-insecure) to skip verification`);
    const otherCa = join(dir, 'other-ca.pem');
    writeFileSync(otherCa, rootCertificates[0]);
    await assertFails(['--pve-ca-file', otherCa], { PVE_CA_FILE: '' },
      `GET /cluster/resources: cannot verify the TLS certificate of Proxmox at ${pve.PVE_URL} (self-signed certificate): --pve-ca-file ${otherCa} does not ` +
        `verify it: give the CA that signed it (/etc/pve/pve-root-ca.pem), or PVE_INSECURE=1 (--pve-insecure) to skip verification`);
    // The explicit opt-out is a plain flag.
    const insecure = await cli(['plan', '--json', '--pve-insecure'], { PVE_CA_FILE: '' });
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.equal(JSON.parse(insecure.stdout).complete, true);
  });

  test('an unreachable Proxmox (--pve-url https://127.0.0.1:1)', async () => {
    await assertFails(['--pve-url', 'https://127.0.0.1:1'], {},
      'GET /cluster/resources: cannot reach Proxmox at https://127.0.0.1:1 (connection refused, ECONNREFUSED): check --pve-url');
  });

  test('a NetBox URL that answers 404 (a wrong path prefix) or is not NetBox: never "plugin absent", never its HTML', async () => {
    await assertFails([], { NETBOX_URL: `${nb.NETBOX_URL}/netbox` },
      `${nb.NETBOX_URL}/netbox is not a NetBox API (GET /api/status/ → 404): check NETBOX_URL: NetBox's base URL, with its path prefix if it has one`);
    await assertFails([], { NETBOX_URL: pve.PVE_URL, NODE_EXTRA_CA_CERTS: pve.PVE_CA_FILE },
      `${pve.PVE_URL} is not a NetBox API (GET /api/status/ → 401 without NetBox's answer): check NETBOX_URL: NetBox's base URL, with its path prefix if it ` +
        `has one`);
  });

  test('a wrong NetBox token (403 Invalid v1 token), and NetBox refusing connections', async () => {
    await assertFails([], { NETBOX_TOKEN: '0123456789abcdef0123456789abcdef0123dead' },
      `NetBox at ${nb.NETBOX_URL} refused the token (403 Invalid v1 token): check NETBOX_TOKEN`);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'nbt_nosuchkey0001.NoSuchSecret0123456789abcdefghij\n');
    await assertFails(['--netbox-token-file', tokenFile], {},
      `NetBox at ${nb.NETBOX_URL} refused the token (403 Invalid v2 token): check --netbox-token-file`);
    await assertFails(['--retries', '0'], { NETBOX_URL: 'http://127.0.0.1:1' },
      'GET /api/status/: cannot reach NetBox at http://127.0.0.1:1 (connection refused, ECONNREFUSED): check NETBOX_URL');
  });

  test('a read-only v2 token is found out in one line before the first write', async () => {
    const key = readOnlyToken.slice(4).split('.')[0];
    const line = `the NetBox token ${key} is read-only (write_enabled is off): enable "Write enabled" on it in NetBox, or use another token (NETBOX_TOKEN)`;
    const before = await changeLog();
    const stream = await cli(['apply', '--yes', '--stream'], { NETBOX_TOKEN: readOnlyToken });
    assert.equal(stream.code, 2);
    assert.equal(stream.stderr, `error: ${line}\n`);
    const all = events(stream.stdout);
    assert.ok(all.some((e) => e.event === 'step' && e.data.step === 'plan' && e.data.status === 'completed'), 'it could read and plan');
    assert.ok(!all.some((e) => e.event === 'item_progress'), 'no operation was attempted');
    assert.deepEqual([all.at(-1).data.ok, all.at(-1).data.outcome, all.at(-1).data.message], [false, 'failed', `Apply failed: ${line}`]);
    // Reading with it is fine: a plan is not a write.
    const plan = await cli(['plan', '--json'], { NETBOX_TOKEN: readOnlyToken });
    assert.equal(plan.code, 0, plan.stderr);
    assert.ok(JSON.parse(plan.stdout).summary.create > 60);
    assert.equal(await changeLog(), before);
  });

  const limitedToken = (name, permissions) => createLimitedToken(admin, name, permissions);

  test('a user who may not read one collection gets an incomplete plan, one who may not add VMs is stopped before the first write', async () => {
    const blind = await limitedToken('novlans', { view: (type) => type !== 'ipam.vlan' });
    // The one more is the sample's standing UNSIZED_DISK.
    const line = 'the plan is incomplete, so it cannot be applied: netbox-unreadable: stage vm-interfaces skipped: /api/ipam/vlans/ could not be read: GET ' +
      '/api/ipam/vlans/?fields=…&limit=1000 → 403: You do not have permission to perform this action. (and 1 more warnings)';
    const before = await changeLog();
    const stream = await cli(['apply', '--yes', '--stream'], { NETBOX_TOKEN: blind });
    assert.equal(stream.code, 2, stream.stderr);
    assert.equal(stream.stderr, `error: ${line}\n`);
    const complete = events(stream.stdout).at(-1).data;
    assert.deepEqual([complete.ok, complete.outcome, complete.message], [false, 'failed', `Apply failed: ${line}`]);
    const json = await cli(['plan', '--json'], { NETBOX_TOKEN: blind });
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stdout).complete, false);
    const text = await cli(['plan'], { NETBOX_TOKEN: blind });
    assert.match(text.stdout, /Incomplete: the input could not be read whole, so this plan cannot be applied/);
    assert.equal(await changeLog(), before);
    const noVms = await limitedToken('novms', { write: (type) => type !== 'virtualization.virtualmachine' });
    await assertFails([], { NETBOX_TOKEN: noVms },
      'the NetBox token may not add to or change /api/virtualization/virtual-machines/: grant its user those permissions in NetBox, or use another token ' +
        '(NETBOX_TOKEN)', { planFails: false });
  });

  test('a plan is applied only where it was made: another NetBox URL, another endpoint, another planner', async () => {
    const file = join(dir, 'plan.json');
    const made = await cli(['plan', '--out', file]);
    assert.equal(made.code, 0, made.stderr);
    const plan = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual({ ...plan.origin, input_fingerprint: undefined }, {
      netbox_url: nb.NETBOX_URL, netbox_version: '4.7.3', instance: '1', input_fingerprint: undefined,
    });
    assert.match(plan.origin.input_fingerprint, /^fnv1a64:[0-9a-f]{16}$/);
    assert.ok(!JSON.stringify(plan).includes(nb.NETBOX_TOKEN), 'no token in the origin');

    // The same NetBox through another URL is another origin: refused, with no way to force it.
    const proxy = await startFaultProxy(nb.NETBOX_URL, () => 'pass');
    try {
      await assertRefused([file, '--netbox-url', proxy.url], {},
        `${file} was made against NetBox ${nb.NETBOX_URL}, not ${proxy.url} (--netbox-url): re-plan here: proxbox-planner plan --out ${file}`);
    } finally {
      await proxy.close();
    }
    // A plan for an endpoint this NetBox no longer has (the "header names another endpoint").
    const dcId = await createEndpoint(admin, pve, 'dc');
    const forDc = join(dir, 'plan-dc.json');
    assert.equal((await cli(['plan', '--endpoint', 'dc', '--out', forDc])).code, 0);
    await admin.request('DELETE', `/api/plugins/proxbox/endpoints/proxmox/${dcId}/`);
    await assertRefused([forDc], {},
      `${forDc} is for endpoint dc (id ${dcId}), which NetBox at ${nb.NETBOX_URL} does not have (its endpoints: lab (id 1)): re-plan here: proxbox-planner ` +
        `plan --out ${forDc}`);
    await assertRefused([file], { PROXBOX_ENDPOINT: 'other' },
      `${file} is for endpoint lab (id 1), not for endpoint other that was asked for: re-plan for it: proxbox-planner plan --endpoint other --out ${file}`);
    // A planner that writes another plan format.
    const newer = join(dir, 'plan-newer.json');
    writeFileSync(newer, JSON.stringify({ ...plan, planner_version: '1.0.0' }));
    await assertRefused([newer], {},
      `${newer} was made by proxbox-planner 1.0.0, which ${planner.version()} cannot apply: re-plan with this version: proxbox-planner plan --out ${newer}`);
  });

  async function assertRefused(args, env, line) {
    const before = await changeLog();
    const r = await cli(['apply', '--yes', '--stream', ...args], env);
    assert.equal(await changeLog(), before, 'nothing written');
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `error: ${line}\n`);
    const complete = events(r.stdout).at(-1);
    assert.deepEqual([complete.event, complete.data.ok, complete.data.outcome, complete.data.message], ['complete', false, 'failed', `Apply failed: ${line}`]);
  }

  test('answering n at the prompt exits 1 with "Not applied." and writes nothing', async () => {
    const file = join(dir, 'plan.json');
    const changes = countChanges(JSON.parse(readFileSync(file, 'utf8')));
    assert.ok(changes > 60);
    const before = await changeLog();
    const r = await runInPty([process.execPath, CLI, 'apply', file], { env: ptyEnv(), answers: ['n'] });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, new RegExp(`Apply ${changes} changes to NetBox\\? \\[y/N\\] [^\\n]*n\\r*\\nNot applied\\.\\r?\\n$`));
    assert.equal(await changeLog(), before);
  });

  test('counts agree: the plan, the prompt, the progress counter and the report count the same changes', async () => {
    const r = await runInPty([process.execPath, CLI, 'apply'], { env: ptyEnv(), answers: ['y'] });
    assert.equal(r.code, 0, r.output);
    const [, create, update, remove, skipped] = /Plan: (\d+) to create, (\d+) to update, (\d+) to delete, (\d+) skipped/.exec(r.output).map(Number);
    const changes = create + update + remove;
    assert.ok(changes > 60 && skipped > 0, `a plan with changes and a planned skip: ${changes}, ${skipped}`);
    assert.match(r.output, new RegExp(`Apply ${changes} changes to NetBox\\? \\[y/N\\]`));
    const counters = [...r.output.matchAll(/\[\s*(\d+)\/(\d+)\s+\d+%\]/g)].map(([, current, total]) => [Number(current), Number(total)]);
    assert.ok(counters.length > 0, 'a progress line');
    assert.ok(counters.every(([, total]) => total === changes), `every counter is out of ${changes}`);
    assert.equal(Math.max(...counters.map(([current]) => current)), changes);
    assert.match(
      r.output,
      new RegExp(`Apply: ${changes} of ${changes} changes done, 0 failed, 0 stale, 0 skipped \\(dependency\\); ${skipped} planned skips?;`)
    );
    assert.doesNotMatch(r.output, COLOUR, 'NO_COLOR: no colour codes');
    // Nothing left to do: ok (with the sample's one warning), exit 0, and the stream says so.
    const again = await cli(['apply', '--yes', '--stream']);
    assert.equal(again.code, 0, again.stderr);
    const complete = events(again.stdout).at(-1).data;
    assert.deepEqual([complete.ok, complete.outcome, complete.message, complete.result.changes], [true, 'ok-with-warnings', 'Nothing to apply', 0]);
    assert.deepEqual(complete.result.warnings.map((w) => w.code), [UNSIZED_DISK]);
  });

  test('some operations stale: partial, exit 1, complete ok false', async () => {
    await pveWrite(pve, 'PUT', '/nodes/pve1/qemu/100/config', { name: 'web01-v2' });
    await pveWrite(pve, 'PUT', '/nodes/pve1/qemu/101/config', { name: 'db01-v2' });
    const file = join(dir, 'rename.json');
    assert.equal((await cli(['plan', '--out', file])).code, 0);
    const plan = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual(
      plan.operations.filter((op) => op.action === 'update' && op.collection === VMS).map((op) => op.key).sort(),
      ['qemu/100 web01-v2', 'qemu/101 db01-v2']
    );
    // An operator edits one of the two VMs after planning.
    const [db01] = (await admin.request('GET', VMS, { query: { name: 'db01' } })).data.results;
    await admin.request('PATCH', `${VMS}${db01.id}/`, { body: { serial: 'operator-was-here' } });
    const r = await cli(['apply', file, '--yes', '--stream']);
    assert.equal(r.code, 1, r.stderr);
    const complete = events(r.stdout).at(-1).data;
    assert.deepEqual([complete.ok, complete.outcome], [false, 'partial']);
    // db01's sync-state record waits for db01: skipped, not written ahead of it.
    assert.equal(complete.message, 'Applied 2 of 4 changes; not applied: 1 stale, 1 skipped (dependency)');
    assert.deepEqual(complete.result.failures.map((f) => f.status), ['stale', 'skipped-dependency']);
    // Re-planned against NetBox as it is now, it goes through.
    const fixed = await cli(['apply', '--yes', '--stream']);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal(events(fixed.stdout).at(-1).data.outcome, 'ok-with-warnings');
  });

  test('serve\'s stream and the JS API end the same way as the CLI', async () => {
    const line = `Proxmox at ${pve.PVE_URL} refused the token (401 authentication failure): check PVE_TOKEN (user@realm!tokenid=secret)`;
    const wrong = `${pve.PVE_TOKEN_ID}=00000000-0000-4000-8000-000000000000`;
    const server = createSyncServer({ options: resolveOptions({}, { ...serverEnv(nb, pve), PVE_TOKEN: wrong }) });
    const base = await listenLoopback(server);
    try {
      const frames = parseSSE(await (await fetch(`${base}/full-update/stream`)).text());
      assert.deepEqual(frames.map((f) => f.event).slice(-2), ['error', 'complete']);
      assert.deepEqual([frames.at(-1).data.ok, frames.at(-1).data.outcome, frames.at(-1).data.message], [false, 'failed', `Sync failed: ${line}`]);
      assert.ok(!JSON.stringify(frames).includes(wrong.split('=')[1]));
    } finally {
      server.close();
    }
    const netbox = new NetBoxClient({ url: nb.NETBOX_URL, token: nb.NETBOX_TOKEN_V2 });
    const proxmox = new ProxmoxClient({ url: pve.PVE_URL, token: wrong, ca: pve.PVE_CA_FILE });
    try {
      await assert.rejects(syncOnce({ netbox, proxmox, apply: true }), { outcome: 'failed', message: line });
      const good = new ProxmoxClient({ url: pve.PVE_URL, token: pve.PVE_TOKEN, ca: pve.PVE_CA_FILE });
      const { result, report } = await syncOnce({ netbox, proxmox: good, apply: true });
      good.close();
      assert.deepEqual(
        [result.ok, result.outcome, result.message, report.outcome, report.counts.changes],
        [true, 'ok-with-warnings', 'Nothing to apply', 'ok-with-warnings', 0],
        JSON.stringify(result.failures ?? report.operations.filter((o) => o.status !== 'skipped'))
      );
      assert.deepEqual(result.warnings.map((w) => w.code), [UNSIZED_DISK]);
    } finally {
      netbox.close();
      proxmox.close();
    }
  });
});
