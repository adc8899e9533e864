#!/usr/bin/env node
// A deterministic fakepve seed for N guests, in the format of
// host/test/servers/sample-cluster.seed.json (see fakepve_seeded.py's docstring):
//   node host/bench/pve-seed.js GUESTS [--seed N] > seed.json
//   import { generateSeed, seedText } from './pve-seed.js';
// Same arguments, same bytes: the only randomness is the PRNG below, seeded
// from the arguments (never Math.random, never the clock).
//
// The cluster: max(3, ceil(N/100)) nodes, the sample's four storages, QEMU and
// LXC about 2:1, every 50th guest a QEMU template, 2-4 NICs per guest with
// unique MACs, VLAN tags 20/30/40 on some, guest-agent answers (IPv4, IPv6,
// link-local, loopback) for running QEMU guests with the agent on, and
// `ip=`/`ip6=` for containers. Addresses are unique across the cluster: NetBox
// refuses a duplicate in the global table, and a real cluster has none either.
import { fileURLToPath } from 'node:url';

/** mulberry32: tiny, fast, good enough for test data, and the same on every platform. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive bounds
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
}

const STORAGES = {
  local: {
    type: 'dir', path: '/var/lib/vz', content: 'backup,iso,snippets,vztmpl', avail: 64424509440,
    files: ['debian-12.7.0-amd64-netinst.iso', 'virtio-win-0.1.262.iso'],
  },
  'local-lvm': { type: 'lvmthin', vgname: 'pve', thinpool: 'data', content: 'images,rootdir', total: 429496729600 },
  'nfs-shared': {
    type: 'nfs', server: '192.0.2.50', export: '/export/pve', path: '/mnt/pve/nfs-shared',
    content: 'backup,images,iso,rootdir', options: 'vers=4.2', shared: 1, total: 2199023255552,
  },
  'ceph-vm': { type: 'rbd', pool: 'vm-pool', content: 'images,rootdir', krbd: 0, shared: 1, total: 3298534883328 },
};

const DIGEST = '5f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4';

// Guest networks. `vid` null: untagged on vmbr0. Each is a /16, so a
// per-network host counter gives unique addresses for ~65k NICs per network.
const NETWORKS = {
  untagged: { vid: null, v4: [10, 10], v6: '2001:db8:10', alias: null },
  vlan20: { vid: 20, v4: [10, 20], v6: '2001:db8:20', alias: 'servers' },
  vlan30: { vid: 30, v4: [10, 30], v6: '2001:db8:30', alias: 'databases' },
  vlan40: { vid: 40, v4: [10, 40], v6: '2001:db8:40', alias: 'dmz' },
  backend: { vid: null, v4: [172, 16], v6: '2001:db8:ff', alias: null }, // vmbr1, storage/backend
};

const ROLES = ['web', 'app', 'db', 'cache', 'mq', 'k8s-worker', 'ci-runner', 'mon', 'log', 'dns', 'proxy', 'build', 'mail', 'vpn', 'git'];
const TAGS = ['prod', 'staging', 'dev', 'web', 'db', 'infra', 'backup', 'team-a', 'team-b'];
const LXC_OS = [
  ['debian', 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst'],
  ['ubuntu', 'local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst'],
  ['alpine', 'local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz'],
  ['rockylinux', 'local:vztmpl/rockylinux-9-default_20240912_amd64.tar.xz'],
];
const TEMPLATE_OS = ['debian12', 'ubuntu2404', 'rocky9', 'alma9', 'win2022'];

const hex2 = (n) => n.toString(16).padStart(2, '0').toUpperCase();

/** The node's `GET /nodes/{node}/network`, shaped like the sample's: a bond under vmbr0, a migration VLAN, vmbr1. */
function nodeNetwork(index) {
  // 198.18.0.0/15 (RFC 2544, benchmarking): room for any node count; vmbr0 in
  // 198.18/16, the VLAN in 198.19/16, IPv6 in 2001:db8:0:1::/64.
  const host = `${(index + 10) >> 8}.${(index + 10) & 255}`;
  const address = `198.18.${host}`;
  const eth = (iface, priority) => ({ iface, type: 'eth', method: 'manual', method6: 'manual', families: [], priority, active: 1, exists: 1 });
  return [
    {
      iface: 'vmbr0', type: 'bridge', method: 'static', method6: 'static', families: ['inet', 'inet6'],
      priority: 5, active: 1, autostart: 1, exists: 1, address,
      netmask: '255.255.0.0', cidr: `${address}/16`, gateway: '198.18.0.1', cidr6: `2001:db8:0:1::${(index + 10).toString(16)}/64`,
      bridge_ports: 'bond0', bridge_stp: 'off', bridge_fd: '0', bridge_vlan_aware: 1, bridge_vids: '2-4094',
    },
    {
      iface: 'bond0', type: 'bond', method: 'manual', method6: 'manual', families: [], priority: 4, active: 1,
      autostart: 1, exists: 1, slaves: 'eno1 eno2', bond_mode: '802.3ad', bond_xmit_hash_policy: 'layer3+4', mtu: '9000',
    },
    {
      iface: 'vmbr0.4000', type: 'vlan', method: 'static', method6: 'manual', families: ['inet'], priority: 6, active: 1,
      autostart: 1, address: `198.19.${host}`, netmask: '255.255.0.0', cidr: `198.19.${host}/16`, 'vlan-id': 4000,
      'vlan-raw-device': 'vmbr0', comments: 'migration network\n',
    },
    {
      iface: 'vmbr1', type: 'bridge', method: 'manual', method6: 'manual', families: [],
      priority: 7, active: 1, autostart: 1, exists: 1, bridge_ports: 'eno3', bridge_stp: 'off',
      bridge_fd: '0', comments: 'storage/backend\n',
    },
    eth('eno1', 1), eth('eno2', 2), eth('eno3', 3),
  ];
}

