//! Proxmox storage pools as the plugin's `storage` records (identity: the
//! cluster and the storage name), from `/storage` plus the per-node rows of
//! `/cluster/resources`.

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, TAG_PROXBOX};
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64, Path};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{OpHead, Reason, Warning, WarningCode};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const STAGE: Stage = Stage::Storage;

fn head(identity: &str) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(ResourceType::Storage),
        model: netbox::STORAGE,
        identity,
        key: identity.to_owned(),
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
fn per_node(ctx: &Context) -> BTreeMap<String, (BTreeSet<String>, bool)> {
    let mut seen: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    let rows = ctx.snapshot.get("/cluster/resources").data().and_then(Value::as_array);
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

fn desired(
    ctx: &Context,
    row: &Map<String, Value>,
    name: &str,
    seen: Option<&(BTreeSet<String>, bool)>,
    existing: Option<&Object>,
) -> Vec<Field> {
    let text = |key: &str| loose_string(row.get(key)).map_or(Value::Null, Value::from);
    let nodes = loose_string(row.get("nodes"))
        .or_else(|| seen.map(|(nodes, _)| nodes.iter().cloned().collect::<Vec<_>>().join(",")))
        .filter(|n| !n.is_empty());
    let ours = ctx.creation_tags(ResourceType::Storage);
    let tags = match existing {
        Some(record) => merged_tags(record, &ours),
        None => ours,
    };
    let mut fields = vec![
        Field::new(
            "cluster",
            Kind::ForeignKey,
            ctx.refs.cluster.clone().unwrap_or(Value::Null),
        ),
        Field::new("name", Kind::Scalar, name),
        Field::new("storage_type", Kind::Scalar, text("type")),
        Field::new("nodes", Kind::Scalar, nodes),
        Field::new(
            "shared",
            Kind::Scalar,
            loose_flag(row.get("shared")) || seen.is_some_and(|(_, shared)| *shared),
        ),
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
        Field::new("tags", Kind::Tags, tag_list(&tags))
            .create_only(!ctx.settings.overwrite.get("overwrite_storage_tags")),
    ];
    fields.extend(
        TEXT_FIELDS
            .iter()
            .map(|(field, key)| Field::new(field, Kind::Scalar, text(key))),
    );
    fields
}

pub fn plan(ctx: &mut Context) -> Result<()> {
    if ctx.mode(ResourceType::Storage).is_disabled() {
        ctx.skip_disabled(STAGE, ResourceType::Storage, netbox::STORAGE);
        return Ok(());
    }
    let Some(rows) = super::required_list(ctx, "/storage", "storage records are")? else {
        return Ok(());
    };
    let Some(cluster) = ctx.refs.cluster.clone() else {
        ctx.plan.skip(
            head("*"),
            None,
            Reason::IncompleteSnapshot,
            "the cluster is not in NetBox",
        );
        return Ok(());
    };
    let loaded = ctx.loaded;
    let ours: Vec<&Object> = match cluster.as_u64() {
        Some(id) => loaded
            .get(netbox::STORAGE)
            .iter()
            .filter(|r| r.fk("cluster") == Some(id))
            .collect(),
        None => Vec::new(),
    };
    let seen = per_node(ctx);
    let mut names = BTreeSet::new();
    let proxmox = Path::ROOT.key("proxmox");
    let path = proxmox.key("/storage");
    // Sorted by name, so duplicates resolve the same way whatever the order.
    let mut rows: Vec<(usize, &Value)> = rows.iter().enumerate().collect();
    rows.sort_by_cached_key(|(_, row)| (loose_string(row.get("storage")), row.to_string()));
    for (index, row) in rows {
        let Some(row) = row.as_object() else {
            let message = format!("{} is not an object; skipped", path.index(index));
            ctx.plan
                .warn(Warning::new(WarningCode::UnreadableRow, message).at_path("/storage"));
            continue;
        };
        let Some(name) = row.get("storage").and_then(Value::as_str) else {
            continue;
        };
        if !names.insert(name.to_owned()) {
            let message = format!("/storage lists {name} twice; the first row is used");
            ctx.plan
                .warn(Warning::new(WarningCode::DuplicateIdentity, message).at_path("/storage"));
            continue;
        }
        let existing: Vec<&Object> = ours.iter().copied().filter(|r| r.str("name") == Some(name)).collect();
        match existing.as_slice() {
            [] => {
                let fields = desired(ctx, row, name, seen.get(name), None);
                ctx.create(head(name), Reason::NewInProxmox, create_payload(&fields));
            }
            [record] => {
                if !ctx.protected(head(name), ResourceType::Storage, record) {
                    let fields = desired(ctx, row, name, seen.get(name), Some(record));
                    ctx.update(head(name), record, changes(record, &fields));
                }
            }
            several => {
                let detail = format!("{} storage records named {name:?} in the cluster", several.len());
                ctx.plan.skip(head(name), None, Reason::AmbiguousIdentity, detail);
            }
        }
    }
    for record in ours
        .into_iter()
        .filter(|r| !names.contains(r.str("name").unwrap_or_default()))
    {
        let identity = format!("{}#{}", record.str("name").unwrap_or_default(), record.id);
        if record.has_tag(TAG_PROXBOX) && !ctx.protected(head(&identity), ResourceType::Storage, record) {
            ctx.plan.delete(head(&identity), record, Reason::GoneFromProxmox);
        }
    }
    Ok(())
}
