//! Random but realistic Proxmox clusters for property tests: sparse `netN`
//! keys, numbers-or-strings, duplicate names, templates, VLAN tags, guest
//! agent and static addresses, stopped guests, failed fetches, extra disks
//! (CD-ROMs, passthrough devices, unused volumes) and node networks (bonds,
//! bridges, VLANs, addresses that move between them).

use proptest::prelude::*;
use proxbox_planner::proxmox_path;
use serde_json::{json, Map, Value};

#[derive(Clone, Debug)]
pub struct GuestSpec {
    pub lxc: bool,
    pub vmid: u64,
    pub name: usize,
    pub node: usize,
    pub running: bool,
    pub template: bool,
    pub memory_mib: u64,
    pub cores: u64,
    pub as_strings: bool,
    pub agent: bool,
    pub tags: Vec<usize>,
    pub nics: Vec<NicSpec>,
    pub disk_gib: u64,
    pub disks: Vec<DiskSpec>,
    /// `/cluster/resources` lists the guest twice (a second row, another name).
    pub listed_twice: bool,
}

#[derive(Clone, Debug)]
pub struct DiskSpec {
    pub index: u32,
    pub kind: DiskKind,
}

#[derive(Clone, Debug)]
pub enum DiskKind {
    Sized(u64),
    /// A CD-ROM (QEMU), or for LXC a bind mount: neither has a size.
    NoSize,
    /// A passthrough device (QEMU) without `size=`.
    Passthrough,
    /// `unusedN`: not a disk.
    Unused,
}

/// One node's network: a bond or a plain NIC under vmbr0, maybe a VLAN,
/// and the node's address on one of them.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub bond: bool,
    /// A VLAN interface, on vmbr0 or (with a bond) on bond0.
    pub vlan: Option<(u16, bool)>,
    /// The address is on the VLAN interface rather than vmbr0.
    pub address_on_vlan: bool,
    pub v6: bool,
    pub second_bridge: bool,
    pub mtu: Option<u64>,
    /// The read fails (a node that went down).
    pub failed: bool,
}

#[derive(Clone, Debug)]
pub struct NicSpec {
    pub index: u32,
    pub mac: u8,
    pub vlan: Option<u16>,
    pub link_down: bool,
    pub address: Option<u8>,
    pub v6: bool,
    /// The address's subnet: NICs of one guest share them, so an address
    /// moves between NICs from one cluster to the next.
    pub subnet: u8,
}

const NAMES: [&str; 6] = ["web", "db", "cache", "web", "app-01", "Web"];
const TAGS: [&str; 4] = ["prod", "web", "Team A", "db"];

fn nic() -> impl Strategy<Value = NicSpec> {
    (
        0u32..6,
        any::<u8>(),
        prop::option::of(prop::sample::select(vec![10u16, 20, 30])),
        prop::bool::weighted(0.1),
        prop::option::of(1u8..250),
        any::<bool>(),
        0u8..2,
    )
        .prop_map(|(index, mac, vlan, link_down, address, v6, subnet)| NicSpec {
            index,
            mac,
            vlan,
            link_down,
            address,
            v6,
            subnet,
        })
}

fn disk() -> impl Strategy<Value = DiskSpec> {
    let kind = prop_oneof![
        4 => (1u64..64).prop_map(DiskKind::Sized),
        1 => Just(DiskKind::NoSize),
        1 => Just(DiskKind::Passthrough),
        1 => Just(DiskKind::Unused),
    ];
    (1u32..5, kind).prop_map(|(index, kind)| DiskSpec { index, kind })
}

fn network() -> impl Strategy<Value = NetworkSpec> {
    (
        any::<bool>(),
        prop::option::of((prop::sample::select(vec![50u16, 60]), any::<bool>())),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![1500u64, 9000])),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(bond, vlan, address_on_vlan, v6, second_bridge, mtu, failed)| NetworkSpec {
                bond,
                vlan,
                address_on_vlan,
                v6,
                second_bridge,
                mtu,
                failed,
            },
        )
}

/// The nodes' networks, one each.
pub fn networks() -> impl Strategy<Value = Vec<NetworkSpec>> {
    prop::collection::vec(network(), 3)
}

