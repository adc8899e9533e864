//! The `network-interfaces` stage: the nodes' own interfaces and addresses
//! on their devices, and the node bridge of each VM interface, through the
//! apply simulator (which enforces NetBox's interface rules: one name per
//! device, links on the same device, a parent only for a virtual interface
//! and kept while a child has it as parent).

mod support;

use serde_json::{json, Value};
use support::{op, op_ids, ops, plan, records, records_of, sample, stage, sync, vm_of, warnings, writes};

const IFACES: &str = "/api/dcim/interfaces/";
const IFACE: &str = "network-interfaces:dcim.interface:";
const IPS: &str = "/api/ipam/ip-addresses/";

fn device(state: &Value, name: &str) -> Value {
    records_of(state, "/api/dcim/devices/")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()["id"]
        .clone()
}

fn interface(state: &Value, node: &str, name: &str) -> Value {
    let device = device(state, node);
    records_of(state, IFACES)
        .iter()
        .find(|i| i["device"]["id"] == device && i["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no interface {node}/{name}"))
}

fn names_on(state: &Value, node: &str) -> Vec<String> {
    let device = device(state, node);
    let mut names: Vec<String> = records_of(state, IFACES)
        .iter()
        .filter(|i| i["device"]["id"] == device)
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn addresses_on(state: &Value, iface: &Value) -> Vec<String> {
    records_of(state, IPS)
        .iter()
        .filter(|ip| ip["assigned_object_type"] == "dcim.interface" && ip["assigned_object_id"] == iface["id"])
        .map(|ip| ip["address"].as_str().unwrap().to_owned())
        .collect()
}

fn network<'a>(input: &'a mut Value, node: &str) -> &'a mut Vec<Value> {
    input["proxmox"][format!("/nodes/{node}/network")]
        .as_array_mut()
        .unwrap()
}

fn row<'a>(input: &'a mut Value, node: &str, iface: &str) -> &'a mut Value {
    network(input, node).iter_mut().find(|r| r["iface"] == iface).unwrap()
}

fn converged(input: &Value) -> Value {
    let (_, next) = sync(input);
    assert_eq!(writes(&plan(&next)), Vec::<String>::new());
    next
}

#[test]
fn node_interfaces_are_created_with_their_types_links_and_addresses() {
    let synced = converged(&sample());
    assert_eq!(
        names_on(&synced, "pve1"),
        ["bond0", "eno1", "eno2", "eno3", "vmbr0", "vmbr0.50", "vmbr1"]
    );
    let kind = |name: &str| interface(&synced, "pve1", name)["type"]["value"].clone();
    assert_eq!(
        [kind("vmbr0"), kind("bond0"), kind("eno1"), kind("vmbr0.50")],
        [json!("bridge"), json!("lag"), json!("other"), json!("virtual")]
    );
    let id = |name: &str| interface(&synced, "pve1", name)["id"].clone();
    assert_eq!(interface(&synced, "pve1", "bond0")["bridge"]["id"], id("vmbr0"));
    assert_eq!(interface(&synced, "pve1", "eno2")["lag"]["id"], id("bond0"));
    assert_eq!(interface(&synced, "pve1", "vmbr0.50")["parent"]["id"], id("vmbr0"));
    assert_eq!(interface(&synced, "pve1", "eno3")["enabled"], false);
    assert_eq!(interface(&synced, "pve1", "vmbr0")["mtu"], 9000);
    assert_eq!(
        interface(&synced, "pve1", "vmbr1")["description"],
        "isolated lab segment"
    );
    let mut on_vmbr0 = addresses_on(&synced, &interface(&synced, "pve1", "vmbr0"));
    on_vmbr0.sort();
    assert_eq!(on_vmbr0, ["10.0.0.11/24", "2001:db8:0:1::11/64"]);
    assert_eq!(
        addresses_on(&synced, &interface(&synced, "pve1", "vmbr0.50")),
        ["10.0.50.11/24"]
    );
}

