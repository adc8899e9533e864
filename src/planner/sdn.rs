//! SDN (SPEC §5), read-only against Proxmox and off by default: the plugin's
//! inventory rows (controllers, zones, VNets, subnets, fabrics, route maps,
//! prefix lists, and per-node bindings), and the projection of EVPN/VXLAN
//! VNets into NetBox L2VPNs, route targets, prefixes and terminations.
//! Nothing SDN is ever deleted: vanished rows go `stale`, our L2VPNs and
//! prefixes go `decommissioning`.

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, TAG_PROXBOX};
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Model, Object};
use crate::parse::{self, Cidr};
use crate::plan::{reference, Change, Conflict, OpHead, Reason, Target, Warning, WarningCode};
use crate::proxmox_path;
use crate::source::Fetched;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const STAGE: Stage = Stage::Sdn;
/// The `fabric_type` choices of the plugin's sdn-fabrics model.
const FABRIC_TYPES: [&str; 4] = ["wireguard", "bgp", "vxlan", "ospf"];
const R: ResourceType = ResourceType::Sdn;

fn head(model: Model, identity: &str) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(R),
        model,
        identity,
        key: identity.to_owned(),
    }
}

/// A list answer, or a warning: 404/501/"not implemented" are older Proxmox
/// releases without that API (a warning, never a failure).
fn list<'a>(ctx: &mut Context<'a>, path: &str) -> Option<&'a Vec<Value>> {
    match ctx.snapshot.get(path) {
        Fetched::Data(Value::Array(rows)) => Some(rows),
        Fetched::Data(_) => {
            ctx.plan
                .warn(Warning::new(WarningCode::SdnUnreadable, format!("{path}: not a list")).at_path(path));
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
            ctx.plan
                .warn(Warning::new(code, format!("{path}: {why}; the rest of the SDN stage goes on")).at_path(path));
            None
        }
    }
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
}

impl Row {
    fn new(identity: String, keys: Vec<(&'static str, Value)>, fields: Vec<Field>) -> Row {
        Row { identity, keys, fields }
    }
}

/// Creates or updates the rows; with a complete source, marks the rest stale.
fn plan_rows(ctx: &mut Context, model: Model, rows: Vec<Row>, complete: bool) {
    let endpoint = ctx.endpoint_id();
    let cluster = ctx.inventory.cluster_name.clone();
    let loaded = ctx.loaded;
    let ours: Vec<&Object> = loaded
        .get(model)
        .iter()
        .filter(|r| r.fk("endpoint") == endpoint && r.str("cluster_name") == Some(cluster.as_str()))
        .collect();
    let mut matched = BTreeSet::new();
    for row in rows {
        let found: Vec<&Object> = ours
            .iter()
            .copied()
            .filter(|r| {
                row.keys
                    .iter()
                    .all(|(k, v)| super::diff::same(r.get(k).unwrap_or(&Value::Null), v))
            })
            .collect();
        let mut fields = vec![
            Field::new("endpoint", Kind::ForeignKey, endpoint),
            Field::new("cluster_name", Kind::Scalar, cluster.as_str()),
        ];
        fields.extend(row.keys.iter().map(|(k, v)| Field::new(k, Kind::Scalar, v.clone())));
        fields.extend(row.fields);
        match found.as_slice() {
            [] => {
                fields.push(Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(R))));
                ctx.create(
                    head(model, &row.identity),
                    Reason::NewInProxmox,
                    create_payload(&fields),
                );
            }
            [record] => {
                matched.insert(record.id);
                if !ctx.protected(head(model, &row.identity), R, record) {
                    fields.push(Field::new(
                        "tags",
                        Kind::Tags,
                        tag_list(&merged_tags(record, &ctx.creation_tags(R))),
                    ));
                    ctx.update(head(model, &row.identity), record, changes(record, &fields));
                }
            }
            several => {
                matched.extend(several.iter().map(|r| r.id));
                let detail = format!("{} rows carry this identity", several.len());
                ctx.plan
                    .skip(head(model, &row.identity), None, Reason::AmbiguousIdentity, detail);
            }
        }
    }
    if complete {
        for record in ours.into_iter().filter(|r| !matched.contains(&r.id)) {
            retire(ctx, model, record, "stale", &format!("{}#{}", model.name, record.id));
        }
    }
}

