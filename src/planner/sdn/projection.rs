//! EVPN/VXLAN VNets projected into NetBox (SPEC §5): route targets from EVPN
//! `rt-import`, one L2VPN per VNet, a Prefix per valid subnet, and
//! terminations only where a runtime row names a target.

use super::{int, text, Zones, R};
use crate::error::Result;
use crate::json::loose_string;
use crate::netbox::{self, Object};
use crate::parse::{self, Cidr};
use crate::plan::{Conflict, MatchedBy, Reason, Warning, WarningCode};
use crate::planner::context::Context;
use crate::planner::diff::{sorted_references, Field, Kind};
use crate::planner::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};

const L2VPN: Lifecycle = Lifecycle {
    lookup: &[("slug", "slug")],
    ..Lifecycle::synced("sdn", R, netbox::L2VPN, Gone::Status("decommissioning"))
};

/// Existing route targets are reused untouched.
const ROUTE_TARGET: Lifecycle = Lifecycle {
    model: netbox::ROUTE_TARGET,
    gone: Gone::Keep,
    updates: false,
    lookup: &[("name", "name")],
    ..L2VPN
};

const PREFIX: Lifecycle = Lifecycle {
    model: netbox::PREFIX,
    lookup: &[("prefix", "prefix"), ("vrf_id", "vrf")],
    ..L2VPN
};

const TERMINATION: Lifecycle = Lifecycle {
    model: netbox::L2VPN_TERMINATION,
    gone: Gone::Keep,
    updates: false,
    lookup: &[("l2vpn_id", "l2vpn"), ("assigned_object_id", "assigned_object_id")],
    ..L2VPN
};

fn item(identity: &str) -> Item {
    Item {
        identity: identity.to_owned(),
        key: identity.to_owned(),
        proxmox_path: None,
    }
}

/// The reference an item's outcome gives.
fn reference(reconciler: &Reconciler, identity: &str, outcome: Outcome) -> Value {
    match outcome {
        Outcome::Existing(object) => Value::from(object.id),
        Outcome::Created => reconciler.reference_of(identity).unwrap_or(Value::Null),
        Outcome::Skipped => Value::Null,
    }
}

/// EVPN `rt-import` values → route targets: found by name, else created.
pub fn route_targets(ctx: &mut Context, zones: &Zones) -> VecMap<String, Value> {
    let wanted: VecSet<String> = VecSet::from_iter(
        zones
            .values()
            .filter(|(kind, _)| kind == "evpn")
            .flat_map(|(_, z)| parse::list(z.get("rt-import"))),
    );
    let mut reconciler = Reconciler::new(&ROUTE_TARGET, true, []);
    let mut targets = VecMap::new();
    for value in wanted {
        let candidates = ctx
            .objects(netbox::ROUTE_TARGET)
            .iter()
            .filter(|rt| rt.str("name").is_some_and(|n| n.trim() == value))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "route targets");
        let outcome = reconciler.item(ctx, &item(&value), found, |_, _| {
            Desired::fields(vec![
                Field::new("name", Kind::Scalar, value.as_str()),
                Field::new("description", Kind::Scalar, "Proxmox SDN EVPN route target"),
            ])
        });
        let target = reference(&reconciler, &value, outcome);
        targets.insert(value, target);
    }
    targets
}

pub fn l2vpn_slug(ctx: &Context, zone: &str, vnet: &str) -> Result<String> {
    let endpoint = ctx.required_endpoint_id()?;
    let text = format!("proxbox-{endpoint}-{}-{zone}-{vnet}", ctx.inventory.cluster_name);
    Ok(parse::slugify(&text))
}

/// `deleted` → decommissioning, `new`/pending → planned, else active.
fn l2vpn_status(state: &str) -> &'static str {
    match state {
        "deleted" => "decommissioning",
        "new" | "pending" | "changed" => "planned",
        _ => "active",
    }
}

