// `serve` as the Proxbox backend, in process: the key lifecycle, the state
// file, the endpoint push, the stage path table and query flags, the route
// table's auth, 409s per endpoint and the skipped-stage stream. The run itself
// is injected here; the real plugin drives the real thing in
// proxbox-plugin.e2e.test.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateFile, STATE_FILE } from '../backend/state.js';
import { KeyStore } from '../backend/keys.js';
import { EndpointRegistry, pluginEndpointId } from '../backend/endpoints.js';
import { PLUGIN_STAGES, VM_SCOPED_STAGES, runRequestFromQuery, stageForPath } from '../backend/stages.js';
import { createSyncServer } from '../server.js';
import { parseSSE } from '../events.js';
import { listenLoopback } from '../test-support/listen.js';

const KEY = 'k'.repeat(20) + 'the-first-backend-key-0123456789';
const PVE_SECRET = 'pve-token-secret-5f0e8c1a-9d2b';
const NB_SECRET = 'NetBoxV2SecretPart0123456789abcdef';

function tempDir() {
  return mkdtempSync(join(tmpdir(), 'pbp-backend-'));
}

test('keys: one bootstrap ever, scrypt hashes only, a cached verify, the last active key stays', () => {
  const dir = tempDir();
  try {
    const state = new StateFile(dir);
    const keys = new KeyStore(state);
    assert.deepEqual(keys.bootstrapStatus(), { needs_bootstrap: true, has_db_keys: false });
    assert.equal(keys.configured, false);
    assert.throws(() => keys.registerFirst('short'), { status: 400 });
    assert.deepEqual(keys.registerFirst(KEY, 'netbox-fastapi-1'), { detail: 'API key registered.' });
    assert.throws(() => keys.registerFirst(`${KEY}-again`), { status: 409 });
    assert.deepEqual(keys.bootstrapStatus(), { needs_bootstrap: false, has_db_keys: true });
    const [record] = keys.list().keys;
    assert.deepEqual(Object.keys(record).sort(), ['created_at', 'id', 'is_active', 'label']);
    assert.equal(record.label, 'netbox-fastapi-1');
    assert.equal(keys.verify(KEY).id, record.id);
    assert.equal(keys.verify(KEY).id, record.id, 'second time from the cache');
    assert.equal(keys.verify(`${KEY}x`), null);
    assert.throws(() => keys.setActive(record.id, false), { status: 409 });
    const second = keys.create('rotation');
    assert.equal(keys.verify(second.raw_key).id, second.id);
    keys.setActive(record.id, false);
    assert.equal(keys.verify(KEY), null, 'a deactivated key no longer authenticates');

    const text = readFileSync(join(dir, STATE_FILE), 'utf8');
    assert.ok(!text.includes(KEY) && !text.includes(second.raw_key), 'no key in plaintext');
    assert.match(text, /"hash": "scrypt\$16384\$8\$1\$/);
    assert.equal(statSync(join(dir, STATE_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    // A restart reads the same keys.
    assert.equal(new KeyStore(new StateFile(dir)).verify(second.raw_key).id, second.id);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('state file: refused when others can read it, or when it is not ours', () => {
  const dir = tempDir();
  try {
    const file = join(dir, STATE_FILE);
    writeFileSync(file, '{"format": 1}', { mode: 0o644 });
    chmodSync(file, 0o644);
    assert.throws(() => new StateFile(dir), /readable by others.*chmod 600/);
    chmodSync(file, 0o600);
    writeFileSync(file, 'not json');
    assert.throws(() => new StateFile(dir), /is not JSON/);
    writeFileSync(file, '{"format": 9}');
    assert.throws(() => new StateFile(dir), /has format 9/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('endpoints: secrets stay in memory, rows are public, connections follow proxbox-api rules', () => {
  const dir = tempDir();
  try {
    const registry = new EndpointRegistry(new StateFile(dir));
    const nb = registry.create('netbox', {
      name: 'nb', ip_address: '127.0.0.1', domain: 'localhost', port: 8000, verify_ssl: false, token_version: 'v2', token_key: 'abc123',
      token: NB_SECRET,
    });
    const pve = registry.create('proxmox', {
      name: 'lab (nb:7)', domain: 'pve.lab', ip_address: '10.0.0.5', port: 8006, username: 'root@pam', token_name: 'proxbox',
      token_value: PVE_SECRET, verify_ssl: true,
    });
    for (const row of [nb, pve, ...registry.list('netbox'), ...registry.list('proxmox')]) {
      assert.ok(!JSON.stringify(row).includes(NB_SECRET) && !JSON.stringify(row).includes(PVE_SECRET) && !('token_name' in row));
    }
    assert.ok(!readFileSync(join(dir, STATE_FILE), 'utf8').match(new RegExp(`${NB_SECRET}|${PVE_SECRET}|proxbox"`)));
    assert.deepEqual(registry.netboxConnection(), { id: nb.id, name: 'nb', url: 'http://localhost:8000', token: `nbt_abc123.${NB_SECRET}`, insecure: false });
    assert.equal(pluginEndpointId(pve), 7);
    assert.deepEqual(registry.proxmoxConnection(pve), {
      id: pve.id, name: 'lab (nb:7)', pluginEndpointId: 7, url: 'https://pve.lab:8006', token: `root@pam!proxbox=${PVE_SECRET}`,
      insecure: false,
    });
    // The plugin's revoke PUT carries two fields: the rest (and the secret) stays.
    registry.update('proxmox', pve.id, { enabled: false, allow_packer_template_builds: false });
    assert.equal(registry.get('proxmox', pve.id).domain, 'pve.lab');
    assert.deepEqual(registry.proxmoxScope([]), []);
    assert.throws(() => registry.proxmoxScope([pve.id]), { status: 404, message: /no enabled Proxmox endpoint with backend id/ });
    registry.update('proxmox', pve.id, { enabled: true });
    assert.equal(registry.proxmoxConnection(registry.get('proxmox', pve.id)).token, `root@pam!proxbox=${PVE_SECRET}`);
    // https when the port is 443 or verify_ssl is on; v1 tokens as they are.
    registry.update('netbox', nb.id, { port: 443, token_version: 'v1', token: 'f'.repeat(40) });
    assert.deepEqual(registry.netboxConnection(), { id: nb.id, name: 'nb', url: 'https://localhost:443', token: 'f'.repeat(40), insecure: true });
    assert.deepEqual(registry.secrets().sort(), ['f'.repeat(40), PVE_SECRET].sort(), 'the token name and the v2 key are identifiers, not secrets');
    assert.throws(
      () => registry.create('proxmox', { name: '', port: 70000 }),
      { status: 422, message: /name is required; port must be 1..65535.*domain or an ip_address/ },
    );
    // A restart keeps the rows, not the secrets: the plugin pushes them again.
    const restarted = new EndpointRegistry(new StateFile(dir));
    assert.equal(restarted.list('proxmox')[0].name, 'lab (nb:7)');
    assert.throws(
      () => restarted.proxmoxConnection(restarted.list('proxmox')[0]),
      { status: 503, message: /pushes it at the start of every sync job/ }
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// netbox_proxbox/sync_types.py (0.0.29.post6): `_SYNC_TYPE_PATH` and `_VM_SCOPED_PATH_TEMPLATES`.
const PLUGIN_SYNC_TYPE_PATH = {
  devices: 'dcim/devices/create', storage: 'virtualization/virtual-machines/storage/create', 'virtual-machines': 'virtualization/virtual-machines/create',
  'task-history': 'virtualization/virtual-machines/task-history/create', 'vm-backups': 'virtualization/virtual-machines/backups/all/create',
  'vm-disks': 'virtualization/virtual-machines/virtual-disks/create', 'vm-snapshots': 'virtualization/virtual-machines/snapshots/all/create',
  replications: 'proxmox/replication', 'network-interfaces': 'dcim/devices/interfaces/create',
  'vm-interfaces': 'virtualization/virtual-machines/interfaces/create',
  'ip-addresses': 'virtualization/virtual-machines/interfaces/ip-address/create', sdn: 'proxmox/sdn/create', 'backup-routines': 'proxmox/cluster/backup',
};
const PLUGIN_VM_SCOPED = {
  'virtual-machines': 'virtualization/virtual-machines/{vm_id}/create', 'vm-disks': 'virtualization/virtual-machines/{vm_id}/virtual-disks/create',
  'vm-backups': 'virtualization/virtual-machines/{vm_id}/backups/create', 'vm-snapshots': 'virtualization/virtual-machines/{vm_id}/snapshots/create',
};

test('stages: every plugin stage path is known (with and without /stream), per-VM paths carry the VM id', () => {
  for (const [stage, path] of Object.entries(PLUGIN_SYNC_TYPE_PATH)) {
    assert.equal(stageForPath(`/${path}/stream`)?.spec.stage, stage, path);
    assert.equal(stageForPath(`/${path}`).stream, false);
  }
  for (const [stage, template] of Object.entries(PLUGIN_VM_SCOPED)) {
    const found = stageForPath(`/${template.replace('{vm_id}', '42')}/stream`);
    assert.deepEqual([found?.spec.stage, found?.vmId], [stage, 42], template);
  }
  assert.deepEqual(PLUGIN_STAGES.map((s) => s.stage).sort(), Object.keys(PLUGIN_SYNC_TYPE_PATH).sort());
  assert.deepEqual(VM_SCOPED_STAGES.map((s) => s.stage).sort(), Object.keys(PLUGIN_VM_SCOPED).sort());
  assert.equal(stageForPath('/virtualization/virtual-machines/x/create/stream'), null);
});

test('stages: the plugin query flags become endpoint values, settings, a subset, the network stages', () => {
  const query = new URLSearchParams({
    sync_mode_vm: 'always', sync_mode_vm_interface: 'disabled', overwrite_vm_tags: 'false', overwrite_ip_status: 'true',
    use_guest_agent_interface_name: 'true', vm_interface_sync_strategy: 'guest_os_model', primary_ip_preference: 'ipv6',
    fetch_max_concurrency: '4', proxmox_endpoint_ids: '3', netbox_endpoint_ids: '1', netbox_vm_ids: '7,9', sync_task_history: 'false', run_id: 'r-1',
  });
  const request = runRequestFromQuery(stageForPath('/virtualization/virtual-machines/create/stream'), query);
  assert.deepEqual(request.endpointOverrides, {
    sync_mode_vm: 'always', sync_mode_vm_interface: 'disabled', overwrite_vm_tags: false, overwrite_ip_status: true,
  });
  assert.deepEqual(request.settings, { use_guest_agent_interface_name: true, vm_interface_sync_strategy: 'guest_os_model', primary_ip_preference: 'ipv6' });
  assert.deepEqual(
    request.syncTypes, ['virtual-machines', 'vm-interfaces', 'ip-addresses'],
    'without sync_vm_network=false the VM stage syncs networking (proxbox-api default)'
  );
  assert.deepEqual(request.subset, { netbox_vm_ids: [7, 9] });
  assert.equal(request.proxmoxConcurrency, 4);
  assert.equal(request.runId, 'r-1');
  query.set('sync_vm_network', 'false');
  assert.deepEqual(runRequestFromQuery(stageForPath('/virtualization/virtual-machines/create/stream'), query).syncTypes, ['virtual-machines']);
  const perVm = runRequestFromQuery(stageForPath('/virtualization/virtual-machines/12/create/stream'), new URLSearchParams('netbox_vm_ids=12,13'));
  assert.deepEqual(perVm.subset, { netbox_vm_ids: [12] }, 'a per-VM path plans its own VM');
  const backups = runRequestFromQuery(stageForPath('/virtualization/virtual-machines/12/backups/create/stream'), new URLSearchParams());
  assert.deepEqual([backups.syncTypes, backups.subset], [['vm-backups'], { netbox_vm_ids: [12] }], 'a VM\'s backups: the core stage, for that VM');
  for (const [path, stage] of [
    ['virtualization/virtual-machines/task-history/create', 'task-history'],
    ['virtualization/virtual-machines/snapshots/all/create', 'vm-snapshots'], ['proxmox/cluster/backup', 'backup-routines'],
  ]) {
    assert.deepEqual(runRequestFromQuery(stageForPath(`/${path}/stream`), new URLSearchParams()).syncTypes, [stage], path);
  }
  assert.deepEqual(
    runRequestFromQuery(stageForPath('/virtualization/virtual-machines/12/virtual-disks/create/stream'), new URLSearchParams()).syncTypes,
    ['vm-disks'], 'a VM\'s disks: the core stage'
  );
  assert.throws(
    () => runRequestFromQuery(stageForPath('/dcim/devices/create/stream'), new URLSearchParams('overwrite_vm_tags=maybe')),
    { status: 400 }
  );
  assert.throws(() => runRequestFromQuery(stageForPath('/dcim/devices/create/stream'), new URLSearchParams('netbox_vm_ids=7,x')), { status: 400 });
});


/**
 * One request to serve; `key`: its API key header, `body`: JSON.
 * @param {string} base @param {string} path @param {{ key?: string, method?: string, body?: unknown }} [request]
 */
const json = (base, path, { key, method = 'GET', body } = {}) => fetch(`${base}${path}`, {
  method, headers: { ...(key ? { 'X-Proxbox-API-Key': key } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
  body: body ? JSON.stringify(body) : undefined,
});

test('serve: the backend contract the plugin checks, auth on every configuration route, no secret in any answer', async () => {
  const server = createSyncServer({ run: async () => ({ ok: true }) });
  const base = await listenLoopback(server);
  try {
    assert.match((await (await json(base, '/')).json()).message, /^Proxbox Backend/, 'the plugin\'s discovery reads this prefix');
    assert.deepEqual(await (await json(base, '/health')).json(), { status: 'ready', init_ok: true });
    assert.equal((await json(base, '/netbox/endpoint')).status, 401, 'before a key exists, configuration is refused');
    assert.deepEqual(await (await json(base, '/auth/bootstrap-status')).json(), { needs_bootstrap: true, has_db_keys: false });
    const registered = await json(base, '/auth/register-key', { method: 'POST', body: { api_key: KEY, label: 'netbox-fastapi-1' } });
    assert.equal(registered.status, 201);
    assert.equal(typeof (await registered.json()).detail, 'string');
    assert.equal((await json(base, '/auth/register-key', { method: 'POST', body: { api_key: KEY } })).status, 409);
    assert.equal((await json(base, '/auth/keys')).status, 401);
    assert.equal((await json(base, '/auth/keys', { key: 'wrong' })).status, 401);
    const { keys } = await (await json(base, '/auth/keys', { key: KEY })).json();
    assert.equal(keys.length, 1);
    assert.equal((await json(base, '/dcim/devices/create/stream')).status, 401, 'runs need the key once there is one');
    assert.match((await (await json(base, '/version', { key: KEY })).json()).version, /^\d+\.\d+\.\d+/);

    const nb = await json(base, '/netbox/endpoint', {
      key: KEY, method: 'POST',
      body: { name: 'nb', ip_address: '127.0.0.1', domain: '', port: 8000, token_version: 'v1', token: 'a'.repeat(40), verify_ssl: false },
    });
    assert.equal(nb.status, 201);
    const px = await (
      await json(base, '/proxmox/endpoints', {
        key: KEY, method: 'POST',
        body: {
          name: 'lab (nb:3)', ip_address: '127.0.0.1', domain: 'localhost', port: 8006, username: 'root@pam', token_name: 'proxbox',
          token_value: PVE_SECRET, verify_ssl: true,
        },
      })
    ).json();
    assert.equal((await json(base, `/proxmox/endpoints/${px.id}`, { key: KEY, method: 'PUT', body: { port: 8007 } })).status, 200);
    const listed = await (await json(base, '/proxmox/endpoints', { key: KEY })).text();
    assert.ok(listed.includes('"port":8007') && !listed.includes(PVE_SECRET));
    const status = await (await json(base, '/planner/status', { key: KEY })).json();
    assert.deepEqual(status.endpoints.proxmox.map((e) => [e.id, e.plugin_endpoint_id, e.has_token]), [[px.id, 3, true]]);
    assert.ok(!JSON.stringify(status).includes(PVE_SECRET) && !JSON.stringify(status).includes('a'.repeat(40)));
    assert.equal((await json(base, `/proxmox/endpoints/${px.id}`, { key: KEY, method: 'PATCH' })).status, 405);
    assert.equal((await json(base, '/proxmox/endpoints', { key: KEY, method: 'POST', body: { name: 'x' } })).status, 422);
    assert.equal((await json(base, `/proxmox/endpoints/${px.id}`, { key: KEY, method: 'DELETE' })).status, 200);
    assert.equal((await json(base, `/proxmox/endpoints/${px.id}`, { key: KEY })).status, 404);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

const REFUSED = { id: 'devices:dcim.device:pve9', status: 'failed', error: 'POST /api/dcim/devices/ → 400: {"name":["Device name must be unique per site."]}' };

test('serve: one run per endpoint (409), others run, a run\'s failures kept in its record', async () => {
  const releases = [];
  const calls = [];
  const server = createSyncServer({
    apiKey: KEY,
    keepaliveMs: 1000,
    run: async (request) => {
      calls.push(request);
      request.emit('step', { step: request.stage, status: 'started', message: 'x' });
      await new Promise((r) => releases.push(r));
      if (request.endpoint === 4) return {
        ok: false, summary: { create: 2, update: 0, delete: 0 }, applied: { counts: { done: 1, failed: 1 } }, failures: [REFUSED],
      };
      return { ok: true, summary: { create: 0, update: 0, delete: 0 } };
    },
  });
  const base = await listenLoopback(server);
  try {
    for (const [name, pk] of [['lab (nb:3)', 3], ['dc (nb:4)', 4]]) {
      await json(base, '/proxmox/endpoints', {
        key: KEY, method: 'POST', body: { name, domain: `${pk}.pve`, port: 8006, token_name: 't', token_value: PVE_SECRET },
      });
    }
    const first = await json(base, '/dcim/devices/create/stream?proxmox_endpoint_ids=1&sync_mode_vm=always', { key: KEY });
    assert.equal(first.status, 200);
    const busy = await json(base, '/virtualization/virtual-machines/create/stream?proxmox_endpoint_ids=1', { key: KEY });
    assert.equal(busy.status, 409);
    assert.match((await busy.json()).detail, /already syncing Proxmox endpoint "lab \(nb:3\)" \(stage devices, started .*\); this request was refused/);
    const other = await json(base, '/dcim/devices/create/stream?proxmox_endpoint_ids=2', { key: KEY });
    assert.equal(other.status, 200, 'another endpoint is not busy');
    assert.equal((await json(base, '/dcim/devices/create/stream', { key: KEY })).status, 400, 'two endpoints pushed: a run names one');
    assert.deepEqual(calls.map((c) => [c.stage, c.endpoint, c.endpointOverrides.sync_mode_vm]), [['devices', 3, 'always'], ['devices', 4, undefined]]);
    const active = await (await json(base, '/sync/active', { key: KEY })).json();
    assert.deepEqual(active.runs.map((r) => r.endpoint).sort(), ['dc (nb:4)', 'lab (nb:3)']);
    for (const release of releases) release();
    assert.equal(parseSSE(await first.text()).at(-1).data.ok, true);
    await other.text();
    const status = await (await json(base, '/planner/status', { key: KEY })).json();
    const runs = status.recent_runs.sort((a, b) => a.endpoint.localeCompare(b.endpoint));
    assert.deepEqual(runs.map((r) => [r.endpoint, r.stage, r.ok, r.skipped ?? false]), [
      ['dc (nb:4)', 'devices', false, false], ['lab (nb:3)', 'devices', true, false],
    ]);
    assert.deepEqual(runs.map((r) => r.failures), [[REFUSED], undefined], "NetBox's refusal is kept with the run");
    assert.equal((await json(base, '/virtualization/virtual-machines/create/stream?proxmox_endpoint_ids=1', { key: KEY })).status, 200, 'free again');
    releases.at(-1)();
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('serve: /planner/proxmox refuses a path the planner does not read, before any Proxmox request', async () => {
  const server = createSyncServer({ apiKey: KEY });
  const base = await listenLoopback(server);
  try {
    await json(base, '/proxmox/endpoints', {
      key: KEY, method: 'POST', body: { name: 'lab (nb:3)', domain: '127.0.0.1', port: 1, token_name: 't', token_value: PVE_SECRET },
    });
    const refused = await json(base, '/planner/proxmox', { key: KEY, method: 'POST', body: { endpoint_id: 3, paths: ['/cluster/status', '/access/users'] } });
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).detail, /not a Proxmox read path the planner uses: "\/access\/users"/);
    assert.equal((await json(base, '/planner/proxmox', { key: KEY, method: 'POST', body: { endpoint_id: 9, paths: ['/cluster/status'] } })).status, 404);
    assert.equal((await json(base, '/planner/proxmox', { method: 'POST', body: { endpoint_id: 3, paths: ['/cluster/status'] } })).status, 401);
    // An unreachable Proxmox: the path maps to {error}, the answer is still 200 (one entry per path).
    const answer = await (await json(base, '/planner/proxmox', { key: KEY, method: 'POST', body: { endpoint_id: 3, paths: ['/cluster/status'] } })).json();
    assert.equal(answer['/cluster/status'].error.status, 0);
    assert.ok(!JSON.stringify(answer).includes(PVE_SECRET));
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
