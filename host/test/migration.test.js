// Coming from Proxbox (issue 20), against REAL servers this file starts and
// stops itself: NetBox 4.7.3 + the Proxbox plugin (host/test/servers/netbox.sh),
// fakepve with the sample cluster (host/test/servers/fakepve.sh) and the real
// Proxbox backend, proxbox-api 0.0.30 from PyPI (host/test/servers/proxbox-api.sh,
// configured and run by host/test-support/peer.js).
//
// proxbox-api syncs the sample into an empty NetBox, as it does for our users
// today. Then our host reads that NetBox and plans: nothing Proxbox already
// made may be created a second time. Our plan is applied, re-planned (empty),
// and proxbox-api runs again: it must not duplicate what we made either.
//
// Not skippable. Takes 4 minutes on 2 quiet cores (15 under a load of 10), nearly all of it proxbox-api
// (of the 4: starting it ~1 min, its first full update of the 8 guests ~1.5, its re-run ~1).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetBoxClient } from '../netbox.js';
import { ProxmoxClient } from '../proxmox.js';
import { applyPlan } from '../apply.js';
import { planLive } from '../sync.js';
import {
  installFakepve, installNetbox, installProxboxApi, startFakepve, startNetbox, startProxboxApi, stopFakepve, stopNetbox, stopProxboxApi,
} from '../test-support/servers.js';
import { startPeer } from '../test-support/peer.js';

const MINUTE = 60 * 1000;
const VM_SYNC_STATE = '/api/plugins/proxbox/sync-state/virtual-machines/';

/**
 * The objects of the sample that both tools write, and how the test tells which Proxmox thing an
 * object stands for: `netbox` keys a NetBox row (`vmKey` maps a VM id to `qemu/100`), `plan` keys
 * a create operation of our plan. Two objects of one collection with one key are a duplicate.
 * (The test's own oracle; the core's identity rules are what is under test.)
 */
const KINDS = [
  {
    model: 'virtualization.virtualmachine', collection: '/api/virtualization/virtual-machines/', netbox: (vm, vmKey) => vmKey(vm.id),
    plan: (op) => op.key.split(' ')[0],
  },
  {
    model: 'netbox_proxbox.proxmoxvmtemplate', collection: '/api/plugins/proxbox/vm-templates/', netbox: (t) => `qemu/${t.vmid}`,
    plan: (op) => op.key.split(' ')[0],
  },
  {
    model: 'virtualization.vminterface', collection: '/api/virtualization/interfaces/',
    netbox: (i, vmKey) => `${vmKey(i.virtual_machine.id)}/${i.name}`, plan: (op) => op.key,
  },
  {
    model: 'virtualization.virtualdisk', collection: '/api/virtualization/virtual-disks/',
    netbox: (d, vmKey) => `${vmKey(d.virtual_machine.id)}/${d.name}`, plan: (op) => op.key,
  },
  { model: 'dcim.interface', collection: '/api/dcim/interfaces/', netbox: (i) => `${i.device.name}/${i.name}`, plan: (op) => op.key },
  { model: 'ipam.ipaddress', collection: '/api/ipam/ip-addresses/', netbox: (ip) => ip.address, plan: (op) => op.fields.address },
  {
    model: 'dcim.macaddress', collection: '/api/dcim/mac-addresses/', netbox: (m) => m.mac_address.toUpperCase(),
    plan: (op) => op.fields.mac_address.toUpperCase(),
  },
  { model: 'ipam.vlan', collection: '/api/ipam/vlans/', netbox: (v) => `vid ${v.vid}`, plan: (op) => `vid ${op.fields.vid}` },
  { model: 'dcim.device', collection: '/api/dcim/devices/', netbox: (d) => d.name, plan: (op) => op.fields.name },
  { model: 'virtualization.cluster', collection: '/api/virtualization/clusters/', netbox: (c) => c.name, plan: (op) => op.fields.name },
  { model: 'netbox_proxbox.proxmoxstorage', collection: '/api/plugins/proxbox/storage/', netbox: (s) => s.name, plan: (op) => op.fields.name },
  { model: 'netbox_proxbox.vmbackup', collection: '/api/plugins/proxbox/backups/', netbox: (b) => b.volume_id, plan: (op) => op.fields.volume_id },
  {
    model: 'netbox_proxbox.vmsnapshot', collection: '/api/plugins/proxbox/snapshots/', netbox: (s) => `${s.vmid}/${s.name}@${s.node}`,
    plan: (op) => `${op.fields.vmid}/${op.fields.name}@${op.fields.node}`,
  },
  { model: 'netbox_proxbox.vmtaskhistory', collection: '/api/plugins/proxbox/task-history/', netbox: (t) => t.upid, plan: (op) => op.fields.upid },
  { model: 'netbox_proxbox.backuproutine', collection: '/api/plugins/proxbox/backup-routines/', netbox: (r) => r.job_id, plan: (op) => op.fields.job_id },
];
const KIND_OF_MODEL = new Map(KINDS.map((kind) => [kind.model, kind]));