/// Vanished from Proxmox: a status, never a delete.
fn retire(ctx: &mut Context, model: Model, record: &Object, status: &str, identity: &str) {
    if record.choice("status") == Some(status) || ctx.protected(head(model, identity), R, record) {
        return;
    }
    let mut changes = BTreeMap::new();
    changes.insert(
        "status".to_owned(),
        Change {
            before: record.choice("status").into(),
            after: status.into(),
        },
    );
    ctx.update_because(
        head(model, identity),
        Target::of(record),
        Reason::GoneFromProxmox,
        changes,
    );
}

fn common(row: &Map<String, Value>) -> Vec<Field> {
    vec![
        Field::new("status", Kind::Choice, "active"),
        Field::new("raw_config", Kind::Scalar, Value::Object(row.clone())),
    ]
}

/// Zone name → (type, its row).
type Zones<'a> = BTreeMap<String, (String, &'a Map<String, Value>)>;

pub fn plan(ctx: &mut Context) {
    if ctx.mode(R).is_disabled() {
        return;
    }
    let zones: Zones = list(ctx, "/cluster/sdn/zones")
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|z| {
            Some((
                loose_string(z.get("zone"))?,
                (loose_string(z.get("type")).unwrap_or_default(), z),
            ))
        })
        .collect();
    let zones_complete = matches!(ctx.snapshot.get("/cluster/sdn/zones"), Fetched::Data(Value::Array(_)));
    plan_controllers(ctx);
    plan_zone_rows(ctx, &zones, zones_complete);
    let route_targets = plan_route_targets(ctx, &zones);
    let vnets = list(ctx, "/cluster/sdn/vnets").cloned().unwrap_or_default();
    let vnets_complete = matches!(ctx.snapshot.get("/cluster/sdn/vnets"), Fetched::Data(Value::Array(_)));
    let l2vpns = plan_l2vpns(ctx, &vnets, &zones, &route_targets, vnets_complete);
    plan_vnet_rows(ctx, &vnets, &l2vpns, vnets_complete);
    plan_subnets(ctx, &vnets, vnets_complete);
    plan_simple_lists(ctx);
    // Bindings read zone types and VNet → L2VPN links: without both lists they
    // would flap (and MAC-VRF rows would look gone), so they wait for a full read.
    if zones_complete && vnets_complete {
        plan_bindings(ctx, &zones, &vnets, &l2vpns);
    }
}

fn plan_controllers(ctx: &mut Context) {
    let path = "/cluster/sdn/controllers";
    let Some(rows) = list(ctx, path) else { return };
    let rows = rows
        .iter()
        .filter_map(Value::as_object)
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
            Some(Row::new(
                format!("controller/{name}"),
                vec![("controller_name", name.into())],
                fields,
            ))
        })
        .collect();
    plan_rows(ctx, netbox::SDN_CONTROLLER, rows, true);
}

fn plan_zone_rows(ctx: &mut Context, zones: &Zones, complete: bool) {
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
            Row::new(
                format!("zone/{name}"),
                vec![("zone_name", name.as_str().into())],
                fields,
            )
        })
        .collect();
    if complete || !zones.is_empty() {
        plan_rows(ctx, netbox::SDN_ZONE, rows, complete);
    }
}

