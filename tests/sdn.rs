//! SDN: inventory rows, EVPN/VXLAN → L2VPN, route targets, prefixes,
//! terminations and conflicts; nothing ever deleted.

mod support;

use serde_json::{json, Value};
use support::{op, op_ids, ops, plan, sync, warnings, writes};

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/sdn/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sdn_ops(plan: &Value) -> Vec<&Value> {
    plan["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["stage"] == "sdn")
        .collect()
}

#[test]
fn sdn_is_off_by_default_and_fetches_nothing() {
    let mut input = fixture("evpn");
    input["settings"]["sync_mode_sdn"] = Value::Null;
    let first = plan(&input);
    let sdn = sdn_ops(&first);
    assert_eq!(sdn.len(), 1);
    assert_eq!(
        (sdn[0]["action"].as_str(), sdn[0]["detail"].as_str()),
        (Some("skip"), Some("sync_mode_sdn=disabled"))
    );
    let bare = json!({"settings": {}, "endpoint": {"id": 1}, "proxmox": {"/cluster/status": input["proxmox"]["/cluster/status"], "/cluster/resources": []}});
    let wanted = proxbox_planner::discover(&bare).unwrap();
    assert!(
        !wanted.proxmox.iter().any(|p| p.contains("/sdn")),
        "{:?}",
        wanted.proxmox
    );
}

#[test]
fn discover_asks_for_sdn_paths_in_rounds_when_enabled() {
    let full = fixture("evpn");
    let mut input = json!({"settings": full["settings"], "endpoint": full["endpoint"], "sync_types": ["sdn"], "proxmox": {}, "netbox": {}});
    let mut rounds = Vec::new();
    loop {
        let next = proxbox_planner::discover(&input).unwrap();
        if next.proxmox.is_empty() {
            break;
        }
        for path in &next.proxmox {
            input["proxmox"][path] = full["proxmox"]
                .get(path)
                .cloned()
                .unwrap_or(json!({"error": {"status": 404, "message": "nope"}}));
        }
        rounds.push(next.proxmox);
        assert!(rounds.len() < 6);
    }
    let all: Vec<&String> = rounds.iter().flatten().collect();
    for path in [
        "/cluster/sdn/fabrics/fabric",
        "/cluster/sdn/route-maps",
        "/cluster/sdn/prefix-lists",
        "/cluster/sdn/vnets/vnet100/subnets",
        "/nodes/pve2/sdn/zones",
        "/nodes/pve2/sdn/zones/evpnz/content",
        "/nodes/pve2/sdn/zones/evpnz/ip-vrf",
        "/nodes/pve2/sdn/vnets/vnet200/mac-vrf",
    ] {
        assert!(all.iter().any(|p| p.as_str() == path), "{path} not asked: {all:?}");
    }
    assert!(
        !all.iter().any(|p| p.as_str() == "/cluster/sdn/fabrics"),
        "the bare fabrics path is a directory index"
    );
    assert!(
        !all.iter()
            .any(|p| p.contains("vlanz/ip-vrf") || p.contains("vlan20/mac-vrf")),
        "VRF rows are EVPN only"
    );
}

#[test]
fn evpn_and_vxlan_vnets_become_l2vpns_with_route_targets() {
    let first = plan(&fixture("evpn"));
    let web = &op(&first, "sdn:vpn.l2vpn:proxbox-1-lab-evpnz-vnet100")["fields"];
    assert_eq!(
        (web["type"].as_str(), web["identifier"].as_u64(), web["status"].as_str()),
        (Some("vxlan-evpn"), Some(11000), Some("active"))
    );
    assert_eq!(
        web["import_targets"],
        json!([7, {"$ref": "sdn:ipam.routetarget:65000:1200"}]),
        "existing RT reused, missing one created"
    );
    let vx = &op(&first, "sdn:vpn.l2vpn:proxbox-1-lab-vxz-vx300")["fields"];
    assert_eq!(
        (vx["type"].as_str(), vx["import_targets"].clone()),
        (Some("vxlan"), json!([]))
    );
    let ids = op_ids(&first);
    assert!(
        !ids.iter()
            .any(|i| i.contains("l2vpn:") && (i.contains("vlan20") || i.contains("simple10"))),
        "other zones: inventory only"
    );
    assert!(
        !ids.contains(&"sdn:ipam.routetarget:65000:1100"),
        "the manual route target is not touched"
    );
    let vnet = &op(&first, "sdn:netbox_proxbox.proxmoxsdnvnet:vnet/vnet100")["fields"];
    assert_eq!(
        vnet["l2vpn"],
        json!({"$ref": "sdn:vpn.l2vpn:proxbox-1-lab-evpnz-vnet100"})
    );
    let zone = &op(&first, "sdn:netbox_proxbox.proxmoxsdnzone:zone/evpnz")["fields"];
    assert_eq!(
        (
            zone["rt_import"].clone(),
            zone["vrf_vxlan"].as_u64(),
            zone["controller"].as_str()
        ),
        (json!(["65000:1100", "65000:1200"]), Some(10000), Some("evpn1"))
    );
    let controller = &op(&first, "sdn:netbox_proxbox.proxmoxsdncontroller:controller/evpn1")["fields"];
    assert_eq!(
        (
            controller["asn"].as_u64(),
            controller["peers"].as_array().unwrap().len()
        ),
        (Some(65000), 3)
    );
}

#[test]
fn subnets_become_prefixes_but_manual_prefixes_are_never_modified() {
    let first = plan(&fixture("evpn"));
    assert_eq!(
        op(&first, "sdn:ipam.prefix:10.200.0.0/24")["fields"]["prefix"],
        "10.200.0.0/24",
        "host bits zeroed"
    );
    let subnet = &op(
        &first,
        "sdn:netbox_proxbox.proxmoxsdnsubnet:subnet/vnet200/10.200.0.5/24",
    )["fields"];
    assert_eq!(subnet["prefix"], json!({"$ref": "sdn:ipam.prefix:10.200.0.0/24"}));
    let bad = &op(
        &first,
        "sdn:netbox_proxbox.proxmoxsdnsubnet:subnet/vnet200/10.300.0.0/33",
    )["fields"];
    assert_eq!(
        (bad["prefix"].clone(), bad["skip_reason"].as_str()),
        (Value::Null, Some("invalid CIDR \"10.300.0.0/33\""))
    );
    assert!(first["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"] == "invalid-cidr"));
    let lan = &op(&first, "sdn:netbox_proxbox.proxmoxsdnsubnet:subnet/vlan20/10.0.20.0/24")["fields"];
    assert_eq!(lan["prefix"], 11, "linked to the manual prefix");
    assert!(
        !first.to_string().contains("\"id\":\"sdn:ipam.prefix:10.0.20.0/24\""),
        "and it is neither created nor modified"
    );
    assert!(first["operations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["target"]["id"] != 11));
}

#[test]
fn terminations_only_for_unambiguous_targets_and_conflicts_are_recorded() {
    let first = plan(&fixture("evpn"));
    let termination = op(&first, "sdn:vpn.l2vpntermination:ipam.vlan/1");
    assert_eq!(
        termination["fields"]["l2vpn"],
        json!({"$ref": "sdn:vpn.l2vpn:proxbox-1-lab-evpnz-vnet100"})
    );
    assert_eq!(
        ops(&first, "create")
            .iter()
            .filter(|o| o["model"] == "vpn.l2vpntermination")
            .count(),
        1,
        "one per target"
    );
    // VLAN 30 matches two NetBox VLANs: a warning, a binding marked ambiguous, no termination.
    assert!(first["warnings"].as_array().unwrap().iter().any(|w| w["message"]
        .as_str()
        .unwrap()
        .contains("VLAN id 30 matches more than one")));
    let ambiguous = &op(
        &first,
        "sdn:netbox_proxbox.proxmoxsdnbinding:binding/node-zone-content/pve1/evpnz/vnet200",
    )["fields"];
    assert_eq!(ambiguous["status"], "ambiguous");
    // VLAN 4 already terminates the manual L2VPN 9.
    assert_eq!(
        first["conflicts"],
        json!([{
        "kind": "sdn-termination", "source_type": "node-zone-content", "source_name": "pve1/vxz/vx300", "target_type": "ipam.vlan", "target_id": 4,
        "intended_l2vpn": {"$ref": "sdn:vpn.l2vpn:proxbox-1-lab-vxz-vx300"}, "intended_l2vpn_slug": "proxbox-1-lab-vxz-vx300",
        "existing_l2vpn": 9, "reason": "Target already terminates L2VPN 9."}])
    );
    let binding = &op(
        &first,
        "sdn:netbox_proxbox.proxmoxsdnbinding:binding/node-zone-content/pve1/vxz/vx300",
    )["fields"];
    assert_eq!(
        (binding["status"].as_str(), binding["conflict_reason"].as_str()),
        (Some("conflict"), Some("Target already terminates L2VPN 9."))
    );
    assert_eq!(
        (binding["target_type"].as_str(), binding["target_id"].as_u64()),
        (Some("ipam.vlan"), Some(4))
    );
    assert_eq!(
        op(&first, "sdn:vpn.l2vpntermination:ipam.vlan/4")["reason"],
        "sdn-conflict"
    );
    assert!(
        first["operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["target"]["id"] != 5 || o["action"] == "skip"),
        "never overwritten"
    );
}

#[test]
fn sdn_converges() {
    let (_, synced) = sync(&fixture("evpn"));
    let again = plan(&synced);
    assert_eq!(writes(&again), Vec::<String>::new());
    assert_eq!(
        again["conflicts"].as_array().unwrap().len(),
        1,
        "the conflict is still reported"
    );
}

#[test]
fn proxmox_8_without_fabrics_route_maps_prefix_lists_or_bridges_warns_and_goes_on() {
    let first = plan(&fixture("pve8"));
    let unsupported: Vec<&str> = warnings(&first, "sdn-path-unsupported")
        .into_iter()
        .map(|w| w["proxmox_path"].as_str().unwrap())
        .collect();
    for path in [
        "/cluster/sdn/fabrics/fabric",
        "/cluster/sdn/route-maps",
        "/cluster/sdn/prefix-lists",
        "/nodes/pve1/sdn/zones/evpnz/bridges",
    ] {
        assert!(unsupported.contains(&path), "{path}: {unsupported:?}");
    }
    assert!(
        ops(&first, "create").iter().any(|o| o["model"] == "vpn.l2vpn"),
        "the rest of the stage goes on"
    );
    let (_, synced) = sync(&fixture("pve8"));
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}

#[test]
fn a_vnet_removed_between_runs_goes_stale_and_its_l2vpn_decommissioning() {
    let (_, mut synced) = sync(&fixture("evpn"));
    synced["proxmox"]["/cluster/sdn/vnets"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v["vnet"] != "vnet200");
    synced["proxmox"]
        .as_object_mut()
        .unwrap()
        .remove("/cluster/sdn/vnets/vnet200/subnets");
    let next = plan(&synced);
    assert!(ops(&next, "delete").is_empty(), "nothing SDN is deleted");
    let l2vpn = op(&next, "sdn:vpn.l2vpn:proxbox-1-lab-evpnz-vnet200");
    assert_eq!(l2vpn["changes"]["status"]["after"], "decommissioning");
    let stale: Vec<&Value> = sdn_ops(&next)
        .into_iter()
        .filter(|o| o["changes"]["status"]["after"] == "stale")
        .collect();
    assert!(
        stale.iter().any(|o| o["model"] == "netbox_proxbox.proxmoxsdnvnet"),
        "{stale:?}"
    );
    assert!(stale.iter().any(|o| o["model"] == "netbox_proxbox.proxmoxsdnsubnet"));
    assert!(sdn_ops(&next)
        .iter()
        .any(|o| o["model"] == "ipam.prefix" && o["changes"]["status"]["after"] == "decommissioning"));
    let (_, after) = sync(&synced);
    assert_eq!(writes(&plan(&after)), Vec::<String>::new());
}

#[test]
fn a_failed_vnet_list_retires_nothing() {
    let (_, mut synced) = sync(&fixture("evpn"));
    synced["proxmox"]["/cluster/sdn/vnets"] = json!({"error": {"status": 500, "message": "timeout"}});
    let next = plan(&synced);
    assert!(
        sdn_ops(&next).iter().all(|o| o["changes"]["status"]["after"].is_null()),
        "no stale, no decommissioning"
    );
}

#[test]
fn fabrics_the_plugin_cannot_store_are_skipped_not_planned() {
    let mut input = fixture("evpn");
    input["proxmox"]["/cluster/sdn/fabrics/fabric"] =
        json!([{"id": "fabric1", "protocol": "openfabric"}, {"id": "underlay", "protocol": "ospf"}]);
    let first = plan(&input);
    let skip = op(&first, "sdn:netbox_proxbox.proxmoxsdnfabric:fabric/fabric1");
    assert_eq!(
        (skip["action"].as_str(), skip["reason"].as_str()),
        (Some("skip"), Some("unsupported-by-netbox"))
    );
    assert!(first["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"] == "sdn-unsupported"));
    assert_eq!(
        op(&first, "sdn:netbox_proxbox.proxmoxsdnfabric:fabric/underlay")["fields"]["fabric_type"],
        "ospf"
    );
    let (_, synced) = sync(&input);
    assert_eq!(writes(&plan(&synced)), Vec::<String>::new());
}
