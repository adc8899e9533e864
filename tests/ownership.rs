//! Field ownership from NetBox's change log (issue 21): every cell of the
//! three-way table (base = what the sync wrote, NetBox, Proxmox), each
//! `on_operator_edit`, the recorded choices, and what `discover` asks for.

mod support;

use serde_json::{json, Value};
use support::apply::{apply, operator_edit, CHANGELOG, JOURNAL, OPERATOR, SYNC_USER};
use support::{op, ops, plan, records, records_of, sample, sync, vm_of, with_history, writes};

const VMS: &str = "/api/virtualization/virtual-machines/";
const IFACES: &str = "/api/virtualization/interfaces/";
const CONFIG_101: &str = "/nodes/pve1/qemu/101/config";
const VM_101: &str = "virtual-machines:virtualization.virtualmachine:qemu/101";
const DESCRIPTION_101: &str = "virtual-machines:virtualization.virtualmachine:qemu/101@description";
const NET0_101: &str = "vm-interfaces:virtualization.vminterface:qemu/101/net0";
const ENABLED_101: &str = "vm-interfaces:virtualization.vminterface:qemu/101/net0@enabled";

fn synced() -> Value {
    sync(&sample()).1
}

fn vm_id(state: &mut Value) -> u64 {
    vm_of(state, 101)["id"].as_u64().unwrap()
}

fn net0_id(state: &mut Value) -> u64 {
    let vm = vm_id(state);
    let ifaces = records_of(state, IFACES);
    let net0 = ifaces
        .iter()
        .find(|i| i["virtual_machine"]["id"] == vm && i["name"] == "net0");
    net0.unwrap()["id"].as_u64().unwrap()
}

/// Alice changes a field of an object in NetBox.
fn edit(state: &mut Value, collection: &str, id: u64, field: &str, value: Value) {
    operator_edit(&mut state["netbox"], OPERATOR, collection, id, field, value);
}

fn edit_description(state: &mut Value, text: &str) {
    let id = vm_id(state);
    edit(state, VMS, id, "description", json!(text));
}

/// Proxmox's note of qemu/101 (its first line is the VM's description).
fn proxmox_note(state: &mut Value, text: &str) {
    state["proxmox"][CONFIG_101]["description"] = json!(text);
}

fn apply_plan(state: &mut Value, plan: &Value) {
    apply(&mut state["netbox"], plan).unwrap_or_else(|e| panic!("apply: {e}"));
}

fn conflict<'p>(plan: &'p Value, id: &str) -> &'p Value {
    let conflicts = plan["conflicts"].as_array().unwrap();
    conflicts
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no conflict {id} in {conflicts:?}"))
}

/// The plan with the choice for conflict `id` put in place of its operation
/// (what `apply --accept-proxmox ID` / `--keep-netbox ID` do in the host).
fn choose(plan: &Value, id: &str, choice: &str) -> Value {
    let chosen = conflict(plan, id)["choices"][choice].clone();
    let mut plan = plan.clone();
    for op in plan["operations"].as_array_mut().unwrap() {
        if op["id"] == id {
            *op = chosen.clone();
        }
    }
    plan
}

fn with_setting(mut state: Value, value: &str) -> Value {
    state["settings"]["on_operator_edit"] = json!(value);
    state
}

/// Alice edited qemu/101's description in NetBox, and Proxmox's note changed too.
fn both_changed(setting: &str) -> Value {
    let mut state = with_setting(synced(), setting);
    edit_description(&mut state, "Alice's web frontend");
    proxmox_note(&mut state, "web frontend v2");
    state
}

#[test]
fn nobody_edited_in_netbox_proxmox_changes_are_written_as_today() {
    let mut state = synced();
    proxmox_note(&mut state, "web frontend v2");
    let next = plan(&state);
    let vm = op(&next, VM_101);
    assert_eq!(vm["action"], "update");
    assert_eq!(vm["reason"], "changed-in-proxmox");
    assert_eq!(vm["changes"]["description"]["after"], "web frontend v2");
    assert_eq!(next["summary"]["operator_owned"], 0);
    assert!(next["conflicts"].as_array().unwrap().is_empty());
}

