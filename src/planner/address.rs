//! IP addresses on interfaces (`ipam.ipaddress`, identity: address +
//! interface), the same way for VM interfaces (`ip-addresses`) and node
//! interfaces (`network-interfaces`).
//!
//! An address Proxmox now reports on another interface (of this VM or node,
//! or another) is moved there: one PATCH of its assignment (and prefix
//! length), not a delete now and a create next run, which NetBox would refuse
//! in between (host addresses are unique in its global table).

use super::context::{by_interface, Context};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Item, Lifecycle, Outcome, Reconciler};
use crate::netbox::{self, Model, Object};
use crate::parse::Cidr;
use crate::plan::{MatchedBy, Reason, WarningCode};
use crate::vec_map::{VecMap, VecSet};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Where a planner's addresses are assigned.
pub struct Assignment {
    pub spec: &'static Lifecycle,
    /// `virtualization.vminterface` or `dcim.interface`.
    pub interface: Model,
    /// What the interfaces belong to (the VM, the device), and the
    /// interface field that says so: NetBox will not move a primary IP
    /// away from it.
    pub parent: (Model, &'static str),
}

/// One interface and the addresses Proxmox reports on it.
pub struct Target {
    /// `qemu/101/net0`, `pve1/vmbr0`: ids and keys of its addresses.
    pub label: String,
    /// The interface: an id, or the `$ref` of its create.
    pub reference: Value,
    pub existing_id: Option<u64>,
    pub wanted: Vec<Cidr>,
}

/// The interfaces of one VM or node.
pub struct Group {
    pub key: String,
    /// The NetBox VM or device.
    pub owner: Option<u64>,
    /// False when Proxmox could not say (a guest agent that did not answer):
    /// nothing of the group is deleted or moved away.
    pub complete: bool,
    pub targets: Vec<Target>,
}

/// NetBox refuses a second copy of a host address in its global table
/// ("Duplicate IP address found in global table"), whatever the prefix
/// length, unless the role is one meant to be shared.
struct Claims<'o, 'a> {
    /// Host address → global-table NetBox addresses holding it.
    in_netbox: VecMap<IpAddr, Vec<&'o Object<'a>>>,
    /// Host address → the identity of the create in this plan that claims it.
    planned: HashMap<IpAddr, String>,
}

/// NetBox's `IPADDRESS_ROLES_NONUNIQUE`.
const SHARED_ROLES: [&str; 6] = ["anycast", "vip", "vrrp", "hsrp", "glbp", "carp"];

impl<'o, 'a> Claims<'o, 'a> {
    fn of(addresses: &'o [Object<'a>], planned: HashMap<IpAddr, String>) -> Self {
        let in_netbox = VecMap::grouped(addresses.iter().filter_map(|ip| {
            let global = ip.fk("vrf").is_none();
            let shared = ip.choice("role").is_some_and(|role| SHARED_ROLES.contains(&role));
            let address = ip.str("address").and_then(Cidr::parse).filter(|_| global && !shared)?;
            Some((address.ip, ip))
        }));
        Claims { in_netbox, planned }
    }

    /// Why a new address cannot be created, if it cannot.
    fn conflict(&self, address: &Cidr) -> Option<(Reason, String)> {
        if let Some(holders) = self.in_netbox.get(&address.ip) {
            let ids: Vec<String> = holders.iter().map(|o| o.id.to_string()).collect();
            let detail = format!("{} is already in NetBox (ids {})", address.ip, ids.join(", "));
            return Some((Reason::NotOwned, detail));
        }
        let other = self.planned.get(&address.ip)?;
        Some((
            Reason::AmbiguousIdentity,
            format!("{} is also reported for {other}", address.ip),
        ))
    }
}

fn parsed(ip: &Object) -> Option<Cidr> {
    ip.str("address").and_then(Cidr::parse)
}

