// An operator's edit is never overwritten silently (issue 21), against REAL
// servers this file starts and stops itself: NetBox 4.7.3 + Proxbox plugin
// (host/test/servers/netbox.sh) and fakepve with the sample cluster. The
// sync is the admin's token; the operator is a second NetBox user, alice,
// with a token of her own, editing through NetBox's REST API (so NetBox's
// change log records her as it would a UI edit).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetBoxClient } from '../netbox.js';
import { ProxmoxClient } from '../proxmox.js';
import { applyPlan } from '../apply.js';
import { syncOnce } from '../sync.js';

/** The sample's passthrough disk has no size: every plan of it warns so (see e2e's disks test). */
const notTheSampleDisk = (w) => !(w.code === 'unsized-disk' && w.message.startsWith('qemu/101/scsi2:'));
import {
  createEndpoint, createLimitedToken, installFakepve, installNetbox, pveWrite as pveWriteTo, runCli, serverEnv, startFakepve, startNetbox,
  stopFakepve, stopNetbox,
} from '../test-support/servers.js';

const MINUTE = 60 * 1000;
const VMS = '/api/virtualization/virtual-machines/';
const IFACES = '/api/virtualization/interfaces/';
const CHANGELOG = '/api/core/object-changes/';
const JOURNAL = '/api/extras/journal-entries/';
const VM_STATES = '/api/plugins/proxbox/sync-state/virtual-machines/';
const DESCRIPTION_100 = 'virtual-machines:virtualization.virtualmachine:qemu/100@description';
const MTU_102 = 'vm-interfaces:virtualization.vminterface:qemu/102/net0@mtu';
const ENABLED_102 = 'vm-interfaces:virtualization.vminterface:qemu/102/net0@enabled';
const NET0_102 = 'net0=virtio=BC:24:11:10:01:20,bridge=vmbr0,tag=20';

let nb;
let pve;
let sync; // the admin's client: the sync
let alice; // the operator's client
let proxmox;
let endpointId;

const cli = (args, env = {}) => runCli(args, { ...serverEnv(nb, pve), ...env });
const pveWrite = (method, path, form) => pveWriteTo(pve, method, path, form);
const writes = (plan) => plan.operations.filter((op) => op.action !== 'skip');
const noWrites = (plan, why) => assert.deepEqual(writes(plan).map((op) => `${op.action} ${op.id} ${JSON.stringify(op.changes ?? {})}`), [], why);
const opOf = (plan, id) => plan.operations.find((op) => op.id === id);
const conflictOf = (plan, id) => plan.conflicts.find((c) => c.id === id);

/** The history reads of a run: requests and entries (what "small" means here). */
function historyReads(client) {
  const seen = [];
  client.onRequest = ({ method, path }) => {
    if (method === 'GET' && (path.startsWith(CHANGELOG) || path.startsWith(JOURNAL))) seen.push(path);
  };
  return seen;
}

async function plan(client = sync, extra = {}) {
  const reads = historyReads(client);
  const t0 = Date.now();
  const out = await syncOnce({ netbox: client, proxmox, endpoint: endpointId, ...extra });
  const changelog = out.input.netbox[CHANGELOG];
  client.onRequest = undefined;
  return { ...out, ms: Date.now() - t0, history: { requests: reads.length, entries: Array.isArray(changelog) ? changelog.length : null } };
}

async function vmOf(vmid) {
  const [state] = (await sync.list(VM_STATES)).filter((s) => s.proxmox_vm_id === vmid);
  return sync.get(VMS, state.virtual_machine.id);
}

async function net0Of(vmid) {
  const vm = await vmOf(vmid);
  const [net0] = await sync.list(IFACES, { query: { virtual_machine_id: vm.id, name: 'net0' } });
  return net0;
}