#[test]
fn an_operators_edit_of_a_field_proxmox_did_not_change_stands_with_no_operation_run_after_run() {
    let mut state = synced();
    edit_description(&mut state, "Alice's web frontend");
    for run in 0..3 {
        let next = plan(&state);
        assert_eq!(writes(&next), Vec::<String>::new(), "run {run}");
        assert!(
            !next["operations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["id"] == DESCRIPTION_101),
            "no operation at all, not even a skip: run {run}"
        );
        assert_eq!(next["summary"]["operator_owned"], 1, "run {run}");
        assert_eq!(next["summary"]["stages"]["virtual-machines"]["operator_owned"], 1);
        apply_plan(&mut state, &next);
        // Later runs write other fields of the VM: the operator's description is still hers.
        state["proxmox"]["/cluster/resources"][3]["maxmem"] = json!((9 + run as u64) << 30);
        let (written, after) = sync(&state);
        assert_eq!(
            op(&written, VM_101)["changes"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["memory"]
        );
        state = after;
        assert_eq!(vm_of(&mut state, 101)["description"], "Alice's web frontend");
    }
}

#[test]
fn both_changed_is_a_conflict_kept_by_default_showing_the_three_values_who_and_when() {
    let mut state = both_changed("keep");
    let next = plan(&state);
    let kept = op(&next, DESCRIPTION_101);
    assert_eq!(kept["action"], "skip");
    assert_eq!(kept["reason"], "operator-edited");
    assert_eq!(kept["target"]["id"], vm_id(&mut state));
    let detail = kept["detail"].as_str().unwrap();
    assert!(detail.contains("alice") && detail.contains("kept"), "{detail}");
    assert!(
        !next["operations"].as_array().unwrap().iter().any(|o| o["id"] == VM_101),
        "nothing else of the VM changed"
    );
    let entry = conflict(&next, DESCRIPTION_101);
    assert_eq!(entry["kind"], "operator-edited");
    assert_eq!(entry["field"], "description");
    assert_eq!(entry["base"], "Public web frontend");
    assert_eq!(entry["netbox"], "Alice's web frontend");
    assert_eq!(entry["proxmox"], "web frontend v2");
    assert_eq!(entry["changed_by"], "alice");
    assert!(entry["changed_at"].as_str().unwrap().starts_with("2026-11-23T"));
    assert_eq!(entry["resolution"], "keep");
    assert_eq!(entry["choices"]["accept-proxmox"]["action"], "update");
    assert_eq!(entry["choices"]["keep-netbox"]["collection"], JOURNAL);
    // Kept run after run: the plan keeps saying so, and nothing is written.
    let mut again = state.clone();
    apply_plan(&mut again, &next);
    let third = plan(&again);
    assert_eq!(writes(&third), Vec::<String>::new());
    assert_eq!(op(&third, DESCRIPTION_101)["reason"], "operator-edited");
    assert_eq!(vm_of(&mut again, 101)["description"], "Alice's web frontend");
}

#[test]
fn overwrite_writes_proxmoxs_value_visibly_and_the_field_is_ours_again() {
    let mut state = both_changed("overwrite");
    let next = plan(&state);
    let written = op(&next, DESCRIPTION_101);
    assert_eq!(written["action"], "update");
    assert_eq!(written["reason"], "operator-edited");
    assert_eq!(
        written["changes"]["description"],
        json!({"before": "Alice's web frontend", "after": "web frontend v2"})
    );
    assert_eq!(conflict(&next, DESCRIPTION_101)["resolution"], "overwrite");
    apply_plan(&mut state, &next);
    assert_eq!(vm_of(&mut state, 101)["description"], "web frontend v2");
    assert_eq!(writes(&plan(&state)), Vec::<String>::new());
    // Ours again: the next Proxmox change is an ordinary update.
    proxmox_note(&mut state, "web frontend v3");
    assert_eq!(op(&plan(&state), VM_101)["reason"], "changed-in-proxmox");
}

#[test]
fn ask_leaves_the_field_until_a_choice_and_says_so() {
    let mut state = both_changed("ask");
    let next = plan(&state);
    assert_eq!(op(&next, DESCRIPTION_101)["action"], "skip");
    assert_eq!(conflict(&next, DESCRIPTION_101)["resolution"], "ask");
    let pending = support::warnings(&next, "decisions-pending");
    assert_eq!(pending.len(), 1, "{:?}", next["warnings"]);
    assert!(pending[0]["message"].as_str().unwrap().starts_with("1 field"));
    // Applying the plan as it is changes nothing: asked again.
    apply_plan(&mut state, &next);
    assert_eq!(conflict(&plan(&state), DESCRIPTION_101)["resolution"], "ask");
}

#[test]
fn accepting_proxmox_writes_its_value_and_the_re_plan_is_empty() {
    let mut state = both_changed("ask");
    let chosen = choose(&plan(&state), DESCRIPTION_101, "accept-proxmox");
    assert_eq!(op(&chosen, DESCRIPTION_101)["action"], "update");
    apply_plan(&mut state, &chosen);
    assert_eq!(vm_of(&mut state, 101)["description"], "web frontend v2");
    let after = plan(&state);
    assert_eq!(writes(&after), Vec::<String>::new());
    assert!(after["conflicts"].as_array().unwrap().is_empty());
}

#[test]
fn keeping_netbox_is_recorded_on_the_object_and_never_asked_again() {
    let mut state = both_changed("ask");
    let chosen = choose(&plan(&state), DESCRIPTION_101, "keep-netbox");
    let record = op(&chosen, DESCRIPTION_101);
    assert_eq!(
        (record["action"].as_str(), record["collection"].as_str()),
        (Some("create"), Some(JOURNAL))
    );
    apply_plan(&mut state, &chosen);
    let vm = vm_id(&mut state);
    let journal = records_of(&state, JOURNAL);
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0]["assigned_object_id"], vm);
    assert!(journal[0]["comments"]
        .as_str()
        .unwrap()
        .ends_with("keep-netbox: description"));
    for note in ["web frontend v2", "web frontend v3"] {
        proxmox_note(&mut state, note);
        let next = plan(&state);
        assert_eq!(writes(&next), Vec::<String>::new(), "Proxmox says {note:?}");
        assert!(next["conflicts"].as_array().unwrap().is_empty());
        assert_eq!(next["summary"]["operator_owned"], 1);
    }
    // Deleting the record gives the field back: Proxmox's value is asked about again.
    records(&mut state, JOURNAL).clear();
    assert_eq!(conflict(&plan(&state), DESCRIPTION_101)["resolution"], "ask");
}

