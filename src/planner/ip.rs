//! IP addresses as `ipam.ipaddress` (identity: address + interface), and each
//! VM's primary IPv4/IPv6.
//!
//! An address Proxmox now reports on another NIC (of this guest or another)
//! is moved there: one PATCH of its assignment (and prefix length), not a
//! delete now and a create next run, which NetBox would refuse in between
//! (host addresses are unique in its global table).

use super::context::{by_interface, Context, InterfaceSlot};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse::Cidr;
use crate::plan::{Change, MatchedBy, OpHead, Reason, Target, Warning, WarningCode};
use crate::source::{agent_addresses, AgentAddresses, Fetched, Guest};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::rc::Rc;

pub const PLANNER: Planner = Planner {
    name: "ip",
    stage: Stage::IpAddresses,
    governed_by: &[ResourceType::IpAddress],
    reads: &[netbox::IP_ADDRESS, netbox::VM_INTERFACE, netbox::VIRTUAL_MACHINE],
    prerequisites: &[],
    needs: &["interface"],
    proxmox: ask,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_ip_tags"),
    lookup: &[("address", "address"), ("vminterface_id", "assigned_object_id")],
    ..Lifecycle::synced(
        "ip-addresses",
        ResourceType::IpAddress,
        netbox::IP_ADDRESS,
        Gone::Delete { cascades: &[] },
    )
};

/// The guest agent's answers, for running guests that have it enabled.
fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask
        .guests(false)
        .filter(|g| ask.snapshot.has(&g.config_path))
        .filter(|g| g.agent_expected())
        .map(Guest::agent_path)
        .collect();
    paths.iter().for_each(|path| ask.want(path));
}

