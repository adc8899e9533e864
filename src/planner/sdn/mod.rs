//! SDN (SPEC §5), read-only against Proxmox and off by default: the plugin's
//! inventory rows (controllers, zones, VNets, subnets, fabrics, route maps,
//! prefix lists, and per-node bindings), and the projection of EVPN/VXLAN
//! VNets into NetBox L2VPNs, route targets, prefixes and terminations
//! (`projection`). Nothing SDN is ever deleted: vanished rows go `stale`,
//! our L2VPNs and prefixes go `decommissioning`.

mod bindings;
mod projection;

use super::context::Context;
use super::diff::{same, Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Model, Object};
use crate::parse;
use crate::plan::{MatchedBy, Reason, Warning, WarningCode};
use crate::proxmox_path;
use crate::source::Fetched;
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "sdn",
    stage: Stage::Sdn,
    governed_by: &[ResourceType::Sdn],
    reads: &[
        netbox::VLAN,
        netbox::L2VPN,
        netbox::L2VPN_TERMINATION,
        netbox::ROUTE_TARGET,
        netbox::PREFIX,
        netbox::SDN_CONTROLLER,
        netbox::SDN_ZONE,
        netbox::SDN_VNET,
        netbox::SDN_SUBNET,
        netbox::SDN_FABRIC,
        netbox::SDN_ROUTE_MAP,
        netbox::SDN_PREFIX_LIST,
        netbox::SDN_BINDING,
    ],
    links: &[],
    prerequisites: &[],
    needs: &["cluster"],
    proxmox: ask,
    run: plan,
};

const R: ResourceType = ResourceType::Sdn;
const STAGE: &str = "sdn";

/// The plugin's inventory rows: identified by endpoint, cluster name and
/// their own keys; gone ones go `stale`.
const fn rows(model: Model, lookup: &'static [(&'static str, &'static str)]) -> Lifecycle {
    Lifecycle {
        owner: Owner::Endpoint,
        lookup,
        ..Lifecycle::synced(STAGE, R, model, Gone::Status("stale"))
    }
}

const SCOPE: [(&str, &str); 2] = [("endpoint_id", "endpoint"), ("cluster_name", "cluster_name")];

macro_rules! row_lookup {
    ($($filter:literal),*) => { &[SCOPE[0], SCOPE[1], $(($filter, $filter)),*] };
}

const CONTROLLERS: Lifecycle = rows(netbox::SDN_CONTROLLER, row_lookup!("controller_name"));
const ZONES: Lifecycle = rows(netbox::SDN_ZONE, row_lookup!("zone_name"));
const VNETS: Lifecycle = rows(netbox::SDN_VNET, row_lookup!("vnet_name"));
const SUBNETS: Lifecycle = rows(netbox::SDN_SUBNET, row_lookup!("vnet_name", "subnet"));
const FABRICS: Lifecycle = rows(netbox::SDN_FABRIC, row_lookup!("fabric_name"));
const ROUTE_MAPS: Lifecycle = rows(netbox::SDN_ROUTE_MAP, row_lookup!("name", "order"));
const PREFIX_LISTS: Lifecycle = rows(netbox::SDN_PREFIX_LIST, row_lookup!("name", "cidr"));
const BINDINGS: Lifecycle = rows(netbox::SDN_BINDING, row_lookup!("source_type", "source_name"));

/// The plugin stores only these fabric types (its `fabric_type` choices).
const FABRIC_TYPES: [&str; 4] = ["wireguard", "bgp", "vxlan", "ospf"];

