//! Backup volumes as the plugin's `backups` rows (identity: the VM and the
//! volume id), read from `/nodes/{n}/storage/{s}/content?content=backup` for
//! every storage whose content includes `backup`: a shared storage once,
//! from its first online node; a node-local one from each online node that
//! serves it. Governed by `sync_mode_vm`: the rows describe VMs. A backup
//! gone from Proxmox is deleted, only when every read of its storage
//! succeeded, and only the rows of the VMs this run answers for.

use super::context::{by_parent, Context};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::vm_data::{linked_vm, rows_of, vms_in_scope};
use super::{storage, Ask, Planner};
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse;
use crate::plan::{MatchedBy, Warning, WarningCode};
use crate::proxmox_path;
use crate::source::{Fetched, GuestKind, Inventory, ProxmoxSnapshot};
use crate::time::iso_from_epoch;
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "backup",
    stage: Stage::VmBackups,
    governed_by: &[ResourceType::Vm],
    reads: &[netbox::VM_BACKUP],
    links: &[],
    prerequisites: &[],
    needs: &["vm", "storage"],
    proxmox: ask,
    run: plan,
};

/// Backup rows are Proxmox's record of a VM's archives: the VM link is
/// the claim (rows proxbox-api wrote carry our tag or none).
const LIFECYCLE: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    // The plugin filters a foreign key by one value only: the VM is compared by `matchesExisting`.
    lookup: &[("volume_id", "volume_id")],
    ..Lifecycle::synced(
        "vm-backups",
        ResourceType::Vm,
        netbox::VM_BACKUP,
        Gone::Delete { cascades: &[] },
    )
};

/// Proxmox's archive format → the plugin's choice (`ProxmoxBackupFormatChoices`).
const FORMATS: [(&str, &str); 14] = [
    ("vma.zst", "zst"),
    ("zst", "zst"),
    ("tar.zst", "tzst"),
    ("tzst", "tzst"),
    ("tar.gz", "tgz"),
    ("tgz", "tgz"),
    ("tar.bz2", "tbz"),
    ("tbz", "tbz"),
    ("tar", "tar"),
    ("pbs-vm", "pbs-vm"),
    ("pbs-ct", "pbs-ct"),
    ("qcow2", "qcow2"),
    ("raw", "raw"),
    ("iso", "iso"),
];

/// A storage whose content includes backups, and how it is read.
struct BackupStorage {
    name: String,
    /// The nodes its content is read from.
    read_from: Vec<String>,
    /// Some node that serves it is not read (offline), or it is disabled:
    /// its backups cannot all be seen, so none of them is retired.
    partly_seen: bool,
}

fn serves_backups(row: &Map<String, Value>) -> bool {
    parse::list(row.get("content")).iter().any(|c| c == "backup")
}

/// Which nodes read which backup storage, from `/storage` and where
/// `/cluster/resources` shows each storage.
fn backup_storages(snapshot: &ProxmoxSnapshot, rows: &[Value], inventory: &Inventory) -> Vec<BackupStorage> {
    let seen = storage::per_node(snapshot);
    let known: VecSet<&str> = VecSet::from_iter(inventory.nodes.iter().map(|n| n.name.as_str()));
    let online: VecSet<&str> = VecSet::from_iter(inventory.nodes.iter().filter(|n| n.online).map(|n| n.name.as_str()));
    let mut storages: Vec<BackupStorage> = rows
        .iter()
        .filter_map(Value::as_object)
        .filter(|row| serves_backups(row))
        .filter_map(|row| {
            let name = loose_string(row.get("storage"))?;
            let where_seen = seen.get(&name);
            let listed = parse::list(row.get("nodes"));
            let serving: VecSet<&str> = match (listed.is_empty(), where_seen) {
                (false, _) => VecSet::from_iter(listed.iter().map(String::as_str).filter(|n| known.contains(n))),
                (true, Some((nodes, _))) if !nodes.is_empty() => VecSet::from_iter(nodes.iter().map(String::as_str)),
                _ => known.clone(),
            };
            let up: Vec<String> = serving
                .iter()
                .filter(|n| online.contains(*n))
                .map(|n| (*n).to_owned())
                .collect();
            let shared = loose_flag(row.get("shared")) || where_seen.is_some_and(|(_, shared)| *shared);
            let disabled = loose_flag(row.get("disable"));
            let read_from = match (disabled, shared) {
                (true, _) => Vec::new(),
                (false, true) => up.into_iter().take(1).collect(),
                (false, false) => up,
            };
            let partly_seen = disabled || read_from.is_empty() || (!shared && read_from.len() < serving.len());
            Some(BackupStorage {
                name,
                read_from,
                partly_seen,
            })
        })
        .collect();
    crate::sort::sort_by(&mut storages, |a, b| a.name.cmp(&b.name));
    storages.dedup_by(|a, b| a.name == b.name);
    storages
}

fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    ask.want(proxmox_path::STORAGE);
    let Some(inventory) = ask.inventory else {
        return;
    };
    let Some(rows) = ask.snapshot.get(proxmox_path::STORAGE).data().and_then(Value::as_array) else {
        return;
    };
    let paths: Vec<String> = backup_storages(ask.snapshot, rows, inventory)
        .iter()
        .flat_map(|s| {
            s.read_from
                .iter()
                .map(|node| proxmox_path::backup_content(node, &s.name))
        })
        .collect();
    paths.iter().for_each(|path| ask.want(path));
}

/// The storage of a volume id (`nas-nfs:backup/...`).
fn storage_of(volid: &str) -> &str {
    volid.split_once(':').map_or(volid, |(storage, _)| storage)
}

/// The guest a volume belongs to: `vmid`, else the id in its name
/// (`vzdump-qemu-101-...`, PBS `backup/vm/101/...`).
fn vmid_of(row: &Map<String, Value>, volid: &str) -> Option<u64> {
    if let Some(vmid) = row.get("vmid").and_then(loose_u64) {
        return Some(vmid);
    }
    let name = volid.split_once(':').map_or(volid, |(_, name)| name);
    let from_vzdump = name.split('/').next_back().and_then(|file| {
        let rest = ["vzdump-qemu-", "vzdump-lxc-", "vzdump-openvz-"]
            .iter()
            .find_map(|prefix| file.strip_prefix(prefix))?;
        rest.split('-').next()?.parse().ok()
    });
    let from_pbs = || {
        let mut parts = name.split('/');
        (parts.next() == Some("backup") && matches!(parts.next(), Some("vm" | "ct")))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    };
    from_vzdump.or_else(from_pbs)
}

fn format_choice(row: &Map<String, Value>) -> &'static str {
    let format = row.get("format").and_then(Value::as_str).unwrap_or_default();
    FORMATS
        .iter()
        .find(|(proxmox, _)| proxmox.eq_ignore_ascii_case(format))
        .map_or("undefined", |(_, choice)| choice)
}

fn desired(ctx: &Context, row: &Map<String, Value>, volid: &str, kind: GuestKind, vmid: u64, vm: Value) -> Desired {
    let text = |key: &str| loose_string(row.get(key)).map_or(Value::Null, Value::from);
    let verification = row.get("verification").and_then(Value::as_object);
    let verified = |key: &str| loose_string(verification.and_then(|v| v.get(key))).map_or(Value::Null, Value::from);
    let created = row
        .get("ctime")
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .map(iso_from_epoch);
    let storage_name = storage_of(volid);
    Desired::fields(vec![
        Field::new("virtual_machine", Kind::ForeignKey, vm),
        Field::new("volume_id", Kind::Scalar, volid),
        Field::new("vmid", Kind::Scalar, vmid),
        Field::new("storage", Kind::Scalar, storage_name),
        Field::new("proxmox_storage", Kind::ForeignKey, storage::link(ctx, storage_name)),
        Field::new("subtype", Kind::Choice, kind.as_str()),
        Field::new("format", Kind::Choice, format_choice(row)),
        Field::new("creation_time", Kind::Scalar, created),
        Field::new("size", Kind::Scalar, row.get("size").and_then(loose_u64)),
        Field::new("used", Kind::Scalar, row.get("used").and_then(loose_u64)),
        Field::new("notes", Kind::Scalar, text("notes")),
        // The plugin keeps "" for "not encrypted", never null.
        Field::new(
            "encrypted",
            Kind::Scalar,
            loose_string(row.get("encrypted")).unwrap_or_default(),
        ),
        Field::new("verification_state", Kind::Scalar, verified("state")),
        Field::new("verification_upid", Kind::Scalar, verified("upid")),
    ])
}

