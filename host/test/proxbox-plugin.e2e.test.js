// The Proxbox plugin as the client of `serve`, end to end, against REAL
// servers this file starts and stops: NetBox 4.7.3 with netbox-proxbox
// 0.0.29.post6 and its job runner `netbox rqworker` (host/test/servers/
// netbox.sh), fakepve with the sample cluster, and `proxbox-planner serve`.
// Everything goes through the plugin: its REST API registers serve as the
// FastAPI backend (the plugin adopts the API key), creates the NetBox and
// Proxmox endpoints; its UI buttons and scheduler start the jobs; its job
// runner calls serve. The only stand-in is a loopback proxy between serve and
// NetBox that can hold a request, to keep a run busy for the 409 check.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetBoxClient } from '../netbox.js';
import { parseSSE } from '../events.js';
import { STATE_FILE } from '../backend/state.js';
import {
  installFakepve, installNetbox, netboxShell, pveWrite as pveWriteTo, startFakepve, startNetbox, startServe, stopFakepve, stopNetbox,
} from '../test-support/servers.js';
import { startFaultProxy } from '../test-support/fault-proxy.js';
import { BrowserSession } from '../test-support/netbox-ui.js';

const MINUTE = 60 * 1000;
const PLUGIN = '/api/plugins/proxbox';
const SETTINGS = `${PLUGIN}/settings/`;
const HOME = '/plugins/proxbox/home/';
const SAMPLE_VMS = ['app02', 'db01', 'dns01', 'legacy-ct', 'proxy01', 'web01', 'win-rdp01'];
/** The plugin's "All": its 13 stages, of which it skips sdn itself (sync_mode_sdn=disabled by default). */
const ALL_STAGES = [
  'devices', 'storage', 'virtual-machines', 'task-history', 'vm-disks', 'vm-backups', 'vm-snapshots', 'network-interfaces', 'vm-interfaces',
  'ip-addresses', 'sdn', 'replications', 'backup-routines',
];

let nb; // netbox.env
let pve; // fakepve.env
let netbox; // NetBoxClient (v2 token): what the test itself reads and configures
let proxy; // between serve and NetBox
let serve; // {url, process, output}
let ui; // the logged-in browser session
let stateDir;
const key = randomBytes(36).toString('base64url');
const hold = { gate: null };
let pluginEndpointId;
let backendId;

const api = async (method, path, body) => (await netbox.request(method, path, body === undefined ? {} : { body })).data;
const serveFetch = (path, init = {}) => fetch(`${serve.url}${path.replace(/^\//, '')}`, { ...init, headers: { 'X-Proxbox-API-Key': key, ...init.headers } });
const status = async () => (await serveFetch('/planner/status')).json();

/** The runs serve recorded since `since` (a previous status), oldest first. */
async function runsSince(since) {
  const seen = new Set(since.recent_runs.map((r) => r.id));
  return (await status()).recent_runs.filter((r) => !seen.has(r.id)).reverse();
}

