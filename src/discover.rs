//! Sans-IO discovery: which Proxmox paths and NetBox collections a plan still
//! needs, given what has been fetched so far. The host loops until both lists
//! are empty, then calls `plan`. Disabled resources cause no fetches.

use crate::error::Result;
use crate::input::InputDoc;
use crate::json::Path;
use crate::modes::{parse_sync_types, Stage};
use crate::netbox::NetboxState;
use crate::planner::{collections_for, implemented, ALWAYS_READ};
use crate::proxmox_path;
use crate::settings::read_settings;
use crate::source::{inventory, ProxmoxSnapshot};
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// Proxmox API paths to GET (their `data` goes under `proxmox[path]`).
    pub proxmox: Vec<String>,
    /// NetBox collections to list in full (their `results` go under `netbox[path]`).
    pub netbox: Vec<String>,
    /// True when nothing more is needed: call `plan` now.
    pub complete: bool,
}

pub fn discover(input: &Value) -> Result<Discovery> {
    let input = InputDoc::from_value(input)?;
    let settings = read_settings(input.settings.as_ref(), input.endpoint.as_ref())?;
    let stages = parse_sync_types(input.sync_types.as_ref(), &Path::ROOT.key("sync_types"))?;
    let report = crate::mode_report(&settings, &stages);
    let running: Vec<Stage> = report
        .stages
        .iter()
        .filter(|s| s.run && implemented(s.stage))
        .map(|s| s.stage)
        .collect();
    let snapshot = ProxmoxSnapshot::read(input.proxmox.as_ref())?;
    let netbox = NetboxState::read(&input.netbox)?;

    let mut proxmox = Vec::new();
    let mut want = |path: &str| {
        if !snapshot.has(path) {
            proxmox.push(path.to_owned());
        }
    };
    if !running.is_empty() {
        want("/cluster/status");
        want("/cluster/resources");
    }
    if running.contains(&Stage::Storage) {
        want("/storage");
    }
    if running.contains(&Stage::Replications) {
        want("/cluster/replication");
    }
    if running.contains(&Stage::Sdn) {
        sdn_paths(&snapshot, &mut want);
    }
    if let Ok(Ok(found)) = inventory(&snapshot) {
        let wants_vms = running
            .iter()
            .any(|s| matches!(s, Stage::VirtualMachines | Stage::VmInterfaces | Stage::IpAddresses));
        let wants_templates = running.contains(&Stage::VmTemplates);
        let wants_agent = running.contains(&Stage::IpAddresses);
        for guest in found
            .guests
            .iter()
            .filter(|g| if g.template { wants_templates } else { wants_vms })
        {
            if !snapshot.has(&guest.config_path) {
                want(&guest.config_path);
            } else if wants_agent && !guest.template && guest.agent_expected() {
                want(&guest.agent_path());
            }
        }
    }

    let mut collections: Vec<&str> = Vec::new();
    if !running.is_empty() {
        let models = ALWAYS_READ
            .iter()
            .chain(running.iter().flat_map(|s| collections_for(*s)));
        for model in models {
            if !netbox.has(*model) && !collections.contains(&model.collection) {
                collections.push(model.collection);
            }
        }
    }
    proxmox.sort();
    proxmox.dedup();
    collections.sort_unstable();
    let complete = proxmox.is_empty() && collections.is_empty();
    Ok(Discovery {
        proxmox,
        netbox: collections.into_iter().map(str::to_owned).collect(),
        complete,
    })
}

/// SDN paths in rounds: the cluster lists and per-node zones, then per-VNet
/// subnets and per-node-zone rows, then MAC-VRF for EVPN VNets.
fn sdn_paths(snapshot: &ProxmoxSnapshot, want: &mut impl FnMut(&str)) {
    let names = |path: &str, key: &str| -> Vec<(String, Value)> {
        let rows = snapshot
            .get(path)
            .data()
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        rows.into_iter()
            .filter_map(|r| Some((r.get(key)?.as_str()?.to_owned(), r)))
            .collect()
    };
    proxmox_path::SDN_LISTS.iter().for_each(|path| want(path));
    let Ok(Ok(found)) = inventory(snapshot) else { return };
    let zones = names("/cluster/sdn/zones", "zone");
    let is_evpn = |zone: &str| {
        zones
            .iter()
            .any(|(z, row)| z == zone && row.get("type").and_then(Value::as_str) == Some("evpn"))
    };
    let vnets = names("/cluster/sdn/vnets", "vnet");
    for (vnet, _) in &vnets {
        want(&proxmox_path::vnet_subnets(vnet));
    }
    for node in &found.nodes {
        let path = proxmox_path::node_sdn_zones(&node.name);
        want(&path);
        for (zone, _) in names(&path, "zone") {
            want(&proxmox_path::node_sdn_zone(&node.name, &zone, "content"));
            want(&proxmox_path::node_sdn_zone(&node.name, &zone, "bridges"));
            if is_evpn(&zone) {
                want(&proxmox_path::node_sdn_zone(&node.name, &zone, "ip-vrf"));
            }
        }
        for (vnet, row) in &vnets {
            if row.get("zone").and_then(Value::as_str).is_some_and(is_evpn) {
                want(&proxmox_path::node_mac_vrf(&node.name, vnet));
            }
        }
    }
}