/// What the content reads gave.
struct Volumes<'a> {
    /// By volume id: a volume seen from several nodes is one.
    found: VecMap<String, &'a Map<String, Value>>,
    /// The storages whose reads all succeeded.
    complete: VecSet<String>,
}

fn volumes<'a>(ctx: &mut Context<'a>, storages: &[BackupStorage]) -> Result<Volumes<'a>> {
    let mut listed: Vec<(String, &Map<String, Value>)> = Vec::new();
    let mut complete = VecSet::new();
    for backup_storage in storages {
        let mut all_read = !backup_storage.partly_seen;
        for node in &backup_storage.read_from {
            let path = proxmox_path::backup_content(node, &backup_storage.name);
            let Some(rows) = content_rows(ctx, &path)? else {
                all_read = false;
                continue;
            };
            for row in rows.iter().filter_map(Value::as_object) {
                let is_backup = row.get("content").and_then(Value::as_str).is_none_or(|c| c == "backup");
                if let (true, Some(volid)) = (is_backup, loose_string(row.get("volid"))) {
                    listed.push((volid, row));
                }
            }
        }
        if all_read {
            complete.insert(backup_storage.name.clone());
        }
    }
    // The first row of a volume counts (a shared storage lists it on every
    // node): collected in reverse, where the last one wins.
    let found = listed.into_iter().rev().collect();
    Ok(Volumes { found, complete })
}

/// One content answer, or a warning that its storage's backups stay as they are.
fn content_rows<'a>(ctx: &mut Context<'a>, path: &str) -> Result<Option<&'a Vec<Value>>> {
    match ctx.snapshot.required(path)? {
        Fetched::Data(Value::Array(rows)) => Ok(Some(rows)),
        other => {
            let why = other
                .data()
                .map_or_else(|| other.failure(), |_| "not a list".to_owned());
            let message = format!("{path} could not be read ({why}); the backups on that storage are left as they are");
            ctx.plan
                .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(path));
            Ok(None)
        }
    }
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let vms = vms_in_scope(ctx);
    let scope = rows_of(ctx, netbox::VM_BACKUP, &vms);
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, scope.iter().copied());
    if !reconciler.planning() {
        return Ok(());
    }
    let Some(rows) = ctx.required_list(proxmox_path::STORAGE, "backups are")? else {
        return Ok(());
    };
    let storages = backup_storages(ctx.snapshot, rows, ctx.inventory);
    let Volumes { found, complete } = volumes(ctx, &storages)?;
    let held = by_parent(ctx.objects(netbox::VM_BACKUP), "virtual_machine");
    for (volid, row) in &found {
        let Some(vmid) = vmid_of(row, volid) else {
            continue;
        };
        let item = Item {
            identity: volid.clone(),
            key: format!("{vmid} {volid}"),
            proxmox_path: None,
        };
        match linked_vm(ctx, vmid) {
            Ok((guest, vm)) if ctx.guest_in_scope(&guest.key()) => {
                let of_vm = vm.existing_id.and_then(|id| held.get(&id)).into_iter().flatten();
                let candidates = of_vm
                    .copied()
                    .filter(|b| b.str("volume_id") == Some(volid.as_str()))
                    .collect();
                let found = Found::among(candidates, MatchedBy::NaturalKey, "backups");
                let kind = guest.kind;
                let vm = vm.reference;
                reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, row, volid, kind, vmid, vm));
            }
            Ok(_) => {}
            // A run for some VMs says nothing about the others' backups.
            Err(_) if ctx.in_scope.is_some() => {}
            Err((reason, detail)) => reconciler.hold(ctx, &item, Found::None, reason, detail),
        }
    }
    for record in &scope {
        let volid = record.str("volume_id").unwrap_or_default();
        let storage_name = record.str("storage").unwrap_or_else(|| storage_of(volid));
        if !complete.contains(storage_name) && storages.iter().any(|s| s.name == storage_name) {
            reconciler.keep(record);
        }
    }
    reconciler.retire(ctx, true, |record: &Object| {
        format!("{}#{}", record.str("volume_id").unwrap_or_default(), record.id)
    });
    Ok(())
}
