//! The `vm-disks` stage: guest disks as NetBox virtual disks, through the
//! apply simulator (which keeps a VM's `disk` at the sum of its disks, as
//! NetBox does, and refuses any other value).

mod support;

use serde_json::{json, Value};
use support::{
    op, op_ids, ops, plan, records, records_of, sample, stage, sync, vm_of, warnings, without_plugin, writes,
};

const DISKS: &str = "/api/virtualization/virtual-disks/";
const DISK: &str = "vm-disks:virtualization.virtualdisk:";

fn disks_of(state: &mut Value, vmid: u64) -> Vec<Value> {
    let vm = vm_of(state, vmid)["id"].clone();
    records_of(state, DISKS)
        .iter()
        .filter(|d| d["virtual_machine"]["id"] == vm)
        .cloned()
        .collect()
}

fn names(disks: &[Value]) -> Vec<&str> {
    let mut names: Vec<&str> = disks.iter().map(|d| d["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    names
}

fn config<'a>(input: &'a mut Value, path: &str) -> &'a mut serde_json::Map<String, Value> {
    input["proxmox"][path].as_object_mut().unwrap()
}

#[test]
fn every_sized_disk_becomes_a_virtual_disk_and_the_vm_disk_is_their_sum() {
    let (first, mut synced) = sync(&sample());
    let efi = op(&first, &format!("{DISK}qemu/103/efidisk0"));
    assert_eq!(efi["action"], "create");
    assert_eq!(efi["fields"]["size"], 4, "4M");
    assert_eq!(efi["fields"]["description"], "Storage: local-lvm");
    assert_eq!(
        efi["fields"]["virtual_machine"],
        json!({"$ref": "virtual-machines:virtualization.virtualmachine:qemu/103"})
    );
    assert_eq!(
        op(&first, &format!("{DISK}qemu/103/scsi1"))["fields"]["size"],
        500 * 1024
    );
    assert_eq!(
        names(&disks_of(&mut synced, 103)),
        ["efidisk0", "scsi0", "scsi1", "tpmstate0"],
        "ide2 is a CD-ROM"
    );
    assert_eq!(names(&disks_of(&mut synced, 201)), ["mp0", "rootfs"]);
    assert_eq!(
        names(&disks_of(&mut synced, 104)),
        ["virtio0"],
        "unused0 is no disk, scsi1 has no size"
    );
    let vm103 = vm_of(&mut synced, 103).clone();
    assert_eq!(vm103["disk"], 100 * 1024 + 500 * 1024 + 4 + 4);
    assert_eq!(vm103["virtual_disk_count"], 4);
    // The VM's create wrote the same sum NetBox then keeps.
    let created = op(&first, "virtual-machines:virtualization.virtualmachine:qemu/103");
    assert_eq!(created["fields"]["disk"], vm103["disk"]);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}

