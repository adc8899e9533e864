//! Guest NICs as `virtualization.vminterface` (identity: VM + name), and the
//! access VLANs their `tag=` points at (identity: vid at the VM's site, else
//! global; created global, so any VM may use them). NetBox's own `bridge` of
//! a VM interface can only be another interface of the VM: the node bridge a
//! NIC is plugged into (`bridge=`) is recorded where the plugin keeps it, the
//! interface's sync-state record (`proxbox_bridge`).

use super::context::{by_parent, Context, InterfaceSlot, VmSlot};
use super::diff::{Field, Kind};
use super::proxbox::{self, Linked};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Warning, WarningCode};
use crate::source::{nics, Guest, Nic};
use crate::vec_map::VecMap;
use serde_json::Value;
use std::rc::Rc;

pub const PLANNER: Planner = Planner {
    name: "interface",
    stage: Stage::VmInterfaces,
    governed_by: &[ResourceType::VmInterface],
    reads: &[
        netbox::VM_INTERFACE,
        netbox::VLAN,
        netbox::VIRTUAL_MACHINE,
        netbox::IP_ADDRESS,
        netbox::MAC_ADDRESS,
        netbox::VM_INTERFACE_SYNC_STATE,
    ],
    links: &[],
    prerequisites: &[],
    needs: &["vm", "node-interface"],
    proxmox: ask,
    run: plan,
};

const INTERFACE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_vm_interface_tags"),
    lookup: &[("virtual_machine_id", "virtual_machine"), ("name", "name")],
    ..Lifecycle::synced(
        "vm-interfaces",
        ResourceType::VmInterface,
        netbox::VM_INTERFACE,
        Gone::Delete {
            cascades: &[netbox::IP_ADDRESS, netbox::MAC_ADDRESS],
        },
    )
};

const VLAN: Lifecycle = Lifecycle {
    model: netbox::VLAN,
    gone: Gone::Keep,
    tags_flag: None,
    updates: false,
    lookup: &[("vid", "vid"), ("name", "name")],
    ..INTERFACE
};

/// Guest configs, for the guests whose VMs are planned or matched.
pub fn ask_configs(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask.guests(false).map(|g| g.config_path.clone()).collect();
    paths.iter().for_each(|path| ask.want(path));
}

fn ask(ask: &mut Ask) {
    ask_configs(ask);
}

/// The NICs of a config, one per name: two LXC NICs with the same `name=`
/// cannot both be interfaces of one VM, so the lowest `netN` wins, warned.
fn unique_nics(ctx: &mut Context, key: &str, guest: &Guest, config: &serde_json::Map<String, Value>) -> Vec<Nic> {
    let mut seen: VecMap<String, u32> = VecMap::new();
    let mut kept = Vec::new();
    for nic in nics(guest.kind, config) {
        if let Some(first) = seen.get(&nic.name) {
            let message = format!(
                "{key}: net{} and net{first} are both named {:?}; net{first} is used",
                nic.index, nic.name
            );
            ctx.plan
                .warn(Warning::new(WarningCode::DuplicateIdentity, message).at_path(guest.config_path.clone()));
            continue;
        }
        seen.insert(nic.name.clone(), nic.index);
        kept.push(nic);
    }
    kept
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let mut by_vm = by_parent(ctx.objects(netbox::VM_INTERFACE), "virtual_machine");
    let mut vlans = VlanResolver::new(ctx, writes);
    let slots: Vec<(String, VmSlot)> = ctx.refs.vms.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, slot) in slots {
        let existing = slot.existing_id.and_then(|id| by_vm.take(&id)).unwrap_or_default();
        plan_guest(ctx, writes, &mut vlans, &key, &slot, &existing);
    }
    Ok(())
}

