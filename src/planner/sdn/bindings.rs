//! Node runtime rows (zone status, zone content, bridges, IP-VRF, MAC-VRF)
//! become the plugin's binding rows; those that name a NetBox target
//! terminate their VNet's L2VPN there, unless the target already terminates
//! another one (a conflict record, SPEC §5).

use super::projection::{ambiguous_target, l2vpn_slug, Terminations};
use super::{list, plan_rows, Row, Zones, BINDINGS};
use crate::error::Result;
use crate::json::{loose_string, loose_u64};
use crate::netbox::{self, Object};
use crate::planner::context::Context;
use crate::planner::diff::{Field, Kind};
use crate::proxmox_path;
use crate::vec_map::VecMap;
use serde_json::{Map, Value};

/// A NetBox object a runtime row points at, explicitly or by an unambiguous VLAN id.
enum TerminationTarget {
    None,
    Found(&'static str, u64),
    Ambiguous(String),
}

const TARGET_TYPES: [&str; 3] = ["virtualization.vminterface", "dcim.interface", "ipam.vlan"];

fn termination_target(ctx: &Context, row: &Map<String, Value>) -> TerminationTarget {
    let explicit_type = row.get("netbox_target_type").and_then(Value::as_str);
    if let (Some(kind), Some(id)) = (explicit_type, row.get("netbox_target_id").and_then(loose_u64)) {
        if let Some(kind) = TARGET_TYPES.iter().find(|t| **t == kind) {
            return TerminationTarget::Found(kind, id);
        }
    }
    let Some(vid) = row.get("vlan").and_then(loose_u64) else {
        return TerminationTarget::None;
    };
    let matches: Vec<&Object> = ctx
        .objects(netbox::VLAN)
        .iter()
        .filter(|v| v.u64("vid") == Some(vid))
        .collect();
    match matches.as_slice() {
        [vlan] => TerminationTarget::Found("ipam.vlan", vlan.id),
        [] => TerminationTarget::None,
        // No count in the text: it would change when the plan itself adds a VLAN.
        [_, _, ..] => TerminationTarget::Ambiguous(format!("VLAN id {vid} matches more than one NetBox VLAN")),
    }
}

/// One runtime row's facts.
struct Source<'r> {
    kind: &'static str,
    name: String,
    node: &'r str,
    zone: &'r str,
    vnet: &'r str,
    path: &'r str,
}

/// The binding rows of one plan, and whether every runtime list was read.
struct Rows<'a> {
    rows: Vec<Row>,
    complete: bool,
    terminations: Terminations<'static, 'a>,
}

pub fn plan<'a>(
    ctx: &mut Context<'a>,
    zones: &Zones,
    vnets: &[&Map<String, Value>],
    l2vpns: &VecMap<String, Value>,
) -> Result<()> {
    let mut rows = Rows {
        rows: Vec::new(),
        complete: true,
        terminations: Terminations::new(),
    };
    let vnet_zone: VecMap<String, String> = VecMap::from_iter(
        vnets
            .iter()
            .filter_map(|v| Some((loose_string(v.get("vnet"))?, loose_string(v.get("zone"))?))),
    );
    let is_evpn = |zone: &str| zones.get(zone).is_some_and(|(kind, _)| kind == "evpn");
    let nodes: Vec<String> = ctx.inventory.nodes.iter().map(|n| n.name.clone()).collect();
    for node in &nodes {
        let path = proxmox_path::node_sdn_zones(node);
        let Some(node_zones) = list(ctx, &path) else {
            rows.complete = false;
            continue;
        };
        for nz in node_zones {
            if let Some(zone) = loose_string(nz.get("zone")) {
                let source = Source {
                    kind: "node-zone",
                    name: format!("{node}/{zone}"),
                    node,
                    zone: &zone,
                    vnet: "",
                    path: &path,
                };
                rows.rows.push(binding(ctx, &source, nz, None)?);
                rows.zone_contents(ctx, node, &zone, is_evpn(&zone), l2vpns)?;
            }
        }
        for (vnet, zone) in vnet_zone.iter().filter(|(_, z)| is_evpn(z)) {
            rows.mac_vrf(ctx, node, zone, vnet)?;
        }
    }
    plan_rows(ctx, &BINDINGS, rows.rows, rows.complete)
}

