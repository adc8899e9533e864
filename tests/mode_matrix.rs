//! Every resource in each of the three modes, with and without the
//! bootstrap-only tag on its objects, with manual objects around that must
//! never be touched. Every combination must also converge.

mod support;

use serde_json::{json, Value};
use support::{apply::apply, plan, records, records_of, sample, sync, vm_of, writes};

/// Each resource and the collection its own objects live in.
const RESOURCES: [(&str, &str, &str); 8] = [
    ("cluster", "/api/virtualization/clusters/", "virtualization.cluster"),
    ("node", "/api/dcim/devices/", "dcim.device"),
    (
        "vm",
        "/api/virtualization/virtual-machines/",
        "virtualization.virtualmachine",
    ),
    (
        "vm_interface",
        "/api/virtualization/interfaces/",
        "virtualization.vminterface",
    ),
    ("mac", "/api/dcim/mac-addresses/", "dcim.macaddress"),
    ("ip_address", "/api/ipam/ip-addresses/", "ipam.ipaddress"),
    (
        "vm_template",
        "/api/plugins/proxbox/vm-templates/",
        "netbox_proxbox.proxmoxvmtemplate",
    ),
    (
        "storage",
        "/api/plugins/proxbox/storage/",
        "netbox_proxbox.proxmoxstorage",
    ),
];

const MANUAL_IDS: [u64; 8] = [9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008];
const MANUAL_COLLECTIONS: [&str; 8] = [
    "/api/virtualization/virtual-machines/",
    "/api/dcim/devices/",
    "/api/virtualization/interfaces/",
    "/api/ipam/ip-addresses/",
    "/api/dcim/mac-addresses/",
    "/api/ipam/vlans/",
    "/api/virtualization/virtual-disks/",
    "/api/dcim/interfaces/",
];

fn push(state: &mut Value, collection: &str, object: Value) {
    records(state, collection).push(object);
}

fn id_of(state: &Value, collection: &str, pred: impl Fn(&Value) -> bool) -> Value {
    records_of(state, collection).iter().find(|o| pred(o)).unwrap()["id"].clone()
}

/// A synced sample, plus objects an operator made by hand.
fn world_with_manual_objects() -> Value {
    let (_, mut world) = sync(&sample());
    let cluster = id_of(&world, "/api/virtualization/clusters/", |_| true);
    let vm = vm_of(&mut world, 101)["id"].clone();
    let untagged = |id: u64, rest: Value| {
        let mut object = json!({"id": id, "tags": [], "custom_fields": {}, "last_updated": "2020-01-01T00:00:00Z"});
        object
            .as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        object
    };
    push(
        &mut world,
        "/api/virtualization/virtual-machines/",
        untagged(9001, json!({"name": "hand-made", "cluster": {"id": cluster}})),
    );
    push(
        &mut world,
        "/api/dcim/devices/",
        untagged(9002, json!({"name": "switch-1", "cluster": {"id": cluster}})),
    );
    push(
        &mut world,
        "/api/virtualization/interfaces/",
        untagged(9003, json!({"name": "mgmt0", "virtual_machine": {"id": vm}})),
    );
    let on_mgmt = json!({"assigned_object_type": "virtualization.vminterface", "assigned_object_id": 9003});
    let mut ip = on_mgmt.clone();
    ip["address"] = json!("192.0.2.10/24");
    push(&mut world, "/api/ipam/ip-addresses/", untagged(9004, ip));
    let mut mac = on_mgmt;
    mac["mac_address"] = json!("02:00:00:00:00:01");
    push(&mut world, "/api/dcim/mac-addresses/", untagged(9005, mac));
    push(
        &mut world,
        "/api/ipam/vlans/",
        untagged(9006, json!({"vid": 99, "name": "manual"})),
    );
    push(
        &mut world,
        "/api/virtualization/virtual-disks/",
        untagged(
            9007,
            json!({"name": "scsi9", "size": 1024, "virtual_machine": {"id": vm}}),
        ),
    );
    let pve1 = id_of(&world, "/api/dcim/devices/", |d| d["name"] == "pve1");
    push(
        &mut world,
        "/api/dcim/interfaces/",
        untagged(
            9008,
            json!({"name": "oob0", "type": {"value": "1000base-t"}, "device": {"id": pve1}}),
        ),
    );
    world
}