let nb; // netbox.env
let pve; // fakepve.env
let proxboxApi; // proxbox-api.env
let peer; // startPeer()
let netbox; // NetBoxClient (v2 token)
let proxmox; // ProxmoxClient (CA-verified TLS)
let proxboxMade; // inventory() after proxbox-api's first run
let ourPlan;
let ourReport;
let setupMs;

/** Per collection of KINDS: [{id, key}] of what NetBox holds now. */
async function inventory() {
  const syncState = await netbox.list(VM_SYNC_STATE);
  const vms = await netbox.list(KINDS[0].collection);
  const fromSyncState = new Map(syncState.map((s) => [s.virtual_machine.id, `${s.proxmox_vm_type}/${s.proxmox_vm_id}`]));
  const fromCustomFields = new Map(
    vms.filter((vm) => vm.custom_fields?.proxmox_vmid).map((vm) => [vm.id, `${vm.custom_fields.proxmox_vm_type}/${vm.custom_fields.proxmox_vmid}`])
  );
  const vmKey = (id) => fromSyncState.get(id) ?? fromCustomFields.get(id) ?? `unidentified VM ${id}`;
  const out = { syncState };
  for (const kind of KINDS) {
    const rows = kind.collection === KINDS[0].collection ? vms : await netbox.list(kind.collection);
    out[kind.model] = rows.map((row) => ({ id: row.id, key: kind.netbox(row, vmKey), row }));
  }
  return out;
}

/** `model: key (NetBox ids)` for every key held by more than one object. */
function duplicatesIn(state) {
  const out = [];
  for (const { model } of KINDS) {
    const ids = new Map();
    for (const { id, key } of state[model]) ids.set(key, [...(ids.get(key) ?? []), id]);
    for (const [key, held] of ids) if (held.length > 1) out.push(`${model}: ${key} (ids ${held.join(', ')})`);
  }
  return out;
}

// `{"$ref": "stage:model:key"}` → `→key` (the key may hold colons: IPv6, MACs).
const show = (value) => (value && typeof value === 'object' && value.$ref ? `→${value.$ref.split(':').slice(2).join(':')}` : JSON.stringify(value));

/** A field value of a NetBox row or of a plan, in one comparable form (nested objects by slug, choice value or id). */
function comparable(value) {
  if (Array.isArray(value)) return value.map(comparable).sort();
  if (!value || typeof value !== 'object') return value ?? null;
  if (value.$ref) return show(value);
  for (const key of ['slug', 'value', 'id']) if (key in value) return value[key];
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]));
}

/**
 * `field: Proxbox's → ours` for every field our create would write differently on Proxbox's object.
 * Fields that point at objects of this plan (`$ref`) are left out: adopted, they would point at
 * Proxbox's.
 */
function differences(fields, row) {
  const out = [];
  for (const [field, ours] of Object.entries(fields ?? {})) {
    if (ours?.$ref) continue;
    const pairs = field === 'custom_fields' ? Object.entries(ours).map(([k, v]) => [
      `custom_fields.${k}`, v, row.custom_fields?.[k],
    ]) : [[field, ours, row[field]]];
    for (const [name, mine, theirs] of pairs) {
      if (JSON.stringify(comparable(mine)) !== JSON.stringify(comparable(theirs))) out.push(
        `${name}: ${JSON.stringify(comparable(theirs))} → ${JSON.stringify(comparable(mine))}`
      );
    }
  }
  return out;
}

/**
 * One line per model: what our plan does, with the fields of every update, why skips skip, and for
 * a create of something Proxbox already made, where our object would differ from Proxbox's.
 */