#[test]
fn a_vm_interface_records_its_node_bridge_in_its_sync_state() {
    let mut synced = converged(&sample());
    let web01 = vm_of(&mut synced, 101)["id"].clone();
    let net0 = records_of(&synced, "/api/virtualization/interfaces/")
        .iter()
        .find(|i| i["virtual_machine"]["id"] == web01 && i["name"] == "net0")
        .unwrap()["id"]
        .clone();
    let state = records_of(&synced, "/api/plugins/proxbox/sync-state/vm-interfaces/")
        .iter()
        .find(|s| s["vm_interface"]["id"] == net0)
        .unwrap()
        .clone();
    assert_eq!(state["proxbox_bridge"]["id"], interface(&synced, "pve1", "vmbr0")["id"]);
    assert_eq!(state["proxbox_bridge_raw_value"], "vmbr0");
    // The node stage off: the bridge is still found, by name, on the node's device.
    synced["settings"]["sync_mode_node"] = json!("disabled");
    records(&mut synced, "/api/plugins/proxbox/sync-state/vm-interfaces/").retain(|s| s["vm_interface"]["id"] != net0);
    let again = plan(&synced);
    let recreated = op(
        &again,
        "vm-interfaces:netbox_proxbox.proxboxvminterfacesyncstate:qemu/101/net0/sync-state",
    );
    assert_eq!(
        recreated["fields"]["proxbox_bridge"],
        interface(&synced, "pve1", "vmbr0")["id"]
    );
}

#[test]
fn changes_are_updates_and_an_address_moves_in_one_patch() {
    let synced = converged(&sample());
    let mut changed = synced.clone();
    row(&mut changed, "pve2", "vmbr1")["comments"] = json!("now the backup network\n");
    row(&mut changed, "pve2", "vmbr0")["mtu"] = json!("1500");
    // The node's address leaves vmbr0 for vmbr1 (a cutover).
    let cidr = row(&mut changed, "pve2", "vmbr0")
        .as_object_mut()
        .unwrap()
        .remove("cidr")
        .unwrap();
    row(&mut changed, "pve2", "vmbr1")["cidr"] = cidr;
    let first = plan(&changed);
    let mut planned = writes(&first);
    planned.sort();
    let moved = format!(
        "update network-interfaces:ipam.ipaddress:pve2/vmbr1/10.0.0.12/24 {}",
        json!({"assigned_object_id": {
            "after": interface(&synced, "pve2", "vmbr1")["id"], "before": interface(&synced, "pve2", "vmbr0")["id"]}})
    );
    assert!(planned.contains(&moved), "{planned:#?}");
    assert!(
        ops(&first, "create").is_empty() && ops(&first, "delete").is_empty(),
        "{planned:#?}"
    );
    let description = format!(
        "update {IFACE}pve2/vmbr1 {}",
        json!({"description": {"after": "now the backup network", "before": "isolated lab segment"}})
    );
    assert!(planned.contains(&description), "{planned:#?}");
    let next = converged(&changed);
    assert_eq!(
        addresses_on(&next, &interface(&next, "pve2", "vmbr1")),
        ["10.0.0.12/24"]
    );
}

#[test]
fn gone_interfaces_are_deleted_children_first_and_an_operators_stay() {
    let mut synced = converged(&sample());
    let pve3 = device(&synced, "pve3");
    let operator = |id: u64, name: &str, extra: Value| {
        let mut object = json!({"id": id, "name": name, "device": {"id": pve3}, "type": {"value": "virtual"},
                                "tags": [], "custom_fields": {}, "last_updated": "2026-01-01T00:00:00Z"});
        object
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        object
    };
    // An operator's own interface, and one the operator hung below our vmbr1.
    let vmbr1 = interface(&synced, "pve3", "vmbr1")["id"].clone();
    records(&mut synced, IFACES).push(operator(9001, "ipmi0", json!({"type": {"value": "1000base-t"}})));
    records(&mut synced, IFACES).push(operator(9002, "vmbr1.99", json!({"parent": {"id": vmbr1}})));
    // pve3 drops its bond (eno1 goes straight into vmbr0), the storage VLAN and vmbr1.
    let rows = network(&mut synced, "pve3");
    rows.retain(|r| !["bond0", "vmbr0.50", "vmbr1"].contains(&r["iface"].as_str().unwrap()));
    row(&mut synced, "pve3", "vmbr0")["bridge_ports"] = json!("eno1");
    let changed = plan(&synced);
    let deletes: Vec<&str> = ops(&changed, "delete")
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(deletes.iter().any(|id| id.starts_with(&format!("{IFACE}pve3/bond0#"))));
    assert!(deletes
        .iter()
        .any(|id| id.starts_with(&format!("{IFACE}pve3/vmbr0.50#"))));
    let kept = ops(&changed, "skip")
        .into_iter()
        .find(|o| o["id"].as_str().unwrap().starts_with(&format!("{IFACE}pve3/vmbr1#")))
        .unwrap();
    assert_eq!(kept["reason"], "has-manual-objects");
    assert!(kept["detail"].as_str().unwrap().contains("vmbr1.99"));
    let next = converged(&synced);
    assert_eq!(
        names_on(&next, "pve3"),
        ["eno1", "eno2", "eno3", "ipmi0", "vmbr0", "vmbr1", "vmbr1.99"]
    );
    assert_eq!(interface(&next, "pve3", "eno1")["lag"], Value::Null);
    assert_eq!(
        interface(&next, "pve3", "eno1")["bridge"]["id"],
        interface(&next, "pve3", "vmbr0")["id"]
    );
    assert!(
        !records_of(&next, IPS).iter().any(|ip| ip["address"] == "10.0.50.13/24"),
        "its address went with the VLAN"
    );
}