fn guest() -> impl Strategy<Value = GuestSpec> {
    (
        (
            any::<bool>(),
            100u64..140,
            0..NAMES.len(),
            0usize..3,
            any::<bool>(),
            prop::bool::weighted(0.1),
        ),
        (
            prop::sample::select(vec![512u64, 2048, 4096]),
            1u64..8,
            any::<bool>(),
            any::<bool>(),
        ),
        (
            prop::collection::vec(0..TAGS.len(), 0..3),
            prop::collection::vec(nic(), 0..4),
            1u64..200,
            prop::collection::vec(disk(), 0..3),
            prop::bool::weighted(0.15),
        ),
    )
        .prop_map(
            |(
                (lxc, vmid, name, node, running, template),
                (memory_mib, cores, as_strings, agent),
                (tags, nics, disk_gib, disks, listed_twice),
            )| {
                GuestSpec {
                    lxc,
                    vmid,
                    name,
                    node,
                    running,
                    template,
                    memory_mib,
                    cores,
                    as_strings,
                    agent,
                    tags,
                    nics,
                    disk_gib,
                    disks,
                    listed_twice,
                }
            },
        )
}

pub fn cluster() -> impl Strategy<Value = Vec<GuestSpec>> {
    prop::collection::vec(guest(), 0..10)
}

fn number(value: u64, as_string: bool) -> Value {
    if as_string {
        json!(value.to_string())
    } else {
        json!(value)
    }
}

/// The config line of an extra disk (`None`: this spec writes none).
fn disk_line(g: &GuestSpec, disk: &DiskSpec) -> Option<(String, String)> {
    let (vmid, i) = (g.vmid, disk.index);
    Some(match (&disk.kind, g.lxc) {
        (DiskKind::Sized(gib), true) => (
            format!("mp{i}"),
            format!("local-lvm:vm-{vmid}-disk-{i},mp=/mnt/d{i},size={gib}G"),
        ),
        (DiskKind::Sized(gib), false) => (format!("scsi{i}"), format!("local-lvm:vm-{vmid}-disk-{i},size={gib}G")),
        (DiskKind::NoSize, true) => (format!("mp{i}"), format!("/srv/share{i},mp=/mnt/s{i}")),
        (DiskKind::NoSize, false) => (format!("ide{i}"), "none,media=cdrom".to_owned()),
        (DiskKind::Passthrough, false) => (
            format!("sata{i}"),
            format!("/dev/disk/by-id/ata-DISK{vmid}{i},backup=0"),
        ),
        (DiskKind::Passthrough, true) => return None,
        (DiskKind::Unused, _) => (format!("unused{i}"), format!("local-lvm:vm-{vmid}-disk-9{i}")),
    })
}

/// `/nodes/{node}/network` of the node numbered `n`.
fn node_network(n: usize, spec: &NetworkSpec) -> Value {
    if spec.failed {
        return json!({"error": {"status": 595, "message": "no route to host"}});
    }
    let eth = |name: &str| json!({"iface": name, "type": "eth", "active": 1, "exists": 1});
    let mut rows = vec![eth("eno1"), eth("eno2")];
    let uplink = if spec.bond {
        rows.push(
            json!({"iface": "bond0", "type": "bond", "active": 1, "slaves": "eno1 eno2", "bond_mode": "active-backup"}),
        );
        "bond0"
    } else {
        "eno1"
    };
    let address = format!("10.99.{n}.1/24");
    let mut vmbr0 =
        json!({"iface": "vmbr0", "type": "bridge", "active": 1, "bridge_ports": uplink, "bridge_vlan_aware": 1});
    if let Some(mtu) = spec.mtu {
        vmbr0["mtu"] = json!(mtu.to_string());
    }
    let mut holder = &mut vmbr0;
    let mut vlan_row = spec.vlan.map(|(vid, on_bond)| {
        let raw = if on_bond && spec.bond { "bond0" } else { "vmbr0" };
        json!({"iface": format!("{raw}.{vid}"), "type": "vlan", "active": 1, "vlan-id": vid, "vlan-raw-device": raw})
    });
    if spec.address_on_vlan {
        if let Some(vlan) = vlan_row.as_mut() {
            holder = vlan;
        }
    }
    holder["cidr"] = json!(address);
    if spec.v6 {
        holder["cidr6"] = json!(format!("2001:db8:99:{n}::1/64"));
    }
    rows.push(vmbr0);
    rows.extend(vlan_row);
    if spec.second_bridge {
        rows.push(
            json!({"iface": "vmbr1", "type": "bridge", "active": 1, "bridge_ports": "none", "comments": "isolated\n"}),
        );
    }
    Value::Array(rows)
}

