// The sync-mode exports of the built wasm package (nodejs target), as a
// Node user would load it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as typed from 'proxbox-planner';

// Called as plain JavaScript: loose settings, wrong types and missing arguments are what these tests feed it.
const planner = /** @type {any} */ (typed);

const require = createRequire(import.meta.url);

test('version matches the crate', () => {
  const cargo = require('node:fs').readFileSync(new URL('../../Cargo.toml', import.meta.url), 'utf8');
  assert.equal(planner.version(), cargo.match(/^version = "(.+)"/m)[1]);
});

test('effectiveSyncMode: endpoint wins, null and "" inherit, defaults apply', () => {
  const settings = { sync_mode_vm: 'always', sync_mode_node: 'disabled' };
  const endpoint = { id: 3, name: 'pve-a', sync_mode_vm: 'disabled', sync_mode_node: null, sync_mode_mac: '' };
  assert.equal(planner.effectiveSyncMode(settings, endpoint, 'vm'), 'disabled');
  assert.equal(planner.effectiveSyncMode(settings, endpoint, 'node'), 'disabled');
  assert.equal(planner.effectiveSyncMode(settings, endpoint, 'mac'), 'always');
  assert.equal(planner.effectiveSyncMode(settings, endpoint, 'sdn'), 'disabled');
  assert.equal(planner.effectiveSyncMode(undefined, null, 'cluster'), 'always');
});

test('effectiveSyncMode accepts the spellings of the issue', () => {
  const settings = { sync_mode_vm: 'bootstrap_only', sync_mode_vm_template: 'disabled' };
  for (const spelling of ['vm', 'VM', 'sync_mode_vm']) {
    assert.equal(planner.effectiveSyncMode(settings, {}, spelling), 'bootstrap_only', spelling);
  }
  assert.equal(planner.effectiveSyncMode(settings, {}, 'vm-template'), 'disabled');
});

test('effectiveSyncMode throws a clear error listing the valid types', () => {
  assert.throws(() => planner.effectiveSyncMode({}, {}, 'vms'), (/** @type {import('proxbox-planner').ProxboxPlannerError} */ error) => {
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'ProxboxPlannerError');
    assert.equal(error.code, 'unknown-resource-type');
    assert.equal(error.path, '$.resource_type');
    assert.match(error.message, /valid types: vm, vm_template, vm_interface, mac, cluster, node, storage, ip_address, sdn, sdn_bgp/);
    return true;
  });
  assert.throws(() => planner.effectiveSyncMode({}, {}, 42), { code: 'wrong-type' });
});

test('resolveSyncModes: the seed example, endpoint B', () => {
  const global = {
    sync_mode_vm: 'always', sync_mode_vm_template: 'bootstrap_only', sync_mode_vm_interface: 'always',
    sync_mode_mac: 'always', sync_mode_cluster: 'always', sync_mode_node: 'disabled',
    sync_mode_storage: 'always', sync_mode_ip_address: 'always', sync_mode_sdn: 'disabled',
  };
  const endpointB = { id: 2, sync_mode_vm: 'disabled', sync_mode_mac: 'disabled', sync_mode_ip_address: 'disabled' };
  const report = planner.resolveSyncModes(global, endpointB);
  assert.deepEqual(report.effective, {
    vm: 'disabled', vm_template: 'bootstrap_only', vm_interface: 'always', mac: 'disabled',
    cluster: 'always', node: 'disabled', storage: 'always', ip_address: 'disabled', sdn: 'disabled',
    sdn_bgp: 'disabled',
  });
  assert.equal(report.sources.vm, 'endpoint');
  assert.equal(report.sources.node, 'global');
  assert.equal(report.sources.sdn_bgp, 'default');
  assert.deepEqual(report.stages.map((s) => s.stage), [
    'devices', 'storage', 'virtual-machines', 'vm-templates', 'task-history', 'vm-disks', 'vm-backups', 'vm-snapshots',
    'network-interfaces', 'vm-interfaces', 'ip-addresses', 'sdn', 'replications', 'backup-routines',
  ]);
  const byStage = Object.fromEntries(report.stages.map((s) => [s.stage, s]));
  assert.deepEqual(byStage['vm-disks'], { stage: 'vm-disks', run: false, reason: 'sync_mode_vm=disabled' }, 'disks follow their VMs');
  assert.deepEqual(byStage['network-interfaces'], { stage: 'network-interfaces', run: false, reason: 'sync_mode_node=disabled' });
  assert.deepEqual(byStage['virtual-machines'], { stage: 'virtual-machines', run: false, reason: 'sync_mode_vm=disabled' });
  assert.deepEqual(byStage.sdn, { stage: 'sdn', run: false, reason: 'sync_mode_sdn=disabled' });
  assert.equal(byStage['ip-addresses'].run, false);
  assert.equal(byStage.replications.run, true, 'templates still sync');
  assert.deepEqual(byStage['vm-backups'], { stage: 'vm-backups', run: false, reason: 'sync_mode_vm=disabled' }, 'backups are VM rows');
  assert.equal(report.query_flags.common.sync_mode_ip_address, 'disabled');
  assert.equal(report.query_flags.common.overwrite_vm_platform, 'false');
});

test('resolveSyncModes: the cascade is reported', () => {
  const report = planner.resolveSyncModes({ sync_mode_vm: 'disabled', sync_mode_vm_template: 'disabled' }, null, ['ip-addresses']);
  assert.equal(report.effective.vm_interface, 'disabled');
  assert.deepEqual(report.cascade.vm_interface, ['vm', 'vm_template']);
  assert.deepEqual(report.stages.map((s) => s.stage), ['vm-interfaces', 'ip-addresses']);
  assert.match(report.stages[1].reason, /sync_mode_ip_address=disabled \(inherited from sync_mode_vm_interface=disabled/);
});

test('resolveSyncModes errors carry code and JSON path', () => {
  assert.throws(() => planner.resolveSyncModes({ sync_mode_vm: 'sometimes' }), {
    code: 'unknown-sync-mode', path: '$.settings.sync_mode_vm',
  });
  assert.throws(() => planner.resolveSyncModes({}, { sync_mode_node: 3 }), {
    code: 'wrong-type', path: '$.endpoint.sync_mode_node',
  });
  assert.throws(() => planner.resolveSyncModes({}, {}, ['devices', 'nope']), {
    code: 'unknown-sync-type', path: '$.sync_types[1]',
  });
  assert.throws(() => planner.resolveSyncModes('always'), { code: 'wrong-type', path: '$.settings' });
});

test('bad input of any shape is an Error, never a crash of the module', () => {
  const weird = [Symbol('x'), () => 1, 10n, new Map([[1, 2]]), [1, [2, [3]]], 'x'.repeat(10000), NaN];
  for (const value of weird) {
    for (const call of [
      () => planner.resolveSyncModes(value, value, value),
      () => planner.effectiveSyncMode(value, value, value),
    ]) {
      try {
        call();
      } catch (error) {
        assert.ok(error instanceof Error, `not an Error for ${String(value)}`);
        const { code, path } = /** @type {import('proxbox-planner').ProxboxPlannerError} */ (error);
        assert.equal(typeof code, 'string');
        assert.equal(typeof path, 'string');
      }
    }
  }
  // The module still works after all of that.
  assert.equal(planner.effectiveSyncMode({}, {}, 'vm'), 'always');
});