/// One guest's NICs against its VM's interfaces.
fn plan_guest<'a>(
    ctx: &mut Context<'a>,
    writes: bool,
    vlans: &mut VlanResolver,
    key: &str,
    slot: &VmSlot,
    existing: &[&'a Object<'a>],
) {
    let Some(guest) = ctx.inventory.guests.get(slot.guest_index) else {
        return;
    };
    let mut reconciler = Reconciler::for_run(ctx, &INTERFACE, writes, existing.iter().copied());
    let Some(config) = guest.config() else {
        let why = guest.config.failure();
        let message = format!("{key}: config unavailable ({why}); its interfaces are left as they are");
        ctx.plan
            .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(guest.config_path.clone()));
        return;
    };
    for nic in unique_nics(ctx, key, guest, config) {
        let label = format!("{key}/{}", nic.name);
        let candidates = existing
            .iter()
            .copied()
            .filter(|i| i.str("name").is_some_and(|n| n.trim() == nic.name))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "interfaces of the VM");
        let vlan = vlans.of(ctx, &nic, slot.existing_id);
        let item = Item {
            identity: label.clone(),
            key: label.clone(),
            proxmox_path: Some(guest.config_path.clone()),
        };
        let outcome = reconciler.item(ctx, &item, found, |_, _| desired(&nic, &slot.reference, vlan));
        if let Some(interface) = Linked::of(&outcome, reconciler.reference_of(&label)) {
            plan_sync_state(ctx, writes, &guest.node, &label, &nic, &interface);
        }
        let (reference, current) = match outcome {
            Outcome::Existing(iface) => (Some(Value::from(iface.id)), Some(iface)),
            Outcome::Created => (reconciler.reference_of(&label), None),
            Outcome::Skipped => (None, None),
        };
        if let Some(reference) = reference {
            let interface = InterfaceSlot {
                reference,
                existing_id: current.map(|i| i.id),
                label,
                guest_index: slot.guest_index,
                primary_mac: current.and_then(|i| i.fk("primary_mac_address")),
                nic,
            };
            let at = (key.to_owned(), interface.nic.name.clone());
            ctx.refs.interfaces.insert(at, Rc::new(interface));
        }
    }
    reconciler.retire(ctx, true, |iface| {
        format!("{key}/{}#{}", iface.str("name").unwrap_or_default(), iface.id)
    });
}

/// The interface's sync-state record: the node bridge it is plugged into
/// (its name too, which the plugin shows when the bridge is not in NetBox).
fn plan_sync_state(ctx: &mut Context, writes: bool, node: &str, label: &str, nic: &Nic, interface: &Linked) {
    let Some(bridge) = nic.bridge.as_deref() else {
        return;
    };
    let node_bridge = ctx
        .refs
        .node_networks
        .get(node)
        .and_then(|network| network.interfaces.get(bridge))
        .map(|slot| slot.reference.clone());
    let fields = vec![
        Field::new("proxbox_bridge", Kind::ForeignKey, node_bridge),
        Field::new("proxbox_bridge_raw_value", Kind::Scalar, bridge),
    ];
    let key = format!("{label}/sync-state");
    let after = [INTERFACE.head(label, String::new()).id()];
    proxbox::plan(ctx, &proxbox::VM_INTERFACE, writes, (&key, &after), interface, fields);
}

/// What the interface's 802.1Q settings should be.
enum Vlan {
    Untagged,
    Access(Value),
    /// A tag whose VLAN is ambiguous in NetBox: leave the mode alone.
    Unknown,
}

fn desired(nic: &Nic, vm: &Value, vlan: Vlan) -> Desired {
    let mut fields = vec![
        Field::new("virtual_machine", Kind::ForeignKey, vm.clone()).create_only(),
        Field::new("name", Kind::Scalar, nic.name.as_str()).create_only(),
        Field::new("enabled", Kind::Scalar, nic.enabled),
    ];
    match vlan {
        Vlan::Untagged => fields.extend([
            Field::new("mode", Kind::Choice, Value::Null),
            Field::new("untagged_vlan", Kind::ForeignKey, Value::Null),
        ]),
        Vlan::Access(vlan) => fields.extend([
            Field::new("mode", Kind::Choice, "access"),
            Field::new("untagged_vlan", Kind::ForeignKey, vlan),
        ]),
        Vlan::Unknown => {}
    }
    if let Some(mtu) = nic.mtu {
        fields.push(Field::new("mtu", Kind::Scalar, mtu));
    }
    Desired::fields(fields)
}