describe('ownership against real servers: NetBox 4.7.3 + Proxbox plugin, fakepve, an operator with her own token', { timeout: 60 * MINUTE }, () => {
  before(async () => {
    await installNetbox();
    await installFakepve();
    [pve, nb] = await Promise.all([startFakepve(), startNetbox()]);
    sync = new NetBoxClient({ url: nb.NETBOX_URL, token: nb.NETBOX_TOKEN_V2, timeout: 60000 });
    proxmox = new ProxmoxClient({ url: pve.PVE_URL, token: pve.PVE_TOKEN, ca: pve.PVE_CA_FILE });
    endpointId = await createEndpoint(sync, pve);
    const edits = new Set(['virtualization.virtualmachine', 'virtualization.vminterface']);
    alice = new NetBoxClient({
      url: nb.NETBOX_URL, token: await createLimitedToken(sync, 'alice', { view: (t) => edits.has(t), write: (t) => edits.has(t) }),
      timeout: 60000,
    });
    const { plan: first } = await syncOnce({ netbox: sync, proxmox, endpoint: endpointId });
    const report = await applyPlan(first, sync);
    assert.equal(report.ok, true, JSON.stringify(report.operations.filter((o) => o.status !== 'done' && o.status !== 'skipped')));
  }, { timeout: 45 * MINUTE });

  after(async () => {
    sync?.close();
    alice?.close();
    proxmox?.close();
    await Promise.allSettled([stopNetbox(nb), stopFakepve(pve)]);
  });

  test('the sync writes with its change-log message; a converged NetBox reads no history', async (t) => {
    const vm = await vmOf(100);
    const [created] = await sync.list(CHANGELOG, {
      query: { changed_object_type: 'virtualization.virtualmachine', changed_object_id: vm.id, action: 'create' },
    });
    assert.match(created.message, /^proxbox-planner \d/, 'NetBox 4.7 records changelog_message on bulk writes');
    assert.equal(created.user.username, 'admin');
    const { plan: again, history, ms } = await plan();
    noWrites(again);
    assert.deepEqual(history, { requests: 0, entries: null }, 'nothing to update: no history read');
    t.diagnostic(`converged re-plan: ${ms} ms, history reads ${JSON.stringify(history)}`);
  });

  test('the operator edits a VM\'s description and an interface\'s enabled and MTU; Proxmox changes the description and the MTU: kept, both sides shown; ' +
    '--accept-proxmox writes Proxmox\'s; enabled is hers run after run', async (t) => {
    const vm = await vmOf(100);
    const iface = await net0Of(102);
    await alice.request('PATCH', `${VMS}${vm.id}/`, { body: { description: 'Customer-facing web tier (do not reboot)' } });
    await alice.request('PATCH', `${IFACES}${iface.id}/`, { body: { enabled: false, mtu: 9000 } });
    await pveWrite('PUT', '/nodes/pve1/qemu/100/config', { description: 'nginx web frontend v2' });
    await pveWrite('PUT', '/nodes/pve2/qemu/102/config', { net0: `${NET0_102.slice('net0='.length)},mtu=1400` });

    const { plan: kept, history, ms } = await plan();
    t.diagnostic(`plan with 2 edited objects: ${ms} ms, history reads ${JSON.stringify(history)}`);
    assert.deepEqual(history, { requests: 4, entries: 2 }, 'one change-log and one journal query per edited model; only alice\'s two edits come back');
    noWrites(kept, 'nothing is overwritten');
    const description = conflictOf(kept, DESCRIPTION_100);
    assert.deepEqual(
      [description.base, description.netbox, description.proxmox, description.changed_by, description.resolution],
      ['Public web frontend (nginx).', 'Customer-facing web tier (do not reboot)', 'nginx web frontend v2', 'alice', 'keep'],
    );
    assert.match(description.changed_at, /^\d{4}-\d\d-\d\dT/);
    const mtu = conflictOf(kept, MTU_102);
    assert.deepEqual([mtu.base, mtu.netbox, mtu.proxmox, mtu.changed_by], [null, 9000, 1400, 'alice']);
    for (const id of [DESCRIPTION_100, MTU_102]) {
      const op = opOf(kept, id);
      assert.deepEqual([op.action, op.reason], ['skip', 'operator-edited'], id);
      assert.match(op.detail, /^alice changed .* NetBox's value is kept \(on_operator_edit = keep\)$/);
    }
    assert.equal(opOf(kept, ENABLED_102), undefined, 'a field Proxmox did not change: no operation at all');
    assert.equal(kept.summary.operator_owned, 1);
    assert.deepEqual(kept.warnings.filter(notTheSampleDisk), []);

    // The listing shows both sides, who and when.
    const listed = await cli(['plan', '--endpoint', String(endpointId)]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(
      listed.stdout,
      new RegExp(String.raw`description: NetBox "Customer-facing web tier \(do not reboot\)" \(alice, \d{4}-[^)]+\) · ` +
        String.raw`Proxmox "nginx web frontend v2" · last synced "Public web frontend \(nginx\)\."`),
    );
    assert.match(listed.stdout, /mtu: NetBox 9000 \(alice, [^)]+\) · Proxmox 1400 · last synced null/);
    assert.match(listed.stdout, new RegExp(`  ${DESCRIPTION_100.replace(/[.@/]/g, '\\$&')}  \\(keep\\)`));
    assert.match(listed.stdout, /1 field left to operators\.$/m);

    // An id that is not a conflict: a usage error, before anything is written.
    const wrong = await cli(['apply', '--yes', '--accept-proxmox', 'no-such-conflict']);
    assert.equal(wrong.code, 64, wrong.stderr);
    assert.match(wrong.stderr, /^error: --accept-proxmox no-such-conflict: the plan has no such conflict \(its conflicts: /);

    const accepted = await cli(['apply', '--yes', '--accept-proxmox', DESCRIPTION_100, '--accept-proxmox', MTU_102]);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout, /Apply: 2 of 2 changes done/);
    assert.equal((await vmOf(100)).description, 'nginx web frontend v2');
    const net0 = await sync.get(IFACES, iface.id);
    assert.deepEqual([net0.mtu, net0.enabled], [1400, false], 'Proxmox\'s MTU; her enabled untouched');

    for (let run = 1; run <= 3; run += 1) {
      const { plan: next, history: reads } = await plan();
      noWrites(next, `run ${run}`);
      assert.deepEqual(next.conflicts, [], `run ${run}`);
      assert.equal(opOf(next, ENABLED_102), undefined, `run ${run}: no operation at all`);
      assert.equal(next.summary.operator_owned, 1, `run ${run}`);
      assert.deepEqual(reads, { requests: 2, entries: 1 }, `run ${run}: only the interface she owns is asked about`);
      const report = await applyPlan(next, sync);
      assert.equal(report.counts.changes, 0);
    }
    assert.equal((await sync.get(IFACES, iface.id)).enabled, false);
  });

  test('ask: apply leaves the conflict and warns; --keep-netbox records it on the object and it is never asked again', async () => {
    const vm = await vmOf(103);
    await alice.request('PATCH', `${VMS}${vm.id}/`, { body: { description: 'Jump host: ask #ops before patching' } });
    await pveWrite('PUT', '/nodes/pve3/qemu/103/config', { description: 'Windows Server 2025 jump host' });
    const id = 'virtual-machines:virtualization.virtualmachine:qemu/103@description';
    const ask = ['--set', 'on_operator_edit=ask'];

    const left = await cli(['apply', '--yes', '--json', ...ask]);
    assert.equal(left.code, 0, left.stderr);
    const report = JSON.parse(left.stdout);
    assert.equal(report.outcome, 'ok-with-warnings');
    assert.deepEqual(report.warnings.filter(notTheSampleDisk).map((w) => w.code), ['decisions-pending']);
    assert.equal((await vmOf(103)).description, 'Jump host: ask #ops before patching');

    const keep = await cli(['apply', '--yes', ...ask, '--keep-netbox', id]);
    assert.equal(keep.code, 0, keep.stderr);
    const [record] = await sync.list(JOURNAL, { query: { assigned_object_type: 'virtualization.virtualmachine', assigned_object_id: vm.id } });
    assert.match(record.comments, /keep-netbox: description$/);
    assert.match(record.comments, /^proxbox-planner keeps NetBox's value of description: alice changed description/);

    for (const note of ['Windows Server 2025 jump host', 'Windows Server 2025 jump host (patched)']) {
      await pveWrite('PUT', '/nodes/pve3/qemu/103/config', { description: note });
      const { plan: next } = await plan(sync, { settings: { on_operator_edit: 'ask' } });
      noWrites(next, note);
      assert.equal(conflictOf(next, id), undefined, `never asked again: ${note}`);
      assert.equal(next.summary.operator_owned, 2, 'her description and her enabled');
    }
    assert.equal((await vmOf(103)).description, 'Jump host: ask #ops before patching');
  });

  test('a sync token that may not read the change log holds what an operator may own: never a silent overwrite', async () => {
    const blind = new NetBoxClient({
      url: nb.NETBOX_URL, token: await createLimitedToken(sync, 'blindsync', { view: (t) => t !== 'core.objectchange' }), timeout: 60000,
    });
    try {
      await pveWrite('PUT', '/nodes/pve1/qemu/100/config', { description: 'nginx web frontend v3' });
      const { plan: held, result } = await plan(blind);
      assert.equal(held.complete, true);
      assert.equal(result.outcome, 'ok-with-warnings');
      const warned = held.warnings.filter(notTheSampleDisk);
      assert.deepEqual(warned.map((w) => w.code), ['changelog-unreadable']);
      assert.match(warned[0].message, /403/);
      const skip = opOf(held, DESCRIPTION_100);
      assert.deepEqual([skip.action, skip.reason], ['skip', 'ownership-unknown']);
      noWrites(held);
    } finally {
      blind.close();
    }
  });
});