/// EVPN `rt-import` values → route targets: found by name, else created.
fn plan_route_targets(ctx: &mut Context, zones: &Zones) -> BTreeMap<String, Value> {
    let mut targets = BTreeMap::new();
    let wanted: BTreeSet<String> = zones
        .values()
        .filter(|(kind, _)| kind == "evpn")
        .flat_map(|(_, z)| parse::list(z.get("rt-import")))
        .collect();
    let loaded = ctx.loaded;
    for value in wanted {
        let existing = loaded
            .get(netbox::ROUTE_TARGET)
            .iter()
            .find(|rt| rt.str("name") == Some(value.as_str()));
        let reference = match existing {
            Some(rt) => Value::from(rt.id),
            None => {
                let fields = [
                    Field::new("name", Kind::Scalar, value.as_str()),
                    Field::new("description", Kind::Scalar, "Proxmox SDN EVPN route target"),
                    Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(R))),
                ];
                let id = ctx.create(
                    head(netbox::ROUTE_TARGET, &value),
                    Reason::NewInProxmox,
                    create_payload(&fields),
                );
                reference(&id)
            }
        };
        targets.insert(value, reference);
    }
    targets
}

fn l2vpn_slug(ctx: &Context, zone: &str, vnet: &str) -> String {
    let endpoint = ctx.endpoint_id().unwrap_or_default();
    parse::slugify(&format!(
        "proxbox-{endpoint}-{}-{zone}-{vnet}",
        ctx.inventory.cluster_name
    ))
}

/// `deleted` → decommissioning, `new`/pending → planned, else active.
fn l2vpn_status(state: &str) -> &'static str {
    match state {
        "deleted" => "decommissioning",
        "new" | "pending" | "changed" => "planned",
        _ => "active",
    }
}

/// VNet name → the L2VPN (an id or a `$ref`) of EVPN and VXLAN VNets.
fn plan_l2vpns(
    ctx: &mut Context,
    vnets: &[Value],
    zones: &Zones,
    route_targets: &BTreeMap<String, Value>,
    complete: bool,
) -> BTreeMap<String, Value> {
    let loaded = ctx.loaded;
    let mut mapped = BTreeMap::new();
    let mut slugs = BTreeSet::new();
    for v in vnets.iter().filter_map(Value::as_object) {
        let (Some(name), Some(zone)) = (loose_string(v.get("vnet")), loose_string(v.get("zone"))) else {
            continue;
        };
        let Some((kind, zone_row)) = zones.get(&zone) else {
            continue;
        };
        let l2vpn_type = match kind.as_str() {
            "evpn" => "vxlan-evpn",
            "vxlan" => "vxlan",
            _ => continue,
        };
        let slug = l2vpn_slug(ctx, &zone, &name);
        slugs.insert(slug.clone());
        let imports: Vec<Value> = match kind.as_str() {
            "evpn" => parse::list(zone_row.get("rt-import"))
                .iter()
                .filter_map(|rt| route_targets.get(rt).cloned())
                .collect(),
            _ => Vec::new(),
        };
        let existing = loaded
            .get(netbox::L2VPN)
            .iter()
            .find(|l| l.str("slug") == Some(slug.as_str()));
        let fields = [
            Field::new(
                "name",
                Kind::Scalar,
                format!("{}/{zone}/{name}", ctx.inventory.cluster_name),
            ),
            Field::new("slug", Kind::Scalar, slug.as_str()),
            Field::new("type", Kind::Choice, l2vpn_type),
            Field::new("identifier", Kind::Scalar, int(v, "tag")),
            Field::new(
                "status",
                Kind::Choice,
                l2vpn_status(text(v, "state").as_str().unwrap_or_default()),
            ),
            Field::new(
                "import_targets",
                Kind::ForeignKeys,
                super::diff::sorted_references(&Value::Array(imports)),
            ),
            Field::new(
                "description",
                Kind::Scalar,
                format!("Proxmox SDN VNet {name} in {kind} zone {zone}"),
            ),
        ];
        let reference = match existing {
            Some(l2vpn) => {
                if !ctx.protected(head(netbox::L2VPN, &slug), R, l2vpn) {
                    let mut all = fields.to_vec();
                    all.push(Field::new(
                        "tags",
                        Kind::Tags,
                        tag_list(&merged_tags(l2vpn, &ctx.creation_tags(R))),
                    ));
                    ctx.update(head(netbox::L2VPN, &slug), l2vpn, changes(l2vpn, &all));
                }
                Value::from(l2vpn.id)
            }
            None => {
                let mut all = fields.to_vec();
                all.push(Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(R))));
                reference(&ctx.create(head(netbox::L2VPN, &slug), Reason::NewInProxmox, create_payload(&all)))
            }
        };
        mapped.insert(name, reference);
    }
    if complete {
        let prefix = l2vpn_slug(ctx, "", "");
        let prefix = prefix.trim_end_matches('-');
        for l2vpn in loaded.get(netbox::L2VPN) {
            let slug = l2vpn.str("slug").unwrap_or_default();
            if slug.starts_with(prefix) && !slugs.contains(slug) && l2vpn.has_tag(TAG_PROXBOX) {
                retire(ctx, netbox::L2VPN, l2vpn, "decommissioning", slug);
            }
        }
    }
    mapped
}