/// Finds or plans the VLAN for a `tag=`. A VM without a site can only use a
/// global VLAN, so VLANs are matched at the VM's site first, then globally,
/// and created global, once per vid.
struct VlanResolver {
    writes: bool,
    resolved: VecMap<(u16, Option<u64>), Option<Value>>,
}

impl VlanResolver {
    fn new(ctx: &mut Context, writes: bool) -> Self {
        // The disabled-mode skip, if any, is the interface lifecycle's.
        let writes = writes && !ctx.mode(ResourceType::VmInterface).is_disabled();
        VlanResolver {
            writes,
            resolved: VecMap::new(),
        }
    }

    /// The 802.1Q settings for a NIC of the VM `vm_id`.
    fn of(&mut self, ctx: &mut Context, nic: &Nic, vm_id: Option<u64>) -> Vlan {
        match nic.vlan {
            None => Vlan::Untagged,
            Some(vid) => self.resolve(ctx, vid, vm_id).map_or(Vlan::Unknown, Vlan::Access),
        }
    }

    fn resolve(&mut self, ctx: &mut Context, vid: u16, vm_id: Option<u64>) -> Option<Value> {
        let site = vm_id
            .and_then(|id| ctx.object(netbox::VIRTUAL_MACHINE, id))
            .and_then(|vm| vm.fk("site"));
        if let Some(known) = self.resolved.get(&(vid, site)) {
            return known.clone();
        }
        let found = self.find(ctx, vid, site);
        self.resolved.insert((vid, site), found.clone());
        found
    }

    fn find(&mut self, ctx: &mut Context, vid: u16, site: Option<u64>) -> Option<Value> {
        let identity = format!("vid/{vid}");
        let head_id = VLAN.head(&identity, String::new()).id();
        if ctx.plan.has(&head_id) {
            // Created (or refused) for an earlier VM already.
            return Some(crate::plan::reference(&head_id)).filter(|_| ctx.plan.creates(&head_id));
        }
        let with_vid: Vec<&Object> = ctx
            .objects(netbox::VLAN)
            .iter()
            .filter(|v| v.u64("vid") == Some(u64::from(vid)))
            .collect();
        let at_site: Vec<&Object> = with_vid
            .iter()
            .copied()
            .filter(|v| site.is_some() && v.fk("site") == site)
            .collect();
        let global: Vec<&Object> = with_vid
            .iter()
            .copied()
            .filter(|v| v.fk("site").is_none() && v.fk("group").is_none())
            .collect();
        let candidates = if at_site.is_empty() { global } else { at_site };
        let found = Found::among(candidates, MatchedBy::NaturalKey, &format!("VLANs with vid {vid}"));
        let item = Item {
            identity: identity.clone(),
            key: identity.clone(),
            proxmox_path: None,
        };
        let mut reconciler = Reconciler::new(&VLAN, self.writes, []);
        let outcome = reconciler.item(ctx, &item, found, |_, _| {
            Desired::fields(vec![
                Field::new("vid", Kind::Scalar, vid),
                Field::new("name", Kind::Scalar, format!("VLAN {vid}")),
                Field::new("status", Kind::Choice, "active"),
            ])
        });
        match outcome {
            Outcome::Existing(vlan) => Some(Value::from(vlan.id)),
            Outcome::Created => reconciler.reference_of(&identity),
            Outcome::Skipped => None,
        }
    }
}
