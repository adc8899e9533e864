//! Test support: the bundled sample, and an apply simulator that writes a plan
//! into NetBox-state JSON the way NetBox's REST API would.
#![allow(dead_code)]

pub mod apply;
pub mod gen;
pub mod schema;

use serde_json::Value;

/// The resource types that default to `always` (all but the SDN ones).
pub const SYNCED_RESOURCES: [&str; 8] = [
    "vm",
    "vm_template",
    "vm_interface",
    "mac",
    "cluster",
    "node",
    "storage",
    "ip_address",
];

pub fn sample() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sample/snapshot.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The objects of one NetBox collection in a planner input or state, to edit.
pub fn records<'a>(state: &'a mut Value, collection: &str) -> &'a mut Vec<Value> {
    state["netbox"][collection].as_array_mut().unwrap()
}

/// The objects of one NetBox collection in a planner input or state.
pub fn records_of<'a>(state: &'a Value, collection: &str) -> &'a [Value] {
    state["netbox"][collection].as_array().unwrap()
}

/// The NetBox VM of a guest, found as the planner finds it: through its
/// sync-state record (the Proxbox plugin is installed) or our custom fields.
pub fn vm_of(state: &mut Value, vmid: u64) -> &mut Value {
    let states = state["netbox"]["/api/plugins/proxbox/sync-state/virtual-machines/"].as_array();
    let by_state = states
        .into_iter()
        .flatten()
        .find(|s| s["proxmox_vm_id"] == vmid)
        .map(|s| s["virtual_machine"]["id"].clone());
    let vms = records(state, "/api/virtualization/virtual-machines/");
    vms.iter_mut()
        .find(|vm| Some(&vm["id"]) == by_state.as_ref() || vm["custom_fields"]["proxmox_vmid"] == vmid)
        .unwrap_or_else(|| panic!("no NetBox VM for vmid {vmid}"))
}

/// The input as a NetBox without the Proxbox plugin sees it: every plugin
/// collection answers 404.
pub fn without_plugin(mut input: Value) -> Value {
    for (collection, value) in input["netbox"].as_object_mut().unwrap() {
        if collection.starts_with("/api/plugins/") {
            *value = serde_json::json!({"error": {"status": 404, "message": "Not Found"}});
        }
    }
    input
}

/// The ids of every operation of a plan, in order.
pub fn op_ids(plan: &Value) -> Vec<&str> {
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect()
}

/// The warnings of a plan with one code.
pub fn warnings<'p>(plan: &'p Value, code: &str) -> Vec<&'p Value> {
    plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == code)
        .collect()
}

/// The plan of `input`, checked against the published plan schema.
pub fn plan(input: &Value) -> Value {
    schema::checked(serde_json::to_value(proxbox_planner::plan(input).unwrap()).unwrap())
}

pub fn ops<'p>(plan: &'p Value, action: &str) -> Vec<&'p Value> {
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["action"] == action)
        .collect()
}

pub fn op<'p>(plan: &'p Value, id: &str) -> &'p Value {
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["id"] == id)
        .unwrap_or_else(|| panic!("no op {id}"))
}

/// create + update + delete: what must be zero after a successful apply.
pub fn writes(plan: &Value) -> Vec<String> {
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["action"] != "skip")
        .map(|op| {
            format!(
                "{} {} {}",
                op["action"].as_str().unwrap(),
                op["id"].as_str().unwrap(),
                op["changes"]
            )
        })
        .collect()
}

/// Plan, apply, and return the input with the new NetBox state.
pub fn sync(input: &Value) -> (Value, Value) {
    let plan = plan(input);
    let mut next = input.clone();
    apply::apply(&mut next["netbox"], &plan).unwrap_or_else(|e| panic!("apply failed: {e}"));
    (plan, next)
}
