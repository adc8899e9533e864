//! Guest NICs as `virtualization.vminterface` (identity: VM + name), and the
//! access VLANs their `tag=` points at (identity: vid + site).

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, InterfaceSlot, TAG_PROXBOX};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{reference, OpHead, Reason, Warning, WarningCode};
use crate::source::{nics, Fetched, Guest, Nic};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

const STAGE: Stage = Stage::VmInterfaces;

fn head(model: netbox::Model, identity: &str) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(ResourceType::VmInterface),
        model,
        identity,
        key: identity.to_owned(),
    }
}

pub fn plan(ctx: &mut Context) {
    let planning = !ctx.mode(ResourceType::VmInterface).is_disabled();
    if !planning {
        ctx.skip_disabled(STAGE, ResourceType::VmInterface, netbox::VM_INTERFACE);
    }
    let loaded = ctx.loaded;
    let mut by_vm: BTreeMap<u64, Vec<&Object>> = BTreeMap::new();
    for iface in loaded.get(netbox::VM_INTERFACE) {
        if let Some(vm) = iface.fk("virtual_machine") {
            by_vm.entry(vm).or_default().push(iface);
        }
    }
    let mut vlans = VlanResolver::default();
    let slots: Vec<(String, super::VmSlot)> = ctx.refs.vms.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let inventory = ctx.inventory;
    for (key, slot) in slots {
        let Some(guest) = inventory.guests.get(slot.guest_index) else {
            continue;
        };
        let existing: Vec<&Object> = slot.existing_id.and_then(|id| by_vm.remove(&id)).unwrap_or_default();
        let Some(config) = guest.config() else {
            let why = guest.config.failure();
            let message = format!("{key}: config unavailable ({why}); its interfaces are left as they are");
            ctx.plan
                .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(guest.config_path.clone()));
            continue;
        };
        let guest_nics = nics(guest.kind, config);
        for nic in &guest_nics {
            let label = format!("{key}/{}", nic.name);
            let current = existing
                .iter()
                .copied()
                .find(|i| i.str("name") == Some(nic.name.as_str()));
            let vlan = match nic.vlan {
                None => Vlan::Untagged,
                Some(vid) => vlans
                    .resolve(ctx, planning, vid, slot.existing_id)
                    .map_or(Vlan::Unknown, Vlan::Access),
            };
            let interface = InterfaceSlot {
                reference: current.map(|i| Value::from(i.id)).unwrap_or(Value::Null),
                existing_id: current.map(|i| i.id),
                label: label.clone(),
                guest_index: slot.guest_index,
                nic: nic.clone(),
                primary_mac: current.and_then(|i| i.fk("primary_mac_address")),
            };
            let interface = match current {
                Some(iface) => {
                    if planning && !ctx.protected(head(netbox::VM_INTERFACE, &label), ResourceType::VmInterface, iface)
                    {
                        let fields = desired(ctx, nic, &slot.reference, vlan, Some(iface));
                        ctx.update(head(netbox::VM_INTERFACE, &label), iface, changes(iface, &fields));
                    }
                    interface
                }
                None if planning => {
                    let fields = desired(ctx, nic, &slot.reference, vlan, None);
                    let id = ctx.create(
                        head(netbox::VM_INTERFACE, &label),
                        Reason::NewInProxmox,
                        create_payload(&fields),
                    );
                    InterfaceSlot {
                        reference: reference(&id),
                        ..interface
                    }
                }
                None => continue,
            };
            ctx.refs
                .interfaces
                .insert((key.clone(), nic.name.clone()), Rc::new(interface));
        }
        if planning {
            plan_gone(ctx, &key, guest, &guest_nics, &existing);
        }
    }
}

/// What the interface's 802.1Q settings should be.
enum Vlan {
    Untagged,
    Access(Value),
    /// A tag whose VLAN is ambiguous in NetBox: leave the mode alone.
    Unknown,
}

