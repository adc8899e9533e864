//! Adopting what Proxbox synced (issue 20): the plugin's sync-state records
//! are the identity; our custom fields where the plugin is absent; Proxbox's
//! legacy custom fields read only; a same-name VM without any identity is
//! never answered with a second copy.

mod support;

use serde_json::{json, Value};
use support::{op, ops, plan, records, records_of, sample, sync, vm_of, warnings, without_plugin, writes};

const VMS: &str = "/api/virtualization/virtual-machines/";
const VM_STATES: &str = "/api/plugins/proxbox/sync-state/virtual-machines/";
const VM_101: &str = "virtual-machines:virtualization.virtualmachine:qemu/101";

/// A NetBox that Proxbox synced: the sample applied, then our own traces
/// (sync-state endpoint links, our tag) made to look like proxbox-api's.
fn proxbox_synced() -> Value {
    let (_, mut synced) = sync(&sample());
    for state in records(&mut synced, VM_STATES) {
        // proxbox-api links the endpoint afterwards (the plugin back-fills it).
        state["endpoint"] = Value::Null;
    }
    synced
}

fn creates_of<'p>(plan: &'p Value, model: &str) -> Vec<&'p Value> {
    ops(plan, "create")
        .into_iter()
        .filter(|o| o["model"] == model)
        .collect()
}

#[test]
fn a_vm_with_a_sync_state_record_is_adopted_never_copied() {
    let mut synced = proxbox_synced();
    synced["proxmox"]["/cluster/resources"][3]["maxmem"] = json!(16u64 << 30);
    let next = plan(&synced);
    assert!(creates_of(&next, "virtualization.virtualmachine").is_empty(), "{next}");
    let vm = op(&next, VM_101);
    assert_eq!(vm["action"], "update");
    assert_eq!(vm["matched_by"], "sync-state");
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
    let states = records_of(&after, VM_STATES);
    assert!(
        states.iter().all(|s| s["endpoint"]["id"] == 1),
        "the endpoint link is written: {states:?}"
    );
}

#[test]
fn a_sync_state_record_of_another_endpoint_is_not_ours() {
    let mut synced = proxbox_synced();
    for state in records(&mut synced, VM_STATES) {
        state["endpoint"] = json!({"id": 99});
    }
    let next = plan(&synced);
    let refused = op(&next, VM_101);
    assert_eq!(refused["reason"], "ambiguous-identity", "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("endpoint 99"));
    assert!(creates_of(&next, "virtualization.virtualmachine").is_empty(), "{next}");
}

#[test]
fn sources_that_disagree_are_an_ambiguity_not_a_guess() {
    let mut synced = without_plugin(sample());
    let (_, mut synced_nb) = sync(&synced);
    // Our custom fields say qemu/101; a legacy Proxbox field says 102.
    vm_of(&mut synced_nb, 101)["custom_fields"]["proxmox_vm_id"] = json!(102);
    synced["netbox"] = synced_nb["netbox"].clone();
    let next = plan(&synced);
    for id in [VM_101, "virtual-machines:virtualization.virtualmachine:qemu/102"] {
        assert_eq!(op(&next, id)["action"], "skip", "{id}");
        assert_eq!(op(&next, id)["reason"], "ambiguous-identity", "{id}");
    }
    let ambiguous = warnings(&next, "ambiguous-identity");
    assert!(
        ambiguous
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("legacy")),
        "{ambiguous:?}"
    );
    assert!(creates_of(&next, "virtualization.virtualmachine").is_empty());
}