/// VNet name → the L2VPN (an id or a `$ref`) of EVPN and VXLAN VNets. Ours
/// that no VNet explains any more go `decommissioning`.
pub fn l2vpns(
    ctx: &mut Context,
    vnets: &[&Map<String, Value>],
    zones: &Zones,
    route_targets: &VecMap<String, Value>,
    complete: bool,
) -> Result<VecMap<String, Value>> {
    let ours_prefix = l2vpn_slug(ctx, "", "")?;
    let ours_prefix = ours_prefix.trim_end_matches('-').to_owned();
    let scope = ctx
        .objects(netbox::L2VPN)
        .iter()
        .filter(|l| l.str("slug").is_some_and(|s| s.starts_with(&ours_prefix)));
    let mut reconciler = Reconciler::new(&L2VPN, true, scope);
    let mut mapped = VecMap::new();
    for v in vnets {
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
        let slug = l2vpn_slug(ctx, &zone, &name)?;
        let imports: Vec<Value> = match kind.as_str() {
            "evpn" => parse::list(zone_row.get("rt-import"))
                .iter()
                .filter_map(|rt| route_targets.get(rt).cloned())
                .filter(|rt| !rt.is_null())
                .collect(),
            _ => Vec::new(),
        };
        let candidates = ctx
            .objects(netbox::L2VPN)
            .iter()
            .filter(|l| l.str("slug") == Some(slug.as_str()))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "L2VPNs");
        let vnet = Vnet {
            row: v,
            name: &name,
            zone: &zone,
            kind,
            l2vpn_type,
        };
        let fields = l2vpn_fields(ctx, &vnet, &slug, imports);
        let outcome = reconciler.item(ctx, &item(&slug), found, |_, _| Desired::fields(fields));
        mapped.insert(name, reference(&reconciler, &slug, outcome));
    }
    reconciler.retire(ctx, complete, |l2vpn| l2vpn.str("slug").unwrap_or_default().to_owned());
    Ok(mapped)
}

/// A VNet that becomes an L2VPN.
struct Vnet<'v> {
    row: &'v Map<String, Value>,
    name: &'v str,
    zone: &'v str,
    kind: &'v str,
    l2vpn_type: &'static str,
}

fn l2vpn_fields(ctx: &Context, vnet: &Vnet, slug: &str, imports: Vec<Value>) -> Vec<Field> {
    let (name, zone, kind) = (vnet.name, vnet.zone, vnet.kind);
    let cluster = &ctx.inventory.cluster_name;
    let state = text(vnet.row, "state");
    vec![
        Field::new("name", Kind::Scalar, format!("{cluster}/{zone}/{name}")),
        Field::new("slug", Kind::Scalar, slug),
        Field::new("type", Kind::Choice, vnet.l2vpn_type),
        Field::new("identifier", Kind::Scalar, int(vnet.row, "tag")),
        Field::new("status", Kind::Choice, l2vpn_status(state.as_str().unwrap_or_default())),
        Field::new(
            "import_targets",
            Kind::ForeignKeys,
            sorted_references(&Value::Array(imports)),
        ),
        Field::new(
            "description",
            Kind::Scalar,
            format!("Proxmox SDN VNet {name} in {kind} zone {zone}"),
        ),
    ]
}

/// The Prefixes of SDN subnets: ours (global, tagged) kept current; a manual
/// one linked, never modified; else created. Ours no subnet explains go
/// `decommissioning`.
pub struct Prefixes<'s, 'a> {
    reconciler: Reconciler<'s, 'a>,
    planned: VecMap<String, Value>,
}

