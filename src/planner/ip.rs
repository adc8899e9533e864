//! IP addresses as `ipam.ipaddress` (identity: address + interface), and each
//! VM's primary IPv4/IPv6.

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::mac::by_interface;
use super::{bootstrap_protected, Context, InterfaceSlot, TAG_PROXBOX};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse::Cidr;
use crate::plan::{reference, Change, OpHead, Reason, Target, Warning, WarningCode};
use crate::source::{agent_addresses, AgentAddresses, Fetched, Guest};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

const STAGE: Stage = Stage::IpAddresses;

fn head(model: netbox::Model, identity: &str) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(ResourceType::IpAddress),
        model,
        identity,
        key: identity.to_owned(),
    }
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
fn agent<'a>(ctx: &mut Context<'a>, guest: &Guest<'a>, key: &str) -> Result<Option<AgentAddresses>, ()> {
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

pub fn plan(ctx: &mut Context) {
    if ctx.mode(ResourceType::IpAddress).is_disabled() {
        ctx.skip_disabled(STAGE, ResourceType::IpAddress, netbox::IP_ADDRESS);
        return;
    }
    let loaded = ctx.loaded;
    let mut assigned = by_interface(loaded.get(netbox::IP_ADDRESS));
    let mut claims = Claims::of(loaded.get(netbox::IP_ADDRESS));
    let inventory = ctx.inventory;
    let mut by_guest: BTreeMap<usize, Vec<Rc<InterfaceSlot>>> = BTreeMap::new();
    for slot in ctx.refs.interfaces.values() {
        by_guest.entry(slot.guest_index).or_default().push(slot.clone());
    }
    for (guest_index, mut slots) in by_guest {
        let Some(guest) = inventory.guests.get(guest_index) else {
            continue;
        };
        slots.sort_by_key(|s| s.nic.index);
        let key = guest.key();
        let agent = agent(ctx, guest, &key);
        let complete = agent.is_ok();
        let agent = agent.unwrap_or_default();
        let mut planned: Vec<(Cidr, Option<Value>)> = Vec::new();
        for slot in &slots {
            let wanted = addresses(ctx, slot, agent.as_deref());
            let existing = slot.existing_id.and_then(|id| assigned.remove(&id)).unwrap_or_default();
            for address in wanted {
                let value = plan_address(ctx, slot, &address, &existing, &mut claims);
                planned.push((address, value));
            }
            if complete {
                plan_gone(ctx, slot, &planned, &existing);
            }
        }
        plan_primary(ctx, &key, &planned);
    }
}

/// NetBox refuses a second copy of a host address in its global table
/// ("Duplicate IP address found in global table"), whatever the prefix
/// length, unless the role is one meant to be shared.
struct Claims {
    /// Host address → the ids of global-table NetBox addresses holding it.
    in_netbox: BTreeMap<IpAddr, Vec<u64>>,
    /// Host address → the identity of the create in this plan that claims it.
    planned: BTreeMap<IpAddr, String>,
}

/// NetBox's `IPADDRESS_ROLES_NONUNIQUE`.
const SHARED_ROLES: [&str; 6] = ["anycast", "vip", "vrrp", "hsrp", "glbp", "carp"];

impl Claims {
    fn of(addresses: &[Object]) -> Claims {
        let mut in_netbox: BTreeMap<IpAddr, Vec<u64>> = BTreeMap::new();
        for ip in addresses {
            let global = ip.fk("vrf").is_none();
            let shared = ip.choice("role").is_some_and(|role| SHARED_ROLES.contains(&role));
            if let Some(address) = ip.str("address").and_then(Cidr::parse).filter(|_| global && !shared) {
                in_netbox.entry(address.ip).or_default().push(ip.id);
            }
        }
        Claims {
            in_netbox,
            planned: BTreeMap::new(),
        }
    }