/// SDN paths in rounds: the cluster lists and per-node zones, then per-VNet
/// subnets and per-node-zone rows, then MAC-VRF for EVPN VNets.
fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    proxmox_path::SDN_LISTS.iter().for_each(|path| ask.want(path));
    let Some(inventory) = ask.inventory else { return };
    let snapshot = ask.snapshot;
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
    let zones = names("/cluster/sdn/zones", "zone");
    let is_evpn = |zone: &str| {
        zones
            .iter()
            .any(|(z, row)| z == zone && row.get("type").and_then(Value::as_str) == Some("evpn"))
    };
    let vnets = names("/cluster/sdn/vnets", "vnet");
    for (vnet, _) in &vnets {
        ask.want(&proxmox_path::vnet_subnets(vnet));
    }
    for node in &inventory.nodes {
        let path = proxmox_path::node_sdn_zones(&node.name);
        ask.want(&path);
        for (zone, _) in names(&path, "zone") {
            ask.want(&proxmox_path::node_sdn_zone(&node.name, &zone, "content"));
            ask.want(&proxmox_path::node_sdn_zone(&node.name, &zone, "bridges"));
            if is_evpn(&zone) {
                ask.want(&proxmox_path::node_sdn_zone(&node.name, &zone, "ip-vrf"));
            }
        }
        for (vnet, row) in &vnets {
            if row.get("zone").and_then(Value::as_str).is_some_and(is_evpn) {
                ask.want(&proxmox_path::node_mac_vrf(&node.name, vnet));
            }
        }
    }
}

/// A list answer, in a canonical order (so the plan does not depend on the
/// order Proxmox lists rows in), or a warning: 404/501/"not implemented" are
/// older Proxmox releases without that API (a warning, never a failure).
fn list<'a>(ctx: &mut Context<'a>, path: &str) -> Option<Vec<&'a Map<String, Value>>> {
    match ctx.snapshot.get(path) {
        Fetched::Data(Value::Array(rows)) => {
            let mut rows: Vec<&Map<String, Value>> = rows.iter().filter_map(Value::as_object).collect();
            crate::sort::sort_by_cached_key(&mut rows, |row| Value::Object((*row).clone()).to_string());
            Some(rows)
        }
        Fetched::Data(_) => {
            let warning = Warning::new(WarningCode::SdnUnreadable, format!("{path}: not a list"));
            ctx.plan.warn(warning.at_path(path));
            None
        }
        failed => {
            let why = failed.failure();
            let unsupported = ["HTTP 404", "HTTP 501", "not implemented"]
                .iter()
                .any(|m| why.contains(m));
            let code = if unsupported {
                WarningCode::SdnPathUnsupported
            } else {
                WarningCode::IncompleteSnapshot
            };
            let message = format!("{path}: {why}; the rest of the SDN stage goes on");
            ctx.plan.warn(Warning::new(code, message).at_path(path));
            None
        }
    }
}

fn complete(ctx: &Context, path: &str) -> bool {
    matches!(ctx.snapshot.get(path), Fetched::Data(Value::Array(_)))
}

fn text(row: &Map<String, Value>, key: &str) -> Value {
    loose_string(row.get(key)).map_or(Value::from(""), Value::from)
}

fn int(row: &Map<String, Value>, key: &str) -> Value {
    row.get(key).and_then(loose_u64).map_or(Value::Null, Value::from)
}

/// One inventory row the plan wants in the plugin.
struct Row {
    identity: String,
    /// The plugin's unique key (besides endpoint and cluster name).
    keys: Vec<(&'static str, Value)>,
    fields: Vec<Field>,
    path: String,
}

impl Row {
    fn new(identity: String, keys: Vec<(&'static str, Value)>, fields: Vec<Field>, path: &str) -> Row {
        Row {
            identity,
            keys,
            fields,
            path: path.to_owned(),
        }
    }
}

/// Creates or updates the rows (one per identity, in identity order); with a
/// complete source, the rest of the endpoint's rows go stale.
fn plan_rows(ctx: &mut Context, spec: &Lifecycle, mut rows: Vec<Row>, complete: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let cluster = ctx.inventory.cluster_name.clone();
    let ours: Vec<&Object> = ctx
        .objects(spec.model)
        .iter()
        .filter(|r| r.fk("endpoint") == Some(endpoint) && r.str("cluster_name") == Some(cluster.as_str()))
        .collect();
    let mut reconciler = Reconciler::new(spec, true, ours.iter().copied());
    crate::sort::sort_by(&mut rows, |a, b| a.identity.cmp(&b.identity));
    let mut seen = VecSet::new();
    for row in rows {
        if !seen.insert(row.identity.clone()) {
            let message = format!("{} is listed twice; one row is used", row.identity);
            ctx.plan
                .warn(Warning::new(WarningCode::DuplicateIdentity, message).at_path(row.path.clone()));
            continue;
        }
        let candidates = ours
            .iter()
            .copied()
            .filter(|r| row.keys.iter().all(|(k, v)| same(r.get(k).unwrap_or(&Value::Null), v)))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "rows");
        let item = Item {
            identity: row.identity.clone(),
            key: row.identity.clone(),
            proxmox_path: Some(row.path.clone()),
        };
        let mut fields = vec![
            Field::new("endpoint", Kind::ForeignKey, endpoint),
            Field::new("cluster_name", Kind::Scalar, cluster.as_str()),
        ];
        fields.extend(row.keys.iter().map(|(k, v)| Field::new(k, Kind::Scalar, v.clone())));
        fields.extend(row.fields);
        reconciler.item(ctx, &item, found, |_, _| Desired::fields(fields));
    }
    reconciler.retire(ctx, complete, |record| format!("{}#{}", spec.model.name, record.id));
    Ok(())
}

fn common(row: &Map<String, Value>) -> Vec<Field> {
    vec![
        Field::new("status", Kind::Choice, "active"),
        Field::new("raw_config", Kind::Scalar, Value::Object(row.clone())),
    ]
}

/// Zone name → (type, its row).
type Zones<'a> = VecMap<String, (String, &'a Map<String, Value>)>;

