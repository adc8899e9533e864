//! MAC addresses as `dcim.macaddress` (identity: MAC + interface), and each
//! interface's primary MAC.

use super::context::{by_interface, Context, InterfaceSlot};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{nothing, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse;
use crate::plan::{Change, MatchedBy, OpHead, Reason, Target};
use serde_json::Value;
use std::rc::Rc;

pub const PLANNER: Planner = Planner {
    name: "mac",
    stage: Stage::IpAddresses,
    governed_by: &[ResourceType::Mac],
    reads: &[netbox::MAC_ADDRESS, netbox::VM_INTERFACE],
    links: &[],
    prerequisites: &[],
    needs: &["interface"],
    proxmox: nothing,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    lookup: &[("mac_address", "mac_address"), ("vminterface_id", "assigned_object_id")],
    ..Lifecycle::synced(
        "ip-addresses",
        ResourceType::Mac,
        netbox::MAC_ADDRESS,
        Gone::Delete { cascades: &[] },
    )
};

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let mut assigned = by_interface(ctx.objects(netbox::MAC_ADDRESS), netbox::VM_INTERFACE);
    let slots: Vec<Rc<InterfaceSlot>> = ctx.refs.interfaces.values().cloned().collect();
    for slot in slots {
        let existing = slot.existing_id.and_then(|id| assigned.take(&id)).unwrap_or_default();
        let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, existing.iter().copied());
        if !reconciler.planning() {
            continue;
        }
        let Some(mac) = slot.nic.mac.clone() else {
            // No MAC in the config: the interface's MACs are left as they are.
            continue;
        };
        let identity = format!("{}/{mac}", slot.label);
        let candidates = existing
            .iter()
            .copied()
            .filter(|m| m.str("mac_address").and_then(parse::mac).as_deref() == Some(mac.as_str()))
            .collect();
        let item = Item {
            identity: identity.clone(),
            key: identity.clone(),
            proxmox_path: None,
        };
        let found = Found::among(candidates, MatchedBy::NaturalKey, "MAC addresses on the interface");
        let outcome = reconciler.item(ctx, &item, found, |_, _| {
            Desired::fields(vec![
                Field::new("mac_address", Kind::Scalar, mac.as_str()).create_only(),
                Field::new("assigned_object_type", Kind::Scalar, netbox::VM_INTERFACE.name).create_only(),
                Field::new("assigned_object_id", Kind::Scalar, slot.reference.clone()).create_only(),
            ])
        });
        let mac_ref = match outcome {
            Outcome::Existing(object) => Some(Value::from(object.id)),
            Outcome::Created => reconciler.reference_of(&identity),
            Outcome::Skipped => None,
        };
        reconciler.retire(ctx, true, |object| {
            let text = object.str("mac_address").unwrap_or_default();
            format!("{}/{text}#{}", slot.label, object.id)
        });
        if let Some(mac_ref) = mac_ref {
            plan_primary(ctx, &slot, &existing, mac_ref);
        }
    }
    Ok(())
}

/// The interface's primary MAC follows ours unless an operator chose another
/// (a MAC that is not ours and is still there).
fn plan_primary(ctx: &mut Context, slot: &InterfaceSlot, existing: &[&Object], mac_ref: Value) {
    let current = slot.primary_mac;
    if current.is_some() && current == mac_ref.as_u64() {
        return;
    }
    let operator_choice = current.is_some_and(|id| {
        !ctx.refs.is_deleted(netbox::MAC_ADDRESS, id)
            && existing.iter().find(|m| m.id == id).is_none_or(|m| !ctx.owned(m))
    });
    if operator_choice {
        return;
    }
    let target = match slot.existing_id {
        Some(id) => match ctx.object(netbox::VM_INTERFACE, id) {
            Some(iface) if !ctx.bootstrap_protected(ResourceType::VmInterface, iface) => Target::of(iface),
            _ => return,
        },
        None => Target::created(&slot.reference),
    };
    let identity = format!("{}/primary-mac", slot.label);
    let changes = crate::vec_map::VecMap::from_iter([(
        "primary_mac_address".to_owned(),
        Change {
            before: current.into(),
            after: mac_ref,
        },
    )]);
    let head = OpHead {
        model: netbox::VM_INTERFACE,
        ..LIFECYCLE.head(&identity, identity.clone())
    };
    ctx.update(head, target, Reason::ChangedInProxmox, changes, None);
}