    /// Why a new address cannot be created, if it cannot.
    fn conflict(&self, address: &Cidr) -> Option<(Reason, String)> {
        if let Some(ids) = self.in_netbox.get(&address.ip) {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
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

/// The address's NetBox id or `$ref`, or `None` when it is not created.
fn plan_address(
    ctx: &mut Context,
    slot: &InterfaceSlot,
    address: &Cidr,
    existing: &[&Object],
    claims: &mut Claims,
) -> Option<Value> {
    let text = address.to_string();
    let identity = format!("{}/{text}", slot.label);
    let current = existing
        .iter()
        .copied()
        .find(|ip| ip.str("address").and_then(Cidr::parse).as_ref() == Some(address));
    let flag = |ctx: &Context, name: &str| !ctx.settings.overwrite.get(name);
    match current {
        Some(ip) => {
            if !ctx.protected(head(netbox::IP_ADDRESS, &identity), ResourceType::IpAddress, ip) {
                let tags = merged_tags(ip, &ctx.creation_tags(ResourceType::IpAddress));
                let fields = [
                    Field::new("status", Kind::Choice, "active").create_only(flag(ctx, "overwrite_ip_status")),
                    Field::new("tags", Kind::Tags, tag_list(&tags)).create_only(flag(ctx, "overwrite_ip_tags")),
                ];
                ctx.update(head(netbox::IP_ADDRESS, &identity), ip, changes(ip, &fields));
            }
            Some(Value::from(ip.id))
        }
        None => {
            if let Some((reason, detail)) = claims.conflict(address) {
                let detail = format!("{detail}; NetBox keeps host addresses unique, so it is not created");
                ctx.plan
                    .warn(Warning::new(WarningCode::DuplicateIp, format!("{identity}: {detail}")));
                ctx.plan.skip(head(netbox::IP_ADDRESS, &identity), None, reason, detail);
                return None;
            }
            claims.planned.insert(address.ip, identity.clone());
            let fields = [
                Field::new("address", Kind::Scalar, text.as_str()),
                Field::new("status", Kind::Choice, "active"),
                Field::new("assigned_object_type", Kind::Scalar, "virtualization.vminterface"),
                Field::new("assigned_object_id", Kind::Scalar, slot.reference.clone()),
                Field::new(
                    "tags",
                    Kind::Tags,
                    tag_list(&ctx.creation_tags(ResourceType::IpAddress)),
                ),
            ];
            let id = ctx.create(
                head(netbox::IP_ADDRESS, &identity),
                Reason::NewInProxmox,
                create_payload(&fields),
            );
            Some(reference(&id))
        }
    }
}

fn plan_gone(ctx: &mut Context, slot: &InterfaceSlot, planned: &[(Cidr, Option<Value>)], existing: &[&Object]) {
    for ip in existing {
        let address = ip.str("address").and_then(Cidr::parse);
        let still_there = address.as_ref().is_some_and(|a| planned.iter().any(|(p, _)| p == a));
        if still_there || !ip.has_tag(TAG_PROXBOX) {
            continue;
        }
        let label = format!("{}/{}#{}", slot.label, ip.str("address").unwrap_or_default(), ip.id);
        if !ctx.protected(head(netbox::IP_ADDRESS, &label), ResourceType::IpAddress, ip) {
            ctx.plan
                .delete(head(netbox::IP_ADDRESS, &label), ip, Reason::GoneFromProxmox);
            ctx.refs.mark_deleted(netbox::IP_ADDRESS, ip.id);
        }
    }
}

/// Primary IPv4/IPv6: set only when the operator has not chosen one (or the
/// chosen one is an address this plan deletes).
fn plan_primary(ctx: &mut Context, key: &str, planned: &[(Cidr, Option<Value>)]) {
    let Some(slot) = ctx.refs.vms.get(key).cloned() else {
        return;
    };
    let vm = slot
        .existing_id
        .and_then(|id| ctx.loaded.by_id(netbox::VIRTUAL_MACHINE, id));
    if vm.is_some_and(|vm| bootstrap_protected(ctx, ResourceType::Vm, vm)) {
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
            changes.insert(
                field.to_owned(),
                Change {
                    before: current.into(),
                    after: value.clone(),
                },
            );
        }
    }
    if changes.is_empty() {
        return;
    }
    let target = match vm {
        Some(vm) => Target::of(vm),
        None => Target::created(&slot.reference),
    };
    let identity = format!("{key}/primary-ip");
    let head = OpHead {
        model: netbox::VIRTUAL_MACHINE,
        ..head(netbox::VM_INTERFACE, &identity)
    };
    ctx.update_because(head, target, Reason::ChangedInProxmox, changes);
}
