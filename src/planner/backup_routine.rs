//! The cluster's backup jobs (`/cluster/backup`, vzdump schedules) as the
//! plugin's `backup-routines` rows (identity: the endpoint and the job id).
//! Datacenter configuration, like the cluster row itself: governed by
//! `sync_mode_cluster`. Links to the plugin's node and storage records where
//! the job names them (proxbox-api leaves them empty). A job gone from
//! Proxmox is marked `stale`, never deleted, and only for this endpoint.
//! The selection lists the guests the job backs up, also for a job that
//! selects all guests or a pool (proxbox-api sends an empty list for those,
//! which the plugin refuses).

use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::{storage, Ask, Planner};
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse;
use crate::plan::MatchedBy;
use crate::plan::Reason;
use crate::proxmox_path;
use crate::source::Inventory;
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "backup_routine",
    stage: Stage::BackupRoutines,
    governed_by: &[ResourceType::Cluster],
    reads: &[netbox::BACKUP_ROUTINE],
    links: &[],
    prerequisites: &[],
    needs: &["node", "storage"],
    proxmox: ask,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    lookup: &[("endpoint", "endpoint"), ("job_id", "job_id")],
    ..Lifecycle::synced(
        "backup-routines",
        ResourceType::Cluster,
        netbox::BACKUP_ROUTINE,
        Gone::Status("stale"),
    )
};

/// `prune-backups` keys → the plugin's retention fields.
const RETENTION: [(&str, &str); 5] = [
    ("keep-last", "keep_last"),
    ("keep-daily", "keep_daily"),
    ("keep-weekly", "keep_weekly"),
    ("keep-monthly", "keep_monthly"),
    ("keep-yearly", "keep_yearly"),
];

fn ask(ask: &mut Ask) {
    if ask.writes {
        ask.want(proxmox_path::CLUSTER_BACKUP);
    }
}

/// The VMIDs a job backs up, sorted: its `vmid` list (`"101,200"` or a
/// list), else with `all` every guest (on its node, when it names one) but
/// the `exclude`d, else the guests in its `pool`.
fn selection(inventory: &Inventory, row: &Map<String, Value>) -> Vec<u64> {
    let vmids = |key: &str| -> Vec<u64> {
        parse::list(row.get(key))
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .collect()
    };
    let mut selected = vmids("vmid");
    if selected.is_empty() {
        let node = loose_string(row.get("node"));
        let pool = loose_string(row.get("pool"));
        let excluded = vmids("exclude");
        let all = loose_flag(row.get("all"));
        selected = inventory
            .guests
            .iter()
            .filter(|g| node.as_ref().is_none_or(|n| *n == g.node))
            .filter(|g| {
                if all {
                    !excluded.contains(&g.vmid)
                } else {
                    pool.is_some() && g.pool == pool
                }
            })
            .map(|g| g.vmid)
            .collect();
    }
    selected.sort_unstable();
    selected.dedup();
    selected
}

/// A property string's value (`storage=local-lvm` of `fleecing`), given as
/// text or, by some clients, already as an object.
fn property_of(value: Option<&Value>, key: &str) -> Option<String> {
    match value? {
        Value::Object(map) => loose_string(map.get(key)),
        Value::String(text) => parse::property(&parse::property_string(text), key).map(str::to_owned),
        _ => None,
    }
}

/// A property string as text (`enabled=1,storage=x`), whichever form it came in.
fn property_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", loose_string(Some(v)).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        other => loose_string(other).unwrap_or_default(),
    }
}

fn desired(ctx: &Context, row: &Map<String, Value>, id: &str, selected: Vec<u64>) -> Desired {
    // The plugin keeps "" for "not set" in its text fields, never null.
    let text = |key: &str| loose_string(row.get(key)).unwrap_or_default();
    let number = |key: &str| row.get(key).and_then(loose_u64);
    let storage_ref = |name: Option<String>| name.and_then(|n| storage::link(ctx, &n)).unwrap_or(Value::Null);
    let node = loose_string(row.get("node")).and_then(|n| ctx.refs.proxmox_nodes.get(&n).cloned());
    let prune = row.get("prune-backups");
    let mut fields = vec![
        Field::new("endpoint", Kind::ForeignKey, ctx.endpoint_id()),
        Field::new("job_id", Kind::Scalar, id),
        Field::new(
            "enabled",
            Kind::Scalar,
            row.get("enabled").is_none_or(|e| loose_flag(Some(e))),
        ),
        Field::new("schedule", Kind::Scalar, text("schedule")),
        Field::new("comment", Kind::Scalar, text("comment")),
        Field::new("notes_template", Kind::Scalar, text("notes-template")),
        Field::new("node", Kind::ForeignKey, node),
        Field::new(
            "storage",
            Kind::ForeignKey,
            storage_ref(loose_string(row.get("storage"))),
        ),
        Field::new(
            "fleecing_storage",
            Kind::ForeignKey,
            storage_ref(property_of(row.get("fleecing"), "storage")),
        ),
        Field::new("fleecing", Kind::Scalar, property_text(row.get("fleecing"))),
        Field::new("selection", Kind::Scalar, selected),
        Field::new(
            "keep_all",
            Kind::Scalar,
            property_of(prune, "keep-all").map(|v| v == "1"),
        ),
        Field::new("bwlimit", Kind::Scalar, number("bwlimit")),
        Field::new("zstd", Kind::Scalar, number("zstd")),
        Field::new(
            "io_workers",
            Kind::Scalar,
            property_of(row.get("performance"), "max-workers").and_then(|w| w.parse::<u64>().ok()),
        ),
        Field::new(
            "repeat_missed",
            Kind::Scalar,
            row.get("repeat-missed").map(|v| loose_flag(Some(v))),
        ),
        Field::new(
            "pbs_change_detection_mode",
            Kind::Scalar,
            text("pbs-change-detection-mode"),
        ),
        Field::new("status", Kind::Choice, "active"),
        Field::new("raw_config", Kind::Scalar, Value::Object(row.clone())),
    ];
    fields.extend(RETENTION.iter().map(|(key, field)| {
        let kept = property_of(prune, key).and_then(|n| n.parse::<u64>().ok());
        Field::new(field, Kind::Scalar, kept)
    }));
    Desired::fields(fields)
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let ours: Vec<&Object> = ctx
        .objects(netbox::BACKUP_ROUTINE)
        .iter()
        .filter(|r| r.fk("endpoint") == Some(endpoint))
        .collect();
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, ours.iter().copied());
    if !reconciler.planning() {
        return Ok(());
    }
    let Some(rows) = ctx.required_list(proxmox_path::CLUSTER_BACKUP, "backup routines are")? else {
        return Ok(());
    };
    for (id, row) in ctx.rows_by_key(proxmox_path::CLUSTER_BACKUP, rows, "id") {
        let candidates = ours
            .iter()
            .copied()
            .filter(|r| r.str("job_id") == Some(id.as_str()))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "backup routines");
        let item = Item {
            identity: id.clone(),
            key: id.clone(),
            proxmox_path: Some(proxmox_path::CLUSTER_BACKUP.to_owned()),
        };
        let selected = selection(ctx.inventory, row);
        if selected.is_empty() {
            let detail =
                "the job selects no guest, and the plugin refuses a routine with an empty selection".to_owned();
            reconciler.hold(ctx, &item, found, Reason::UnsupportedByNetbox, detail);
            continue;
        }
        reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, row, &id, selected));
    }
    reconciler.retire(ctx, true, |record| record.str("job_id").unwrap_or_default().to_owned());
    Ok(())
}