fn plan(ctx: &mut Context, _writes: bool) -> Result<()> {
    let zones_path = "/cluster/sdn/zones";
    let zones: Zones = VecMap::from_iter(list(ctx, zones_path).into_iter().flatten().filter_map(|z| {
        Some((
            loose_string(z.get("zone"))?,
            (loose_string(z.get("type")).unwrap_or_default(), z),
        ))
    }));
    let zones_complete = complete(ctx, zones_path);
    plan_controllers(ctx)?;
    plan_zone_rows(ctx, &zones, zones_complete)?;
    let route_targets = projection::route_targets(ctx, &zones);
    let vnets = list(ctx, "/cluster/sdn/vnets").unwrap_or_default();
    let vnets_complete = complete(ctx, "/cluster/sdn/vnets");
    let l2vpns = projection::l2vpns(ctx, &vnets, &zones, &route_targets, vnets_complete)?;
    plan_vnet_rows(ctx, &vnets, &l2vpns, vnets_complete)?;
    plan_subnets(ctx, &vnets, vnets_complete)?;
    plan_fabrics(ctx)?;
    plan_route_maps(ctx)?;
    plan_prefix_lists(ctx)?;
    // Bindings read zone types and VNet → L2VPN links: without both lists they
    // would flap (and MAC-VRF rows would look gone), so they wait for a full read.
    if zones_complete && vnets_complete {
        bindings::plan(ctx, &zones, &vnets, &l2vpns)?;
    }
    Ok(())
}

fn plan_controllers(ctx: &mut Context) -> Result<()> {
    let path = "/cluster/sdn/controllers";
    let Some(rows) = list(ctx, path) else { return Ok(()) };
    let rows = rows
        .iter()
        .filter_map(|c| {
            let name = loose_string(c.get("controller"))?;
            let mut fields = vec![
                Field::new("controller_type", Kind::Scalar, text(c, "type")),
                Field::new("asn", Kind::Scalar, int(c, "asn")),
                Field::new("peers", Kind::Scalar, parse::list(c.get("peers"))),
                Field::new("nodes", Kind::Scalar, parse::list(c.get("nodes"))),
                Field::new("loopback", Kind::Scalar, text(c, "loopback")),
                Field::new("state", Kind::Scalar, text(c, "state")),
            ];
            fields.extend(common(c));
            let keys = vec![("controller_name", name.as_str().into())];
            Some(Row::new(format!("controller/{name}"), keys, fields, path))
        })
        .collect();
    plan_rows(ctx, &CONTROLLERS, rows, true)
}

