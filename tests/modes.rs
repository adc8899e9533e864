//! The sync-mode rules of the seed and SPEC §1, one test per rule.

use proxbox_planner::{effective_sync_mode, resolve_sync_modes, ErrorCode, ModeReport};
use serde_json::{json, Value};

fn mode(settings: &Value, endpoint: &Value, resource: &str) -> String {
    effective_sync_mode(Some(settings), Some(endpoint), &json!(resource))
        .unwrap()
        .as_str()
        .to_owned()
}

fn report(settings: Value, endpoint: Value) -> ModeReport {
    resolve_sync_modes(Some(&settings), Some(&endpoint), None).unwrap()
}

fn effective(report: &ModeReport) -> Value {
    serde_json::to_value(report).unwrap()["effective"].clone()
}

/// The seed's "Example configuration table", verbatim.
#[test]
fn seed_example_configuration_table() {
    let global = json!({
        "sync_mode_vm": "always", "sync_mode_vm_template": "bootstrap_only",
        "sync_mode_vm_interface": "always", "sync_mode_mac": "always",
        "sync_mode_cluster": "always", "sync_mode_node": "disabled",
        "sync_mode_storage": "always", "sync_mode_ip_address": "always",
        "sync_mode_sdn": "disabled",
    });
    let endpoint_a = json!({
        "id": 1, "name": "A", "sync_mode_vm": null, "sync_mode_vm_template": "always",
        "sync_mode_vm_interface": null, "sync_mode_mac": null, "sync_mode_cluster": null,
        "sync_mode_node": "always", "sync_mode_storage": null, "sync_mode_ip_address": null,
        "sync_mode_sdn": "always",
    });
    let endpoint_b = json!({
        "id": 2, "name": "B", "sync_mode_vm": "disabled", "sync_mode_vm_template": "",
        "sync_mode_mac": "disabled", "sync_mode_ip_address": "disabled",
    });
    let table = [
        ("vm", "always", "disabled"),
        ("vm_template", "always", "bootstrap_only"),
        ("vm_interface", "always", "always"),
        ("mac", "always", "disabled"),
        ("cluster", "always", "always"),
        ("node", "always", "disabled"),
        ("storage", "always", "always"),
        ("ip_address", "always", "disabled"),
        ("sdn", "always", "disabled"),
    ];
    let report_a = effective(&report(global.clone(), endpoint_a.clone()));
    let report_b = effective(&report(global.clone(), endpoint_b.clone()));
    for (resource, for_a, for_b) in table {
        assert_eq!(mode(&global, &endpoint_a, resource), for_a, "{resource} for A");
        assert_eq!(mode(&global, &endpoint_b, resource), for_b, "{resource} for B");
        // No cascade applies in this table, so the effective modes agree.
        assert_eq!(report_a[resource], for_a, "{resource} effective for A");
        assert_eq!(report_b[resource], for_b, "{resource} effective for B");
    }
}

#[test]
fn defaults_are_always_except_sdn_and_sdn_bgp() {
    let value = serde_json::to_value(report(json!({}), json!({}))).unwrap();
    for resource in [
        "vm",
        "vm_template",
        "vm_interface",
        "mac",
        "cluster",
        "node",
        "storage",
        "ip_address",
    ] {
        assert_eq!(value["effective"][resource], "always", "{resource}");
        assert_eq!(value["sources"][resource], "default", "{resource}");
    }
    assert_eq!(value["effective"]["sdn"], "disabled");
    assert_eq!(value["effective"]["sdn_bgp"], "disabled");
}

#[test]
fn sources_say_where_each_mode_came_from() {
    let value = serde_json::to_value(report(
        json!({"sync_mode_vm": "disabled", "sync_mode_node": "bootstrap_only"}),
        json!({"sync_mode_vm": "always", "sync_mode_node": null}),
    ))
    .unwrap();
    assert_eq!(value["sources"]["vm"], "endpoint");
    assert_eq!(value["raw"]["vm"], "always");
    assert_eq!(value["sources"]["node"], "global");
    assert_eq!(value["raw"]["node"], "bootstrap_only");
    assert_eq!(value["sources"]["cluster"], "default");
}