fn on(ip: &Object, how: &Assignment, interface: Option<u64>) -> bool {
    interface.is_some()
        && ip.str("assigned_object_type") == Some(how.interface.name)
        && ip.u64("assigned_object_id") == interface
}

/// The address is the primary (or out-of-band) IP of a VM or device other than `owner`.
fn primary_elsewhere(ctx: &Context, how: &Assignment, ip: &Object, owner: Option<u64>) -> bool {
    let (parent_model, parent_field) = how.parent;
    let parent = ip
        .u64("assigned_object_id")
        .and_then(|id| ctx.object(how.interface, id))
        .and_then(|iface| iface.fk(parent_field));
    let primary = parent.and_then(|id| ctx.object(parent_model, id)).is_some_and(|p| {
        ["primary_ip4", "primary_ip6", "oob_ip"]
            .iter()
            .any(|f| p.fk(f) == Some(ip.id))
    });
    primary && parent != owner
}

/// Our addresses that Proxmox now reports somewhere else: IP id → the
/// interface label and address it goes to. An address moves only when it is
/// ours, on this kind of interface, known to be gone from where it is (that
/// group was read completely, or its interface is deleted), and, between
/// VMs or nodes, not the primary IP where it is (NetBox refuses to move that).
fn moves(ctx: &Context, how: &Assignment, groups: &[Group], claims: &Claims) -> VecMap<u64, (String, Cidr)> {
    let at_interface: VecMap<u64, (bool, VecSet<&Cidr>)> = groups
        .iter()
        .flat_map(|group| group.targets.iter().map(move |target| (group, target)))
        .filter_map(|(group, target)| Some((target.existing_id?, (group.complete, VecSet::from_iter(&target.wanted)))))
        .collect();
    let gone_from_where_it_is = |ip: &Object, address: &Cidr| {
        let Some(iface) = ip.u64("assigned_object_id") else {
            return false;
        };
        match at_interface.get(&iface) {
            Some((complete, wanted)) => *complete && !wanted.contains(address),
            None => ctx.refs.is_deleted(how.interface, iface),
        }
    };
    let mut moved = VecMap::new();
    for group in groups {
        for target in &group.targets {
            for address in &target.wanted {
                let holders = claims.in_netbox.get(&address.ip).map(Vec::as_slice).unwrap_or_default();
                let exact = holders
                    .iter()
                    .any(|ip| on(ip, how, target.existing_id) && parsed(ip).as_ref() == Some(address));
                if exact {
                    continue;
                }
                let movable = holders.iter().find(|ip| {
                    let current = parsed(ip);
                    !moved.contains_key(&ip.id)
                        && ctx.owned(ip)
                        && ip.str("assigned_object_type") == Some(how.interface.name)
                        && current.as_ref().is_some_and(|c| gone_from_where_it_is(ip, c))
                        && !primary_elsewhere(ctx, how, ip, group.owner)
                });
                if let Some(ip) = movable {
                    moved.insert(ip.id, (target.label.clone(), address.clone()));
                }
            }
        }
    }
    moved
}