fn plan_zone_rows(ctx: &mut Context, zones: &Zones, complete: bool) -> Result<()> {
    let rows = zones
        .iter()
        .map(|(name, (kind, z))| {
            let mut fields = vec![
                Field::new("zone_type", Kind::Scalar, kind.as_str()),
                Field::new("controller", Kind::Scalar, text(z, "controller")),
                Field::new("vrf_vxlan", Kind::Scalar, int(z, "vrf-vxlan")),
                Field::new("tag", Kind::Scalar, int(z, "tag")),
                Field::new("mtu", Kind::Scalar, int(z, "mtu")),
                Field::new("dns", Kind::Scalar, text(z, "dns")),
                Field::new("ipam", Kind::Scalar, text(z, "ipam")),
                Field::new("rt_import", Kind::Scalar, parse::list(z.get("rt-import"))),
                Field::new("state", Kind::Scalar, text(z, "state")),
            ];
            fields.extend(common(z));
            let keys = vec![("zone_name", name.as_str().into())];
            Row::new(format!("zone/{name}"), keys, fields, "/cluster/sdn/zones")
        })
        .collect();
    if complete || !zones.is_empty() {
        plan_rows(ctx, &ZONES, rows, complete)?;
    }
    Ok(())
}

fn plan_vnet_rows(
    ctx: &mut Context,
    vnets: &[&Map<String, Value>],
    l2vpns: &VecMap<String, Value>,
    complete: bool,
) -> Result<()> {
    let rows = vnets
        .iter()
        .filter_map(|v| {
            let name = loose_string(v.get("vnet"))?;
            let l2vpn = l2vpns.get(&name).cloned().unwrap_or(Value::Null);
            let mut fields = vec![
                Field::new("zone_name", Kind::Scalar, text(v, "zone")),
                Field::new("vnet_type", Kind::Scalar, text(v, "type")),
                Field::new("tag", Kind::Scalar, int(v, "tag")),
                Field::new("alias", Kind::Scalar, text(v, "alias")),
                Field::new("vlanaware", Kind::Scalar, loose_flag(v.get("vlanaware"))),
                Field::new("state", Kind::Scalar, text(v, "state")),
                Field::new("l2vpn", Kind::ForeignKey, l2vpn),
            ];
            fields.extend(common(v));
            let keys = vec![("vnet_name", name.as_str().into())];
            Some(Row::new(format!("vnet/{name}"), keys, fields, "/cluster/sdn/vnets"))
        })
        .collect();
    plan_rows(ctx, &VNETS, rows, complete)
}

/// Subnets of every VNet; a valid `cidr` also becomes (or links) a Prefix.
fn plan_subnets(ctx: &mut Context, vnets: &[&Map<String, Value>], vnets_complete: bool) -> Result<()> {
    let mut rows = Vec::new();
    let mut complete = vnets_complete;
    let mut prefixes = projection::Prefixes::new(ctx);
    for v in vnets {
        let Some(vnet) = loose_string(v.get("vnet")) else {
            continue;
        };
        let zone = text(v, "zone");
        let path = proxmox_path::vnet_subnets(&vnet);
        let Some(subnets) = list(ctx, &path) else {
            complete = false;
            continue;
        };
        for s in subnets {
            let cidr_text = loose_string(s.get("cidr")).unwrap_or_default();
            let cidr = parse::Cidr::parse(&cidr_text)
                .filter(|_| cidr_text.contains('/'))
                .map(|c| c.network());
            let (prefix, skip_reason) = match &cidr {
                Some(network) => {
                    let zone = zone.as_str().unwrap_or_default();
                    (prefixes.plan(ctx, network, &vnet, zone), String::new())
                }
                None => {
                    let message = format!("VNet {vnet}: subnet cidr {cidr_text:?} is not a valid network; no prefix");
                    ctx.plan
                        .warn(Warning::new(WarningCode::InvalidCidr, message).at_path(path.clone()));
                    (Value::Null, format!("invalid CIDR {cidr_text:?}"))
                }
            };
            let mut fields = vec![
                Field::new("zone_name", Kind::Scalar, zone.clone()),
                Field::new("subnet_type", Kind::Scalar, text(s, "type")),
                Field::new("gateway", Kind::Scalar, text(s, "gateway")),
                Field::new("snat", Kind::Scalar, loose_flag(s.get("snat"))),
                Field::new("prefix", Kind::ForeignKey, prefix),
                Field::new("skip_reason", Kind::Scalar, skip_reason),
            ];
            fields.extend(common(s));
            let keys = vec![
                ("vnet_name", Value::from(vnet.as_str())),
                ("subnet", Value::from(cidr_text.as_str())),
            ];
            rows.push(Row::new(format!("subnet/{vnet}/{cidr_text}"), keys, fields, &path));
        }
    }
    plan_rows(ctx, &SUBNETS, rows, complete)?;
    prefixes.retire(ctx, complete);
    Ok(())
}