/// The addresses Proxmox reports for a NIC: the guest agent's for its MAC,
/// else the static configuration.
fn addresses(ctx: &Context, slot: &InterfaceSlot, agent: Option<&[(String, Vec<Cidr>)]>) -> Vec<Cidr> {
    let from_agent = slot.nic.mac.as_ref().and_then(|mac| {
        agent
            .and_then(|interfaces| interfaces.iter().find(|(m, _)| m == mac))
            .map(|(_, a)| a.clone())
    });
    let ignore_link_local = ctx.settings.options.ignore_ipv6_link_local;
    let mut found: Vec<Cidr> = from_agent
        .unwrap_or_else(|| slot.nic.static_ips.clone())
        .into_iter()
        .filter(|a| !a.is_loopback() && !a.is_unspecified())
        .filter(|a| !(ignore_link_local && !a.is_ipv4() && a.is_link_local()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The guest agent's answer: `Ok(None)` when the guest has no agent, `Err`
/// when it has one that could not answer (stopped, or the fetch failed): then
/// the addresses it reported before are kept, not deleted.
fn agent(ctx: &mut Context, guest: &Guest, key: &str) -> std::result::Result<Option<AgentAddresses>, ()> {
    if !guest.agent_enabled() {
        return Ok(None);
    }
    if !guest.agent_expected() {
        return Err(());
    }
    let path = guest.agent_path();
    match ctx.snapshot.get(&path) {
        Fetched::Data(answer) => Ok(Some(agent_addresses(answer))),
        failed => {
            let message = format!(
                "{key}: guest agent unavailable ({}); its IP addresses are not deleted",
                failed.failure()
            );
            ctx.plan
                .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(path));
            Err(())
        }
    }
}

/// One guest's NICs and the addresses Proxmox reports on each.
struct GuestAddresses {
    key: String,
    /// False when the agent could not answer: nothing of the guest is
    /// deleted or moved away.
    complete: bool,
    slots: Vec<(Rc<InterfaceSlot>, Vec<Cidr>)>,
}

fn wanted(ctx: &mut Context) -> Vec<GuestAddresses> {
    let mut by_guest: BTreeMap<usize, Vec<Rc<InterfaceSlot>>> = BTreeMap::new();
    for slot in ctx.refs.interfaces.values() {
        by_guest.entry(slot.guest_index).or_default().push(slot.clone());
    }
    let inventory = ctx.inventory;
    let mut all = Vec::new();
    for (guest_index, mut slots) in by_guest {
        let Some(guest) = inventory.guests.get(guest_index) else {
            continue;
        };
        slots.sort_by_key(|s| s.nic.index);
        let key = guest.key();
        let agent = agent(ctx, guest, &key);
        let complete = agent.is_ok();
        let agent = agent.unwrap_or_default();
        let slots = slots
            .into_iter()
            .map(|slot| {
                let addresses = addresses(ctx, &slot, agent.as_deref());
                (slot, addresses)
            })
            .collect();
        all.push(GuestAddresses { key, complete, slots });
    }
    all
}

/// NetBox refuses a second copy of a host address in its global table
/// ("Duplicate IP address found in global table"), whatever the prefix
/// length, unless the role is one meant to be shared.
struct Claims<'o, 'a> {
    /// Host address → global-table NetBox addresses holding it.
    in_netbox: BTreeMap<IpAddr, Vec<&'o Object<'a>>>,
    /// Host address → the identity of the create in this plan that claims it.
    planned: BTreeMap<IpAddr, String>,
}

/// NetBox's `IPADDRESS_ROLES_NONUNIQUE`.
const SHARED_ROLES: [&str; 6] = ["anycast", "vip", "vrrp", "hsrp", "glbp", "carp"];

impl<'o, 'a> Claims<'o, 'a> {
    fn of(addresses: &'o [Object<'a>]) -> Self {
        let mut in_netbox: BTreeMap<IpAddr, Vec<&Object>> = BTreeMap::new();
        for ip in addresses {
            let global = ip.fk("vrf").is_none();
            let shared = ip.choice("role").is_some_and(|role| SHARED_ROLES.contains(&role));
            if let Some(address) = ip.str("address").and_then(Cidr::parse).filter(|_| global && !shared) {
                in_netbox.entry(address.ip).or_default().push(ip);
            }
        }
        Claims {
            in_netbox,
            planned: BTreeMap::new(),
        }
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

/// Our addresses that Proxmox now reports somewhere else: IP id → the
/// interface label and address it goes to. An address moves only when it is
/// ours, known to be gone from where it is (that guest was read completely,
/// or its interface is deleted), and, between VMs, not its VM's primary IP
/// (NetBox refuses to move that one).
fn moves(ctx: &Context, guests: &[GuestAddresses], claims: &Claims) -> BTreeMap<u64, (String, Cidr)> {
    let mut at_interface: BTreeMap<u64, (bool, u64, BTreeSet<&Cidr>)> = BTreeMap::new();
    for guest in guests {
        for (slot, wanted) in &guest.slots {
            if let Some(id) = slot.existing_id {
                let vm = ctx
                    .refs
                    .vms
                    .get(&guest.key)
                    .and_then(|s| s.existing_id)
                    .unwrap_or_default();
                at_interface.insert(id, (guest.complete, vm, wanted.iter().collect()));
            }
        }
    }
    let gone_from_where_it_is = |ip: &Object, address: &Cidr| {
        let Some(iface) = ip.u64("assigned_object_id") else {
            return false;
        };
        match at_interface.get(&iface) {
            Some((complete, _, wanted)) => *complete && !wanted.contains(address),
            None => ctx.refs.is_deleted(netbox::VM_INTERFACE, iface),
        }
    };
    let mut moved = BTreeMap::new();
    for guest in guests {
        let vm = ctx.refs.vms.get(&guest.key).and_then(|s| s.existing_id);
        for (slot, wanted) in &guest.slots {
            for address in wanted {
                let here =
                    |ip: &&&Object| slot.existing_id.is_some() && ip.u64("assigned_object_id") == slot.existing_id;
                let holders = claims.in_netbox.get(&address.ip).map(Vec::as_slice).unwrap_or_default();
                let exact = holders
                    .iter()
                    .filter(here)
                    .any(|ip| parsed(ip).as_ref() == Some(address));
                if exact {
                    continue;
                }
                let movable = holders.iter().find(|ip| {
                    let current = parsed(ip);
                    !moved.contains_key(&ip.id)
                        && ctx.owned(ip)
                        && ip.str("assigned_object_type") == Some(netbox::VM_INTERFACE.name)
                        && current.as_ref().is_some_and(|c| gone_from_where_it_is(ip, c))
                        && !primary_elsewhere(ctx, ip, vm)
                });
                if let Some(ip) = movable {
                    moved.insert(ip.id, (slot.label.clone(), address.clone()));
                }
            }
        }
    }
    moved
}

fn parsed(ip: &Object) -> Option<Cidr> {
    ip.str("address").and_then(Cidr::parse)
}

/// The address is the primary IP of a VM other than `vm`.
fn primary_elsewhere(ctx: &Context, ip: &Object, vm: Option<u64>) -> bool {
    let owner = ip
        .u64("assigned_object_id")
        .and_then(|id| ctx.object(netbox::VM_INTERFACE, id))
        .and_then(|iface| iface.fk("virtual_machine"));
    let primary = owner
        .and_then(|id| ctx.object(netbox::VIRTUAL_MACHINE, id))
        .is_some_and(|owner| owner.fk("primary_ip4") == Some(ip.id) || owner.fk("primary_ip6") == Some(ip.id));
    primary && owner != vm
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let guests = wanted(ctx);
    let all = ctx.objects(netbox::IP_ADDRESS);
    let mut assigned = by_interface(all);
    let mut claims = Claims::of(all);
    let moved = moves(ctx, &guests, &claims);
    let arriving: BTreeMap<(&str, &Cidr), &Object> = moved
        .iter()
        .filter_map(|(id, (label, address))| Some(((label.as_str(), address), ctx.object(netbox::IP_ADDRESS, *id)?)))
        .collect();
    for guest in &guests {
        let mut planned: Vec<(Cidr, Option<Value>)> = Vec::new();
        for (slot, wanted) in &guest.slots {
            let existing = slot.existing_id.and_then(|id| assigned.remove(&id)).unwrap_or_default();
            let staying: Vec<&Object> = existing
                .iter()
                .copied()
                .filter(|ip| !moved.contains_key(&ip.id))
                .collect();
            let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, staying);
            if !reconciler.planning() {
                continue;
            }
            for address in wanted {
                let on_interface = existing.iter().copied().find(|ip| parsed(ip).as_ref() == Some(address));
                let arriving = arriving.get(&(slot.label.as_str(), address)).copied();
                let value = plan_address(
                    ctx,
                    &mut reconciler,
                    &mut claims,
                    slot,
                    address,
                    on_interface.or(arriving),
                );
                planned.push((address.clone(), value));
            }
            reconciler.retire(ctx, guest.complete, |ip| {
                format!("{}/{}#{}", slot.label, ip.str("address").unwrap_or_default(), ip.id)
            });
        }
        plan_primary(ctx, guest, &planned);
    }
    Ok(())
}

/// One address on one interface: the NetBox address already there (or
/// moving there), else a create unless NetBox's uniqueness forbids it.
/// Returns its id or `$ref` for the primary IP choice.
fn plan_address<'a>(
    ctx: &mut Context<'a>,
    reconciler: &mut Reconciler<'_, 'a>,
    claims: &mut Claims,
    slot: &InterfaceSlot,
    address: &Cidr,
    existing: Option<&'a Object<'a>>,
) -> Option<Value> {
    let identity = format!("{}/{address}", slot.label);
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
    match reconciler.item(ctx, &item, found, |_, _| desired(address, &slot.reference)) {
        Outcome::Existing(ip) => Some(Value::from(ip.id)),
        Outcome::Created => reconciler.reference_of(&identity),
        Outcome::Skipped => None,
    }
}

fn desired(address: &Cidr, interface: &Value) -> Desired {
    Desired::fields(vec![
        Field::new("address", Kind::Scalar, address.to_string()),
        Field::new("status", Kind::Choice, "active").overwritten_by("overwrite_ip_status"),
        Field::new("assigned_object_type", Kind::Scalar, netbox::VM_INTERFACE.name),
        Field::new("assigned_object_id", Kind::Scalar, interface.clone()),
    ])
}

/// Primary IPv4/IPv6: set only when the operator has not chosen one (or the
/// chosen one is an address this plan deletes), and never on a VM the VM
/// mode keeps us from writing (disabled, or tagged bootstrap-only).
fn plan_primary(ctx: &mut Context, guest: &GuestAddresses, planned: &[(Cidr, Option<Value>)]) {
    let Some(slot) = ctx.refs.vms.get(&guest.key).cloned() else {
        return;
    };
    if ctx.mode(ResourceType::Vm).is_disabled() {
        return;
    }
    let vm = slot.existing_id.and_then(|id| ctx.object(netbox::VIRTUAL_MACHINE, id));
    if vm.is_some_and(|vm| ctx.bootstrap_protected(ResourceType::Vm, vm)) {
        return;
    }
    let mut changes = BTreeMap::new();
    for (field, v4) in [("primary_ip4", true), ("primary_ip6", false)] {
        let current = vm.and_then(|vm| vm.fk(field));
        if current.is_some_and(|id| !ctx.refs.is_deleted(netbox::IP_ADDRESS, id)) {
            continue;
        }
        let candidate = planned
            .iter()
            .filter(|(a, _)| a.is_ipv4() == v4 && !a.is_link_local())
            .find_map(|(_, value)| value.as_ref());
        if let Some(value) = candidate {
            let change = Change {
                before: current.into(),
                after: value.clone(),
            };
            changes.insert(field.to_owned(), change);
        }
    }
    if changes.is_empty() {
        return;
    }
    let target = match vm {
        Some(vm) => Target::of(vm),
        None => Target::created(&slot.reference),
    };
    let identity = format!("{}/primary-ip", guest.key);
    let head = OpHead {
        model: netbox::VIRTUAL_MACHINE,
        ..LIFECYCLE.head(&identity, identity.clone())
    };
    ctx.update(head, target, Reason::ChangedInProxmox, changes, None);
}