/// NetBox recomputes a VM's `disk` after each disk write from what that
/// transaction sees: two side by side lose one. A VM's disk writes run one
/// after another, between the VM's own updates.
#[test]
fn a_vms_disk_writes_wait_for_each_other_and_its_later_update_for_them() {
    let first = plan(&sample());
    let of_103: Vec<&Value> = ops(&first, "create")
        .into_iter()
        .filter(|o| o["id"].as_str().unwrap().starts_with(&format!("{DISK}qemu/103/")))
        .collect();
    assert_eq!(of_103.len(), 4);
    for pair in of_103.windows(2) {
        assert!(
            pair[1]["depends_on"].as_array().unwrap().contains(&pair[0]["id"]),
            "{}",
            pair[1]
        );
    }
    let primary = op(&first, "ip-addresses:virtualization.virtualmachine:qemu/103/primary-ip");
    assert!(
        primary["depends_on"].as_array().unwrap().contains(&of_103[3]["id"]),
        "{primary}"
    );

    let (_, mut synced) = sync(&sample());
    let disks = config(&mut synced, "/nodes/pve2/qemu/103/config");
    disks.insert("scsi0".into(), json!("local-lvm:vm-103-disk-1,size=200G"));
    synced["proxmox"]["/cluster/resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["id"] == "qemu/103")
        .unwrap()["maxmem"] = json!(64u64 << 30);
    let next = plan(&synced);
    let resize = op(&next, &format!("{DISK}qemu/103/scsi0"));
    assert_eq!(resize["action"], "update");
    assert!(resize["depends_on"]
        .as_array()
        .unwrap()
        .contains(&json!("virtual-machines:virtualization.virtualmachine:qemu/103")));
}

#[test]
fn the_plugin_sync_state_names_the_storage_row() {
    let (first, mut synced) = sync(&sample());
    let state = op(
        &first,
        "vm-disks:netbox_proxbox.proxboxvirtualdisksyncstate:qemu/103/scsi1/sync-state",
    );
    assert_eq!(
        state["fields"]["proxbox_storage"],
        json!({"$ref": "storage:netbox_proxbox.proxmoxstorage:ceph-rbd"})
    );
    assert_eq!(state["fields"]["proxbox_storage_raw_value"], "ceph-rbd");
    // A run of the disk stage alone (the plugin's own stage request) links the row NetBox has.
    let scsi1 = disks_of(&mut synced, 103)
        .into_iter()
        .find(|d| d["name"] == "scsi1")
        .unwrap();
    records(&mut synced, "/api/plugins/proxbox/sync-state/virtual-disks/")
        .retain(|s| s["virtual_disk"]["id"] != scsi1["id"]);
    synced["sync_types"] = json!(["vm-disks"]);
    let again = plan(&synced);
    let recreated = op(
        &again,
        "vm-disks:netbox_proxbox.proxboxvirtualdisksyncstate:qemu/103/scsi1/sync-state",
    );
    let ceph = records_of(&synced, "/api/plugins/proxbox/storage/")
        .iter()
        .find(|s| s["name"] == "ceph-rbd")
        .unwrap()["id"]
        .clone();
    assert_eq!(recreated["fields"]["proxbox_storage"], ceph);
    assert_eq!(writes(&again).len(), 1, "{:?}", writes(&again));
}

#[test]
fn without_the_plugin_disks_are_planned_and_no_sync_state() {
    let (first, mut synced) = sync(&without_plugin(sample()));
    assert!(op_ids(&first).iter().any(|id| id.starts_with(DISK)));
    assert!(!op_ids(&first).iter().any(|id| id.contains("virtualdisksyncstate")));
    assert!(warnings(&first, "proxbox-plugin-absent")
        .iter()
        .all(|w| w["stage"] != "vm-disks"));
    assert_eq!(names(&disks_of(&mut synced, 101)), ["scsi0"]);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}

#[test]
fn a_resize_is_an_update_of_the_disk_and_nothing_of_the_vm() {
    let (_, mut synced) = sync(&sample());
    config(&mut synced, "/nodes/pve2/qemu/103/config")
        .insert("scsi0".into(), json!("local-lvm:vm-103-disk-2,iothread=1,size=120G"));
    let changed = plan(&synced);
    assert_eq!(
        writes(&changed),
        [format!(
            "update {DISK}qemu/103/scsi0 {}",
            json!({"size": {"after": 120 * 1024, "before": 100 * 1024}})
        )],
        "NetBox sums the VM's disk itself (a PATCH of it would be refused)"
    );
    let mut next = synced.clone();
    support::apply::apply(&mut next["netbox"], &changed).unwrap();
    assert_eq!(vm_of(&mut next, 103)["disk"], 120 * 1024 + 500 * 1024 + 8);
    assert_eq!(writes(&plan(&next)), Vec::<String>::new());
}

#[test]
fn a_removed_disk_is_deleted_but_an_operators_disk_and_present_keys_stay() {
    let (_, mut synced) = sync(&sample());
    let vm103 = vm_of(&mut synced, 103)["id"].clone();
    let vm104 = vm_of(&mut synced, 104)["id"].clone();
    let tag = records_of(&synced, "/api/extras/tags/")
        .iter()
        .find(|t| t["slug"] == "proxbox")
        .unwrap()
        .clone();
    let disk = |id: u64, vm: &Value, name: &str, tags: Value| {
        json!({"id": id, "name": name, "size": 1024, "virtual_machine": {"id": vm}, "tags": tags,
               "custom_fields": {}, "last_updated": "2026-01-01T00:00:00Z"})
    };
    // An operator's own disk, and ours named like keys Proxmox has but that are no NetBox disk:
    // the CD-ROM proxbox-api used to write, and the passthrough device without a size.
    let ours = json!([{"id": tag["id"], "slug": "proxbox", "name": tag["name"]}]);
    records(&mut synced, DISKS).extend([
        disk(9001, &vm103, "scsi7", json!([])),
        disk(9002, &vm103, "ide2", ours.clone()),
        disk(9003, &vm104, "scsi1", ours),
    ]);
    config(&mut synced, "/nodes/pve2/qemu/103/config").remove("scsi1");
    let changed = plan(&synced);
    let deletes: Vec<&str> = ops(&changed, "delete")
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].starts_with(&format!("{DISK}qemu/103/scsi1#")), "{deletes:?}");
    let mut next = synced.clone();
    support::apply::apply(&mut next["netbox"], &changed).unwrap();
    assert_eq!(
        names(&disks_of(&mut next, 103)),
        ["efidisk0", "ide2", "scsi0", "scsi7", "tpmstate0"]
    );
    assert_eq!(names(&disks_of(&mut next, 104)), ["scsi1", "virtio0"]);
    assert_eq!(
        vm_of(&mut next, 103)["disk"],
        100 * 1024 + 8 + 2 * 1024,
        "NetBox's sum, the operator's disk too"
    );
    assert_eq!(writes(&plan(&next)), Vec::<String>::new());
}