fn desired(ctx: &Context, nic: &Nic, vm: &Value, vlan: Vlan, existing: Option<&Object>) -> Vec<Field> {
    let ours = ctx.creation_tags(ResourceType::VmInterface);
    let tags = match existing {
        Some(iface) => merged_tags(iface, &ours),
        None => ours,
    };
    let keep_tags = !ctx.settings.overwrite.get("overwrite_vm_interface_tags");
    let mut fields = vec![
        Field::new("virtual_machine", Kind::ForeignKey, vm.clone()).create_only(true),
        Field::new("name", Kind::Scalar, nic.name.as_str()).create_only(true),
        Field::new("enabled", Kind::Scalar, nic.enabled),
        Field::new("tags", Kind::Tags, tag_list(&tags)).create_only(keep_tags),
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
    fields
}

/// Interfaces on a synced VM that its config no longer has: deleted when
/// tagged `proxbox`, unless manual IPs or MACs would go with them.
fn plan_gone(ctx: &mut Context, key: &str, guest: &Guest, guest_nics: &[Nic], existing: &[&Object]) {
    if !matches!(guest.config, Fetched::Data(_)) {
        return;
    }
    let loaded = ctx.loaded;
    for iface in existing {
        let name = iface.str("name").unwrap_or_default();
        if guest_nics.iter().any(|n| n.name == name) || !iface.has_tag(TAG_PROXBOX) {
            continue;
        }
        let label = format!("{key}/{name}#{}", iface.id);
        if ctx.protected(head(netbox::VM_INTERFACE, &label), ResourceType::VmInterface, iface) {
            continue;
        }
        let assigned_here = |o: &&Object| {
            o.str("assigned_object_type") == Some("virtualization.vminterface")
                && o.u64("assigned_object_id") == Some(iface.id)
        };
        let ips: Vec<&Object> = loaded.get(netbox::IP_ADDRESS).iter().filter(assigned_here).collect();
        let macs: Vec<&Object> = loaded.get(netbox::MAC_ADDRESS).iter().filter(assigned_here).collect();
        let manual = ips.iter().chain(&macs).any(|o| !o.has_tag(TAG_PROXBOX));
        if manual {
            let detail = "gone from the config, but manually created IPs or MACs are assigned to it";
            ctx.plan.skip(
                head(netbox::VM_INTERFACE, &label),
                Some(iface),
                Reason::HasManualObjects,
                detail,
            );
        } else {
            ctx.plan
                .delete(head(netbox::VM_INTERFACE, &label), iface, Reason::GoneFromProxmox);
            // NetBox deletes the interface's IPs and MACs with it.
            ctx.refs.mark_deleted(netbox::VM_INTERFACE, iface.id);
            ips.iter()
                .for_each(|ip| ctx.refs.mark_deleted(netbox::IP_ADDRESS, ip.id));
            macs.iter()
                .for_each(|mac| ctx.refs.mark_deleted(netbox::MAC_ADDRESS, mac.id));
        }
    }
}

/// Finds or plans the VLAN for a `tag=`. A VM without a site can only use a
/// global VLAN, so VLANs are matched at the VM's site first, then globally,
/// and created global. Ambiguity is reported, never guessed.
#[derive(Default)]
struct VlanResolver {
    resolved: BTreeMap<(u16, Option<u64>), Option<Value>>,
}

impl VlanResolver {
    fn resolve(&mut self, ctx: &mut Context, planning: bool, vid: u16, vm_id: Option<u64>) -> Option<Value> {
        let site = vm_id
            .and_then(|id| ctx.loaded.by_id(netbox::VIRTUAL_MACHINE, id))
            .and_then(|vm| vm.fk("site"));
        if let Some(known) = self.resolved.get(&(vid, site)) {
            return known.clone();
        }
        let found = find_vlan(ctx, planning, vid, site);
        self.resolved.insert((vid, site), found.clone());
        found
    }
}

fn find_vlan(ctx: &mut Context, planning: bool, vid: u16, site: Option<u64>) -> Option<Value> {
    let loaded = ctx.loaded;
    let with_vid: Vec<&Object> = loaded
        .get(netbox::VLAN)
        .iter()
        .filter(|v| v.u64("vid") == Some(u64::from(vid)))
        .collect();
    let at_site: Vec<&&Object> = with_vid
        .iter()
        .filter(|v| site.is_some() && v.fk("site") == site)
        .collect();
    let global: Vec<&&Object> = with_vid
        .iter()
        .filter(|v| v.fk("site").is_none() && v.fk("group").is_none())
        .collect();
    let candidates = if at_site.is_empty() { global } else { at_site };
    let identity = format!("vid/{vid}");
    match candidates.as_slice() {
        [vlan] => Some(Value::from(vlan.id)),
        [] if planning => {
            let tags = tag_list(&ctx.creation_tags(ResourceType::VmInterface));
            let fields = json!({ "vid": vid, "name": format!("VLAN {vid}"), "status": "active", "tags": tags });
            let fields = fields.as_object().cloned().unwrap_or_default();
            // One VLAN per vid, whichever VM asked first.
            if let Some(op) = ctx
                .plan
                .operations()
                .iter()
                .find(|op| op.id == head(netbox::VLAN, &identity).id())
            {
                return Some(reference(&op.id));
            }
            let id = ctx.create(head(netbox::VLAN, &identity), Reason::NewInProxmox, fields);
            Some(reference(&id))
        }
        [] => None,
        several => {
            let ids: Vec<String> = several.iter().map(|v| v.id.to_string()).collect();
            let message = format!(
                "VLAN {vid}: {} NetBox VLANs could match (ids {}); interfaces keep no VLAN",
                several.len(),
                ids.join(", ")
            );
            if !ctx
                .plan
                .operations()
                .iter()
                .any(|op| op.id == head(netbox::VLAN, &identity).id())
            {
                ctx.plan.skip(
                    head(netbox::VLAN, &identity),
                    None,
                    Reason::AmbiguousIdentity,
                    message.clone(),
                );
                ctx.plan.warn(Warning::new(WarningCode::AmbiguousIdentity, message));
            }
            None
        }
    }
}
