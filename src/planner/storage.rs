//! Proxmox storage pools as the plugin's `storage` records (identity: the
//! cluster and the storage name), from `/storage` plus the per-node rows of
//! `/cluster/resources`.

use super::context::Context;
use super::diff::{Field, Kind};
use super::proxbox::Linked;
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason};
use crate::proxmox_path;
use crate::source::ProxmoxSnapshot;
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "storage",
    stage: Stage::Storage,
    governed_by: &[ResourceType::Storage],
    reads: &[netbox::STORAGE],
    links: &[],
    prerequisites: &[],
    needs: &["cluster"],
    proxmox: ask,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_storage_tags"),
    lookup: &[("name", "name"), ("cluster_id", "cluster")],
    ..Lifecycle::synced(
        "storage",
        ResourceType::Storage,
        netbox::STORAGE,
        Gone::Delete { cascades: &[] },
    )
};

fn ask(ask: &mut Ask) {
    if ask.writes {
        ask.want(proxmox_path::STORAGE);
    }
}

/// Plugin field ← Proxmox key, for the type-specific connection settings.
const TEXT_FIELDS: [(&str, &str); 14] = [
    ("content", "content"),
    ("path", "path"),
    ("server", "server"),
    ("username", "username"),
    ("export", "export"),
    ("share", "share"),
    ("pool", "pool"),
    ("monhost", "monhost"),
    ("namespace", "namespace"),
    ("datastore", "datastore"),
    ("subdir", "subdir"),
    ("mountpoint", "mountpoint"),
    ("preallocation", "preallocation"),
    ("prune_backups", "prune-backups"),
];

/// Where each storage is seen in `/cluster/resources`: node names, and whether shared.
pub fn per_node(snapshot: &ProxmoxSnapshot) -> VecMap<String, (VecSet<String>, bool)> {
    let mut seen: VecMap<String, (VecSet<String>, bool)> = VecMap::new();
    let rows = snapshot
        .get(proxmox_path::CLUSTER_RESOURCES)
        .data()
        .and_then(Value::as_array);
    for row in rows
        .into_iter()
        .flatten()
        .filter(|r| r.get("type").and_then(Value::as_str) == Some("storage"))
    {
        let (Some(name), Some(node)) = (
            row.get("storage").and_then(Value::as_str),
            row.get("node").and_then(Value::as_str),
        ) else {
            continue;
        };
        let entry = seen.entry(name.to_owned()).or_default();
        entry.0.insert(node.to_owned());
        entry.1 |= loose_flag(row.get("shared"));
    }
    seen
}

fn desired(ctx: &Context, row: &Map<String, Value>, name: &str, seen: Option<&(VecSet<String>, bool)>) -> Desired {
    let text = |key: &str| loose_string(row.get(key)).map_or(Value::Null, Value::from);
    let nodes = loose_string(row.get("nodes"))
        .or_else(|| seen.map(|(nodes, _)| nodes.iter().cloned().collect::<Vec<_>>().join(",")))
        .filter(|n| !n.is_empty());
    let shared = loose_flag(row.get("shared")) || seen.is_some_and(|(_, shared)| *shared);
    let mut fields = vec![
        Field::new(
            "cluster",
            Kind::ForeignKey,
            ctx.refs.cluster.clone().unwrap_or(Value::Null),
        ),
        Field::new("name", Kind::Scalar, name),
        Field::new("storage_type", Kind::Scalar, text("type")),
        Field::new("nodes", Kind::Scalar, nodes),
        Field::new("shared", Kind::Scalar, shared),
        Field::new("enabled", Kind::Scalar, !loose_flag(row.get("disable"))),
        Field::new("port", Kind::Scalar, row.get("port").and_then(loose_u64)),
        Field::new("is_mountpoint", Kind::Scalar, text("is_mountpoint")),
        Field::new("format", Kind::Scalar, text("format")),
        Field::new(
            "max_protected_backups",
            Kind::Scalar,
            row.get("max-protected-backups").and_then(Value::as_i64),
        ),
        Field::new("raw_config", Kind::Scalar, Value::Object(row.clone())),
    ];
    fields.extend(
        TEXT_FIELDS
            .iter()
            .map(|(field, key)| Field::new(field, Kind::Scalar, text(key))),
    );
    Desired::fields(fields)
}

/// The storage records of our cluster.
fn ours<'a>(ctx: &Context<'a>) -> Vec<&'a Object<'a>> {
    let cluster_id = ctx.refs.cluster_id;
    ctx.objects(netbox::STORAGE)
        .iter()
        .filter(|r| cluster_id.is_some() && r.fk("cluster") == cluster_id)
        .collect()
}

fn named<'a>(ours: &[&'a Object<'a>], name: &str) -> Vec<&'a Object<'a>> {
    ours.iter().copied().filter(|r| r.str("name") == Some(name)).collect()
}

/// The storage record of a storage name, for objects that link to it (a
/// virtual disk's sync-state): the one this plan matched or creates, else
/// the one NetBox has (the storage stage did not run), if exactly one and
/// not deleted by this plan.
pub fn link(ctx: &Context, name: &str) -> Option<Value> {
    if let Some(reference) = ctx.refs.storages.get(name) {
        return Some(reference.clone());
    }
    match named(&ours(ctx), name).as_slice() {
        [record] if !ctx.refs.is_deleted(netbox::STORAGE, record.id) => Some(Value::from(record.id)),
        _ => None,
    }
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let ours = ours(ctx);
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, ours.iter().copied());
    if ctx.refs.cluster.is_none() {
        reconciler.skip_all(ctx, Reason::MissingParent, "the cluster is not in NetBox");
        return Ok(());
    }
    if !reconciler.planning() {
        return Ok(());
    }
    let Some(rows) = ctx.required_list(proxmox_path::STORAGE, "storage records are")? else {
        return Ok(());
    };
    let seen = per_node(ctx.snapshot);
    for (name, row) in ctx.rows_by_key(proxmox_path::STORAGE, rows, "storage") {
        let found = Found::among(named(&ours, &name), MatchedBy::NaturalKey, "storage records");
        let item = Item {
            identity: name.clone(),
            key: name.clone(),
            proxmox_path: Some(proxmox_path::STORAGE.to_owned()),
        };
        let outcome = reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, row, &name, seen.get(&name)));
        if let Some(record) = Linked::of(&outcome, reconciler.reference_of(&name)) {
            ctx.refs.storages.insert(name.clone(), record.reference);
        }
    }
    reconciler.retire(ctx, true, |record| {
        format!("{}#{}", record.str("name").unwrap_or_default(), record.id)
    });
    Ok(())
}