async function waitForJob(id, { timeout = 5 * MINUTE } = {}) {
  const started = Date.now();
  for (;;) {
    const job = await api('GET', `/api/core/jobs/${id}/`);
    if (['completed', 'errored', 'failed'].includes(job.status?.value)) return {
      ...job, log: (job.log_entries ?? []).map((e) => `${e.level} ${e.message}`).join('\n'),
    };
    if (Date.now() - started > timeout) throw new Error(`job ${id} still ${job.status?.value} after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 400));
  }
}

/**
 * Presses a plugin button; resolves to the finished job and the runs serve
 * made for it. The job: the one the answer names, else the newest one named `jobName`.
 * @param {string} page @param {string} action  the button's form action
 * @param {{ form?: Record<string, string>, jobName?: string }} [options]  the form's values
 */
async function pressAndWait(page, action, { form, jobName } = {}) {
  const before = await status();
  const response = await ui.submit(page, action, form);
  assert.equal(response.status, 302, `${action} was accepted`);
  const named = response.headers.get('x-proxbox-job-id');
  const id = named ?? (await netbox.list('/api/core/jobs/', { query: { name: jobName, ordering: '-id' } }))[0]?.id;
  assert.ok(id, `${action} queued a job`);
  const job = await waitForJob(id);
  return { job, runs: await runsSince(before) };
}

const completed = (job) => assert.equal(job.status.value, 'completed', `job ${job.id} ${job.status.value}: ${job.error}\n${job.log.slice(-3000)}`);

const pveWrite = (method, path, form) => pveWriteTo(pve, method, path, form);

describe('the Proxbox plugin drives serve: NetBox 4.7.3 + netbox-proxbox 0.0.29.post6 + netbox rqworker + fakepve', { timeout: 45 * MINUTE }, () => {
  before(async () => {
    await installNetbox();
    await installFakepve();
    [pve, nb] = await Promise.all([startFakepve(), startNetbox({ rqworker: true })]);
    netbox = new NetBoxClient({ url: nb.NETBOX_URL, token: nb.NETBOX_TOKEN_V2, timeout: 60000 });
    proxy = await startFaultProxy(nb.NETBOX_URL, async ({ path }) => {
      if (hold.gate && path.startsWith(SETTINGS)) await hold.gate;
      return /** @type {const} */ ('pass');
    });
    // No NetBox or Proxmox settings at all: the plugin tells serve where they are.
    stateDir = mkdtempSync(join(tmpdir(), 'pbp-serve-'));
    serve = await startServe({ stateDir, pveCaFile: pve.PVE_CA_FILE });
    ui = new BrowserSession(nb.NETBOX_URL);
    await ui.login(nb.NETBOX_USERNAME, nb.NETBOX_PASSWORD);
  }, { timeout: 40 * MINUTE });

  after(async () => {
    serve?.process.kill('SIGTERM');
    netbox?.close();
    await proxy?.close();
    await Promise.allSettled([stopNetbox(nb), stopFakepve(pve)]);
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  test('the plugin adopts serve as its FastAPI backend: the first key is bootstrapped, serve keeps only its hash', async () => {
    const port = Number(new URL(serve.url).port);
    const fastapi = await api('POST', `${PLUGIN}/endpoints/fastapi/`, {
      name: 'proxbox-planner', domain: 'localhost', port, use_https: false, verify_ssl: false, enabled: true, token: key,
    });
    assert.ok(fastapi.id);
    assert.deepEqual(await (await fetch(`${serve.url}auth/bootstrap-status`)).json(), { needs_bootstrap: false, has_db_keys: true });
    const { keys } = await (await serveFetch('/auth/keys')).json();
    assert.equal(keys.length, 1);
    assert.match(keys[0].label, /^netbox-fastapi-/, 'registered by the plugin');
    assert.equal((await serveFetch('/auth/keys', { headers: { 'X-Proxbox-API-Key': 'x'.repeat(48) } })).status, 401);
    // A key serve does not know is refused by the plugin before it is stored.
    await assert.rejects(
      netbox.request('PATCH', `${PLUGIN}/endpoints/fastapi/${fastapi.id}/`, { body: { token: randomBytes(36).toString('base64url') } }),
      (/** @type {import('../netbox.js').NetBoxError} */ error) => error.status === 400 && /candidate API key was rejected/.test(JSON.stringify(error.body)),
    );
    const file = join(stateDir, STATE_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(key), 'the key is not in the state file');
    assert.match(text, /"hash": "scrypt\$/);
  });

  test('the NetBox and Proxmox endpoints are made (and approved) through the plugin', async () => {
    const [tokenKey, tokenSecret] = nb.NETBOX_TOKEN_V2.slice('nbt_'.length).split('.');
    const nbEndpoint = await api('POST', `${PLUGIN}/endpoints/netbox/`, {
      // serve reaches NetBox through the test's loopback proxy (so a run can be held for the 409 check).
      name: 'this NetBox', domain: 'localhost', port: Number(new URL(proxy.url).port), verify_ssl: false,
      token_version: 'v2', token_key: tokenKey, token_secret: tokenSecret, enabled: true,
    });
    const pxEndpoint = await api('POST', `${PLUGIN}/endpoints/proxmox/`, {
      name: 'lab', mode: 'cluster', domain: 'localhost', port: Number(pve.PVE_PORT), token_name: 'proxbox', token_value: pve.PVE_TOKEN_SECRET, verify_ssl: true,
    });
    pluginEndpointId = pxEndpoint.id;
    for (const [kind, id] of [['netbox', nbEndpoint.id], ['proxmox', pxEndpoint.id]]) {
      const review = await api('GET', `${PLUGIN}/endpoints/${kind}/${id}/connection-authority/`);
      assert.equal(
        (await api('PUT', `${PLUGIN}/endpoints/${kind}/${id}/connection-authority/`, { target_fingerprint: review.target_fingerprint })).approved,
        true
      );
    }
    const answers = await Promise.all(['/netbox/endpoint', '/proxmox/endpoints'].map(async (p) => (await serveFetch(p)).text()));
    for (const secret of [tokenSecret, pve.PVE_TOKEN_SECRET]) assert.ok(!answers.join('').includes(secret), 'serve never answers with a pushed secret');
  });

  test('"Full update" pressed in the UI: the job completes with serve\'s stage events, and NetBox holds the sample', async () => {
    const { job, runs } = await pressAndWait(HOME, '/plugins/proxbox/sync/full-update/');
    completed(job);
    assert.match(job.log, new RegExp(`Starting Proxbox sync stages: ${ALL_STAGES.join(', ')}`));
    assert.match(job.log, /Preflight: API key verified/);
    assert.match(job.log, /Preflight: synced NetBox endpoint 'this NetBox' to proxbox-api backend/);
    assert.match(job.log, /Preflight: synced Proxmox endpoint 'lab' to proxbox-api backend/);
    for (const stage of ALL_STAGES.filter((s) => s !== 'sdn')) assert.match(job.log, new RegExp(`Stage completed: ${stage} \\(\\S+/stream\\) HTTP 200`), stage);
    assert.match(job.log, /Skipping stage sdn for endpoint \d+: sync_mode_sdn=disabled/);
    assert.match(job.log, /\[proxbox-stream\] (item_progress|discovery|step): \{.*"(operation|round|step)"/, 'our events in the job log');

    const pushed = (await status()).endpoints;
    assert.deepEqual(pushed.proxmox.map((e) => [e.name, e.plugin_endpoint_id, e.has_token]), [[`lab (nb:${pluginEndpointId})`, pluginEndpointId, true]]);
    backendId = pushed.proxmox[0].id;
    assert.deepEqual(pushed.netbox.map((e) => [e.name, e.has_token]), [['this NetBox', true]]);

    assert.deepEqual(runs.map((r) => r.stage), ALL_STAGES.filter((s) => s !== 'sdn'));
    // Every stage of the plugin's Full update is planned and applied by the core.
    for (const run of runs) {
      assert.equal(run.ok, true, JSON.stringify(run));
      assert.equal(run.applied.failed, 0, run.stage);
      assert.equal(run.backend_endpoint_id, backendId);
    }
    const vmRun = runs.find((r) => r.stage === 'virtual-machines');
    assert.deepEqual(vmRun.sync_types, ['virtual-machines'], 'in an "All" run the plugin says sync_vm_network=false: interfaces and IPs have their stages');
    assert.ok(runs.find((r) => r.stage === 'ip-addresses').applied.done > 0);

    // NetBox, read back: what the stages wrote, and what the plugin's own phases wrote from serve's Proxmox reads.
    assert.deepEqual((await netbox.list('/api/virtualization/virtual-machines/')).map((v) => v.name).sort(), SAMPLE_VMS);
    const web01 = (await netbox.list('/api/virtualization/virtual-machines/', { query: { name: 'web01' } }))[0];
    const state = (await netbox.list(`${PLUGIN}/sync-state/virtual-machines/`)).find((row) => row.virtual_machine.id === web01.id);
    assert.equal(state.proxmox_vm_id, 100, 'the identity is in the plugin\'s sync-state record');
    assert.equal(web01.primary_ip4?.address, '10.0.20.11/24');
    assert.deepEqual((await netbox.list('/api/dcim/devices/')).map((d) => d.name).sort(), ['pve1', 'pve2', 'pve3']);
    assert.deepEqual((await netbox.list(`${PLUGIN}/storage/`)).map((s) => s.name).sort(), ['ceph-vm', 'local', 'local-lvm', 'nfs-shared']);
    // The vm-disks and network-interfaces stages, each its own request from the plugin.
    const disks = await netbox.list('/api/virtualization/virtual-disks/', { query: { virtual_machine_id: web01.id } });
    assert.deepEqual(disks.map((d) => d.name).sort(), ['efidisk0', 'scsi0', 'scsi1']);
    const diskStates = await netbox.list(`${PLUGIN}/sync-state/virtual-disks/`);
    assert.equal(diskStates.find((row) => row.virtual_disk.id === disks.find((d) => d.name === 'scsi1').id)?.proxbox_storage?.name, 'nfs-shared',
      'the storage row the storage stage wrote (a request of its own) is linked');
    const pve1 = (await netbox.list('/api/dcim/devices/', { query: { name: 'pve1' } }))[0];
    assert.deepEqual((await netbox.list('/api/dcim/interfaces/', { query: { device_id: pve1.id } })).map((i) => i.name).sort(),
      ['bond0', 'eno1', 'eno2', 'eno3', 'vmbr0', 'vmbr0.40', 'vmbr1']);
    assert.deepEqual((await netbox.list(`${PLUGIN}/vm-templates/`)).map((t) => [t.vmid, t.name]), [[9000, 'debian12-cloudinit']]);
    assert.deepEqual((await netbox.list(`${PLUGIN}/proxmox-nodes/`)).map((n) => n.name).sort(), ['pve1', 'pve2', 'pve3']);
    assert.equal((await netbox.list(`${PLUGIN}/backups/`)).length, 5);
    assert.equal((await netbox.list(`${PLUGIN}/snapshots/`)).length, 4);
    assert.equal((await netbox.list(`${PLUGIN}/task-history/`)).length, 12);
    assert.deepEqual((await netbox.list(`${PLUGIN}/backup-routines/`)).map((r) => [r.job_id, r.status.value]), [['backup-6d1f0a3c-7a1e', 'active']]);
  });

  test('a second "Full update" plans and writes nothing', async () => {
    const counted = [
      '/api/virtualization/virtual-machines/', '/api/virtualization/interfaces/', '/api/ipam/ip-addresses/', '/api/dcim/mac-addresses/',
      '/api/dcim/devices/', ...['backups', 'snapshots', 'task-history'].map((t) => `${PLUGIN}/${t}/`),
    ];
    const count = async () => Promise.all(counted.map(async (c) => (await netbox.list(c)).length));
    const before = await count();
    const { job, runs } = await pressAndWait(HOME, '/plugins/proxbox/sync/full-update/');
    completed(job);
    const planned = runs.filter((r) => !r.skipped);
    assert.deepEqual(planned.map((r) => r.stage), ALL_STAGES.filter((s) => s !== 'sdn'));
    for (const run of planned) {
      assert.deepEqual([run.summary.create, run.summary.update, run.summary.delete], [0, 0, 0], `${run.stage}: ${JSON.stringify(run.summary)}`);
      assert.equal(run.applied.done, 0, run.stage);
    }
    assert.deepEqual(await count(), before);
  });

  test('every stage path of the plugin\'s own tables answers a stream (never 404)', async () => {
    // Read from the installed plugin itself, so a path it calls can not be missing here.
    const tables = JSON.parse(
      await netboxShell(
        nb,
        'import json\nfrom netbox_proxbox.sync_types import _SYNC_TYPE_PATH, _VM_SCOPED_PATH_TEMPLATES\nprint(json.dumps({"stages": dict(_SYNC_TYPE_PATH), ' +
          '"vm": dict(_VM_SCOPED_PATH_TEMPLATES)}))'
      )
    );
    assert.equal(Object.keys(tables.stages).length, 13);
    assert.equal(Object.keys(tables.vm).length, 4);
    const web01 = (await netbox.list('/api/virtualization/virtual-machines/', { query: { name: 'web01' } }))[0];
    const paths = [...Object.values(tables.stages), ...Object.values(tables.vm).map((p) => p.replace('{vm_id}', web01.id))];
    for (const path of paths) {
      const response = await serveFetch(`/${path}/stream?proxmox_endpoint_ids=${backendId}&dry_run=true`);
      assert.equal(response.status, 200, path);
      const frames = parseSSE(await response.text());
      assert.equal(frames.at(-1).event, 'complete', path);
      assert.equal(frames.at(-1).data.ok, true, `${path}: ${JSON.stringify(frames.at(-1).data)}`);
    }
  });

  test('Scheduled sync: "Replications" alone, recurring, through the plugin\'s scheduler form and job runner', async () => {
    const before = await status();
    const response = await ui.submit('/plugins/proxbox/sync/schedule/', '/plugins/proxbox/sync/schedule/', {
      sync_types: 'replications', interval_value: '1', interval_unit: 'hours', job_name: 'replications hourly',
    });
    assert.equal(response.status, 302, 'the form was accepted');
    const [scheduled] = await netbox.list('/api/core/jobs/', { query: { name: 'replications hourly', ordering: 'id' } });
    assert.equal(scheduled.interval, 60);
    const job = await waitForJob(scheduled.id);
    completed(job);
    assert.match(job.log, /Starting Proxbox sync stages: replications\n/);
    const runs = await runsSince(before);
    assert.deepEqual(runs.map((r) => [r.stage, r.sync_types, r.ok]), [['replications', ['replications'], true]]);
  });

  test('409 while busy: a second run for the same endpoint is refused, and the plugin fails that job with serve\'s reason', async () => {
    /** @type {(value?: unknown) => void} */
    let release;
    hold.gate = new Promise((r) => (release = r));
    const busy = serveFetch(`/dcim/devices/create/stream?proxmox_endpoint_ids=${backendId}&dry_run=true`);
    try {
      for (let i = 0; !(await status()).active.length; i++) {
        assert.ok(i < 200, 'the held run became active');
        await new Promise((r) => setTimeout(r, 50));
      }
      const direct = await serveFetch(`/virtualization/virtual-machines/create/stream?proxmox_endpoint_ids=${backendId}`);
      assert.equal(direct.status, 409);
      const { job, runs } = await pressAndWait(HOME, '/plugins/proxbox/sync/full-update/');
      assert.equal(job.status.value, 'errored');
      assert.match(job.error, /Stage \\?'devices\\?' failed \(HTTP 409\): proxbox-planner is already syncing Proxmox endpoint "lab \(nb:\d+\)"/);
      assert.match(job.log, /Stopping remaining stages for Proxmox endpoint \d+ after required stage 'devices' failed/);
      assert.deepEqual(runs, [], 'the refused job ran nothing');
    } finally {
      release();
      hold.gate = null;
    }
    const frames = parseSSE(await (await busy).text());
    assert.equal(frames.at(-1).data.ok, true, 'the held run finished normally');
    assert.deepEqual((await status()).active, []);
  });

  test('a single-VM sync from the VM page touches only that VM', async () => {
    await pveWrite('PUT', '/nodes/pve1/qemu/100/config', { name: 'web01-renamed' });
    await pveWrite('PUT', '/nodes/pve1/qemu/101/config', { name: 'db01-renamed' });
    const web01 = (await netbox.list('/api/virtualization/virtual-machines/', { query: { name: 'web01' } }))[0];
    const { job, runs } = await pressAndWait(
      `/virtualization/virtual-machines/${web01.id}/`, `/virtualization/virtual-machines/${web01.id}/proxbox-sync-now/`,
      { jobName: `Proxbox Sync: Virtual machine ${web01.id}` }
    );
    completed(job);
    assert.match(job.log, /Skipping VM template sync: targeted virtual-machine run/);
    assert.deepEqual(runs.map((r) => [r.stage, r.path]), [
      ['virtual-machines', '/virtualization/virtual-machines/{vm_id}/create'],
      ['vm-backups', '/virtualization/virtual-machines/{vm_id}/backups/create'],
      ['vm-snapshots', '/virtualization/virtual-machines/{vm_id}/snapshots/create'],
    ]);
    assert.deepEqual(runs[0].subset, { netbox_vm_ids: [web01.id] });
    assert.equal(runs[0].summary.update, 2, `the VM and its sync-state record: ${JSON.stringify(runs[0])}`);
    assert.equal((await netbox.get('/api/virtualization/virtual-machines/', web01.id)).name, 'web01-renamed');
    const states = await netbox.list(`${PLUGIN}/sync-state/virtual-machines/`);
    const db01 = states.find((row) => row.proxmox_vm_id === 101);
    assert.equal(db01.proxmox_vm_name, 'db01', 'the other VM\'s record is untouched');
    assert.equal((await netbox.get('/api/virtualization/virtual-machines/', db01.virtual_machine.id)).name, 'db01', 'the other VM is untouched');
  });

  test('the preview\'s Proxmox reads (/planner/proxmox) and /planner/status', async () => {
    const read = await serveFetch('/planner/proxmox', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ endpoint_id: pluginEndpointId, paths: ['/cluster/status', '/nodes/pve1/qemu/100/config', '/nodes/nope/qemu/1/config'] }),
    });
    assert.equal(read.status, 200);
    const answers = await read.json();
    assert.equal(answers['/cluster/status'].find((r) => r.type === 'cluster').name, 'lab');
    assert.equal(answers['/nodes/pve1/qemu/100/config'].name, 'web01-renamed');
    assert.ok(answers['/nodes/nope/qemu/1/config'].error.status >= 400);
    const refused = await serveFetch('/planner/proxmox', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ endpoint_id: pluginEndpointId, paths: ['/access/users'] }),
    });
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).detail, /"\/access\/users"/);
    const now = await status();
    assert.deepEqual(now.active, []);
    assert.ok(now.recent_runs.length > 10);
    assert.match(now.version, /^\d+\.\d+\.\d+/);
  });

  test('no token in any job log, in serve\'s output or in its state file', async () => {
    const secrets = {
      'the backend API key': key, 'the NetBox v1 token': nb.NETBOX_TOKEN, 'the NetBox v2 secret': nb.NETBOX_TOKEN_V2.split('.')[1],
      'the Proxmox token secret': pve.PVE_TOKEN_SECRET,
    };
    const jobs = await netbox.list('/api/core/jobs/');
    const places = {
      'the job logs and data': JSON.stringify(jobs.map((j) => [j.log_entries, j.data, j.error])),
      "serve's output": serve.output.text,
      "serve's state file": readFileSync(join(stateDir, STATE_FILE), 'utf8'),
    };
    assert.ok(jobs.length >= 5 && serve.output.text.includes('devices for lab'), 'there is something to look at');
    for (const [where, text] of Object.entries(places)) {
      for (const [what, secret] of Object.entries(secrets)) assert.ok(!text.includes(secret), `${what} appears in ${where}`);
    }
  });
});