/// Plans the addresses of every group's interfaces; returns, per group,
/// each address with its id or `$ref` (for the primary IP choice).
pub fn plan_groups(
    ctx: &mut Context,
    writes: bool,
    how: &Assignment,
    groups: &[Group],
) -> Vec<Vec<(Cidr, Option<Value>)>> {
    let all = ctx.objects(netbox::IP_ADDRESS);
    let mut assigned = by_interface(all, how.interface);
    let mut claims = Claims::of(all, std::mem::take(&mut ctx.refs.planned_addresses));
    let moved = moves(ctx, how, groups, &claims);
    let arriving: VecMap<(&str, &Cidr), &Object> =
        VecMap::from_iter(moved.iter().filter_map(|(id, (label, address))| {
            Some(((label.as_str(), address), ctx.object(netbox::IP_ADDRESS, *id)?))
        }));
    let mut all_planned = Vec::with_capacity(groups.len());
    for group in groups {
        let mut planned: Vec<(Cidr, Option<Value>)> = Vec::new();
        for target in &group.targets {
            let existing = target.existing_id.and_then(|id| assigned.take(&id)).unwrap_or_default();
            let staying: Vec<&Object> = existing
                .iter()
                .copied()
                .filter(|ip| !moved.contains_key(&ip.id))
                .collect();
            let mut reconciler = Reconciler::for_run(ctx, how.spec, writes, staying);
            if !reconciler.planning() {
                continue;
            }
            for address in &target.wanted {
                let on_interface = existing.iter().copied().find(|ip| parsed(ip).as_ref() == Some(address));
                let arriving = arriving.get(&(target.label.as_str(), address)).copied();
                let existing = on_interface.or(arriving);
                let value = plan_address(ctx, how, &mut reconciler, &mut claims, target, address, existing);
                planned.push((address.clone(), value));
            }
            reconciler.retire(ctx, group.complete, |ip| {
                format!("{}/{}#{}", target.label, ip.str("address").unwrap_or_default(), ip.id)
            });
        }
        all_planned.push(planned);
    }
    ctx.refs.planned_addresses = claims.planned;
    all_planned
}

/// One address on one interface: the NetBox address already there (or
/// moving there), else a create unless NetBox's uniqueness forbids it.
fn plan_address<'a>(
    ctx: &mut Context<'a>,
    how: &Assignment,
    reconciler: &mut Reconciler<'_, 'a>,
    claims: &mut Claims,
    target: &Target,
    address: &Cidr,
    existing: Option<&'a Object<'a>>,
) -> Option<Value> {
    let identity = format!("{}/{address}", target.label);
    let found = match existing {
        Some(ip) => {
            // A cascade with its old interface does not take it: it moves.
            ctx.refs.unmark_deleted(netbox::IP_ADDRESS, ip.id);
            Found::One(ip, MatchedBy::NaturalKey)
        }
        None => match claims.conflict(address) {
            Some((reason, detail)) => {
                let detail = format!("{detail}; NetBox keeps host addresses unique, so it is not created");
                Found::Refused(None, reason, WarningCode::DuplicateIp, detail)
            }
            None => {
                claims.planned.insert(address.ip, identity.clone());
                Found::None
            }
        },
    };
    let item = Item {
        identity: identity.clone(),
        key: identity.clone(),
        proxmox_path: None,
    };
    match reconciler.item(ctx, &item, found, |_, _| desired(how, address, &target.reference)) {
        Outcome::Existing(ip) => Some(Value::from(ip.id)),
        Outcome::Created => reconciler.reference_of(&identity),
        Outcome::Skipped => None,
    }
}

fn desired(how: &Assignment, address: &Cidr, interface: &Value) -> Desired {
    Desired::fields(vec![
        Field::new("address", Kind::Scalar, address.to_string()),
        Field::new("status", Kind::Choice, "active").overwritten_by("overwrite_ip_status"),
        Field::new("assigned_object_type", Kind::Scalar, how.interface.name),
        Field::new("assigned_object_id", Kind::Scalar, interface.clone()),
    ])
}

/// The addresses worth recording: no loopback or unspecified address, none
/// NetBox would refuse on an interface (a network ID), and IPv6 link-local
/// only when the settings keep them; sorted, once each.
pub fn worth_recording(ctx: &Context, addresses: Vec<Cidr>) -> Vec<Cidr> {
    let ignore_link_local = ctx.settings.options.ignore_ipv6_link_local;
    let mut found: Vec<Cidr> = addresses
        .into_iter()
        .filter(|a| !a.is_loopback() && !a.is_unspecified() && a.is_assignable_to_interface())
        .filter(|a| !(ignore_link_local && !a.is_ipv4() && a.is_link_local()))
        .collect();
    crate::sort::sort(&mut found);
    found.dedup();
    found
}