#[test]
fn legacy_proxbox_custom_fields_identify_vms_read_only() {
    let input = without_plugin(sample());
    let (_, mut synced) = sync(&input);
    for vm in records(&mut synced, VMS) {
        let vmid = vm["custom_fields"]["proxmox_vmid"].clone();
        let kind = vm["custom_fields"]["proxmox_vm_type"].clone();
        vm["custom_fields"] = json!({"proxmox_vm_id": vmid, "proxmox_vm_type": kind});
    }
    let next = plan(&synced);
    assert!(creates_of(&next, "virtualization.virtualmachine").is_empty(), "{next}");
    let vm = op(&next, VM_101);
    assert_eq!(vm["matched_by"], "legacy-custom-field");
    assert_eq!(
        vm["changes"]["custom_fields"]["after"],
        json!({"proxmox_vmid": 101, "proxmox_endpoint": 1, "proxmox_name": "web01"}),
        "adoption writes our identity next to the legacy one (the type field is shared)"
    );
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

/// A NetBox where someone (netbox-sync, a hand inventory) made `web01` in
/// cluster `lab`, with no Proxmox identity at all.
fn hand_made_web01() -> Value {
    let (_, mut synced) = sync(&sample());
    let id = vm_of(&mut synced, 101)["id"].clone();
    records(&mut synced, VM_STATES).retain(|s| s["virtual_machine"]["id"] != id);
    let vm = vm_of_id(&mut synced, &id);
    vm["tags"] = json!([]);
    vm["description"] = json!("racked by hand");
    synced
}

fn vm_of_id<'a>(state: &'a mut Value, id: &Value) -> &'a mut Value {
    records(state, VMS).iter_mut().find(|vm| vm["id"] == *id).unwrap()
}

#[test]
fn an_untagged_same_name_vm_without_identity_gets_a_warning_and_no_create() {
    let state = hand_made_web01();
    let next = plan(&state);
    let held = op(&next, VM_101);
    assert_eq!(held["action"], "skip");
    assert_eq!(held["reason"], "unidentified-same-name");
    assert!(held["target"]["id"].is_u64(), "the skip names the NetBox VM");
    let warned = warnings(&next, "unidentified-same-name");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["netbox_collection"], VMS);
    assert!(warned[0]["proxmox_path"]
        .as_str()
        .unwrap()
        .ends_with("/qemu/101/config"));
    assert!(
        creates_of(&next, "virtualization.virtualmachine").is_empty(),
        "no web01 (2)"
    );
    // The guest's children wait with it.
    assert!(ops(&next, "create")
        .iter()
        .all(|o| !o["id"].as_str().unwrap().contains("qemu/101/")));
}