impl<'a> Rows<'a> {
    /// A node zone's content, bridges and (EVPN) IP-VRF rows; those of a VNet
    /// with an L2VPN may terminate it.
    fn zone_contents(
        &mut self,
        ctx: &mut Context<'a>,
        node: &str,
        zone: &str,
        evpn: bool,
        l2vpns: &VecMap<String, Value>,
    ) -> Result<()> {
        for (what, kind) in [
            ("content", "node-zone-content"),
            ("bridges", "node-zone-bridge"),
            ("ip-vrf", "node-ip-vrf"),
        ] {
            if what == "ip-vrf" && !evpn {
                continue;
            }
            let path = proxmox_path::node_sdn_zone(node, zone, what);
            let Some(items) = list(ctx, &path) else {
                self.complete = false;
                continue;
            };
            for item in items {
                let vnet = loose_string(item.get("vnet").or_else(|| item.get("name"))).unwrap_or_default();
                let label = loose_string(item.get("vnet").or_else(|| item.get("name")).or_else(|| item.get("ip")))
                    .unwrap_or_default();
                let source = Source {
                    kind,
                    name: format!("{node}/{zone}/{label}"),
                    node,
                    zone,
                    vnet: &vnet,
                    path: &path,
                };
                let terminating = l2vpns.get(&vnet).map(|l| (l, &mut self.terminations));
                self.rows.push(binding(ctx, &source, item, terminating)?);
            }
        }
        Ok(())
    }

    fn mac_vrf(&mut self, ctx: &mut Context<'a>, node: &str, zone: &str, vnet: &str) -> Result<()> {
        let path = proxmox_path::node_mac_vrf(node, vnet);
        let Some(items) = list(ctx, &path) else {
            self.complete = false;
            return Ok(());
        };
        for item in items {
            let mac = loose_string(item.get("mac")).unwrap_or_default();
            let source = Source {
                kind: "node-mac-vrf",
                name: format!("{node}/{vnet}/{mac}"),
                node,
                zone,
                vnet,
                path: &path,
            };
            self.rows.push(binding(ctx, &source, item, None)?);
        }
        Ok(())
    }
}

type Terminating<'l, 't, 'a> = (&'l Value, &'t mut Terminations<'static, 'a>);

fn binding<'a>(
    ctx: &mut Context<'a>,
    source: &Source,
    item: &Map<String, Value>,
    l2vpn: Option<Terminating<'_, '_, 'a>>,
) -> Result<Row> {
    let (mut status, mut conflict_reason, mut target) =
        ("active".to_owned(), String::new(), (Value::from(""), Value::Null));
    if let Some((l2vpn, terminations)) = l2vpn {
        match termination_target(ctx, item) {
            TerminationTarget::None => {}
            TerminationTarget::Ambiguous(why) => {
                status = "ambiguous".to_owned();
                ambiguous_target(ctx, &source.name, &why, source.path);
                conflict_reason = why;
            }
            TerminationTarget::Found(kind, id) => {
                target = (Value::from(kind), Value::from(id));
                let slug = l2vpn_slug(ctx, source.zone, source.vnet)?;
                let named = (source.kind, source.name.as_str());
                if let Some(existing) = terminations.plan(ctx, (l2vpn, &slug), (kind, id), named) {
                    status = "conflict".to_owned();
                    conflict_reason = format!("Target already terminates L2VPN {existing}.");
                }
            }
        }
    }
    let fields = vec![
        Field::new("node", Kind::Scalar, source.node),
        Field::new("zone_name", Kind::Scalar, source.zone),
        Field::new("vnet_name", Kind::Scalar, source.vnet),
        Field::new("target_type", Kind::Scalar, target.0),
        Field::new("target_id", Kind::Scalar, target.1),
        Field::new("status", Kind::Scalar, status),
        Field::new("conflict_reason", Kind::Scalar, conflict_reason),
        Field::new("raw_config", Kind::Scalar, Value::Object(item.clone())),
    ];
    let keys = vec![
        ("source_type", Value::from(source.kind)),
        ("source_name", Value::from(source.name.as_str())),
    ];
    let identity = format!("binding/{}/{}", source.kind, source.name);
    Ok(Row::new(identity, keys, fields, source.path))
}