/** The `static` answers: no replication, no HA, the sample's SDN listing (a VLAN zone, one VNet per VLAN). */
function staticAnswers(nodes) {
  const out = {
    'GET /cluster/replication': [],
    'GET /cluster/ha/resources': [],
    'GET /cluster/sdn': [{ id: 'controllers' }, { id: 'dns' }, { id: 'ipams' }, { id: 'vnets' }, { id: 'zones' }],
  };
  nodes.forEach((node, i) => (out[`GET /nodes/${node}/network`] = nodeNetwork(i + 1)));
  out['GET /cluster/sdn/ipams'] = [{ ipam: 'pve', type: 'pve', digest: DIGEST }];
  out['GET /cluster/sdn/controllers'] = [];
  out['GET /cluster/sdn/dns'] = [];
  out['GET /cluster/sdn/zones'] = [{ zone: 'labvlan', type: 'vlan', bridge: 'vmbr0', ipam: 'pve', digest: DIGEST }];
  const tagged = Object.entries(NETWORKS).filter(([, n]) => n.vid);
  out['GET /cluster/sdn/vnets'] = tagged.map(([vnet, n]) => ({ vnet, zone: 'labvlan', tag: n.vid, alias: n.alias, type: 'vnet', digest: DIGEST }));
  out['GET /cluster/sdn/vnets/{vnet}/subnets'] = [];
  for (const [vnet, n] of tagged) {
    const net = `${n.v4.join('.')}.0.0`;
    out[`GET /cluster/sdn/vnets/${vnet}/subnets`] = [{
      subnet: `labvlan-${net}-16`, id: `labvlan-${net}-16`, cidr: `${net}/16`, network: net, mask: '16',
      gateway: `${n.v4.join('.')}.0.1`, type: 'subnet', vnet, zone: 'labvlan', digest: DIGEST,
    }];
  }
  return out;
}

