//! MAC addresses as `dcim.macaddress` (identity: MAC + interface), and each
//! interface's primary MAC.

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, InterfaceSlot, TAG_PROXBOX};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse;
use crate::plan::{reference, Change, OpHead, Reason, Target};
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

const STAGE: Stage = Stage::IpAddresses;

fn head(model: netbox::Model, identity: &str) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(ResourceType::Mac),
        model,
        identity,
        key: identity.to_owned(),
    }
}

/// Objects assigned to a VM interface, by interface id.
pub fn by_interface<'o, 'a>(objects: &'o [Object<'a>]) -> BTreeMap<u64, Vec<&'o Object<'a>>> {
    let mut map: BTreeMap<u64, Vec<&Object>> = BTreeMap::new();
    for object in objects {
        if object.str("assigned_object_type") == Some("virtualization.vminterface") {
            if let Some(id) = object.u64("assigned_object_id") {
                map.entry(id).or_default().push(object);
            }
        }
    }
    map
}

pub fn plan(ctx: &mut Context) {
    if ctx.mode(ResourceType::Mac).is_disabled() {
        ctx.skip_disabled(STAGE, ResourceType::Mac, netbox::MAC_ADDRESS);
        return;
    }
    let loaded = ctx.loaded;
    let mut assigned = by_interface(loaded.get(netbox::MAC_ADDRESS));
    let slots: Vec<Rc<InterfaceSlot>> = ctx.refs.interfaces.values().cloned().collect();
    for slot in slots {
        let existing = slot.existing_id.and_then(|id| assigned.remove(&id)).unwrap_or_default();
        let Some(mac) = slot.nic.mac.clone() else {
            continue;
        };
        let identity = format!("{}/{mac}", slot.label);
        let current = existing
            .iter()
            .copied()
            .find(|m| m.str("mac_address").and_then(parse::mac).as_deref() == Some(mac.as_str()));
        let mac_ref = match current {
            Some(object) => {
                if !ctx.protected(head(netbox::MAC_ADDRESS, &identity), ResourceType::Mac, object) {
                    let tags = merged_tags(object, &ctx.creation_tags(ResourceType::Mac));
                    let fields = [Field::new("tags", Kind::Tags, tag_list(&tags))];
                    ctx.update(head(netbox::MAC_ADDRESS, &identity), object, changes(object, &fields));
                }
                Value::from(object.id)
            }
            None => {
                let fields = [
                    Field::new("mac_address", Kind::Scalar, mac.as_str()),
                    Field::new("assigned_object_type", Kind::Scalar, "virtualization.vminterface"),
                    Field::new("assigned_object_id", Kind::Scalar, slot.reference.clone()),
                    Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(ResourceType::Mac))),
                ];
                let id = ctx.create(
                    head(netbox::MAC_ADDRESS, &identity),
                    Reason::NewInProxmox,
                    create_payload(&fields),
                );
                reference(&id)
            }
        };
        let stale: Vec<&Object> = existing
            .iter()
            .copied()
            .filter(|m| current.is_none_or(|c| c.id != m.id) && m.has_tag(TAG_PROXBOX))
            .collect();
        for object in &stale {
            let label = format!(
                "{}/{}#{}",
                slot.label,
                object.str("mac_address").unwrap_or_default(),
                object.id
            );
            if !ctx.protected(head(netbox::MAC_ADDRESS, &label), ResourceType::Mac, object) {
                ctx.plan
                    .delete(head(netbox::MAC_ADDRESS, &label), object, Reason::GoneFromProxmox);
                ctx.refs.mark_deleted(netbox::MAC_ADDRESS, object.id);
            }
        }
        plan_primary(ctx, &slot, &existing, mac_ref);
    }
}

/// The interface's primary MAC follows ours unless an operator chose another
/// (a MAC that is not tagged `proxbox` and is still there).
fn plan_primary(ctx: &mut Context, slot: &InterfaceSlot, existing: &[&Object], mac_ref: Value) {
    let current = slot.primary_mac;
    if current.is_some() && current == mac_ref.as_u64() {
        return;
    }
    let operator_choice = current.is_some_and(|id| {
        !ctx.refs.is_deleted(netbox::MAC_ADDRESS, id)
            && existing
                .iter()
                .find(|m| m.id == id)
                .is_none_or(|m| !m.has_tag(TAG_PROXBOX))
    });
    if operator_choice {
        return;
    }
    let target = match slot.existing_id {
        Some(id) => match ctx.loaded.by_id(netbox::VM_INTERFACE, id) {
            Some(iface) if !super::bootstrap_protected(ctx, ResourceType::VmInterface, iface) => Target::of(iface),
            _ => return,
        },
        None => Target::created(&slot.reference),
    };
    let identity = format!("{}/primary-mac", slot.label);
    let mut changes = BTreeMap::new();
    changes.insert(
        "primary_mac_address".to_owned(),
        Change {
            before: current.into(),
            after: mac_ref,
        },
    );
    let head = OpHead {
        model: netbox::VM_INTERFACE,
        ..head(netbox::VM_INTERFACE, &identity)
    };
    ctx.update_because(head, target, Reason::ChangedInProxmox, changes);
}
