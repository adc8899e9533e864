//! Guest disks as `virtualization.virtualdisk` (identity: VM + disk key,
//! `scsi0`, `rootfs`, `mp1`). A disk belongs to its VM: it follows the VM's
//! mode (`sync_mode_vm`), is left alone while its VM is (tagged
//! bootstrap-only), and the VM's `disk` is what NetBox sums from its disks.
//! CD-ROMs are not disks, nor are `unusedN`; a disk without `size=` (a
//! passthrough device) cannot be one, but is there: a NetBox disk of its
//! name is kept. Where the plugin is installed, each disk's sync-state
//! record names its storage (the plugin's `storage` row), as proxbox-api does.

use super::context::{by_parent, Context, VmSlot};
use super::diff::{Field, Kind};
use super::proxbox::{self, Linked};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Reconciler};
use super::{interface, storage, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse::DiskSpec;
use crate::plan::{Action, MatchedBy, Reason, Warning, WarningCode};
use crate::source::{disks, GuestDisk};
use serde_json::Value;

pub const PLANNER: Planner = Planner {
    name: "disk",
    stage: Stage::VmDisks,
    governed_by: &[ResourceType::Vm],
    reads: &[
        netbox::VIRTUAL_DISK,
        netbox::VIRTUAL_MACHINE,
        netbox::VIRTUAL_DISK_SYNC_STATE,
    ],
    links: &[netbox::STORAGE],
    prerequisites: &[],
    needs: &["vm"],
    proxmox: interface::ask_configs,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    lookup: &[("virtual_machine_id", "virtual_machine"), ("name", "name")],
    ..Lifecycle::synced(
        "vm-disks",
        ResourceType::Vm,
        netbox::VIRTUAL_DISK,
        Gone::Delete { cascades: &[] },
    )
};

/// NetBox's limit for a description.
const DESCRIPTION_CHARS: usize = 200;

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let mut by_vm = by_parent(ctx.objects(netbox::VIRTUAL_DISK), "virtual_machine");
    let slots: Vec<(String, VmSlot)> = ctx.refs.vms.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, slot) in slots {
        let existing = slot.existing_id.and_then(|id| by_vm.take(&id)).unwrap_or_default();
        plan_guest(ctx, writes, &key, &slot, &existing);
    }
    Ok(())
}

/// One guest's disks against its VM's virtual disks.
fn plan_guest<'a>(ctx: &mut Context<'a>, writes: bool, key: &str, slot: &VmSlot, existing: &[&'a Object<'a>]) {
    let inventory = ctx.inventory;
    let Some(guest) = inventory.guests.get(slot.guest_index) else {
        return;
    };
    let vm = slot.existing_id.and_then(|id| ctx.object(netbox::VIRTUAL_MACHINE, id));
    if vm.is_some_and(|vm| ctx.bootstrap_protected(ResourceType::Vm, vm)) {
        // The VM is left untouched (its own skip says so), and its disks with it.
        return;
    }
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, existing.iter().copied());
    if !reconciler.planning() {
        return;
    }
    let Some(config) = guest.config() else {
        let message = format!(
            "{key}: config unavailable ({}); its virtual disks are left as they are",
            guest.config.failure()
        );
        ctx.plan
            .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(guest.config_path.clone()));
        return;
    };
    let mut labels = Vec::new();
    for disk in disks(config) {
        let label = format!("{key}/{}", disk.key);
        labels.push(label.clone());
        let candidates: Vec<&Object> = existing
            .iter()
            .copied()
            .filter(|d| d.str("name").is_some_and(|n| n.trim() == disk.key))
            .collect();
        let item = Item {
            identity: label.clone(),
            key: label.clone(),
            proxmox_path: Some(guest.config_path.clone()),
        };
        let Some(size) = disk.size_mib() else {
            present_only(ctx, &mut reconciler, &item, &disk, candidates);
            continue;
        };
        let found = Found::among(candidates, MatchedBy::NaturalKey, "virtual disks of the VM");
        let outcome = reconciler.item(ctx, &item, found, |_, _| {
            desired(&disk.spec, &disk.key, size, &slot.reference)
        });
        if let Some(linked) = Linked::of(&outcome, reconciler.reference_of(&label)) {
            plan_sync_state(ctx, writes, &label, &disk.spec, &linked);
        }
    }
    reconciler.retire(ctx, true, |d| {
        format!("{key}/{}#{}", d.str("name").unwrap_or_default(), d.id)
    });
    serialize_with_vm(ctx, key, slot, &labels);
}