#[test]
fn resource_type_spellings_are_normalised() {
    let settings = json!({"sync_mode_vm_template": "disabled"});
    for spelling in [
        "vm_template",
        "VM_TEMPLATE",
        "vm-template",
        "sync_mode_vm_template",
        "  Vm-Template ",
    ] {
        assert_eq!(mode(&settings, &json!({}), spelling), "disabled", "{spelling}");
    }
    assert_eq!(mode(&json!({}), &json!({}), "VM"), "always");
}

#[test]
fn unknown_resource_type_lists_the_valid_ones() {
    let error = effective_sync_mode(None, None, &json!("vms")).unwrap_err();
    assert_eq!(error.code, ErrorCode::UnknownResourceType);
    assert_eq!(error.path, "$.resource_type");
    assert!(error
        .message
        .contains("vm, vm_template, vm_interface, mac, cluster, node, storage, ip_address, sdn, sdn_bgp"));
    let error = effective_sync_mode(None, None, &json!(7)).unwrap_err();
    assert_eq!(error.code, ErrorCode::WrongType);
}

#[test]
fn unknown_mode_is_refused_with_its_path() {
    let error = resolve_sync_modes(Some(&json!({"sync_mode_vm": "sometimes"})), None, None).unwrap_err();
    assert_eq!(error.code, ErrorCode::UnknownSyncMode);
    assert_eq!(error.path, "$.settings.sync_mode_vm");
    assert!(error.message.contains("\"sometimes\""));
    let error = resolve_sync_modes(None, Some(&json!({"sync_mode_mac": true})), None).unwrap_err();
    assert_eq!(error.code, ErrorCode::WrongType);
    assert_eq!(error.path, "$.endpoint.sync_mode_mac");
    let error = resolve_sync_modes(Some(&json!("always")), None, None).unwrap_err();
    assert_eq!((error.code, error.path.as_str()), (ErrorCode::WrongType, "$.settings"));
}

#[test]
fn mode_spellings_are_forgiving_about_case_and_dashes() {
    assert_eq!(
        mode(&json!({"sync_mode_vm": "Bootstrap-Only"}), &json!({}), "vm"),
        "bootstrap_only"
    );
}

// --- the cascade (SPEC §1) ---------------------------------------------------

fn effective_with(global: Value) -> Value {
    effective(&report(global, json!({})))
}

#[test]
fn cluster_disabled_disables_node() {
    let modes = effective_with(json!({"sync_mode_cluster": "disabled", "sync_mode_node": "always"}));
    assert_eq!(modes["node"], "disabled");
}

#[test]
fn node_disabled_leaves_cluster_alone() {
    let modes = effective_with(json!({"sync_mode_node": "disabled"}));
    assert_eq!(modes["cluster"], "always");
}

#[test]
fn vm_interface_needs_both_vm_and_template_disabled() {
    let only_vm = effective_with(json!({"sync_mode_vm": "disabled"}));
    assert_eq!(only_vm["vm_interface"], "always");
    assert_eq!(only_vm["vm_template"], "always", "vm disabled never disables templates");
    let only_template = effective_with(json!({"sync_mode_vm_template": "disabled"}));
    assert_eq!(only_template["vm_interface"], "always");
    assert_eq!(only_template["vm"], "always", "templates disabled never disables vms");
    let both = effective_with(json!({"sync_mode_vm": "disabled", "sync_mode_vm_template": "disabled"}));
    for child in ["vm_interface", "ip_address", "mac"] {
        assert_eq!(both[child], "disabled", "{child}");
    }
}