/// Fabrics: inventory only. The plugin requires one of its four fabric types
/// (an openfabric fabric cannot be stored): a skip says so, rather than a
/// write NetBox refuses.
fn plan_fabrics(ctx: &mut Context) -> Result<()> {
    let path = "/cluster/sdn/fabrics/fabric";
    let Some(found) = list(ctx, path) else { return Ok(()) };
    let mut rows = Vec::new();
    for f in found {
        let Some(name) = loose_string(f.get("id").or_else(|| f.get("fabric")).or_else(|| f.get("name"))) else {
            continue;
        };
        let protocol = loose_string(f.get("protocol").or_else(|| f.get("type"))).unwrap_or_default();
        let identity = format!("fabric/{name}");
        if !FABRIC_TYPES.contains(&protocol.as_str()) {
            let detail = format!(
                "the plugin stores only {} fabrics, not {protocol:?}",
                FABRIC_TYPES.join("/")
            );
            let message = format!("fabric {name}: {detail}");
            ctx.plan
                .warn(Warning::new(WarningCode::SdnUnsupported, message).at_path(path));
            let head = FABRICS.head(&identity, identity.clone());
            ctx.plan.skip(head, None, Reason::UnsupportedByNetbox, detail, None);
            continue;
        }
        let mut fields = vec![
            Field::new("fabric_type", Kind::Choice, protocol),
            Field::new("asn", Kind::Scalar, int(f, "asn")),
        ];
        fields.extend(common(f));
        rows.push(Row::new(identity, vec![("fabric_name", name.into())], fields, path));
    }
    plan_rows(ctx, &FABRICS, rows, true)
}

fn plan_route_maps(ctx: &mut Context) -> Result<()> {
    let path = "/cluster/sdn/route-maps";
    let Some(found) = list(ctx, path) else { return Ok(()) };
    let rows = found
        .iter()
        .filter_map(|m| {
            let name = loose_string(m.get("route-map-id").or_else(|| m.get("id")).or_else(|| m.get("name")))?;
            let order = m.get("order").and_then(loose_u64).unwrap_or(0);
            let mut fields = vec![
                Field::new("action", Kind::Scalar, text(m, "action")),
                Field::new("match_peer", Kind::Scalar, text(m, "match-peer")),
                Field::new("match_ip", Kind::Scalar, text(m, "match-ip")),
                Field::new("set_community", Kind::Scalar, text(m, "set-community")),
            ];
            fields.extend(common(m));
            let keys = vec![("name", Value::from(name.as_str())), ("order", Value::from(order))];
            Some(Row::new(format!("route-map/{name}/{order}"), keys, fields, path))
        })
        .collect();
    plan_rows(ctx, &ROUTE_MAPS, rows, true)
}

fn plan_prefix_lists(ctx: &mut Context) -> Result<()> {
    let path = "/cluster/sdn/prefix-lists";
    let Some(found) = list(ctx, path) else { return Ok(()) };
    let rows = found
        .iter()
        .filter_map(|p| {
            let name = loose_string(
                p.get("prefix-list-id")
                    .or_else(|| p.get("id"))
                    .or_else(|| p.get("name")),
            )?;
            let cidr = text(p, "cidr");
            let mut fields = vec![
                Field::new("action", Kind::Scalar, text(p, "action")),
                Field::new("le", Kind::Scalar, int(p, "le")),
                Field::new("ge", Kind::Scalar, int(p, "ge")),
            ];
            fields.extend(common(p));
            let identity = format!("prefix-list/{name}/{}", cidr.as_str().unwrap_or_default());
            Some(Row::new(
                identity,
                vec![("name", name.into()), ("cidr", cidr)],
                fields,
                path,
            ))
        })
        .collect();
    plan_rows(ctx, &PREFIX_LISTS, rows, true)
}
