//! IP addresses of VM interfaces (`address` does the matching, creating,
//! moving and retiring), and each VM's primary IPv4/IPv6.

use super::address::{self, Assignment, Group, Target};
use super::context::{Context, InterfaceSlot};
use super::reconcile::{Gone, Lifecycle};
use super::{Ask, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox;
use crate::parse::Cidr;
use crate::plan::{Change, OpHead, Reason, Target as OpTarget, Warning, WarningCode};
use crate::source::{agent_addresses, AgentAddresses, Fetched, Guest};
use crate::vec_map::VecMap;
use serde_json::Value;
use std::rc::Rc;

pub const PLANNER: Planner = Planner {
    name: "ip",
    stage: Stage::IpAddresses,
    governed_by: &[ResourceType::IpAddress],
    reads: &[netbox::IP_ADDRESS, netbox::VM_INTERFACE, netbox::VIRTUAL_MACHINE],
    links: &[],
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

const ADDRESSES: Assignment = Assignment {
    spec: &LIFECYCLE,
    interface: netbox::VM_INTERFACE,
    parent: (netbox::VIRTUAL_MACHINE, "virtual_machine"),
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
    address::worth_recording(ctx, from_agent.unwrap_or_else(|| slot.nic.static_ips.clone()))
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

/// Each guest's NICs and the addresses Proxmox reports on each.
fn wanted(ctx: &mut Context) -> Vec<Group> {
    let by_guest: VecMap<usize, Vec<Rc<InterfaceSlot>>> = VecMap::grouped(
        ctx.refs
            .interfaces
            .values()
            .map(|slot| (slot.guest_index, slot.clone())),
    );
    let inventory = ctx.inventory;
    let mut all = Vec::new();
    for (guest_index, mut slots) in by_guest {
        let Some(guest) = inventory.guests.get(guest_index) else {
            continue;
        };
        crate::sort::sort_by_key(&mut slots, |s| s.nic.index);
        let key = guest.key();
        let agent = agent(ctx, guest, &key);
        let complete = agent.is_ok();
        let agent = agent.unwrap_or_default();
        let targets = slots
            .iter()
            .map(|slot| Target {
                label: slot.label.clone(),
                reference: slot.reference.clone(),
                existing_id: slot.existing_id,
                wanted: addresses(ctx, slot, agent.as_deref()),
            })
            .collect();
        let owner = ctx.refs.vms.get(&key).and_then(|s| s.existing_id);
        all.push(Group {
            key,
            owner,
            complete,
            targets,
        });
    }
    all
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let guests = wanted(ctx);
    let planned = address::plan_groups(ctx, writes, &ADDRESSES, &guests);
    for (guest, planned) in guests.iter().zip(planned) {
        plan_primary(ctx, guest, &planned);
    }
    Ok(())
}

/// Primary IPv4/IPv6: set only when the operator has not chosen one (or the
/// chosen one is an address this plan deletes), and never on a VM the VM
/// mode keeps us from writing (disabled, or tagged bootstrap-only).
fn plan_primary(ctx: &mut Context, guest: &Group, planned: &[(Cidr, Option<Value>)]) {
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
    let mut changes = VecMap::new();
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
        Some(vm) => OpTarget::of(vm),
        None => OpTarget::created(&slot.reference),
    };
    let identity = format!("{}/primary-ip", guest.key);
    let head = OpHead {
        model: netbox::VIRTUAL_MACHINE,
        ..LIFECYCLE.head(&identity, identity.clone())
    };
    let op = ctx.update(head, target, Reason::ChangedInProxmox, changes, None);
    // A VM save writes the disk total it read: not beside a write of its disks.
    if let (Some(op), Some(disks)) = (op, ctx.refs.last_disk_write.get(&guest.key).cloned()) {
        ctx.plan.add_dependency(&op, &disks);
    }
}