#[test]
fn vm_interface_disabled_disables_ip_and_mac() {
    let modes = effective_with(json!({"sync_mode_vm_interface": "disabled"}));
    assert_eq!(modes["ip_address"], "disabled");
    assert_eq!(modes["mac"], "disabled");
    assert_eq!(modes["vm"], "always", "a child never disables its parent");
}

#[test]
fn ip_and_mac_are_independent_siblings() {
    let no_ip = effective_with(json!({"sync_mode_ip_address": "disabled"}));
    assert_eq!(
        (no_ip["vm_interface"].as_str(), no_ip["mac"].as_str()),
        (Some("always"), Some("always"))
    );
    let no_mac = effective_with(json!({"sync_mode_mac": "disabled"}));
    assert_eq!(
        (no_mac["vm_interface"].as_str(), no_mac["ip_address"].as_str()),
        (Some("always"), Some("always"))
    );
}

#[test]
fn sdn_bgp_follows_sdn() {
    let modes = effective_with(json!({"sync_mode_sdn_bgp": "always"}));
    assert_eq!(modes["sdn_bgp"], "disabled", "sdn defaults to disabled");
    let modes = effective_with(json!({"sync_mode_sdn": "always", "sync_mode_sdn_bgp": "always"}));
    assert_eq!(modes["sdn_bgp"], "always");
}

#[test]
fn cascade_never_produces_bootstrap_only() {
    let modes = effective_with(json!({"sync_mode_vm": "bootstrap_only", "sync_mode_vm_template": "bootstrap_only"}));
    assert_eq!(modes["vm_interface"], "always");
    assert_eq!(modes["ip_address"], "always");
}

#[test]
fn cascade_records_its_cause() {
    let value = serde_json::to_value(report(
        json!({"sync_mode_vm": "disabled", "sync_mode_vm_template": "disabled"}),
        json!({}),
    ))
    .unwrap();
    assert_eq!(value["cascade"]["vm_interface"], json!(["vm", "vm_template"]));
    assert_eq!(value["cascade"]["mac"], json!(["vm_interface"]));
    assert_eq!(value["cascade"]["vm"], json!([]));
    assert_eq!(value["raw"]["mac"], "always", "raw is before the cascade");
}

// --- stages (SPEC §1.1) ------------------------------------------------------

fn stages(global: Value, sync_types: Option<Value>) -> Vec<(String, bool, Option<String>)> {
    let report = resolve_sync_modes(Some(&global), None, sync_types.as_ref()).unwrap();
    serde_json::to_value(report.stages)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_owned(),
                s["run"].as_bool().unwrap(),
                s.get("reason").and_then(Value::as_str).map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn all_lists_every_stage_in_dependency_order_with_sdn_skipped_by_default() {
    let listed = stages(json!({}), None);
    let names: Vec<&str> = listed.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "devices",
            "storage",
            "virtual-machines",
            "vm-templates",
            "task-history",
            "vm-disks",
            "vm-backups",
            "vm-snapshots",
            "network-interfaces",
            "vm-interfaces",
            "ip-addresses",
            "sdn",
            "replications",
            "backup-routines"
        ]
    );
    for (name, run, reason) in &listed {
        if name == "sdn" {
            assert!(!run);
            assert_eq!(reason.as_deref(), Some("sync_mode_sdn=disabled"));
        } else {
            assert!(run, "{name}");
            assert_eq!(*reason, None);
        }
    }
    assert_eq!(stages(json!({}), Some(json!(["all"]))), listed);
}

#[test]
fn sdn_stage_runs_once_enabled() {
    for mode in ["always", "bootstrap_only"] {
        let listed = stages(json!({"sync_mode_sdn": mode}), Some(json!(["sdn"])));
        assert_eq!(listed, [("sdn".to_owned(), true, None)]);
    }
}