fn plan_vnet_rows(ctx: &mut Context, vnets: &[Value], l2vpns: &BTreeMap<String, Value>, complete: bool) {
    let rows = vnets
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|v| {
            let name = loose_string(v.get("vnet"))?;
            let mut fields = vec![
                Field::new("zone_name", Kind::Scalar, text(v, "zone")),
                Field::new("vnet_type", Kind::Scalar, text(v, "type")),
                Field::new("tag", Kind::Scalar, int(v, "tag")),
                Field::new("alias", Kind::Scalar, text(v, "alias")),
                Field::new("vlanaware", Kind::Scalar, loose_flag(v.get("vlanaware"))),
                Field::new("state", Kind::Scalar, text(v, "state")),
                Field::new(
                    "l2vpn",
                    Kind::ForeignKey,
                    l2vpns.get(&name).cloned().unwrap_or(Value::Null),
                ),
            ];
            fields.extend(common(v));
            Some(Row::new(
                format!("vnet/{name}"),
                vec![("vnet_name", name.into())],
                fields,
            ))
        })
        .collect();
    plan_rows(ctx, netbox::SDN_VNET, rows, complete);
}

/// Subnets of every VNet; a valid `cidr` also becomes (or links) a Prefix.
fn plan_subnets(ctx: &mut Context, vnets: &[Value], vnets_complete: bool) {
    let mut rows = Vec::new();
    let mut complete = vnets_complete;
    let mut wanted_prefixes = BTreeSet::new();
    for v in vnets.iter().filter_map(Value::as_object) {
        let Some(vnet) = loose_string(v.get("vnet")) else {
            continue;
        };
        let zone = text(v, "zone");
        let Some(subnets) = list(ctx, &proxmox_path::vnet_subnets(&vnet)) else {
            complete = false;
            continue;
        };
        for s in subnets.iter().filter_map(Value::as_object) {
            let cidr_text = loose_string(s.get("cidr")).unwrap_or_default();
            let cidr = Cidr::parse(&cidr_text)
                .filter(|_| cidr_text.contains('/'))
                .map(|c| c.network());
            let (prefix, skip_reason) = match &cidr {
                Some(network) => {
                    wanted_prefixes.insert(network.to_string());
                    (
                        plan_prefix(ctx, network, &vnet, zone.as_str().unwrap_or_default()),
                        String::new(),
                    )
                }
                None => {
                    let message = format!("VNet {vnet}: subnet cidr {cidr_text:?} is not a valid network; no prefix");
                    ctx.plan.warn(
                        Warning::new(WarningCode::InvalidCidr, message).at_path(proxmox_path::vnet_subnets(&vnet)),
                    );
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
            rows.push(Row::new(format!("subnet/{vnet}/{cidr_text}"), keys, fields));
        }
    }
    plan_rows(ctx, netbox::SDN_SUBNET, rows, complete);
    if complete {
        let ours = format!("Proxmox SDN {}/", ctx.inventory.cluster_name);
        let loaded = ctx.loaded;
        for prefix in loaded.get(netbox::PREFIX) {
            let text = prefix.str("prefix").unwrap_or_default();
            let mine = prefix.has_tag(TAG_PROXBOX) && prefix.str("description").is_some_and(|d| d.starts_with(&ours));
            if mine && !wanted_prefixes.contains(text) {
                retire(ctx, netbox::PREFIX, prefix, "decommissioning", text);
            }
        }
    }
}

/// The Prefix for a subnet: ours (global, tagged) is kept current; a manual
/// one is linked but never modified; else one is created.
fn plan_prefix(ctx: &mut Context, network: &Cidr, vnet: &str, zone: &str) -> Value {
    let text = network.to_string();
    let loaded = ctx.loaded;
    let same: Vec<&Object> = loaded
        .get(netbox::PREFIX)
        .iter()
        .filter(|p| p.str("prefix").and_then(Cidr::parse).as_ref() == Some(network))
        .collect();
    let global: Vec<&Object> = same.iter().copied().filter(|p| p.fk("vrf").is_none()).collect();
    let description = format!("Proxmox SDN {}/{zone}/{vnet}", ctx.inventory.cluster_name);
    let fields = [
        Field::new("prefix", Kind::Scalar, text.as_str()),
        Field::new("status", Kind::Choice, "active"),
        Field::new("description", Kind::Scalar, description),
    ];
    if ctx
        .plan
        .operations()
        .iter()
        .any(|op| op.id == head(netbox::PREFIX, &text).id())
    {
        return reference(&head(netbox::PREFIX, &text).id());
    }
    match global.as_slice() {
        [] => {
            let mut all: Vec<Field> = fields.into_iter().collect();
            all.push(Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(R))));
            reference(&ctx.create(head(netbox::PREFIX, &text), Reason::NewInProxmox, create_payload(&all)))
        }
        [prefix] if prefix.has_tag(TAG_PROXBOX) => {
            if !ctx.protected(head(netbox::PREFIX, &text), R, prefix) {
                ctx.update(head(netbox::PREFIX, &text), prefix, changes(prefix, &fields));
            }
            Value::from(prefix.id)
        }
        [prefix] => Value::from(prefix.id),
        several => {
            let detail = format!("{} global prefixes are {text}; the subnet is not linked", several.len());
            ctx.plan.warn(Warning::new(WarningCode::AmbiguousIdentity, detail));
            Value::Null
        }
    }
}

