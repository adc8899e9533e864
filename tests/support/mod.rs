//! Test support: the bundled sample, and an apply simulator that writes a plan
//! into NetBox-state JSON the way NetBox's REST API would.
#![allow(dead_code)]

pub mod apply;
pub mod gen;

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

pub fn plan(input: &Value) -> Value {
    serde_json::to_value(proxbox_planner::plan(input).unwrap()).unwrap()
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