#[test]
fn sync_types_are_deduplicated_sorted_and_pull_in_dependencies() {
    let listed = stages(
        json!({}),
        Some(json!(["replications", "ip-addresses", "devices", "devices"])),
    );
    let names: Vec<&str> = listed.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["devices", "vm-interfaces", "ip-addresses", "replications"]);
    let listed = stages(json!({}), Some(json!(["storage", "all"])));
    assert_eq!(listed.len(), proxbox_planner::Stage::ALL.len(), "all absorbs the rest");
}

#[test]
fn every_skip_reason_of_the_stage_table() {
    let cases = [
        (
            json!({"sync_mode_cluster": "disabled"}),
            "devices",
            "sync_mode_cluster=disabled, sync_mode_node=disabled (inherited from sync_mode_cluster=disabled)",
        ),
        (
            json!({"sync_mode_cluster": "disabled", "sync_mode_node": "disabled"}),
            "devices",
            "sync_mode_cluster=disabled, sync_mode_node=disabled",
        ),
        (
            json!({"sync_mode_storage": "disabled"}),
            "storage",
            "sync_mode_storage=disabled",
        ),
        (
            json!({"sync_mode_vm": "disabled"}),
            "virtual-machines",
            "sync_mode_vm=disabled",
        ),
        (
            json!({"sync_mode_vm_template": "disabled"}),
            "vm-templates",
            "sync_mode_vm_template=disabled",
        ),
        (json!({"sync_mode_vm": "disabled"}), "vm-disks", "sync_mode_vm=disabled"),
        (
            json!({"sync_mode_node": "disabled"}),
            "network-interfaces",
            "sync_mode_node=disabled",
        ),
        (
            json!({"sync_mode_cluster": "disabled"}),
            "network-interfaces",
            "sync_mode_node=disabled (inherited from sync_mode_cluster=disabled)",
        ),
        (
            json!({"sync_mode_vm_interface": "disabled"}),
            "vm-interfaces",
            "sync_mode_vm_interface=disabled",
        ),
        (
            json!({"sync_mode_ip_address": "disabled", "sync_mode_mac": "disabled"}),
            "ip-addresses",
            "sync_mode_ip_address=disabled, sync_mode_mac=disabled",
        ),
        (
            json!({"sync_mode_vm": "disabled", "sync_mode_vm_template": "disabled"}),
            "replications",
            "sync_mode_vm=disabled, sync_mode_vm_template=disabled",
        ),
        // Backups, snapshots and tasks describe VMs (templates are never VMs here).
        (
            json!({"sync_mode_vm": "disabled"}),
            "task-history",
            "sync_mode_vm=disabled",
        ),
        (
            json!({"sync_mode_vm": "disabled"}),
            "vm-backups",
            "sync_mode_vm=disabled",
        ),
        (
            json!({"sync_mode_vm": "disabled"}),
            "vm-snapshots",
            "sync_mode_vm=disabled",
        ),
        (
            json!({"sync_mode_cluster": "disabled"}),
            "backup-routines",
            "sync_mode_cluster=disabled",
        ),
    ];
    for (global, stage, reason) in cases {
        let listed = stages(global.clone(), None);
        let found = listed.iter().find(|(n, _, _)| n == stage).unwrap();
        assert!(!found.1, "{stage} should be skipped for {global}");
        assert_eq!(found.2.as_deref(), Some(reason), "{stage}");
    }
}

#[test]
fn partial_gates_keep_stages_running() {
    let listed = stages(json!({"sync_mode_node": "disabled"}), Some(json!(["devices"])));
    assert!(listed[0].1, "devices runs while cluster is enabled");
    let listed = stages(
        json!({"sync_mode_ip_address": "disabled"}),
        Some(json!(["ip-addresses"])),
    );
    assert!(listed.iter().all(|(_, run, _)| *run), "MACs keep the stage alive");
    let listed = stages(json!({"sync_mode_vm": "disabled"}), Some(json!(["replications"])));
    assert!(listed[0].1, "templates keep replications alive");
}