/// Route maps, prefix lists and fabrics: inventory only.
fn plan_simple_lists(ctx: &mut Context) {
    if let Some(rows) = list(ctx, "/cluster/sdn/fabrics/fabric") {
        let mut planned = Vec::new();
        for f in rows.iter().filter_map(Value::as_object) {
            let Some(name) = loose_string(f.get("id").or_else(|| f.get("fabric")).or_else(|| f.get("name"))) else {
                continue;
            };
            let protocol = loose_string(f.get("protocol").or_else(|| f.get("type"))).unwrap_or_default();
            // The plugin requires one of its four fabric types (an openfabric
            // fabric cannot be stored): say so rather than plan a write NetBox refuses.
            if !FABRIC_TYPES.contains(&protocol.as_str()) {
                let identity = format!("fabric/{name}");
                let detail = format!(
                    "the plugin stores only {} fabrics, not {protocol:?}",
                    FABRIC_TYPES.join("/")
                );
                ctx.plan.skip(
                    head(netbox::SDN_FABRIC, &identity),
                    None,
                    Reason::UnsupportedByNetbox,
                    detail.clone(),
                );
                ctx.plan.warn(
                    Warning::new(WarningCode::SdnUnsupported, format!("fabric {name}: {detail}"))
                        .at_path("/cluster/sdn/fabrics/fabric"),
                );
                continue;
            }
            let mut fields = vec![
                Field::new("fabric_type", Kind::Choice, protocol),
                Field::new("asn", Kind::Scalar, int(f, "asn")),
            ];
            fields.extend(common(f));
            planned.push(Row::new(
                format!("fabric/{name}"),
                vec![("fabric_name", name.into())],
                fields,
            ));
        }
        let rows = planned;
        plan_rows(ctx, netbox::SDN_FABRIC, rows, true);
    }
    if let Some(rows) = list(ctx, "/cluster/sdn/route-maps") {
        let rows = rows
            .iter()
            .filter_map(Value::as_object)
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
                Some(Row::new(format!("route-map/{name}/{order}"), keys, fields))
            })
            .collect();
        plan_rows(ctx, netbox::SDN_ROUTE_MAP, rows, true);
    }
    if let Some(rows) = list(ctx, "/cluster/sdn/prefix-lists") {
        let rows = rows
            .iter()
            .filter_map(Value::as_object)
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
                Some(Row::new(identity, vec![("name", name.into()), ("cidr", cidr)], fields))
            })
            .collect();
        plan_rows(ctx, netbox::SDN_PREFIX_LIST, rows, true);
    }
}

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
        .loaded
        .get(netbox::VLAN)
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

