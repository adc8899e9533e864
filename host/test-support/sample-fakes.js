// The bundled sample behind in-process fakes (no server): a NetBox that holds the
// sample's collections (and the Proxbox plugin's settings and endpoints), a Proxmox that
// answers the sample's paths, and the sample synced with an operator's edit on top (a
// field conflict, for the tests of what shows and reads it).
import { readFileSync } from 'node:fs';
import { NetBoxClient } from '../netbox.js';
import { ProxmoxClient } from '../proxmox.js';
import { collectInput, readContext, syncOnce, ENDPOINTS_PATH, SETTINGS_PATH } from '../sync.js';
import { FakeNetBox, FAKE_URL } from './fake-netbox.js';

export const sample = JSON.parse(readFileSync(new URL('../../fixtures/sample/snapshot.json', import.meta.url), 'utf8'));
export const CHANGELOG = '/api/core/object-changes/';
export const JOURNAL = '/api/extras/journal-entries/';
const VMS = '/api/virtualization/virtual-machines/';
const VM_STATES = '/api/plugins/proxbox/sync-state/virtual-machines/';
export const NB_TOKEN = 'nbt_syncTestKey1.SyncTestSecret0123456789abcdefgh';
const PVE_TOKEN = 'root@pam!planner=5e1f3c7a-0000-4000-8000-00000000abcd';

/** A Proxmox client answering `data`'s paths (500 for any other); `asked` lists the paths read. */
export function fakeProxmox(data = sample.proxmox) {
  const asked = [];
  const transport = {
    async request({ url }) {
      const path = url.replace(/^.*\/api2\/json/, '');
      asked.push(path);
      if (!(path in data)) return { status: 500, headers: {}, text: JSON.stringify({ data: null, message: `no such path ${path}\n` }) };
      return { status: 200, headers: {}, text: JSON.stringify({ data: data[path] }) };
    },
    close() {},
  };
  const client = new ProxmoxClient({ url: 'https://pve.test:8006', token: PVE_TOKEN, transport, sleep: async () => {} });
  return Object.assign(client, { asked });
}

/** The sample's NetBox (with the plugin's settings and two endpoints, unless `plugin: false`). */
export function fakeNetBox({ plugin = true } = {}) {
  const fake = new FakeNetBox();
  for (const [collection, rows] of Object.entries(sample.netbox)) {
    if (!plugin && collection.startsWith('/api/plugins/')) continue;
    fake.objects(collection);
    for (const row of rows) fake.seed(collection, row);
  }
  if (plugin) {
    fake.seed(SETTINGS_PATH, { id: 1, ...sample.settings, encryption_key: 'never-in-a-snapshot' });
    fake.seed(ENDPOINTS_PATH, {
      ...sample.endpoint, domain: 'pve.test', port: 8006, token_name: 'planner', token_value: 'endpoint-secret-value', password: 'pw',
    });
    fake.seed(ENDPOINTS_PATH, { id: 2, name: 'other', domain: 'other.test', port: 8006 });
  }
  const client = new NetBoxClient({ url: FAKE_URL, token: NB_TOKEN, transport: fake.transport, sleep: async () => {} });
  return { fake, client };
}

/** The sample's Proxmox with web01's (qemu/101) memory doubled. */
export const doubledMemory = () => ({
  ...sample.proxmox,
  '/cluster/resources': sample.proxmox['/cluster/resources'].map((r) => (r.id === 'qemu/101' ? { ...r, maxmem: r.maxmem * 2 } : r)),
});

/**
 * Alice (user 2) sets web01's memory to 6000 in NetBox: the VM changes, and the change log
 * records it as NetBox would. Resolves to {vm, before}.
 */
export async function aliceSetsMemory(fake) {
  const state = fake.objects(VM_STATES).find((s) => s.proxmox_vm_id === 101);
  const vm = fake.find(VMS, state.virtual_machine);
  const before = vm.memory;
  vm.memory = 6000;
  fake.seed(CHANGELOG, {
    time: '2026-11-23T11:00:00.000000Z', user: { id: 2, username: 'alice' }, user_name: 'alice', action: { value: 'update', label: 'Updated' },
    changed_object_type: 'virtualization.virtualmachine', changed_object_id: vm.id, message: '',
    prechange_data: { memory: before }, postchange_data: { memory: 6000 },
  });
  return { vm, before };
}

/**
 * The sample synced into a fake NetBox, then Alice's memory edit and Proxmox doubling it:
 * the planner input, read as discover asks, whose plan has one field conflict.
 */
export async function memoryConflictInput() {
  const { fake, client } = fakeNetBox();
  fake.objects(CHANGELOG);
  fake.objects(JOURNAL);
  const synced = await syncOnce({ netbox: client, proxmox: fakeProxmox(), endpoint: 1, apply: true });
  if (!synced.report.ok) throw new Error('the sample did not apply to the fake NetBox');
  const edit = await aliceSetsMemory(fake);
  const context = await readContext(client, { endpoint: 1 });
  const input = await collectInput({
    netbox: client, proxmox: fakeProxmox(doubledMemory()), settings: context.settings, endpoint: context.endpoint, origin: context.origin,
    syncUser: context.syncUser,
  });
  return { ...edit, input };
}