#[test]
fn a_passthrough_disk_without_a_size_is_a_warned_skip() {
    let first = plan(&sample());
    let skip = op(&first, &format!("{DISK}qemu/104/scsi1"));
    assert_eq!(
        (&skip["action"], &skip["reason"]),
        (&json!("skip"), &json!("unsupported-by-netbox"))
    );
    let found = warnings(&first, "unsized-disk");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["proxmox_path"], "/nodes/pve3/qemu/104/config");
}

#[test]
fn a_config_that_could_not_be_read_deletes_no_disk() {
    let (_, mut synced) = sync(&sample());
    synced["proxmox"]["/nodes/pve2/qemu/103/config"] = json!({"error": {"status": 500, "message": "timeout"}});
    let changed = plan(&synced);
    assert!(
        !op_ids(&changed)
            .iter()
            .any(|id| id.starts_with(&format!("{DISK}qemu/103"))),
        "{:?}",
        op_ids(&changed)
    );
    assert!(ops(&changed, "delete").is_empty());
    assert!(warnings(&changed, "incomplete-snapshot")
        .iter()
        .any(|w| w["proxmox_path"] == "/nodes/pve2/qemu/103/config"
            && w["message"].as_str().unwrap().contains("virtual disks")));
}

#[test]
fn disks_follow_their_vm_mode() {
    let mut input = sample();
    input["settings"]["sync_mode_vm"] = json!("disabled");
    let disabled = plan(&input);
    assert_eq!(
        stage(&disabled, "vm-disks"),
        &json!({"stage": "vm-disks", "run": false, "reason": "sync_mode_vm=disabled"})
    );
    let about_disks: Vec<&str> = op_ids(&disabled)
        .into_iter()
        .filter(|id| id.starts_with(DISK))
        .collect();
    assert_eq!(about_disks, [format!("{DISK}*")], "the stage's one skip");

    input["settings"]["sync_mode_vm"] = json!("bootstrap_only");
    let (first, mut synced) = sync(&input);
    let created = op(&first, &format!("{DISK}qemu/101/scsi0"));
    assert!(created["fields"]["tags"]
        .as_array()
        .unwrap()
        .contains(&json!({"slug": "bootstrap-only"})));
    // The VM is frozen; so are its disks, new ones and resized ones alike.
    config(&mut synced, "/nodes/pve1/qemu/101/config")
        .insert("scsi0".into(), json!("local-lvm:vm-101-disk-0,size=64G"));
    config(&mut synced, "/nodes/pve1/qemu/101/config").insert("scsi1".into(), json!("local-lvm:vm-101-disk-1,size=8G"));
    let frozen = plan(&synced);
    assert!(!op_ids(&frozen)
        .iter()
        .any(|id| id.starts_with(&format!("{DISK}qemu/101"))));
    assert_eq!(writes(&frozen), Vec::<String>::new());
}