/// Node runtime rows become bindings; those that name a target terminate the
/// VNet's L2VPN there, unless the target already terminates another one.
fn plan_bindings(ctx: &mut Context, zones: &Zones, vnets: &[Value], l2vpns: &BTreeMap<String, Value>) {
    let mut rows = Vec::new();
    let mut complete = true;
    let mut terminated = BTreeSet::new();
    let vnet_zone: BTreeMap<String, String> = vnets
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|v| Some((loose_string(v.get("vnet"))?, loose_string(v.get("zone"))?)))
        .collect();
    let nodes: Vec<String> = ctx.inventory.nodes.iter().map(|n| n.name.clone()).collect();
    for node in &nodes {
        let Some(node_zones) = list(ctx, &proxmox_path::node_sdn_zones(node)) else {
            complete = false;
            continue;
        };
        for nz in node_zones.iter().filter_map(Value::as_object) {
            let Some(zone) = loose_string(nz.get("zone")) else {
                continue;
            };
            rows.push(binding(
                ctx,
                "node-zone",
                format!("{node}/{zone}"),
                node,
                &zone,
                "",
                nz,
                None,
            ));
            let evpn = zones.get(&zone).is_some_and(|(kind, _)| kind == "evpn");
            for (what, kind) in [
                ("content", "node-zone-content"),
                ("bridges", "node-zone-bridge"),
                ("ip-vrf", "node-ip-vrf"),
            ] {
                if what == "ip-vrf" && !evpn {
                    continue;
                }
                let Some(items) = list(ctx, &proxmox_path::node_sdn_zone(node, &zone, what)) else {
                    complete = false;
                    continue;
                };
                for item in items.iter().filter_map(Value::as_object) {
                    let vnet = loose_string(item.get("vnet").or_else(|| item.get("name"))).unwrap_or_default();
                    let label = loose_string(item.get("vnet").or_else(|| item.get("name")).or_else(|| item.get("ip")))
                        .unwrap_or_default();
                    let slug = l2vpn_slug(ctx, &zone, &vnet);
                    let l2vpn = l2vpns.get(&vnet).map(|l| (l, slug, &mut terminated));
                    let source = format!("{node}/{zone}/{label}");
                    let row = binding(ctx, kind, source, node, &zone, &vnet, item, l2vpn);
                    rows.push(row);
                }
            }
        }
        for (vnet, zone) in vnet_zone
            .iter()
            .filter(|(_, z)| zones.get(*z).is_some_and(|(kind, _)| kind == "evpn"))
        {
            let Some(items) = list(ctx, &proxmox_path::node_mac_vrf(node, vnet)) else {
                complete = false;
                continue;
            };
            for item in items.iter().filter_map(Value::as_object) {
                let mac = loose_string(item.get("mac")).unwrap_or_default();
                rows.push(binding(
                    ctx,
                    "node-mac-vrf",
                    format!("{node}/{vnet}/{mac}"),
                    node,
                    zone,
                    vnet,
                    item,
                    None,
                ));
            }
        }
    }
    plan_rows(ctx, netbox::SDN_BINDING, rows, complete);
}