function describePlan(plan, existing) {
  const byModel = {};
  for (const op of plan.operations) (byModel[op.model] ??= []).push(op);
  const lines = [];
  for (const [model, ops] of Object.entries(byModel).sort()) {
    const kind = KIND_OF_MODEL.get(model);
    const theirs = kind ? new Map(existing[model].map((object) => [object.key, object])) : new Map();
    const count = (action) => ops.filter((op) => op.action === action).length;
    lines.push(
      `${model}: ${count('create')} create, ${count('update')} update, ${count('delete')} delete, ${count('skip')} ` +
        `skip${kind ? `; Proxbox made ${existing[model].length}` : ''}`
    );
    for (const op of ops) {
      const where = op.matched_by ? ` [matched by ${op.matched_by}]` : '';
      if (op.action === 'create') {
        const twin = kind ? theirs.get(kind.plan(op)) : undefined;
        const duplicate =
          twin ? ` — DUPLICATE of Proxbox's #${twin.id}; differs (Proxbox's → ours): ${differences(op.fields, twin.row).join('; ') || 'nothing'}` : '';
        lines.push(`  create ${op.key}${op.fields?.name ? ` named ${JSON.stringify(op.fields.name)}` : ''}${duplicate}`);
      } else if (op.action === 'update') {
        const changes = Object.entries(op.changes ?? {}).map(([field, c]) => `${field}: ${show(c.before)} → ${show(c.after)}`).join('; ');
        lines.push(`  update ${op.key}${where}: ${changes}`);
      } else {
        lines.push(`  ${op.action} ${op.key}${where}${op.reason ? `: ${op.reason}` : ''}${op.detail ? ` (${op.detail})` : ''}`);
      }
    }
  }
  return lines;
}

/** Creates of our plan whose object Proxbox already made: `model: key = Proxbox's #id`. */
function createsOfWhatProxboxMade(plan, existing) {
  const out = [];
  for (const op of plan.operations) {
    const kind = KIND_OF_MODEL.get(op.model);
    if (op.action !== 'create' || !kind) continue;
    const twin = existing[op.model].find(({ key }) => key === kind.plan(op));
    if (twin) out.push(`${op.model}: ${kind.plan(op)} = Proxbox's #${twin.id}`);
  }
  return out;
}

function assertPeerRan(run, what) {
  assert.equal(run.ok, true, `${what}: ${run.message} ${JSON.stringify({ errors: run.errors, failures: run.failures, logged: run.logged })}`);
  assert.deepEqual(run.errors, [], `${what}: error events`);
}

const summaryOf = (p) => [p.summary.create, p.summary.update, p.summary.delete];