impl<'a> Prefixes<'static, 'a> {
    pub fn new(ctx: &Context<'a>) -> Self {
        let ours_description = format!("Proxmox SDN {}/", ctx.inventory.cluster_name);
        let scope = ctx
            .objects(netbox::PREFIX)
            .iter()
            .filter(move |p| p.str("description").is_some_and(|d| d.starts_with(&ours_description)));
        Prefixes {
            reconciler: Reconciler::new(&PREFIX, true, scope.collect::<Vec<_>>()),
            planned: VecMap::new(),
        }
    }

    pub fn plan(&mut self, ctx: &mut Context<'a>, network: &Cidr, vnet: &str, zone: &str) -> Value {
        let text = network.to_string();
        if let Some(known) = self.planned.get(&text) {
            return known.clone();
        }
        let global: Vec<&Object> = ctx
            .objects(netbox::PREFIX)
            .iter()
            .filter(|p| p.fk("vrf").is_none() && p.str("prefix").and_then(Cidr::parse).as_ref() == Some(network))
            .collect();
        let value = match global.as_slice() {
            [prefix] if !ctx.owned(prefix) => {
                self.reconciler.keep(prefix);
                Value::from(prefix.id)
            }
            _ => {
                let found = Found::among(global, MatchedBy::NaturalKey, "global prefixes");
                let description = format!("Proxmox SDN {}/{zone}/{vnet}", ctx.inventory.cluster_name);
                let fields = vec![
                    Field::new("prefix", Kind::Scalar, text.as_str()),
                    Field::new("status", Kind::Choice, "active"),
                    Field::new("description", Kind::Scalar, description),
                ];
                let outcome = self
                    .reconciler
                    .item(ctx, &item(&text), found, |_, _| Desired::fields(fields));
                reference(&self.reconciler, &text, outcome)
            }
        };
        self.planned.insert(text, value.clone());
        value
    }

    pub fn retire(self, ctx: &mut Context<'a>, complete: bool) {
        self.reconciler.retire(ctx, complete, |prefix| {
            prefix.str("prefix").unwrap_or_default().to_owned()
        });
    }
}

/// One termination: planned once per target, or, when the target already
/// terminates another L2VPN, a conflict record instead (never overwritten).
pub struct Terminations<'s, 'a> {
    reconciler: Reconciler<'s, 'a>,
    planned: VecSet<(&'static str, u64)>,
}

impl<'a> Terminations<'static, 'a> {
    pub fn new() -> Self {
        Terminations {
            reconciler: Reconciler::new(&TERMINATION, true, []),
            planned: VecSet::new(),
        }
    }

    /// Plans the termination, or returns the L2VPN already terminating the target.
    pub fn plan(
        &mut self,
        ctx: &mut Context<'a>,
        (l2vpn, slug): (&Value, &str),
        (kind, id): (&'static str, u64),
        (source_type, source_name): (&str, &str),
    ) -> Option<u64> {
        let existing = ctx
            .objects(netbox::L2VPN_TERMINATION)
            .iter()
            .find(|t| t.str("assigned_object_type") == Some(kind) && t.u64("assigned_object_id") == Some(id));
        let identity = format!("{kind}/{id}");
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
                let detail = format!("{source_name}: target already terminates L2VPN {other}; not overwritten");
                let head = TERMINATION.head(&identity, identity.clone());
                ctx.plan.skip(head, Some(t), Reason::SdnConflict, detail, None);
                Some(other)
            }
            Some(_) => None,
            None => {
                if self.planned.insert((kind, id)) {
                    let fields = vec![
                        Field::new("l2vpn", Kind::ForeignKey, l2vpn.clone()),
                        Field::new("assigned_object_type", Kind::Scalar, kind),
                        Field::new("assigned_object_id", Kind::Scalar, id),
                    ];
                    self.reconciler
                        .item(ctx, &item(&identity), Found::None, |_, _| Desired::fields(fields));
                }
                None
            }
        }
    }
}

/// A warning about a row that names no single NetBox target.
pub fn ambiguous_target(ctx: &mut Context, source_name: &str, why: &str, path: &str) {
    let message = format!("{source_name}: {why}; no termination");
    ctx.plan
        .warn(Warning::new(WarningCode::AmbiguousIdentity, message).at_path(path));
}