/// The VNet's L2VPN (reference and slug) and the targets terminated so far.
type Terminating<'l, 't> = (&'l Value, String, &'t mut BTreeSet<(&'static str, u64)>);

#[allow(clippy::too_many_arguments)] // one binding row is this many facts
fn binding(
    ctx: &mut Context,
    source_type: &str,
    source_name: String,
    node: &str,
    zone: &str,
    vnet: &str,
    item: &Map<String, Value>,
    l2vpn: Option<Terminating>,
) -> Row {
    let (mut status, mut conflict_reason, mut target) =
        ("active".to_owned(), String::new(), (Value::from(""), Value::Null));
    if let Some((l2vpn, slug, terminated)) = l2vpn {
        match termination_target(ctx, item) {
            TerminationTarget::None => {}
            TerminationTarget::Ambiguous(why) => {
                status = "ambiguous".to_owned();
                conflict_reason = why.clone();
                ctx.plan.warn(Warning::new(
                    WarningCode::AmbiguousIdentity,
                    format!("{source_name}: {why}; no termination"),
                ));
            }
            TerminationTarget::Found(kind, id) => {
                target = (Value::from(kind), Value::from(id));
                let source = (source_type, source_name.as_str());
                if let Some(existing) = terminate(ctx, (l2vpn, &slug), (kind, id), source, terminated) {
                    status = "conflict".to_owned();
                    conflict_reason = format!("Target already terminates L2VPN {existing}.");
                }
            }
        }
    }
    let fields = vec![
        Field::new("node", Kind::Scalar, node),
        Field::new("zone_name", Kind::Scalar, zone),
        Field::new("vnet_name", Kind::Scalar, vnet),
        Field::new("target_type", Kind::Scalar, target.0),
        Field::new("target_id", Kind::Scalar, target.1),
        Field::new("status", Kind::Scalar, status),
        Field::new("conflict_reason", Kind::Scalar, conflict_reason),
        Field::new("raw_config", Kind::Scalar, Value::Object(item.clone())),
    ];
    let keys = vec![
        ("source_type", Value::from(source_type)),
        ("source_name", Value::from(source_name.as_str())),
    ];
    Row::new(format!("binding/{source_type}/{source_name}"), keys, fields)
}

/// Plans the termination, or returns the L2VPN already terminating the target.
fn terminate(
    ctx: &mut Context,
    (l2vpn, slug): (&Value, &str),
    (kind, id): (&'static str, u64),
    (source_type, source_name): (&str, &str),
    terminated: &mut BTreeSet<(&'static str, u64)>,
) -> Option<u64> {
    let loaded = ctx.loaded;
    let existing = loaded
        .get(netbox::L2VPN_TERMINATION)
        .iter()
        .find(|t| t.str("assigned_object_type") == Some(kind) && t.u64("assigned_object_id") == Some(id));
    match existing {
        Some(t) if t.fk("l2vpn").is_some() && t.fk("l2vpn") != l2vpn.as_u64() => {
            let other = t.fk("l2vpn").unwrap_or_default();
            ctx.plan.conflict(Conflict {
                source_type: source_type.to_owned(),
                source_name: source_name.to_owned(),
                target_type: kind.to_owned(),
                target_id: id,
                intended_l2vpn: l2vpn.clone(),
                intended_l2vpn_slug: slug.to_owned(),
                existing_l2vpn: other,
                reason: format!("Target already terminates L2VPN {other}."),
            });
            let identity = format!("{kind}/{id}");
            let detail = format!("{source_name}: target already terminates L2VPN {other}; not overwritten");
            ctx.plan.skip(
                head(netbox::L2VPN_TERMINATION, &identity),
                Some(t),
                Reason::SdnConflict,
                detail,
            );
            Some(other)
        }
        Some(_) => None,
        None => {
            if terminated.insert((kind, id)) {
                let fields = [
                    Field::new("l2vpn", Kind::ForeignKey, l2vpn.clone()),
                    Field::new("assigned_object_type", Kind::Scalar, kind),
                    Field::new("assigned_object_id", Kind::Scalar, id),
                    Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(R))),
                ];
                let identity = format!("{kind}/{id}");
                ctx.create(
                    head(netbox::L2VPN_TERMINATION, &identity),
                    Reason::NewInProxmox,
                    create_payload(&fields),
                );
            }
            None
        }
    }
}