#[test]
fn a_per_vm_run_plans_only_that_vms_disks() {
    let (_, mut synced) = sync(&sample());
    config(&mut synced, "/nodes/pve1/qemu/101/config")
        .insert("scsi0".into(), json!("local-lvm:vm-101-disk-0,size=48G"));
    config(&mut synced, "/nodes/pve2/qemu/103/config").remove("scsi1");
    let vm = vm_of(&mut synced, 101)["id"].clone();
    synced["sync_types"] = json!(["vm-disks"]);
    synced["subset"] = json!({"netbox_vm_ids": [vm]});
    let scoped = plan(&synced);
    assert_eq!(
        writes(&scoped),
        [format!(
            "update {DISK}qemu/101/scsi0 {}",
            json!({"size": {"after": 48 * 1024, "before": 32 * 1024}})
        )]
    );
}

/// What `discover` lists, round by round, for these sync types.
fn discovered(sync_types: Value, settings: Value) -> (Vec<String>, Vec<String>) {
    let full = sample();
    let mut input = json!({"settings": settings, "endpoint": full["endpoint"], "sync_types": sync_types, "proxmox": {}, "netbox": {}});
    let (mut proxmox, mut netbox) = (Vec::new(), Vec::new());
    loop {
        let next = proxbox_planner::discover(&input).unwrap();
        if next.complete {
            return (proxmox, netbox);
        }
        for path in &next.proxmox {
            input["proxmox"][path] = full["proxmox"][path].clone();
        }
        for collection in &next.netbox {
            input["netbox"][collection] = full["netbox"][collection].clone();
        }
        proxmox.extend(next.proxmox);
        netbox.extend(next.netbox);
    }
}

#[test]
fn discover_asks_only_what_the_disk_and_node_interface_stages_need() {
    let settings = sample()["settings"].clone();
    let (proxmox, netbox) = discovered(json!(["vm-disks"]), settings.clone());
    assert!(proxmox.contains(&"/nodes/pve1/qemu/101/config".to_owned()));
    assert!(
        !proxmox.iter().any(|p| p.ends_with("/network") || p.contains("/agent/")),
        "{proxmox:?}"
    );
    assert!(netbox.contains(&DISKS.to_owned()) && netbox.contains(&"/api/plugins/proxbox/storage/".to_owned()));
    assert!(!netbox.contains(&"/api/dcim/interfaces/".to_owned()));

    let (proxmox, netbox) = discovered(json!(["network-interfaces"]), settings.clone());
    let mut networks: Vec<&String> = proxmox.iter().filter(|p| p.ends_with("/network")).collect();
    networks.sort();
    assert_eq!(
        networks,
        ["/nodes/pve1/network", "/nodes/pve2/network", "/nodes/pve3/network"]
    );
    assert!(
        !proxmox.iter().any(|p| p.contains("/qemu/") || p.contains("/lxc/")),
        "{proxmox:?}"
    );
    assert!(netbox.contains(&"/api/dcim/interfaces/".to_owned()) && !netbox.contains(&DISKS.to_owned()));

    let mut off = settings;
    off["sync_mode_node"] = json!("disabled");
    let (proxmox, _) = discovered(json!(["all"]), off);
    assert!(
        !proxmox.iter().any(|p| p.ends_with("/network")),
        "a disabled node mode reads no network"
    );
}