#[test]
fn an_interfaces_enabled_is_owned_the_same_way_and_never_in_conflict() {
    let mut state = synced();
    let id = net0_id(&mut state);
    edit(&mut state, IFACES, id, "enabled", json!(false));
    let owned = plan(&state);
    assert_eq!(writes(&owned), Vec::<String>::new());
    assert_eq!(owned["summary"]["stages"]["vm-interfaces"]["operator_owned"], 1);
    // Proxmox takes the link down too: the two agree (a yes/no field has no
    // third value to be in conflict with), nothing to do.
    let net0 = state["proxmox"][CONFIG_101]["net0"].as_str().unwrap().to_owned();
    state["proxmox"][CONFIG_101]["net0"] = json!(format!("{net0},link_down=1"));
    let agreed = plan(&state);
    assert_eq!(writes(&agreed), Vec::<String>::new());
    assert_eq!(agreed["summary"]["operator_owned"], 0);
    // Alice enables it again while Proxmox keeps it down: hers, although the
    // sync once wrote `true` too (Proxmox agreed with her `false` since).
    edit(&mut state, IFACES, id, "enabled", json!(true));
    let again = plan(&state);
    assert_eq!(writes(&again), Vec::<String>::new());
    assert_eq!(again["summary"]["operator_owned"], 1);
    // An MTU is: Alice sets 9000, Proxmox 1400.
    edit(&mut state, IFACES, id, "mtu", json!(9000));
    state["proxmox"][CONFIG_101]["net0"] = json!(format!("{net0},link_down=1,mtu=1400"));
    let next = plan(&state);
    assert!(
        next["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["id"] != NET0_101),
        "{:?}",
        next["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["id"].as_str().unwrap().contains("101/net0"))
            .collect::<Vec<_>>()
    );
    let entry = conflict(&next, &format!("{NET0_101}@mtu"));
    assert_eq!(
        (&entry["base"], &entry["netbox"], &entry["proxmox"]),
        (&Value::Null, &json!(9000), &json!(1400))
    );
    assert_eq!(op(&next, &format!("{NET0_101}@mtu"))["reason"], "operator-edited");
    assert!(next["operations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["id"] != ENABLED_101));
}

#[test]
fn an_edit_set_back_to_what_the_sync_wrote_gives_the_field_back() {
    let mut state = synced();
    edit_description(&mut state, "Alice's web frontend");
    edit_description(&mut state, "Public web frontend");
    proxmox_note(&mut state, "web frontend v2");
    assert_eq!(op(&plan(&state), VM_101)["reason"], "changed-in-proxmox");
}

#[test]
fn several_edits_in_a_row_have_the_sync_s_value_as_their_base() {
    let mut state = synced();
    edit_description(&mut state, "first try");
    edit_description(&mut state, "Alice's web frontend");
    proxmox_note(&mut state, "web frontend v2");
    let entry = conflict(&plan(&state), DESCRIPTION_101).clone();
    assert_eq!(entry["base"], "Public web frontend");
    // Only a change that Proxmox did not make counts: back to the original, it is owned.
    proxmox_note(&mut state, "Public web frontend");
    let owned = plan(&state);
    assert_eq!(writes(&owned), Vec::<String>::new());
    assert_eq!(owned["summary"]["operator_owned"], 1);
}

#[test]
fn the_sync_s_own_entries_are_never_an_operator_s_whoever_made_them() {
    let mut state = synced();
    let id = vm_id(&mut state);
    // The sync's user without the marker (an older run, another backend on the same token) ...
    operator_edit(
        &mut state["netbox"],
        SYNC_USER,
        VMS,
        id,
        "description",
        json!("by the sync's user"),
    );
    // ... and another user's request that carries the planner's change-log marker.
    let ifaces_id = net0_id(&mut state);
    operator_edit(
        &mut state["netbox"],
        (7, "serve"),
        IFACES,
        ifaces_id,
        "enabled",
        json!(false),
    );
    let log = records(&mut state, CHANGELOG);
    log.last_mut().unwrap()["message"] = json!("proxbox-planner 0.1.0");
    let next = plan(&state);
    assert_eq!(
        op(&next, VM_101)["changes"]["description"]["after"],
        "Public web frontend"
    );
    assert_eq!(op(&next, NET0_101)["changes"]["enabled"]["after"], true);
    assert_eq!(next["summary"]["operator_owned"], 0);
}

#[test]
fn the_overwrite_flags_keep_their_meaning_on_top() {
    let mut state = synced();
    state["settings"]["overwrite_vm_description"] = json!(false);
    edit_description(&mut state, "Alice's web frontend");
    proxmox_note(&mut state, "web frontend v2");
    let next = plan(&state);
    assert_eq!(writes(&next), Vec::<String>::new());
    assert!(
        next["conflicts"].as_array().unwrap().is_empty(),
        "never written after create: no conflict either"
    );
    assert_eq!(next["summary"]["operator_owned"], 0);
}

#[test]
fn decimal_values_in_the_change_log_compare_as_numbers() {
    let mut state = synced();
    let id = vm_id(&mut state);
    edit(&mut state, VMS, id, "vcpus", json!(8.0));
    // NetBox serializes VirtualMachine.vcpus (a DecimalField) as a string.
    let entry = records(&mut state, CHANGELOG).last_mut().unwrap();
    entry["prechange_data"]["vcpus"] = json!("4.00");
    entry["postchange_data"]["vcpus"] = json!("8.00");
    let owned = plan(&state);
    assert_eq!(writes(&owned), Vec::<String>::new());
    assert_eq!(owned["summary"]["operator_owned"], 1);
    state["proxmox"]["/cluster/resources"][3]["maxcpu"] = json!(6);
    let entry = conflict(&plan(&state), &format!("{VM_101}@vcpus")).clone();
    assert_eq!(
        (&entry["base"], &entry["netbox"], &entry["proxmox"]),
        (&json!(4.0), &json!(8.0), &json!(6))
    );
}

#[test]
fn an_unreadable_change_log_holds_what_an_operator_may_own_and_nothing_else() {
    let mut state = synced();
    state["proxmox"]["/cluster/resources"][3]["maxmem"] = json!(16u64 << 30);
    state["netbox"][CHANGELOG] = json!({"error": {"status": 403, "message": "GET /api/core/object-changes/ → 403"}});
    let next = plan(&state);
    assert_eq!(next["complete"], true, "the rest of the plan stands");
    let held = op(&next, &format!("{VM_101}@memory"));
    assert_eq!(
        (held["action"].as_str(), held["reason"].as_str()),
        (Some("skip"), Some("ownership-unknown"))
    );
    assert!(!next["operations"].as_array().unwrap().iter().any(|o| o["id"] == VM_101));
    let warning = support::warnings(&next, "changelog-unreadable");
    assert_eq!(warning.len(), 1);
    assert_eq!(warning[0]["netbox_collection"], CHANGELOG);
    assert!(warning[0]["message"].as_str().unwrap().contains("1 field update"));
    // A converged NetBox needs no history, so an unreadable one changes nothing.
    let mut converged = synced();
    converged["netbox"][CHANGELOG] = state["netbox"][CHANGELOG].clone();
    let quiet = plan(&converged);
    assert!(support::warnings(&quiet, "changelog-unreadable").is_empty());
}

#[test]
fn discover_asks_for_the_history_of_exactly_the_objects_the_plan_would_update() {
    let mut state = synced();
    let (id, net0) = (vm_id(&mut state), net0_id(&mut state));
    state["sync_user"] = json!({"id": SYNC_USER.0, "username": SYNC_USER.1});
    let converged = without_history(&state);
    let discovery = serde_json::to_value(proxbox_planner::discover(&converged).unwrap()).unwrap();
    assert_eq!(
        discovery["complete"], true,
        "nothing to update: no history read at all: {discovery}"
    );
    assert!(discovery.get("queries").is_none());

    proxmox_note(&mut state, "web frontend v2");
    let net0_config = state["proxmox"][CONFIG_101]["net0"].as_str().unwrap().to_owned();
    state["proxmox"][CONFIG_101]["net0"] = json!(format!("{net0_config},link_down=1"));
    let drifted = without_history(&state);
    let error = proxbox_planner::plan(&drifted).unwrap_err();
    assert_eq!(error.path, format!("$.netbox[\"{CHANGELOG}\"]"));
    let discovery = serde_json::to_value(proxbox_planner::discover(&drifted).unwrap()).unwrap();
    assert_eq!(discovery["netbox"], json!([CHANGELOG, JOURNAL]));
    assert_eq!(
        discovery["queries"][CHANGELOG],
        json!([
            {"changed_object_type": "virtualization.virtualmachine", "changed_object_id": [id], "action": "update", "user_id__n": SYNC_USER.0},
            {"changed_object_type": "virtualization.vminterface", "changed_object_id": [net0], "action": "update", "user_id__n": SYNC_USER.0},
        ])
    );
    assert_eq!(
        discovery["queries"][JOURNAL][0],
        json!({"assigned_object_type": "virtualization.virtualmachine", "assigned_object_id": [id], "q": "keep-netbox:"})
    );
    let mut fetched = drifted.clone();
    fetched["netbox"][CHANGELOG] = json!([]);
    fetched["netbox"][JOURNAL] = json!([]);
    let done = serde_json::to_value(proxbox_planner::discover(&fetched).unwrap()).unwrap();
    assert_eq!(done["complete"], true);
    assert!(proxbox_planner::plan(&fetched).is_ok());

    let mut anonymous = drifted.clone();
    anonymous["sync_user"] = Value::Null;
    assert_eq!(proxbox_planner::discover(&anonymous).unwrap_err().path, "$.sync_user");
}

#[test]
fn on_operator_edit_is_read_from_the_endpoint_over_the_settings() {
    let mut state = with_setting(synced(), "overwrite");
    state["endpoint"]["on_operator_edit"] = json!("ask");
    edit_description(&mut state, "Alice's web frontend");
    proxmox_note(&mut state, "web frontend v2");
    assert_eq!(conflict(&plan(&state), DESCRIPTION_101)["resolution"], "ask");
    state["endpoint"]["on_operator_edit"] = json!("");
    assert_eq!(conflict(&plan(&state), DESCRIPTION_101)["resolution"], "overwrite");
    state["settings"]["on_operator_edit"] = json!("sometimes");
    let error = proxbox_planner::plan(&with_history(&state)).unwrap_err();
    assert_eq!(error.path, "$.settings.on_operator_edit");
}

/// The input before the host read NetBox's history.
fn without_history(state: &Value) -> Value {
    let mut input = state.clone();
    for collection in [CHANGELOG, JOURNAL] {
        input["netbox"].as_object_mut().unwrap().remove(collection);
    }
    input
}

#[test]
fn plans_with_history_converge_and_keep_every_operator_value() {
    for setting in ["keep", "overwrite", "ask"] {
        let mut state = with_setting(synced(), setting);
        edit_description(&mut state, "Alice's web frontend");
        let id = net0_id(&mut state);
        edit(&mut state, IFACES, id, "enabled", json!(false));
        proxmox_note(&mut state, "web frontend v2");
        let first = plan(&state);
        apply_plan(&mut state, &first);
        assert_eq!(writes(&plan(&state)), Vec::<String>::new(), "{setting}");
        let kept = setting != "overwrite";
        assert_eq!(
            vm_of(&mut state, 101)["description"] == "Alice's web frontend",
            kept,
            "{setting}"
        );
        let net0 = records_of(&state, IFACES)
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone();
        assert_eq!(net0["enabled"], false, "{setting}: Proxmox did not change it");
        assert!(ops(&first, "delete").is_empty());
    }
}
