//! Test support: the bundled sample, and an apply simulator that writes a plan
//! into NetBox-state JSON the way NetBox's REST API would.
#![allow(dead_code)]

pub mod apply;
pub mod gen;
pub mod schema;

use proxbox_planner::ALL_MODELS;
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

/// The input as a host hands it over after `discover`: with the sync's
/// NetBox user, and NetBox's history (what the apply simulator and
/// `apply::operator_edit` recorded; empty where nothing was: nobody edited).
pub fn with_history(input: &Value) -> Value {
    let mut input = input.clone();
    if input.get("sync_user").is_none_or(Value::is_null) {
        let (id, username) = apply::SYNC_USER;
        input["sync_user"] = serde_json::json!({"id": id, "username": username});
    }
    if let Some(netbox) = input.get_mut("netbox").and_then(Value::as_object_mut) {
        for collection in [apply::CHANGELOG, apply::JOURNAL] {
            netbox.entry(collection).or_insert_with(|| serde_json::json!([]));
        }
    }
    input
}

/// Plans the input as the host hands it over: with its history, every
/// object with only the fields `discover` asks for (see `lean`), and checks
/// the plan against the published plan schema.
pub fn plan(input: &Value) -> Value {
    let input = lean(&with_history(input));
    schema::checked(serde_json::to_value(proxbox_planner::plan(&input).unwrap()).unwrap())
}

/// The input's NetBox objects as NetBox answers `?fields=` with the fields a
/// model is read with (`Model::query_fields`): the others left out, the kept
/// ones in their full REST shape. Entries that are not objects, and
/// collections that could not be read, stay as they are.
pub fn lean(input: &Value) -> Value {
    let mut input = input.clone();
    let Some(collections) = input.get_mut("netbox").and_then(Value::as_object_mut) else {
        return input;
    };
    for (collection, doc) in collections {
        let Some(model) = ALL_MODELS.iter().find(|m| m.collection == collection) else {
            continue;
        };
        let fields = model.query_fields();
        for object in doc
            .as_array_mut()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            object.retain(|key, _| fields.contains(&key.as_str()));
        }
    }
    input
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

/// A plan's status of one stage (`{"stage", "run", "reason"?}`).
pub fn stage<'p>(plan: &'p Value, name: &str) -> &'p Value {
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
}

/// Plan, apply, and return the input with the new NetBox state.
pub fn sync(input: &Value) -> (Value, Value) {
    let plan = plan(input);
    let mut next = input.clone();
    apply::apply(&mut next["netbox"], &plan).unwrap_or_else(|e| panic!("apply failed: {e}"));
    (plan, next)
}
