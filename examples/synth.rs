//! Deterministic synthetic endpoints for the benchmarks.
//!
//! `cargo run --release --example synth -- GUESTS STATE > input.json`, where
//! STATE is `empty` (a fresh NetBox), `synced` (NetBox already matches) or
//! `drift` (synced, then 10% of the guests changed in Proxmox). Same
//! arguments, same bytes: the generator uses its own seeded xorshift.
//! Besides the guests: backups on each node's `local`, snapshots, a task
//! archive per node and a backup job.

#[path = "../tests/support/apply.rs"]
#[allow(dead_code)]
mod apply;

use serde_json::{json, Map, Value};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TAGS: [&str; 6] = ["prod", "staging", "web", "db", "backup", "team-a"];

fn guest(rng: &mut Rng, index: u64, nodes: &[String], proxmox: &mut Map<String, Value>) -> Value {
    let vmid = 1000 + index;
    let lxc = index % 3 == 0;
    let kind = if lxc { "lxc" } else { "qemu" };
    let template = index % 50 == 49;
    let running = !template && index % 7 != 0;
    let node = &nodes[(index as usize) % nodes.len()];
    // Every 97th guest reuses its neighbour's name: duplicates happen.
    let name = if index % 97 == 0 && index > 0 {
        format!("vm-{}", index - 1)
    } else {
        format!("vm-{index}")
    };
    let memory = [512u64, 1024, 2048, 4096, 8192][rng.below(5) as usize];
    let cores = 1 + rng.below(8);
    let tags: Vec<&str> = (0..rng.below(3))
        .map(|_| TAGS[rng.below(TAGS.len() as u64) as usize])
        .collect();
    let mut config = Map::new();
    config.insert(if lxc { "hostname" } else { "name" }.into(), json!(name));
    config.insert(
        "memory".into(),
        if index % 2 == 0 {
            json!(memory)
        } else {
            json!(memory.to_string())
        },
    );
    config.insert("cores".into(), json!(cores));
    config.insert(
        "description".into(),
        json!(format!("Synthetic guest {index}\nOwner: team-{}", index % 9)),
    );
    config.insert("digest".into(), json!(format!("{:040x}", rng.next())));
    if lxc {
        config.insert(
            "rootfs".into(),
            json!(format!("local-lvm:vm-{vmid}-disk-0,size={}G", 4 + rng.below(60))),
        );
    } else {
        config.insert(
            "scsi0".into(),
            json!(format!(
                "local-lvm:vm-{vmid}-disk-0,iothread=1,size={}G",
                8 + rng.below(200)
            )),
        );
        config.insert("ide2".into(), json!("none,media=cdrom"));
        config.insert("agent".into(), json!("1"));
        config.insert("ostype".into(), json!("l26"));
    }
    if template {
        config.insert("template".into(), json!(1));
    }
    let nic_count = 2 + rng.below(3);
    let mut agent = vec![json!({"name": "lo", "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]})];
    for n in 0..nic_count {
        let mac = format!(
            "BC:24:{:02X}:{:02X}:{:02X}:{:02X}",
            (vmid >> 16) & 0xff,
            (vmid >> 8) & 0xff,
            vmid & 0xff,
            n
        );
        let vlan = if rng.below(3) == 0 {
            format!(",tag={}", 10 + 10 * rng.below(4))
        } else {
            String::new()
        };
        let v4 = format!("10.{}.{}.{}", (vmid >> 8) & 0xff, vmid & 0xff, 10 + n);
        let v6 = format!("2001:db8:{:x}:{n}::10", vmid);
        let nic = if lxc {
            format!("name=eth{n},bridge=vmbr0,hwaddr={mac},ip={v4}/24,ip6={v6}/64,type=veth{vlan}")
        } else {
            format!("virtio={mac},bridge=vmbr0,firewall=1{vlan}")
        };
        config.insert(format!("net{n}"), json!(nic));
        agent.push(
            json!({"name": format!("eth{n}"), "hardware-address": mac.to_lowercase(), "ip-addresses": [
                {"ip-address": v4, "ip-address-type": "ipv4", "prefix": 24},
                {"ip-address": v6, "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": format!("fe80::be24:11ff:fe00:{n:x}%eth{n}"), "ip-address-type": "ipv6", "prefix": 64},
            ]}),
        );
    }
    proxmox.insert(format!("/nodes/{node}/{kind}/{vmid}/config"), Value::Object(config));
    if !template {
        proxmox.insert(format!("/nodes/{node}/{kind}/{vmid}/snapshot"), snapshots(index));
    }
    if !lxc && running {
        proxmox.insert(
            format!("/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"),
            json!({"result": agent}),
        );
    }
    json!({
        "id": format!("{kind}/{vmid}"), "type": kind, "vmid": vmid, "name": name, "node": node,
        "status": if running { "running" } else { "stopped" }, "template": u8::from(template),
        "maxcpu": cores, "maxmem": memory << 20, "maxdisk": 32u64 << 30, "cpu": 0.01, "mem": 0, "disk": 0,
        "netin": rng.below(1 << 30), "netout": rng.below(1 << 30), "uptime": rng.below(1 << 20), "tags": tags.join(";"),
    })
}

/// Every fifth guest has two snapshots in a chain; `current` follows.
fn snapshots(index: u64) -> Value {
    if index % 5 != 0 {
        return json!([{"name": "current", "description": "You are here!", "running": 1}]);
    }
    let taken = 1_780_000_000 + index * 60;
    json!([
        {"name": "before-upgrade", "description": "weekly", "snaptime": taken, "vmstate": 0},
        {"name": "after-upgrade", "parent": "before-upgrade", "snaptime": taken + 3600, "vmstate": 0},
        {"name": "current", "parent": "after-upgrade", "description": "You are here!", "running": 1},
    ])
}

/// Tasks per node in the archive: under a first page (100), so one read each.
const TASKS_PER_NODE: u64 = 60;

/// The per-node backup content and task archives of these guests: a backup
/// of every fourth guest on its node's `local`, a start of the node's first
/// guests, and a node task.
fn node_history(guests: u64, nodes: &[String], proxmox: &mut Map<String, Value>) {
    for (at, node) in nodes.iter().enumerate() {
        let here = (0..guests).filter(|i| *i as usize % nodes.len() == at && i % 50 != 49);
        let mut backups = Vec::new();
        let mut tasks = vec![
            json!({"upid": format!("UPID:{node}:00000001:00000007:6A000000:aptupdate::root@pam:"),
            "node": node, "pid": 1, "starttime": 1_778_384_896, "endtime": 1_778_384_900, "type": "aptupdate", "id": "",
            "user": "root@pam", "status": "OK"}),
        ];
        for index in here {
            let (vmid, kind) = (1000 + index, if index % 3 == 0 { "lxc" } else { "qemu" });
            let start = 1_780_000_000 + index * 30;
            if index % 4 == 0 {
                let format = if kind == "lxc" { "tar.zst" } else { "vma.zst" };
                backups.push(
                    json!({"volid": format!("local:backup/vzdump-{kind}-{vmid}-2026_06_09-01_00_00.{format}"),
                    "content": "backup", "format": format, "vmid": vmid, "ctime": start, "size": 1u64 << 31}),
                );
            }
            if (tasks.len() as u64) < TASKS_PER_NODE {
                let start_type = if kind == "lxc" { "vzstart" } else { "qmstart" };
                tasks.push(json!({"upid": format!("UPID:{node}:{vmid:08X}:{:08X}:{start:08X}:{start_type}:{vmid}:root@pam:", vmid * 7),
                    "node": node, "pid": vmid, "pstart": vmid * 7, "starttime": start, "endtime": start + 2,
                    "type": start_type, "id": vmid.to_string(), "user": "root@pam", "status": "OK"}));
            }
        }
        tasks.sort_by_key(|t| std::cmp::Reverse(t["starttime"].as_u64()));
        proxmox.insert(
            format!("/nodes/{node}/storage/local/content?content=backup"),
            Value::Array(backups),
        );
        proxmox.insert(
            format!("/nodes/{node}/tasks?source=archive&start=0&limit=100"),
            Value::Array(tasks),
        );
    }
}

/// A node's `/nodes/{node}/network`: two NICs bonded under a VLAN-aware
/// bridge with the node's addresses, and a storage VLAN on it.
fn node_network(at: usize) -> Value {
    let nic = |name: &str, priority: u64| {
        json!({"iface": name, "type": "eth", "active": 1, "exists": 1, "families": [], "method": "manual",
        "method6": "manual", "priority": priority})
    };
    let host = at + 11;
    json!([
        nic("eno1", 1),
        nic("eno2", 2),
        {"iface": "bond0", "type": "bond", "active": 1, "autostart": 1, "bond_mode": "802.3ad", "slaves": "eno1 eno2",
            "families": [], "method": "manual", "method6": "manual", "mtu": "9000", "priority": 3},
        {"iface": "vmbr0", "type": "bridge", "active": 1, "autostart": 1, "bridge_ports": "bond0", "bridge_vlan_aware": 1,
            "bridge_vids": "2-4094", "cidr": format!("10.0.0.{host}/24"), "cidr6": format!("2001:db8::{host:x}/64"),
            "families": ["inet", "inet6"], "gateway": "10.0.0.1", "method": "static", "method6": "static",
            "mtu": "9000", "priority": 4},
        {"iface": "vmbr0.50", "type": "vlan", "active": 1, "autostart": 1, "vlan-id": 50, "vlan-raw-device": "vmbr0",
            "cidr": format!("10.0.50.{host}/24"), "families": ["inet"], "method": "static", "method6": "manual",
            "priority": 5},
    ])
}

fn endpoint(guests: u64) -> Value {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let nodes: Vec<String> = (1..=(guests / 200).clamp(3, 64)).map(|i| format!("pve{i}")).collect();
    let mut proxmox = Map::new();
    let mut status =
        vec![json!({"type": "cluster", "id": "cluster", "name": "synth", "nodes": nodes.len(), "quorate": 1})];
    let mut resources = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        status.push(json!({"type": "node", "id": format!("node/{node}"), "name": node, "nodeid": i + 1, "online": 1}));
        resources.push(
            json!({"id": format!("node/{node}"), "type": "node", "node": node, "status": "online", "maxcpu": 64}),
        );
        proxmox.insert(format!("/nodes/{node}/network"), node_network(i));
        for storage in ["local", "local-lvm", "ceph"] {
            resources.push(
                json!({"id": format!("storage/{node}/{storage}"), "type": "storage", "storage": storage,
                "node": node, "status": "available", "shared": u8::from(storage == "ceph")}),
            );
        }
    }
    for index in 0..guests {
        resources.push(guest(&mut rng, index, &nodes, &mut proxmox));
    }
    let replication: Vec<Value> = (0..guests)
        .step_by(20)
        .map(|i| {
            json!({"id": format!("{}-0", 1000 + i), "type": "local", "guest": 1000 + i, "jobnum": 0,
            "target": nodes[(i as usize + 1) % nodes.len()], "schedule": "*/15"})
        })
        .collect();
    proxmox.insert("/cluster/status".into(), Value::Array(status));
    proxmox.insert("/cluster/resources".into(), Value::Array(resources));
    proxmox.insert("/cluster/replication".into(), Value::Array(replication));
    node_history(guests, &nodes, &mut proxmox);
    proxmox.insert(
        "/cluster/backup".into(),
        json!([{"id": "backup-nightly", "type": "vzdump", "enabled": 1,
        "schedule": "daily 01:00", "storage": "local", "all": 1, "mode": "snapshot", "prune-backups": "keep-last=3"}]),
    );
    proxmox.insert("/storage".into(), json!([{"storage": "local", "type": "dir", "path": "/var/lib/vz", "content": "iso,vztmpl,backup"},
        {"storage": "local-lvm", "type": "lvmthin", "vgname": "pve"}, {"storage": "ceph", "type": "rbd", "pool": "vm"}]));
    proxmox.insert(
        "/cluster/sdn/zones".into(),
        json!([{"zone": "evpn1", "type": "evpn", "controller": "ctl"}]),
    );
    proxmox.insert(
        "/cluster/sdn/vnets".into(),
        json!([{"vnet": "vnet1", "zone": "evpn1", "tag": 10001}]),
    );
    let models = proxbox_planner::ALL_MODELS.iter();
    let netbox: Map<String, Value> = models.map(|m| (m.collection.to_owned(), json!([]))).collect();
    json!({"settings": {"max_deletes": 100000}, "endpoint": {"id": 1, "name": "synth"}, "sync_types": ["all"],
        "sync_user": {"id": 1, "username": "proxbox-sync"}, "proxmox": proxmox, "netbox": netbox})
}

/// What the REST API adds to every object and the apply simulator leaves out:
/// without it the NetBox side of the input would be unrealistically small.
fn realistic(state: &mut Value) {
    for (collection, objects) in state.as_object_mut().into_iter().flatten() {
        for object in objects.as_array_mut().into_iter().flatten() {
            let id = object["id"].clone();
            let label = object
                .get("name")
                .or_else(|| object.get("address"))
                .cloned()
                .unwrap_or(json!(""));
            let fields = object.as_object_mut().unwrap();
            fields.insert(
                "url".into(),
                json!(format!("https://netbox.example.net{collection}{id}/")),
            );
            fields.insert("display_url".into(), json!(format!("https://netbox.example.net/{id}/")));
            fields.insert("display".into(), label);
            fields.insert("created".into(), json!("2026-11-01T09:00:00.000000Z"));
            fields.entry("description").or_insert(json!(""));
            fields.entry("comments").or_insert(json!(""));
        }
    }
}

fn drift(input: &mut Value) {
    let resources = input["proxmox"]["/cluster/resources"].as_array_mut().unwrap();
    for (i, row) in resources.iter_mut().filter(|r| r["vmid"].is_u64()).enumerate() {
        match i % 30 {
            0 => row["name"] = json!(format!("{}-renamed", row["name"].as_str().unwrap())),
            10 => row["status"] = json!("stopped"),
            20 => row["maxmem"] = json!(row["maxmem"].as_u64().unwrap() * 2),
            _ => {}
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let guests: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let state = args.next().unwrap_or_else(|| "empty".to_owned());
    let mut input = endpoint(guests);
    // Every Proxmox answer the planner asks for, or the benchmark would time a refusal.
    let asked = proxbox_planner::discover(&input)
        .unwrap_or_else(|e| panic!("discover: {e}"))
        .proxmox;
    assert!(
        asked.is_empty(),
        "synth lacks Proxmox answers the planner needs: {asked:?}"
    );
    if state != "empty" {
        let plan = proxbox_planner::plan(&input).unwrap_or_else(|e| panic!("plan: {e}"));
        let plan = serde_json::to_value(plan).unwrap_or_else(|e| panic!("plan: {e}"));
        apply::apply(&mut input["netbox"], &plan).unwrap_or_else(|e| panic!("apply: {e}"));
        // A host reads other users' changes of what the plan updates, not the sync's own: none here.
        input["netbox"][apply::CHANGELOG] = json!([]);
        realistic(&mut input["netbox"]);
    }
    if state == "drift" {
        drift(&mut input);
    }
    println!("{input}");
}