#[test]
fn a_parent_and_its_vlan_gone_together_go_child_first() {
    let mut input = sample();
    network(&mut input, "pve1")
        .push(json!({"iface": "vmbr1.30", "type": "vlan", "active": 1, "vlan-raw-device": "vmbr1"}));
    let mut synced = converged(&input);
    network(&mut synced, "pve1").retain(|r| r["iface"] != "vmbr1" && r["iface"] != "vmbr1.30");
    let changed = plan(&synced);
    let order: Vec<&str> = op_ids(&changed)
        .into_iter()
        .filter(|id| id.starts_with(&format!("{IFACE}pve1/vmbr1")))
        .collect();
    assert_eq!(order.len(), 2);
    assert!(order[0].starts_with(&format!("{IFACE}pve1/vmbr1.30#")), "{order:?}");
    assert!(op(&changed, order[1])["depends_on"]
        .as_array()
        .unwrap()
        .contains(&json!(order[0])));
    converged(&synced);
}

#[test]
fn a_network_that_could_not_be_read_deletes_nothing() {
    let mut synced = converged(&sample());
    synced["proxmox"]["/nodes/pve2/network"] = json!({"error": {"status": 595, "message": "no route to host"}});
    let changed = plan(&synced);
    assert_eq!(writes(&changed), Vec::<String>::new());
    assert!(warnings(&changed, "incomplete-snapshot")
        .iter()
        .any(|w| w["proxmox_path"] == "/nodes/pve2/network"));
    // The VM interfaces on pve2 still know their bridges.
    let states = records_of(&synced, "/api/plugins/proxbox/sync-state/vm-interfaces/");
    assert!(states.iter().all(|s| !s["proxbox_bridge"].is_null()));
}

#[test]
fn a_vm_reporting_a_node_address_is_refused_not_duplicated() {
    let mut input = sample();
    let agent = &mut input["proxmox"]["/nodes/pve1/qemu/101/agent/network-get-interfaces"]["result"];
    let nic = agent
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["ip-addresses"].as_array().is_some_and(|a| !a.is_empty()) && i["name"] != "lo")
        .unwrap();
    nic["ip-addresses"][0]["ip-address"] = json!("10.0.0.12");
    let first = plan(&input);
    let duplicate = warnings(&first, "duplicate-ip");
    assert_eq!(duplicate.len(), 1, "{duplicate:?}");
    assert!(duplicate[0]["message"].as_str().unwrap().contains("pve2/vmbr0"));
    converged(&input);
}

#[test]
fn node_interfaces_follow_the_node_mode() {
    let mut input = sample();
    input["settings"]["sync_mode_cluster"] = json!("disabled");
    let disabled = plan(&input);
    assert_eq!(stage(&disabled, "network-interfaces")["run"], false);
    assert!(!op_ids(&disabled)
        .iter()
        .any(|id| id.starts_with(IFACE) && !id.ends_with(":*")));
    input["settings"]["sync_mode_cluster"] = json!("always");
    input["settings"]["sync_mode_node"] = json!("bootstrap_only");
    let first = plan(&input);
    let vmbr0 = op(&first, &format!("{IFACE}pve1/vmbr0"));
    assert!(vmbr0["fields"]["tags"]
        .as_array()
        .unwrap()
        .contains(&json!({"slug": "bootstrap-only"})));
}