/// Proxmox changes that touch every resource type.
fn change_proxmox(world: &mut Value) {
    for row in world["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        match row["id"].as_str() {
            Some("qemu/102") => row["name"] = json!("web02-renamed"),
            Some("qemu/101") => row["status"] = json!("stopped"),
            _ => {}
        }
    }
    let web01 = world["proxmox"]["/nodes/pve1/qemu/101/config"].as_object_mut().unwrap();
    web01.remove("net1");
    let web02 = world["proxmox"]["/nodes/pve2/qemu/102/config"].as_object_mut().unwrap();
    web02.insert("net0".into(), json!("e1000=BC:24:11:AA:02:99,bridge=vmbr0,tag=20"));
    let agent = &mut world["proxmox"]["/nodes/pve2/qemu/102/agent/network-get-interfaces"]["result"][1];
    agent["hardware-address"] = json!("bc:24:11:aa:02:99");
    agent["ip-addresses"][0]["ip-address"] = json!("10.0.20.99");
    world["proxmox"]["/nodes/pve1/qemu/101/config"]["scsi0"] = json!("local-lvm:vm-101-disk-0,iothread=1,size=40G");
    world["proxmox"]["/cluster/status"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "node", "name": "pve4", "online": 1}));
    world["proxmox"]["/nodes/pve4/network"] = json!([
        {"iface": "eno1", "type": "eth", "active": 1},
        {"iface": "vmbr0", "type": "bridge", "active": 1, "bridge_ports": "eno1", "cidr": "10.0.0.14/24"},
    ]);
    let pve1 = world["proxmox"]["/nodes/pve1/network"].as_array_mut().unwrap();
    pve1.retain(|row| row["iface"] != "eno3");
    for row in pve1.iter_mut().filter(|row| row["iface"] == "vmbr1") {
        row["comments"] = json!("lab segment, now routed");
    }
    world["proxmox"]["/nodes/pve4/tasks?source=archive&start=0&limit=100"] = json!([]);
    world["proxmox"]["/nodes/pve1/qemu/9000/config"]["description"] = json!("Debian 12, refreshed");
    world["proxmox"]["/storage"][0]["content"] = json!("iso");
    world["proxmox"]["/cluster/replication"][0]["schedule"] = json!("*/5");
    // NetBox drift the planner owns: a node's status and the cluster's tag.
    for device in records(world, "/api/dcim/devices/") {
        if device["name"] == "pve1" {
            device["status"] = json!({"value": "offline", "label": "Offline"});
        }
    }
    world["netbox"]["/api/virtualization/clusters/"][0]["tags"] = json!([]);
}

fn tag_everything(world: &mut Value, collection: &str) {
    let tag = world["netbox"]["/api/extras/tags/"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "bootstrap-only")
        .unwrap()
        .clone();
    for object in records(world, collection) {
        if !MANUAL_IDS.contains(&object["id"].as_u64().unwrap()) {
            object["tags"]
                .as_array_mut()
                .unwrap()
                .push(json!({"id": tag["id"], "slug": "bootstrap-only", "name": "Bootstrap only"}));
        }
    }
}

fn check(resource: &str, collection: &str, model: &str, mode: &str, tagged: bool) {
    let case = format!("{resource}={mode} tagged={tagged}");
    let mut world = world_with_manual_objects();
    change_proxmox(&mut world);
    if tagged {
        tag_everything(&mut world, collection);
    }
    world["settings"][format!("sync_mode_{resource}")] = json!(mode);
    let plan = plan(&world);
    let ops: Vec<&Value> = plan["operations"].as_array().unwrap().iter().collect();
    let own: Vec<&&Value> = ops.iter().filter(|op| op["resource"] == resource).collect();
    let writes_of = |action: &str| {
        own.iter()
            .filter(|op| op["action"] == action && op["model"] == model)
            .count()
    };

    for op in &ops {
        let id = op["target"]["id"].as_u64().unwrap_or(0);
        assert!(
            !MANUAL_IDS.contains(&id) || op["action"] == "skip",
            "{case}: touches manual object: {}",
            op["id"]
        );
    }
    match (mode, tagged) {
        ("disabled", _) => {
            assert!(
                own.iter()
                    .all(|op| op["action"] == "skip" && op["reason"] == "mode-disabled"),
                "{case}: {own:?}"
            );
            let stages: std::collections::BTreeSet<&str> = own.iter().map(|op| op["stage"].as_str().unwrap()).collect();
            assert_eq!(own.len(), stages.len(), "{case}: one skip per stage, not per object");
        }
        ("bootstrap_only", true) => {
            assert_eq!(writes_of("update") + writes_of("delete"), 0, "{case}");
            assert!(own.iter().any(|op| op["reason"] == "bootstrap-only-tag"), "{case}");
        }
        _ => {
            assert!(
                writes_of("update") + writes_of("delete") + writes_of("create") > 0,
                "{case}: nothing planned"
            );
        }
    }
    if mode == "bootstrap_only" {
        for op in own.iter().filter(|op| op["action"] == "create" && op["model"] == model) {
            assert!(
                op["fields"]["tags"]
                    .as_array()
                    .unwrap()
                    .contains(&json!({"slug": "bootstrap-only"})),
                "{case}: {}",
                op["id"]
            );
        }
    }
    let mut next = world.clone();
    apply(&mut next["netbox"], &plan).unwrap_or_else(|e| panic!("{case}: apply: {e}"));
    for (id, collection) in MANUAL_IDS.iter().zip(MANUAL_COLLECTIONS) {
        let before = world["netbox"][collection]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == *id)
            .cloned();
        let after = next["netbox"][collection]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == *id)
            .cloned();
        assert_eq!(before, after, "{case}: manual object {id} changed");
    }
    assert_eq!(
        writes(&support::plan(&next)),
        Vec::<String>::new(),
        "{case}: does not converge"
    );
}

#[test]
fn every_resource_in_every_mode() {
    for (resource, collection, model) in RESOURCES {
        for mode in ["always", "bootstrap_only", "disabled"] {
            for tagged in [false, true] {
                check(resource, collection, model, mode, tagged);
            }
        }
    }
}