#[test]
fn adopt_by_name_adopts_it_and_changes_only_what_the_flags_allow() {
    let mut state = hand_made_web01();
    state["settings"]["adopt_by_name"] = json!(true);
    state["settings"]["overwrite_vm_description"] = json!(false);
    let next = plan(&state);
    let adopted = op(&next, VM_101);
    assert_eq!(adopted["action"], "update");
    assert_eq!(adopted["matched_by"], "adopted-by-name");
    assert!(adopted["changes"]["tags"]["after"]
        .as_array()
        .unwrap()
        .contains(&json!({"slug": "proxbox"})));
    assert!(adopted["changes"].get("description").is_none(), "{adopted}");
    assert!(adopted["changes"].get("name").is_none());
    let state_create = op(
        &next,
        "virtual-machines:netbox_proxbox.proxboxvirtualmachinesyncstate:qemu/101/sync-state",
    );
    assert_eq!(state_create["action"], "create");
    let (_, after) = sync(&state);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn with_the_plugin_no_custom_fields_of_ours_without_it_no_sync_state() {
    let with = plan(&sample());
    assert!(creates_of(&with, "extras.customfield").is_empty());
    assert!(!creates_of(&with, "netbox_proxbox.proxboxvirtualmachinesyncstate").is_empty());
    let without = plan(&without_plugin(sample()));
    assert_eq!(creates_of(&without, "extras.customfield").len(), 4);
    assert!(without["operations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| !o["model"].as_str().unwrap().contains("syncstate")));
    assert!(op(&without, VM_101)["fields"]["custom_fields"].is_object());
}

#[test]
fn the_plugin_tracking_rows_are_kept_and_linked() {
    let first = plan(&sample());
    let cluster = op(&first, "devices:netbox_proxbox.proxmoxcluster:lab/tracking");
    assert_eq!(
        cluster["fields"]["netbox_cluster"],
        json!({"$ref": "devices:virtualization.cluster:lab"})
    );
    assert_eq!(cluster["fields"]["mode"], "cluster");
    let node = op(&first, "devices:netbox_proxbox.proxmoxnode:pve1/tracking");
    assert_eq!(
        node["fields"]["netbox_device"],
        json!({"$ref": "devices:dcim.device:pve1"})
    );
    assert!(node["fields"]["ip_address"].is_string(), "{node}");
    let template = op(&first, "vm-templates:netbox_proxbox.proxmoxvmtemplate:qemu/9000");
    assert_eq!(
        template["fields"]["cluster"],
        json!({"$ref": "devices:netbox_proxbox.proxmoxcluster:lab/tracking"})
    );
    assert_eq!(
        template["fields"]["node"],
        json!({"$ref": "devices:netbox_proxbox.proxmoxnode:pve1/tracking"})
    );
    let replication = ops(&first, "create")
        .into_iter()
        .find(|o| o["model"] == "netbox_proxbox.replication")
        .unwrap();
    assert!(replication["fields"]["proxmox_node"]["$ref"]
        .as_str()
        .unwrap()
        .ends_with("/tracking"));
    // An existing tracking row (the plugin's own cluster sync made it) is adopted.
    let (_, synced) = sync(&sample());
    let rows = records_of(&synced, "/api/plugins/proxbox/proxmox-clusters/");
    assert_eq!(rows.len(), 1);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}

/// The plugin refuses a sync-state record whose tracking row does not link
/// its object yet; a concurrent executor only waits for what `depends_on`
/// says, so the record waits for the update that makes the link.
#[test]
fn a_sync_state_record_waits_for_the_update_that_links_its_tracking_row() {
    let (_, mut synced) = sync(&sample());
    records(&mut synced, "/api/plugins/proxbox/proxmox-clusters/")[0]["netbox_cluster"] = Value::Null;
    for row in records(&mut synced, "/api/plugins/proxbox/proxmox-nodes/") {
        row["netbox_device"] = Value::Null;
    }
    for collection in [
        "/api/plugins/proxbox/sync-state/clusters/",
        "/api/plugins/proxbox/sync-state/devices/",
    ] {
        records(&mut synced, collection).clear();
    }
    let next = plan(&synced);
    let linked = |tracking: &str, state: &str| {
        assert_eq!(op(&next, tracking)["action"], "update", "{next}");
        let record = op(&next, state);
        assert_eq!(record["action"], "create");
        assert!(
            record["depends_on"].as_array().unwrap().contains(&json!(tracking)),
            "{record}"
        );
    };
    linked(
        "devices:netbox_proxbox.proxmoxcluster:lab/tracking",
        "devices:netbox_proxbox.proxboxclustersyncstate:lab/sync-state",
    );
    for node in ["pve1", "pve2", "pve3"] {
        linked(
            &format!("devices:netbox_proxbox.proxmoxnode:{node}/tracking"),
            &format!("devices:netbox_proxbox.proxboxdevicesyncstate:{node}/sync-state"),
        );
    }
}

#[test]
fn a_cluster_is_found_through_its_tracking_row_first() {
    let (_, mut synced) = sync(&sample());
    // An operator renamed the NetBox cluster; the plugin's row still links it.
    records(&mut synced, "/api/virtualization/clusters/")[0]["name"] = json!("Lab (prod)");
    let next = plan(&synced);
    assert!(creates_of(&next, "virtualization.cluster").is_empty(), "{next}");
    assert_eq!(writes(&next), Vec::<String>::new());
}

#[test]
fn a_node_device_is_found_through_the_plugin_bookkeeping_first() {
    let (_, mut synced) = sync(&sample());
    // An operator renamed the pve1 device; the plugin's rows still link it.
    for device in records(&mut synced, "/api/dcim/devices/") {
        if device["name"] == "pve1" {
            device["name"] = json!("pve1.rack4");
        }
    }
    let next = plan(&synced);
    assert!(creates_of(&next, "dcim.device").is_empty(), "{next}");
    assert!(ops(&next, "delete").is_empty(), "{next}");
    assert_eq!(writes(&next), Vec::<String>::new(), "the name is the operator's");
}

#[test]
fn a_bootstrap_only_vm_keeps_its_sync_state_record_as_it_is() {
    let mut input = sample();
    input["settings"]["sync_mode_vm"] = json!("bootstrap_only");
    let (_, mut synced) = sync(&input);
    for row in synced["proxmox"]["/cluster/resources"].as_array_mut().unwrap() {
        if row["id"] == "qemu/101" {
            row["name"] = json!("web01-renamed");
        }
    }
    let next = plan(&synced);
    assert_eq!(op(&next, VM_101)["reason"], "bootstrap-only-tag");
    assert_eq!(writes(&next), Vec::<String>::new(), "its sidecar follows it");
}

const DEVICE_TYPES: &str = "/api/dcim/device-types/";
const SITES: &str = "/api/dcim/sites/";
const CLUSTER_TYPES: &str = "/api/virtualization/cluster-types/";

/// The sample synced, its support objects made into the ones Proxbox's own
/// bootstrap creates (`services/netbox_bootstrap.py`, `device_ensure.py`).
fn with_proxbox_support_objects() -> Value {
    let mut synced = proxbox_synced();
    let device_type = &mut records(&mut synced, DEVICE_TYPES)[0];
    device_type["slug"] = json!("proxmox-generic-device");
    device_type["model"] = json!("Proxmox Generic Device");
    let site = &mut records(&mut synced, SITES)[0];
    site["slug"] = json!("proxmox-default-site-lab");
    site["name"] = json!("Proxmox Default Site - lab");
    let cluster_type = &mut records(&mut synced, CLUSTER_TYPES)[0];
    cluster_type["slug"] = json!("cluster");
    cluster_type["name"] = json!("Cluster");
    synced
}

#[test]
fn proxbox_support_objects_are_used_never_copied_or_swapped() {
    let synced = with_proxbox_support_objects();
    let next = plan(&synced);
    let others: Vec<String> = writes(&next)
        .into_iter()
        .filter(|w| !w.contains("proxboxvirtualmachinesyncstate"))
        .collect();
    assert_eq!(
        others,
        Vec::<String>::new(),
        "no second device type, site or cluster type; no device changed"
    );

    // A node added later gets Proxbox's device type and site.
    let mut grown = synced.clone();
    let status = grown["proxmox"]["/cluster/status"].as_array_mut().unwrap();
    let mut pve4 = status.iter().find(|r| r["type"] == "node").unwrap().clone();
    pve4["name"] = json!("pve4");
    pve4["id"] = json!("node/pve4");
    pve4["nodeid"] = json!(4);
    status.push(pve4);
    // discover asks for the new node's network (the network-interfaces stage).
    grown["proxmox"]["/nodes/pve4/network"] = json!([]);
    // A new node's task archive is asked for like every node's; an empty one.
    grown["proxmox"][proxbox_planner::proxmox_path::node_tasks("pve4", 0, 100)] = json!([]);
    let next = plan(&grown);
    let created = creates_of(&next, "dcim.device");
    assert_eq!(created.len(), 1, "{next}");
    let device_type = records_of(&grown, DEVICE_TYPES)[0]["id"].clone();
    let site = records_of(&grown, SITES)[0]["id"].clone();
    assert_eq!(created[0]["fields"]["device_type"], device_type);
    assert_eq!(created[0]["fields"]["site"], site);
    assert!(creates_of(&next, "dcim.devicetype").is_empty());
}

#[test]
fn a_generic_cluster_type_an_operator_made_is_not_taken() {
    let mut input = sample();
    input["netbox"][CLUSTER_TYPES] = json!([{"id": 7, "name": "Cluster", "slug": "cluster", "tags": []}]);
    let next = plan(&input);
    let ours = creates_of(&next, "virtualization.clustertype");
    assert_eq!(ours.len(), 1, "{next}");
    assert_eq!(ours[0]["fields"]["slug"], "proxmox");
    let cluster = &creates_of(&next, "virtualization.cluster")[0];
    assert_eq!(cluster["fields"]["type"]["$ref"], ours[0]["id"]);
}

#[test]
fn support_objects_nothing_refers_to_are_not_created() {
    let (_, mut synced) = sync(&sample());
    // The operator deleted the site after the sync; the devices keep theirs.
    records(&mut synced, SITES).clear();
    let next = plan(&synced);
    assert!(creates_of(&next, "dcim.site").is_empty(), "{next}");
    assert_eq!(writes(&next), Vec::<String>::new());
}