#[test]
fn bad_sync_types_name_their_path() {
    let error = resolve_sync_modes(None, None, Some(&json!(["devices", "vms"]))).unwrap_err();
    assert_eq!(error.code, ErrorCode::UnknownSyncType);
    assert_eq!(error.path, "$.sync_types[1]");
    assert!(error.message.contains("virtual-machines"), "{}", error.message);
    let error = resolve_sync_modes(None, None, Some(&json!("all"))).unwrap_err();
    assert_eq!(
        (error.code, error.path.as_str()),
        (ErrorCode::WrongType, "$.sync_types")
    );
    let error = resolve_sync_modes(None, None, Some(&json!([]))).unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidValue);
    let error = resolve_sync_modes(None, None, Some(&json!([3]))).unwrap_err();
    assert_eq!(
        (error.code, error.path.as_str()),
        (ErrorCode::WrongType, "$.sync_types[0]")
    );
}

// --- query flags (SPEC §1.2) ---------------------------------------------------

fn flags(global: Value, endpoint: Value, sync_types: Value) -> Value {
    let report = resolve_sync_modes(Some(&global), Some(&endpoint), Some(&sync_types)).unwrap();
    serde_json::to_value(report.query_flags).unwrap()
}

#[test]
fn common_flags_carry_effective_modes_and_overwrite_flags() {
    let value = flags(
        json!({"sync_mode_cluster": "disabled", "overwrite_vm_tags": false}),
        json!({"overwrite_vm_tags": null, "overwrite_ip_tags": false}),
        json!(["all"]),
    );
    let common = &value["common"];
    assert_eq!(common["sync_mode_node"], "disabled", "effective, after the cascade");
    assert_eq!(common["sync_mode_sdn_bgp"], "disabled");
    assert_eq!(common["overwrite_vm_tags"], "false", "null endpoint value inherits");
    assert_eq!(common["overwrite_ip_tags"], "false", "endpoint wins");
    assert_eq!(common["overwrite_vm_platform"], "false", "the one default-false flag");
    assert_eq!(common["overwrite_device_role"], "true");
    assert_eq!(common.as_object().unwrap().len(), 10 + 26);
}

#[test]
fn vm_stage_leaves_network_to_dedicated_stages() {
    let value = flags(json!({}), json!({}), json!(["all"]));
    assert_eq!(value["stages"]["virtual-machines"], json!({"sync_vm_network": "false"}));
    let value = flags(
        json!({"sync_mode_vm_interface": "disabled"}),
        json!({}),
        json!(["virtual-machines"]),
    );
    assert_eq!(value["stages"]["virtual-machines"], json!({"sync_vm_network": "false"}));
}

#[test]
fn vm_stage_alone_forwards_ip_and_mac_gates() {
    let value = flags(
        json!({"sync_mode_ip_address": "disabled", "sync_mode_mac": "disabled"}),
        json!({}),
        json!(["virtual-machines"]),
    );
    assert_eq!(
        value["stages"]["virtual-machines"],
        json!({"assign_vm_interface_ips": "false", "sync_vm_interface_macs": "false"})
    );
    let value = flags(json!({}), json!({}), json!(["virtual-machines"]));
    assert_eq!(value["stages"], json!({}));
}

#[test]
fn interface_stage_forwards_the_mac_gate() {
    let value = flags(
        json!({"sync_mode_mac": "disabled"}),
        json!({}),
        json!(["vm-interfaces"]),
    );
    assert_eq!(
        value["stages"]["vm-interfaces"],
        json!({"sync_vm_interface_macs": "false"})
    );
}

#[test]
fn wrong_typed_overwrite_flag_is_an_error() {
    let error = resolve_sync_modes(Some(&json!({"overwrite_vm_tags": "yes"})), None, None).unwrap_err();
    assert_eq!(
        (error.code, error.path.as_str()),
        (ErrorCode::WrongType, "$.settings.overwrite_vm_tags")
    );
}