/// The planner input for these guests against `netbox` (an empty NetBox when null).
pub fn snapshot(guests: &[GuestSpec], netbox: Value) -> Value {
    snapshot_with_networks(guests, &[], netbox)
}

/// The same, with these node networks (the default one for nodes without a spec).
pub fn snapshot_with_networks(guests: &[GuestSpec], networks: &[NetworkSpec], netbox: Value) -> Value {
    let nodes = ["pve1", "pve2", "pve3"];
    let mut status = vec![json!({"type": "cluster", "name": "gen", "nodes": 3, "quorate": 1})];
    let mut resources = Vec::new();
    for node in nodes {
        status.push(json!({"type": "node", "name": node, "online": 1}));
        resources.push(json!({"type": "node", "id": format!("node/{node}"), "node": node, "status": "online"}));
    }
    let mut proxmox = Map::new();
    let mut seen = std::collections::BTreeSet::new();
    for g in guests.iter().filter(|g| seen.insert(g.vmid)) {
        let kind = if g.lxc { "lxc" } else { "qemu" };
        let node = nodes[g.node];
        let tags: Vec<&str> = g.tags.iter().map(|t| TAGS[*t]).collect();
        resources.push(json!({
            "type": kind, "id": format!("{kind}/{}", g.vmid), "vmid": g.vmid, "name": NAMES[g.name], "node": node,
            "status": if g.running { "running" } else { "stopped" }, "maxcpu": g.cores,
            "maxmem": g.memory_mib << 20, "template": u8::from(g.template), "tags": tags.join(";"),
        }));
        if g.listed_twice {
            let mut twin = resources.last().cloned().unwrap_or_default();
            twin["name"] = json!(format!("{}-listed-again", NAMES[g.name]));
            resources.push(twin);
        }
        let mut config = Map::new();
        config.insert(if g.lxc { "hostname" } else { "name" }.into(), json!(NAMES[g.name]));
        config.insert("memory".into(), number(g.memory_mib, g.as_strings));
        config.insert("cores".into(), number(g.cores, g.as_strings));
        let disk = if g.lxc { "rootfs" } else { "scsi0" };
        config.insert(
            disk.into(),
            json!(format!("local-lvm:vm-{}-disk-0,size={}G", g.vmid, g.disk_gib)),
        );
        for (key, line) in g.disks.iter().filter_map(|d| disk_line(g, d)) {
            config.insert(key, json!(line));
        }
        if !g.lxc {
            config.insert("agent".into(), json!(if g.agent { "1" } else { "0" }));
        }
        let mut agent_ifaces = vec![json!({"name": "lo", "hardware-address": "00:00:00:00:00:00",
            "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]})];
        for nic in &g.nics {
            let mac = format!("BC:24:11:{:02X}:{:02X}:{:02X}", g.vmid % 256, nic.index, nic.mac);
            let mut parts = Vec::new();
            if g.lxc {
                parts.push(format!("name=eth{}", nic.index));
                parts.push(format!("hwaddr={mac}"));
            } else {
                parts.push(format!("virtio={mac}"));
            }
            parts.push("bridge=vmbr0".to_owned());
            if let Some(vlan) = nic.vlan {
                parts.push(format!("tag={vlan}"));
            }
            if nic.link_down {
                parts.push("link_down=1".to_owned());
            }
            let v4 = nic
                .address
                .map(|a| format!("10.{}.{}.{a}/24", g.vmid % 200, nic.subnet));
            let v6 = nic
                .address
                .filter(|_| nic.v6)
                .map(|a| format!("2001:db8:{}:{}::{a:x}/64", g.vmid, nic.subnet));
            if g.lxc {
                parts.push(format!("ip={}", v4.clone().unwrap_or_else(|| "dhcp".into())));
                if let Some(v6) = &v6 {
                    parts.push(format!("ip6={v6}"));
                }
            } else if let Some(v4) = &v4 {
                config.insert(format!("ipconfig{}", nic.index), json!(format!("ip={v4},gw=10.0.0.1")));
            }
            config.insert(format!("net{}", nic.index), json!(parts.join(",")));
            let mut addresses = Vec::new();
            if let Some(v4) = &v4 {
                let (ip, prefix) = v4.split_once('/').unwrap();
                addresses.push(
                    json!({"ip-address": ip, "ip-address-type": "ipv4", "prefix": prefix.parse::<u8>().unwrap()}),
                );
            }
            addresses
                .push(json!({"ip-address": format!("fe80::{:x}", nic.mac), "ip-address-type": "ipv6", "prefix": 64}));
            agent_ifaces.push(json!({"name": format!("eth{}", nic.index), "hardware-address": mac.to_lowercase(), "ip-addresses": addresses}));
        }
        if g.template {
            config.insert("template".into(), json!(1));
        } else {
            proxmox.insert(
                format!("/nodes/{node}/{kind}/{}/snapshot", g.vmid),
                Value::Array(snapshots(g)),
            );
        }
        proxmox.insert(format!("/nodes/{node}/{kind}/{}/config", g.vmid), Value::Object(config));
        if !g.lxc && g.agent && g.running {
            proxmox.insert(
                format!("/nodes/{node}/qemu/{}/agent/network-get-interfaces", g.vmid),
                json!({"result": agent_ifaces}),
            );
        }
    }
    // Storage, backups, tasks and jobs follow from the guests, so they change with them.
    let storage: Vec<Value> = ["local", "local-lvm", "nfs-a"]
        .iter()
        .take(1 + guests.len() % 3)
        .map(|name| {
            json!({"storage": name, "type": if *name == "nfs-a" { "nfs" } else { "dir" },
            "content": if *name == "local-lvm" { "images" } else { "images,backup" },
            "shared": u8::from(*name == "nfs-a"),
            "server": if *name == "nfs-a" { json!("10.0.0.9") } else { Value::Null }})
        })
        .collect();
    let unique: Vec<&GuestSpec> = {
        let mut seen = std::collections::BTreeSet::new();
        guests.iter().filter(|g| seen.insert(g.vmid)).collect()
    };
    for (at, node) in nodes.iter().enumerate() {
        let here: Vec<&&GuestSpec> = unique.iter().filter(|g| g.node == at).collect();
        let local = here
            .iter()
            .filter(|g| g.vmid % 3 == 0)
            .map(|g| backup(g, "local"))
            .collect();
        proxmox.insert(proxmox_path::backup_content(node, "local"), Value::Array(local));
        let mut tasks: Vec<Value> = here.iter().flat_map(|g| tasks(node, g)).collect();
        tasks.push(task(node, 1, 1_700_000_000, "aptupdate", ""));
        tasks.sort_by_key(|t| std::cmp::Reverse(t["starttime"].as_u64()));
        proxmox.insert(proxmox_path::node_tasks(node, 0, 100), Value::Array(tasks));
    }
    if storage.len() == 3 {
        let shared = unique
            .iter()
            .filter(|g| g.vmid % 5 == 0)
            .map(|g| backup(g, "nfs-a"))
            .collect();
        proxmox.insert(proxmox_path::backup_content(nodes[0], "nfs-a"), Value::Array(shared));
    }
    let selection: Vec<String> = unique.iter().take(3).map(|g| g.vmid.to_string()).collect();
    let backup_jobs = match unique.first() {
        Some(first) => json!([{"id": format!("backup-{}", first.vmid), "type": "vzdump", "enabled": first.cores % 2,
            "schedule": "daily 02:00", "storage": "local", "vmid": selection.join(","),
            "prune-backups": format!("keep-last={}", first.cores)}]),
        None => json!([]),
    };
    proxmox.insert(proxmox_path::CLUSTER_BACKUP.into(), backup_jobs);
    let replication: Vec<Value> = guests
        .iter()
        .filter(|g| g.vmid % 4 == 0)
        .map(|g| {
            json!({"id": format!("{}-{}", g.vmid, g.cores % 2), "guest": g.vmid, "jobnum": g.cores % 2,
            "type": "local", "target": nodes[(g.node + 1) % 3], "schedule": "*/30"})
        })
        .collect();
    let default_network = NetworkSpec {
        bond: false,
        vlan: None,
        address_on_vlan: false,
        v6: false,
        second_bridge: false,
        mtu: None,
        failed: false,
    };
    for (n, node) in nodes.iter().enumerate() {
        let spec = networks.get(n).unwrap_or(&default_network);
        proxmox.insert(format!("/nodes/{node}/network"), node_network(n + 1, spec));
    }
    proxmox.insert("/storage".into(), Value::Array(storage));
    proxmox.insert("/cluster/replication".into(), Value::Array(replication));
    proxmox.insert("/cluster/status".into(), Value::Array(status));
    proxmox.insert("/cluster/resources".into(), Value::Array(resources));
    let netbox = if netbox.is_null() { empty_netbox() } else { netbox };
    json!({"settings": {}, "endpoint": {"id": 7, "name": "gen"}, "proxmox": proxmox, "netbox": netbox})
}

/// A chain of `cores % 3` snapshots, then `current` on top.
fn snapshots(g: &GuestSpec) -> Vec<Value> {
    let mut list = Vec::new();
    let mut parent: Option<String> = None;
    for n in 0..g.cores % 3 {
        let name = format!("snap{n}");
        let mut snapshot =
            json!({"name": name, "description": NAMES[g.name], "snaptime": 1_700_000_000 + g.vmid * 100 + n});
        if let Some(parent) = &parent {
            snapshot["parent"] = json!(parent);
        }
        parent = Some(name);
        list.push(snapshot);
    }
    let mut current = json!({"name": "current", "description": "You are here!"});
    if let Some(parent) = parent {
        current["parent"] = json!(parent);
    }
    list.push(current);
    list
}

fn backup(g: &GuestSpec, storage: &str) -> Value {
    let kind = if g.lxc { "lxc" } else { "qemu" };
    let format = if g.lxc { "tar.zst" } else { "vma.zst" };
    json!({"volid": format!("{storage}:backup/vzdump-{kind}-{}-2026_07_20-01_00_00.{format}", g.vmid),
        "content": "backup", "format": format, "vmid": g.vmid, "ctime": 1_784_509_200 + g.vmid,
        "size": g.disk_gib << 28, "notes": NAMES[g.name]})
}

fn task(node: &str, pid: u64, start: u64, kind: &str, id: &str) -> Value {
    json!({"upid": format!("UPID:{node}:{pid:08X}:{:08X}:{start:08X}:{kind}:{id}:root@pam:", pid * 7),
        "node": node, "pid": pid, "pstart": pid * 7, "starttime": start, "endtime": start + 3, "type": kind, "id": id,
        "user": "root@pam", "status": if pid % 7 == 0 { "unexpected status" } else { "OK" }})
}

/// A start and (for every other guest) a backup in the archive.
fn tasks(node: &str, g: &GuestSpec) -> Vec<Value> {
    let start = if g.lxc { "vzstart" } else { "qmstart" };
    let mut list = vec![task(
        node,
        g.vmid * 10,
        1_700_000_000 + g.vmid * 60,
        start,
        &g.vmid.to_string(),
    )];
    if g.vmid % 2 == 0 {
        list.push(task(
            node,
            g.vmid * 10 + 1,
            1_700_000_030 + g.vmid * 60,
            "vzdump",
            &g.vmid.to_string(),
        ));
    }
    list
}

/// Every collection the planner knows, empty: a NetBox nobody synced yet.
pub fn empty_netbox() -> Value {
    let models = proxbox_planner::ALL_MODELS.iter();
    Value::Object(models.map(|m| (m.collection.to_owned(), json!([]))).collect())
}

const MODES: [&str; 3] = ["always", "bootstrap_only", "disabled"];

/// Settings with a random mode per resource (what an operator switches).
pub fn modes() -> impl Strategy<Value = Value> {
    prop::collection::vec(0..MODES.len(), super::SYNCED_RESOURCES.len()).prop_map(|picks| {
        let settings: Map<String, Value> = super::SYNCED_RESOURCES
            .iter()
            .zip(picks)
            .map(|(resource, pick)| (format!("sync_mode_{resource}"), json!(MODES[pick])))
            .collect();
        Value::Object(settings)
    })
}
