//! Guest snapshots as the plugin's `snapshots` rows (identity: the VM, its
//! vmid, the snapshot name and the node), from
//! `/nodes/{n}/{qemu|lxc}/{vmid}/snapshot` without the `current` entry (the
//! live state, not a snapshot). Governed by `sync_mode_vm`. A snapshot gone
//! from Proxmox is deleted, only for a guest whose list was read.

use super::context::{grouped_by, Context};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::vm_data::{rows_of, vms_in_scope};
use super::{Ask, Planner};
use crate::error::Result;
use crate::json::loose_string;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason, WarningCode};
use crate::proxmox_path;
use crate::source::Guest;
use crate::time::iso_from_epoch;
use crate::vec_map::VecMap;
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "snapshot",
    stage: Stage::VmSnapshots,
    governed_by: &[ResourceType::Vm],
    reads: &[netbox::VM_SNAPSHOT],
    links: &[],
    prerequisites: &[],
    needs: &["vm"],
    proxmox: ask,
    run: plan,
};

/// Rows of the VMs the VM planner matched are the endpoint's (the rows
/// proxbox-api wrote carry no tag).
const LIFECYCLE: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    // The plugin filters a foreign key by one value only: the VM is compared by `matchesExisting`.
    lookup: &[("vmid", "vmid"), ("name", "name"), ("node", "node")],
    ..Lifecycle::synced(
        "vm-snapshots",
        ResourceType::Vm,
        netbox::VM_SNAPSHOT,
        Gone::Delete { cascades: &[] },
    )
};

/// Proxmox lists the live state as a pseudo-snapshot of this name.
const CURRENT: &str = "current";

fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask
        .guests(false)
        .map(|g| proxmox_path::guest_snapshots(&g.node, g.kind, g.vmid))
        .collect();
    paths.iter().for_each(|path| ask.want(path));
}

fn desired(row: &Map<String, Value>, guest: &Guest, name: &str, vm: Value) -> Desired {
    let text = |key: &str| loose_string(row.get(key)).map_or(Value::Null, Value::from);
    let taken = row
        .get("snaptime")
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .map(iso_from_epoch);
    Desired::fields(vec![
        Field::new("virtual_machine", Kind::ForeignKey, vm),
        Field::new("vmid", Kind::Scalar, guest.vmid),
        Field::new("name", Kind::Scalar, name),
        Field::new("node", Kind::Scalar, guest.node.as_str()),
        Field::new("description", Kind::Scalar, text("description")),
        Field::new("snaptime", Kind::Scalar, taken),
        Field::new("parent", Kind::Scalar, text("parent")),
        Field::new("subtype", Kind::Choice, guest.kind.as_str()),
        Field::new("status", Kind::Choice, "active"),
    ])
}

/// The snapshot rows by vmid, so `find` looks among one guest's rows.
type ByVmid<'o, 'a> = VecMap<u64, Vec<&'o Object<'a>>>;

/// The rows claiming this snapshot: ours (this VM), or refused when another
/// VM's row holds (vmid, name, node), which NetBox keeps unique.
fn find<'a>(by_vmid: &ByVmid<'a, 'a>, vm: Option<u64>, guest: &Guest, name: &str) -> Found<'a> {
    let of_vmid = by_vmid.get(&guest.vmid).into_iter().flatten().copied();
    let same_key: Vec<&Object> = of_vmid
        .filter(|s| s.str("name") == Some(name) && s.str("node") == Some(&guest.node))
        .collect();
    let (ours, others): (Vec<&Object>, Vec<&Object>) = same_key
        .into_iter()
        .partition(|s| vm.is_some() && s.fk("virtual_machine") == vm);
    match others.first() {
        Some(other) if ours.is_empty() => Found::Refused(
            Some(other),
            Reason::NotOwned,
            WarningCode::NotOwned,
            format!(
                "snapshot row {} of NetBox VM {} holds vmid {}, name {name:?} and node {}, which NetBox keeps unique",
                other.id,
                other.fk("virtual_machine").unwrap_or_default(),
                guest.vmid,
                guest.node
            ),
        ),
        _ => Found::among(ours, MatchedBy::NaturalKey, "snapshots"),
    }
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let vms = vms_in_scope(ctx);
    let scope = rows_of(ctx, netbox::VM_SNAPSHOT, &vms);
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, scope.iter().copied());
    if !reconciler.planning() {
        return Ok(());
    }
    let by_vmid = grouped_by(ctx.objects(netbox::VM_SNAPSHOT), |s| s.u64("vmid"));
    let inventory = ctx.inventory;
    for guest in inventory.guests.iter().filter(|g| !g.template) {
        let key = guest.key();
        let Some(vm) = ctx.refs.vms.get(&key).filter(|_| ctx.guest_in_scope(&key)) else {
            continue;
        };
        let (reference, existing) = (vm.reference.clone(), vm.existing_id);
        let path = proxmox_path::guest_snapshots(&guest.node, guest.kind, guest.vmid);
        let Some(rows) = ctx.required_list(&path, &format!("the snapshots of {key} are"))? else {
            scope
                .iter()
                .filter(|s| s.fk("virtual_machine") == existing)
                .for_each(|s| reconciler.keep(s));
            continue;
        };
        for (name, row) in ctx.rows_by_key(&path, rows, "name") {
            if name == CURRENT {
                continue;
            }
            let item = Item {
                identity: format!("{key}/{name}"),
                key: format!("{key} {name}"),
                proxmox_path: Some(path.clone()),
            };
            let found = find(&by_vmid, existing, guest, &name);
            let vm = reference.clone();
            reconciler.item(ctx, &item, found, |_, _| desired(row, guest, &name, vm));
        }
    }
    reconciler.retire(ctx, true, |record: &Object| {
        format!(
            "{}/{}@{}#{}",
            record.u64("vmid").unwrap_or_default(),
            record.str("name").unwrap_or_default(),
            record.str("node").unwrap_or_default(),
            record.id
        )
    });
    Ok(())
}