/**
 * The seed object for `guests` guests.
 * @param {number} guests
 * @param {{seed?: number, clusterName?: string}} [o]
 */
export function generateSeed(guests, { seed = 1, clusterName = 'lab' } = {}) {
  if (!Number.isInteger(guests) || guests < 1) throw new Error(`guests must be a positive integer, not ${guests}`);
  const rng = prng(Math.imul(guests, 0x9e3779b1) ^ seed);
  const nodes = Array.from({ length: Math.max(3, Math.ceil(guests / 100)) }, (_, i) => `pve${i + 1}`);

  // Unique MACs: the global NIC counter times an odd constant is a bijection on
  // 24 bits, so MACs look scattered (as PVE's random ones do) but never repeat.
  let nicCounter = 0;
  const nextMac = () => {
    if (nicCounter >= 1 << 24) throw new Error('more than 2^24 NICs: out of BC:24:11 MACs');
    const low = Math.imul(nicCounter++ + 1, 0x9e3779) & 0xffffff;
    return `BC:24:11:${hex2(low >> 16)}:${hex2((low >> 8) & 255)}:${hex2(low & 255)}`;
  };
  const hosts = Object.fromEntries(Object.keys(NETWORKS).map((k) => [k, 10])); // .0.1-.0.9 kept for gateways
  const nextAddress = (key) => {
    const net = NETWORKS[key];
    const h = hosts[key]++;
    if (h > 65534) throw new Error(`network ${key} is full (${h} hosts)`);
    return {
      v4: `${net.v4[0]}.${net.v4[1]}.${h >> 8}.${h & 255}`,
      v6: `${net.v6}::${h.toString(16)}`,
      gw: `${net.v4[0]}.${net.v4[1]}.0.1`,
    };
  };
  // EUI-64 link-local from the MAC (what Linux guests show).
  const linkLocal = (mac) => {
    const b = mac.split(':').map((x) => parseInt(x, 16));
    b[0] ^= 2;
    const h = (x, y) => ((x << 8) | y).toString(16);
    return `fe80::${h(b[0], b[1])}:${h(b[2], 0xff)}:${h(0xfe, b[3])}:${h(b[4], b[5])}`;
  };
  const roleCount = {};
  let templates = 0;

  const out = [];
  for (let g = 0; g < guests; g += 1) {
    const vmid = 100 + g;
    const template = g % 50 === 49;
    const lxc = !template && rng.chance(1 / 3);
    const node = rng.pick(nodes);
    const running = !template && rng.chance(0.85);
    let name;
    if (template) {
      templates += 1;
      name = `${TEMPLATE_OS[(templates - 1) % TEMPLATE_OS.length]}-tmpl-${String(templates).padStart(2, '0')}`;
    } else {
      const role = rng.pick(ROLES);
      roleCount[role] = (roleCount[role] ?? 0) + 1;
      name = `${role}${String(roleCount[role]).padStart(2, '0')}`;
    }
    const tags = [...new Set(Array.from({ length: rng.int(0, 2) }, () => rng.pick(TAGS)))].sort().join(';');
    const description = rng.chance(0.4) ? `${name}: generated guest ${g}\nOwner: team-${g % 7}@example.org` : null;
    const windows = !lxc && !template && rng.chance(0.1);

    // NICs: net0 on vmbr0 (VLAN-tagged 4 times in 5), then more on vmbr0 or the backend bridge (vmbr1).
    const nicCount = template ? 1 : rng.int(2, 4);
    const nics = [];
    for (let n = 0; n < nicCount; n += 1) {
      const backend = n > 0 && rng.chance(0.35);
      const key = backend ? 'backend' : rng.pick(['untagged', 'vlan20', 'vlan20', 'vlan30', 'vlan40']);
      const down = backend && rng.chance(0.15);
      // Some containers take their address by DHCP: none in the config, none in NetBox.
      const dhcp = lxc && !backend && rng.chance(0.1);
      // Backend NICs carry an address only sometimes (like the sample's ens19).
      const addressed = !template && !down && !dhcp && (!backend || rng.chance(0.5));
      nics.push({ n, key, mac: nextMac(), down, dhcp, addr: addressed ? nextAddress(key) : null, firewall: !backend && rng.chance(0.5) });
    }
    const bridge = (nic) => (nic.key === 'backend' ? 'vmbr1' : 'vmbr0');
    const tag = (nic) => (NETWORKS[nic.key].vid ? `,tag=${NETWORKS[nic.key].vid}` : '');

    const config = {};
    const guest = { vmid, name, node, status: running ? 'running' : 'stopped' };
    if (lxc) {
      const [ostype, ostemplate] = rng.pick(LXC_OS);
      guest.type = 'lxc';
      guest.ostemplate = ostemplate;
      Object.assign(config, { hostname: name });
      if (description) config.description = description;
      if (tags) config.tags = tags;
      const memory = rng.pick([256, 512, 1024, 2048, 4096]);
      Object.assign(config, {
        arch: 'amd64', ostype, cores: rng.int(1, 4), memory, swap: rng.pick([0, 512, memory]), onboot: rng.int(0, 1),
        unprivileged: rng.chance(0.9) ? 1 : 0,
      });
      if (rng.chance(0.3)) config.features = 'nesting=1';
      config.rootfs = `${rng.pick(['local-lvm', 'ceph-vm'])}:vm-${vmid}-disk-0,size=${rng.pick([4, 8, 16, 32, 64])}G`;
      if (rng.chance(0.15)) config.mp0 = `nfs-shared:${vmid}/vm-${vmid}-disk-1.raw,mp=/srv/data,backup=1,size=${rng.int(10, 200)}G`;
      for (const nic of nics) {
        // PVE's order: name first, then the keys alphabetically; one default gateway per container (net0).
        const parts = [`name=eth${nic.n}`, `bridge=${bridge(nic)}`];
        if (nic.firewall) parts.push('firewall=1');
        if (nic.addr && nic.n === 0) parts.push(`gw=${nic.addr.gw}`);
        parts.push(`hwaddr=${nic.mac}`);
        if (nic.addr) parts.push(`ip=${nic.addr.v4}/16`, `ip6=${nic.addr.v6}/64`);
        else parts.push(nic.dhcp ? 'ip=dhcp' : 'ip=manual');
        if (nic.down) parts.push('link_down=1');
        config[`net${nic.n}`] = `${parts.join(',')}${tag(nic)},type=veth`;
      }
      config.nameserver = '10.20.0.1';
      config.searchdomain = 'lab.example.org';
    } else {
      guest.name = name;
      Object.assign(config, { name });
      if (description) config.description = description;
      if (template) config.tags = 'template';
      else if (tags) config.tags = tags;
      if (template) {
        guest.template = true;
        config.template = 1;
      }
      const ovmf = windows || rng.chance(0.3);
      Object.assign(config, {
        ostype: windows || name.startsWith('win') ? 'win11' : 'l26',
        ...(ovmf ? { machine: windows ? 'pc-q35-9.2+pve1' : 'q35', bios: 'ovmf' } : {}),
        cpu: rng.pick(['x86-64-v2-AES', 'host', 'x86-64-v3']),
        cores: rng.pick([1, 2, 2, 4, 4, 8]), sockets: 1,
        // PVE returns QEMU memory as a string (fakepve too); balloon stays a number.
        memory: String(rng.pick([1024, 2048, 4096, 8192, 16384])), numa: 0,
      });
      if (rng.chance(0.3)) config.balloon = 1024;
      config.onboot = template ? 0 : rng.int(0, 1);
      // The agent is on for ~95%: the rest have no addresses to report.
      const agent = template || rng.chance(0.95);
      if (agent) config.agent = rng.chance(0.8) ? '1' : 'enabled=1,fstrim_cloned_disks=1';
      const storage = rng.pick(['local-lvm', 'local-lvm', 'ceph-vm', 'nfs-shared']);
      const prefix = template ? 'base' : 'vm';
      const volume = (i) => (storage === 'nfs-shared' ? `nfs-shared:${vmid}/${prefix}-${vmid}-disk-${i}.qcow2` : `${storage}:${prefix}-${vmid}-disk-${i}`);
      const bus = windows ? 'sata0' : 'scsi0';
      config.boot = `order=${bus};net0`;
      if (!windows) config.scsihw = 'virtio-scsi-single';
      if (ovmf) config.efidisk0 = `${storage === 'nfs-shared' ? 'local-lvm' : storage}:${prefix}-${vmid}-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M`;
      const size = template ? rng.pick([2, 4, 8]) : rng.pick([8, 16, 32, 50, 100, 200]);
      config[bus] = `${volume(0)},${windows ? '' : 'discard=on,iothread=1,'}size=${size}G${windows ? '' : ',ssd=1'}`;
      if (!template && !windows && rng.chance(0.25)) config.scsi1 = `${volume(2)},backup=0,size=${rng.int(50, 500)}G`;
      // Detached volumes and passthrough devices (no size=), by vmid so the random draws stay as they were.
      if (!template && vmid % 13 === 0) config.unused0 = `${storage}:${prefix}-${vmid}-disk-9`;
      if (!template && !windows && vmid % 97 === 0) config.scsi5 = `/dev/disk/by-id/ata-BENCH${vmid},backup=0`;
      if (template) {
        Object.assign(config, {
          ide2: `local-lvm:vm-${vmid}-cloudinit,media=cdrom`, ciuser: name.startsWith('win') ? 'Administrator' : 'debian', cipassword: '**********',
          ipconfig0: 'ip=dhcp,ip6=auto', serial0: 'socket', vga: 'serial0',
        });
      } else if (!windows && nics[0].addr && rng.chance(0.2)) {
        // Cloud-init guests: the static address in ipconfig0 is the one the agent reports.
        Object.assign(config, {
          ide2: `local-lvm:vm-${vmid}-cloudinit,media=cdrom`, ciuser: 'ops', ipconfig0: `ip=${nics[0].addr.v4}/16,gw=${nics[0].addr.gw}`,
        });
      } else config.ide2 = 'none,media=cdrom';
      const model = windows ? ['e1000', 'vmxnet3'] : ['virtio', 'virtio', 'virtio', 'e1000', 'vmxnet3'];
      for (const nic of nics) {
        const extra = nic.key === 'backend' && rng.chance(0.5) ? ',mtu=9000' : '';
        config[`net${nic.n}`] =
          `${rng.pick(model)}=${nic.mac},bridge=${bridge(nic)}${nic.firewall ? ',firewall=1' : ''}${nic.down ? ',link_down=1' : ''}${extra}${tag(nic)}`;
      }
      config.smbios1 = `uuid=5c1a3f8e-1d2b-4c3d-8e4f-${String(vmid).padStart(12, '0')}`;
      if (!template) config.vmgenid = `7d9e2b1a-0c3d-4e5f-8a6b-${String(vmid).padStart(12, '0')}`;
      config.meta = `creation-qemu=9.2.0,ctime=${1735689600 + g * 3600}`;

      // Guest-agent answers, seeded for every QEMU guest with the agent on (a
      // stopped one answers 500 until started, as in the sample).
      if (agent && !template) {
        /** @type {Record<string, unknown>[]} */
        const interfaces = windows
          ? [{ name: 'Loopback Pseudo-Interface 1', 'ip-addresses': [
            { 'ip-address-type': 'ipv6', 'ip-address': '::1', prefix: 128 },
            { 'ip-address-type': 'ipv4', 'ip-address': '127.0.0.1', prefix: 8 }] }]
          : [{ name: 'lo', 'hardware-address': '00:00:00:00:00:00', 'ip-addresses': [
            { 'ip-address-type': 'ipv4', 'ip-address': '127.0.0.1', prefix: 8 },
            { 'ip-address-type': 'ipv6', 'ip-address': '::1', prefix: 128 }] }];
        for (const nic of nics) {
          /** @type {Record<string, unknown>} the agent's interface; addresses and statistics follow */
          const entry = {
            name: windows ? (nic.n ? `Ethernet ${nic.n + 1}` : 'Ethernet') : `ens${18 + nic.n}`,
            'hardware-address': nic.mac.toLowerCase(),
          };
          if (nic.addr) {
            // Windows shows the link-local address with its scope id, first.
            const group = () => rng.int(1, 0xffff).toString(16);
            const ll = windows ? `fe80::${group()}:${group()}:${group()}:${group()}%${nic.n + 4}` : linkLocal(nic.mac);
            const v4 = { 'ip-address-type': 'ipv4', 'ip-address': nic.addr.v4, prefix: 16 };
            const v6 = { 'ip-address-type': 'ipv6', 'ip-address': nic.addr.v6, prefix: 64 };
            const local = { 'ip-address-type': 'ipv6', 'ip-address': ll, prefix: 64 };
            entry['ip-addresses'] = windows ? [local, v4, v6] : [v4, v6, local];
          }
          if (rng.chance(0.5)) {
            const rx = rng.int(0, 2 ** 31);
            const tx = rng.int(0, 2 ** 31);
            entry.statistics = {
              'rx-bytes': rx, 'rx-packets': Math.floor(rx / 900), 'rx-errs': 0, 'rx-dropped': rng.int(0, 20),
              'tx-bytes': tx, 'tx-packets': Math.floor(tx / 900), 'tx-errs': 0, 'tx-dropped': 0,
            };
          }
          interfaces.push(entry);
        }
        guest.agent = { interfaces };
        if (windows) {
          guest.agent.os = {
            name: 'Microsoft Windows', id: 'mswindows', version: 'Microsoft Windows Server 2022', 'version-id': '2022',
            'pretty-name': 'Windows Server 2022 Standard', 'kernel-release': '20348', 'kernel-version': '10.0',
            machine: 'x86_64', variant: 'server', 'variant-id': 'server',
          };
        }
      }
    }
    guest.config = config;
    out.push(guest);
  }

  return {
    _comment: `Generated by host/bench/pve-seed.js ${guests}${seed === 1 ? '' : ` --seed ${seed}`}: ${guests} guests on ${nodes.length} nodes. Do not edit; ` +
      `regenerate.`,
    cluster_name: clusterName,
    version: { version: '9.0.10', release: '9.0' },
    nodes,
    storages: STORAGES,
    static: staticAnswers(nodes),
    guests: out,
  };
}

/** The seed as file text: the top level indented, one guest per line (diffable, a few MB at 1,000 guests). */
export function seedText(guests, options) {
  const seed = generateSeed(guests, options);
  const lines = Object.entries(seed).map(([key, value]) => {
    if (key !== 'guests') return `  ${JSON.stringify(key)}: ${JSON.stringify(value)}`;
    return `  "guests": [\n${/** @type {object[]} */ (value).map((g) => `    ${JSON.stringify(g)}`).join(',\n')}\n  ]`;
  });
  return `{\n${lines.join(',\n')}\n}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--seed');
  const seed = at >= 0 ? Number(args.splice(at, 2)[1]) : 1;
  const guests = Number(args[0]);
  if (args.length !== 1 || !Number.isInteger(guests) || guests < 1 || !Number.isInteger(seed)) {
    process.stderr.write('usage: node host/bench/pve-seed.js GUESTS [--seed N] > seed.json\n');
    process.exit(2);
  }
  // A closed pipe (`| head`) is the reader's choice, not an error.
  process.stdout.on('error', (error) => process.exit(error.code === 'EPIPE' ? 0 : 1));
  process.stdout.write(seedText(guests, { seed }));
}