describe('migration: a NetBox synced by proxbox-api 0.0.30, then by us', { timeout: 60 * MINUTE }, () => {
  before(async () => {
    const t0 = Date.now();
    await installNetbox(); // ~15 minutes when the cache is cold, ~0.1 s warm
    await installFakepve();
    await installProxboxApi(); // ~1 minute cold
    // proxbox-api takes half a minute or more to start: alongside the others.
    [pve, nb, proxboxApi] = await Promise.all([startFakepve(), startNetbox(), startProxboxApi()]);
    netbox = new NetBoxClient({ url: nb.NETBOX_URL, token: nb.NETBOX_TOKEN_V2, timeout: 60000 });
    proxmox = new ProxmoxClient({ url: pve.PVE_URL, token: pve.PVE_TOKEN, ca: pve.PVE_CA_FILE });
    peer = await startPeer({ netbox: nb, pve, proxboxApi });
    setupMs = Date.now() - t0;
  }, { timeout: 45 * MINUTE });

  after(async () => {
    netbox?.close();
    proxmox?.close();
    // peer.stop() stops proxbox-api too; without a peer, nothing else would.
    await Promise.allSettled([peer ? peer.stop() : stopProxboxApi(proxboxApi), stopNetbox(nb), stopFakepve(pve)]);
  });

  test('proxbox-api syncs the sample into NetBox and writes its sync-state records', async (t) => {
    t.diagnostic(`set-up (install check, three servers, peer configured): ${(setupMs / 1000).toFixed(1)} s ${JSON.stringify(peer.timings)}`);
    const run = await peer.sync();
    t.diagnostic(
      `proxbox-api initial full update: ${(run.duration_ms / 1000).toFixed(1)} s, ${run.netbox_requests.total} NetBox requests ` +
        `${JSON.stringify(run.netbox_requests.by_method)}, counts ${JSON.stringify(run.counts)}`
    );
    assertPeerRan(run, 'initial full update');
    proxboxMade = await inventory();
    // Proxbox counts the template as a VM: 5 QEMU (one a template) + 3 LXC.
    assert.deepEqual(proxboxMade.syncState.map((s) => `${s.proxmox_vm_type}/${s.proxmox_vm_id}`).sort(),
      ['lxc/200', 'lxc/201', 'lxc/202', 'qemu/100', 'qemu/101', 'qemu/102', 'qemu/103', 'qemu/9000']);
    assert.deepEqual(proxboxMade['dcim.device'].map((d) => d.key).sort(), ['pve1', 'pve2', 'pve3']);
    // Disks and node interfaces are there to be adopted (else the duplicate check below proves nothing).
    assert.ok(proxboxMade['virtualization.virtualdisk'].some((d) => d.key === 'qemu/100/scsi0'), 'Proxbox made virtual disks');
    assert.ok(proxboxMade['dcim.interface'].some((i) => i.key === 'pve1/vmbr0'), 'Proxbox made node interfaces');
    assert.deepEqual(duplicatesIn(proxboxMade), []);
    for (const { model } of KINDS) t.diagnostic(`Proxbox made ${model}: ${proxboxMade[model].map((o) => o.key).join(', ') || 'none'}`);
  });

  test('our plan against that NetBox creates nothing Proxbox already made (issue 20)', async (t) => {
    assert.ok(proxboxMade, 'proxbox-api synced the sample');
    const { plan } = await planLive({ netbox, proxmox, endpoint: peer.endpointId });
    ourPlan = plan;
    for (const line of describePlan(plan, proxboxMade)) t.diagnostic(line);
    for (const warning of plan.warnings) t.diagnostic(`warning ${warning.code}: ${warning.message}`);
    assert.deepEqual(createsOfWhatProxboxMade(plan, proxboxMade), [], 'our plan creates a second copy of objects Proxbox made');
    // Proxbox's own support objects serve: no second device type, cluster type or site, and
    // the nodes keep the device type Proxbox gave them.
    const support = ['dcim.devicetype', 'dcim.manufacturer', 'dcim.site', 'virtualization.clustertype'];
    assert.deepEqual(plan.operations.filter((op) => op.action === 'create' && support.includes(op.model)).map((op) => op.id), []);
    assert.deepEqual(plan.operations.filter((op) => op.model === 'dcim.device' && op.changes?.device_type).map((op) => op.id), []);
  });

  test('our plan applies and the re-plan is empty', async () => {
    ourReport = await applyPlan(ourPlan, netbox);
    assert.equal(ourReport.ok, true, JSON.stringify(ourReport.operations.filter((o) => !['done', 'skipped'].includes(o.status)), null, 1));
    const { plan } = await planLive({ netbox, proxmox, endpoint: peer.endpointId });
    assert.deepEqual(
      summaryOf(plan), [0, 0, 0],
      `expected no changes, got ${JSON.stringify(plan.operations.filter((o) => o.action !== 'skip').map((o) => `${o.action} ${o.id}`))}`
    );
  });

  test('proxbox-api run again creates no duplicate of what we made', async (t) => {
    assert.ok(ourReport, 'our plan was applied');
    const before = await inventory();
    const run = await peer.sync();
    t.diagnostic(
      `proxbox-api re-run: ${(run.duration_ms / 1000).toFixed(1)} s, ${run.netbox_requests.total} NetBox requests ` +
        `${JSON.stringify(run.netbox_requests.by_method)}`
    );
    assertPeerRan(run, 'second full update');
    const afterRun = await inventory();
    const ours = new Set(
      ourReport.operations.filter((o) => o.action === 'create' && o.status === 'done' && !o.existing).map((o) => `${o.model}#${o.netbox_id}`)
    );
    const duplicates = [];
    for (const { model } of KINDS) {
      const known = new Set(before[model].map((o) => o.id));
      const oursByKey = new Map(before[model].filter((o) => ours.has(`${model}#${o.id}`)).map((o) => [o.key, o.id]));
      for (const added of afterRun[model].filter((o) => !known.has(o.id))) {
        t.diagnostic(`proxbox-api re-run created ${model} ${added.key} #${added.id}`);
        if (oursByKey.has(added.key)) duplicates.push(`${model}: ${added.key} #${added.id} duplicates ours #${oursByKey.get(added.key)}`);
      }
    }
    assert.deepEqual(duplicates, []);
    // Whether the two tools would fight over what they both hold: recorded, not asserted here.
    const { plan } = await planLive({ netbox, proxmox, endpoint: peer.endpointId });
    for (const op of plan.operations.filter((o) => o.action !== 'skip')) {
      t.diagnostic(`our re-plan after proxbox-api's re-run: ${op.action} ${op.id} ${JSON.stringify(op.changes ?? {})}`);
    }
  });
});
