//! What hangs off a synced VM in the plugin's tables (its backups, snapshots,
//! task history, replication jobs): the NetBox VM a guest's rows link to, and
//! the rows a run answers for. The VM planner matched the VMs; these rows
//! follow its matches, so they are the endpoint's by construction.

use super::context::{Context, VmSlot};
use crate::netbox::{Model, Object};
use crate::plan::Reason;
use crate::source::Guest;
use crate::vec_map::VecMap;

/// The guest with this vmid and its NetBox VM (created by this plan or
/// matched), or why rows of it cannot be linked (no such guest, a template,
/// no VM in NetBox).
pub fn linked_vm<'a>(ctx: &Context<'a>, vmid: u64) -> Result<(&'a Guest<'a>, VmSlot), (Reason, String)> {
    let inventory = ctx.inventory;
    let Some(guest) = inventory.guests.iter().find(|g| g.vmid == vmid) else {
        return Err((Reason::UnknownVm, format!("Proxmox has no guest {vmid}")));
    };
    if guest.template {
        return Err((Reason::IsTemplate, format!("guest {vmid} is a template")));
    }
    match ctx.refs.vms.get(&guest.key()) {
        Some(slot) => Ok((guest, slot.clone())),
        None => Err((Reason::UnknownVm, format!("guest {vmid} has no VM in NetBox"))),
    }
}

/// The NetBox VMs of the guests this plan is about, that exist: id → guest key.
pub fn vms_in_scope(ctx: &Context) -> VecMap<u64, String> {
    VecMap::from_iter(
        ctx.refs
            .vms
            .iter()
            .filter(|(key, _)| ctx.guest_in_scope(key))
            .filter_map(|(key, slot)| Some((slot.existing_id?, key.clone()))),
    )
}

/// The `model` rows that hang off these VMs (`virtual_machine`).
pub fn rows_of<'a>(ctx: &Context<'a>, model: Model, vms: &VecMap<u64, String>) -> Vec<&'a Object<'a>> {
    ctx.objects(model)
        .iter()
        .filter(|row| row.fk("virtual_machine").is_some_and(|vm| vms.contains_key(&vm)))
        .collect()
}