/// NetBox keeps a VM's `disk` as the sum of its disks, recomputed after each
/// disk write from what that write's transaction sees and saved over the VM
/// row, and every VM save writes the `disk` it read. Two such writes side
/// by side lose one (measured: a VM left at 8,192 of its 148,480 MB, and
/// every later edit of it refused). So the VM's disk creates and updates run
/// one after another (one bulk request, or batches in turn), after the VM's
/// own update of this plan, and before its later ones (`last_disk_write`).
fn serialize_with_vm(ctx: &mut Context, key: &str, slot: &VmSlot, labels: &[String]) {
    let writes: Vec<String> = labels
        .iter()
        .map(|label| LIFECYCLE.head(label, String::new()).id())
        .filter(|id| {
            ctx.plan
                .get(id)
                .is_some_and(|op| matches!(op.action, Action::Create | Action::Update))
        })
        .collect();
    let vm_update = slot
        .existing_id
        .and_then(|id| ctx.plan.update_of(netbox::VIRTUAL_MACHINE, id))
        .map(|op| op.id.clone());
    let mut previous = vm_update;
    for write in &writes {
        if let Some(before) = &previous {
            ctx.plan.add_dependency(write, before);
        }
        previous = Some(write.clone());
    }
    if let Some(last) = writes.last() {
        ctx.refs.last_disk_write.insert(key.to_owned(), last.clone());
    }
}

/// A disk key Proxmox has that is no NetBox disk: a CD-ROM (not a disk), or
/// a disk without a size (NetBox needs one: skipped, warned). Either way a
/// NetBox disk of its name is not gone.
fn present_only<'a>(
    ctx: &mut Context<'a>,
    reconciler: &mut Reconciler<'_, 'a>,
    item: &Item,
    disk: &GuestDisk,
    candidates: Vec<&'a Object<'a>>,
) {
    if disk.spec.cdrom {
        candidates.iter().for_each(|d| reconciler.keep(d));
        return;
    }
    let detail = format!(
        "{} ({}) has no size, which a NetBox virtual disk needs; a NetBox disk of that name is kept",
        disk.key, disk.spec.volume
    );
    let mut warning = Warning::new(WarningCode::UnsizedDisk, format!("{}: {detail}", item.key));
    if let Some(path) = &item.proxmox_path {
        warning = warning.at_path(path.clone());
    }
    ctx.plan.warn(warning);
    let found = Found::among(candidates, MatchedBy::NaturalKey, "virtual disks of the VM");
    reconciler.hold(ctx, item, found, Reason::UnsupportedByNetbox, detail);
}

/// `Storage: local-lvm | Format: raw`, as proxbox-api writes it; a device
/// (a passthrough disk with a size) is named instead.
fn description(spec: &DiskSpec) -> Option<String> {
    let place = match &spec.storage {
        Some(storage) => Some(format!("Storage: {storage}")),
        None if spec.volume.starts_with('/') => Some(format!("Device: {}", spec.volume)),
        None => None,
    };
    let format = spec.format.as_ref().map(|f| format!("Format: {f}"));
    let parts: Vec<String> = [place, format].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" | ").chars().take(DESCRIPTION_CHARS).collect())
}

fn desired(spec: &DiskSpec, name: &str, size: u64, vm: &Value) -> Desired {
    Desired::fields(vec![
        Field::new("virtual_machine", Kind::ForeignKey, vm.clone()).create_only(),
        Field::new("name", Kind::Scalar, name).create_only(),
        Field::new("size", Kind::Scalar, size),
        Field::new("description", Kind::Scalar, description(spec)),
    ])
}

/// The disk's sync-state record: the plugin's storage row of the disk's
/// storage (its name too, which the plugin shows when the row is unknown).
fn plan_sync_state(ctx: &mut Context, writes: bool, label: &str, spec: &DiskSpec, disk: &Linked) {
    let Some(storage) = spec.storage.as_deref() else {
        return;
    };
    let fields = vec![
        Field::new("proxbox_storage", Kind::ForeignKey, storage::link(ctx, storage)),
        Field::new("proxbox_storage_raw_value", Kind::Scalar, storage),
    ];
    let key = format!("{label}/sync-state");
    let after = [LIFECYCLE.head(label, String::new()).id()];
    proxbox::plan(ctx, &proxbox::VIRTUAL_DISK, writes, (&key, &after), disk, fields);
}
