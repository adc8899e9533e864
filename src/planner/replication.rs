//! Proxmox storage replication jobs as the plugin's `replications` records
//! (identity: endpoint + job id `<guest>-<jobnum>`). Metadata only: nothing
//! is written to Proxmox. There is no sync mode of their own: they follow
//! `sync_mode_vm`, the VMs they describe. A job gone from Proxmox is marked
//! `stale`, never deleted.

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::Context;
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{Change, OpHead, Reason, Target, WarningCode};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const STAGE: Stage = Stage::Replications;
/// The Proxmox default when a job sets no schedule.
const DEFAULT_SCHEDULE: &str = "*/15";

fn head(identity: &str) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(ResourceType::Vm),
        model: netbox::REPLICATION,
        identity,
        key: identity.to_owned(),
    }
}

/// `jobnum` from the row, else from the id's `-<jobnum>` suffix.
fn jobnum(row: &Map<String, Value>, id: &str) -> Option<u64> {
    row.get("jobnum")
        .and_then(loose_u64)
        .or_else(|| id.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
}

fn desired(
    ctx: &Context,
    row: &Map<String, Value>,
    id: &str,
    guest: u64,
    vm: Value,
    existing: Option<&Object>,
) -> Vec<Field> {
    let text = |key: &str| loose_string(row.get(key)).map_or(Value::Null, Value::from);
    let ours = ctx.creation_tags(ResourceType::Vm);
    let tags = match existing {
        Some(record) => merged_tags(record, &ours),
        None => ours,
    };
    let rate = row
        .get("rate")
        .and_then(|r| r.as_f64().or_else(|| r.as_str()?.parse().ok()));
    vec![
        Field::new("endpoint", Kind::ForeignKey, ctx.endpoint_id()),
        Field::new("replication_id", Kind::Scalar, id),
        Field::new("virtual_machine", Kind::ForeignKey, vm),
        Field::new("guest", Kind::Scalar, guest),
        Field::new("jobnum", Kind::Scalar, jobnum(row, id)),
        Field::new("target", Kind::Scalar, text("target")),
        Field::new(
            "job_type",
            Kind::Choice,
            row.get("type").and_then(Value::as_str).unwrap_or("local"),
        ),
        Field::new(
            "schedule",
            Kind::Scalar,
            row.get("schedule").and_then(Value::as_str).unwrap_or(DEFAULT_SCHEDULE),
        ),
        Field::new("rate", Kind::Scalar, rate),
        Field::new("comment", Kind::Scalar, text("comment")),
        Field::new("disable", Kind::Scalar, loose_flag(row.get("disable"))),
        Field::new("remove_job", Kind::Choice, text("remove_job")),
        Field::new("source", Kind::Scalar, text("source")),
        Field::new("status", Kind::Choice, "active"),
        Field::new("raw_config", Kind::Scalar, Value::Object(row.clone())),
        Field::new("tags", Kind::Tags, tag_list(&tags)),
    ]
}

pub fn plan(ctx: &mut Context) -> Result<()> {
    if ctx.mode(ResourceType::Vm).is_disabled() {
        ctx.skip_disabled(STAGE, ResourceType::Vm, netbox::REPLICATION);
        return Ok(());
    }
    let Some(rows) = super::required_list(ctx, "/cluster/replication", "replication records are")? else {
        return Ok(());
    };
    let endpoint = ctx.endpoint_id();
    let loaded = ctx.loaded;
    let mut records: BTreeMap<&str, Vec<&Object>> = BTreeMap::new();
    for record in loaded
        .get(netbox::REPLICATION)
        .iter()
        .filter(|r| endpoint.is_some() && r.fk("endpoint") == endpoint)
    {
        if let Some(id) = record.str("replication_id") {
            records.entry(id).or_default().push(record);
        }
    }
    let mut present = BTreeSet::new();
    // Sorted, so that which of two rows with one id wins does not depend on order.
    let mut rows: Vec<&Map<String, Value>> = rows.iter().filter_map(Value::as_object).collect();
    rows.sort_by_cached_key(|row| (loose_string(row.get("id")), Value::Object((*row).clone()).to_string()));
    for row in rows {
        let Some(id) = loose_string(row.get("id")) else {
            continue;
        };
        if !present.insert(id.clone()) {
            let message = format!("/cluster/replication lists job {id} twice; the first row is used");
            ctx.plan.warn(
                crate::plan::Warning::new(WarningCode::DuplicateIdentity, message).at_path("/cluster/replication"),
            );
            continue;
        }
        plan_job(
            ctx,
            row,
            &id,
            records.get(id.as_str()).map(Vec::as_slice).unwrap_or_default(),
        );
    }
    for (id, gone) in records.into_iter().filter(|(id, _)| !present.contains(*id)) {
        for record in gone {
            if record.choice("status") == Some("stale") || ctx.protected(head(id), ResourceType::Vm, record) {
                continue;
            }
            let mut changes = BTreeMap::new();
            changes.insert(
                "status".to_owned(),
                Change {
                    before: record.choice("status").into(),
                    after: "stale".into(),
                },
            );
            ctx.update_because(head(id), Target::of(record), Reason::GoneFromProxmox, changes);
        }
    }
    Ok(())
}

fn plan_job(ctx: &mut Context, row: &Map<String, Value>, id: &str, existing: &[&Object]) {
    let Some(guest) = row
        .get("guest")
        .and_then(loose_u64)
        .or_else(|| id.split('-').next()?.parse().ok())
    else {
        ctx.plan
            .skip(head(id), None, Reason::IncompleteSnapshot, "the job names no guest");
        return;
    };
    let inventory = ctx.inventory;
    let found = inventory.guests.iter().find(|g| g.vmid == guest);
    if found.is_some_and(|g| g.template) {
        ctx.plan.skip(
            head(id),
            existing.first().copied(),
            Reason::IsTemplate,
            format!("guest {guest} is a template"),
        );
        return;
    }
    let Some(vm) = found
        .and_then(|g| ctx.refs.vms.get(&g.key()))
        .map(|slot| slot.reference.clone())
    else {
        let detail = format!("guest {guest} has no VM in NetBox to link the job to");
        ctx.plan
            .skip(head(id), existing.first().copied(), Reason::UnknownVm, detail);
        return;
    };
    match existing {
        [] => {
            let fields = desired(ctx, row, id, guest, vm, None);
            ctx.create(head(id), Reason::NewInProxmox, create_payload(&fields));
        }
        [record] => {
            if !ctx.protected(head(id), ResourceType::Vm, record) {
                let fields = desired(ctx, row, id, guest, vm, Some(record));
                let reason = if record.choice("status") == Some("stale") {
                    Reason::BackInProxmox
                } else {
                    Reason::ChangedInProxmox
                };
                let changes = changes(record, &fields);
                if reason == Reason::BackInProxmox {
                    ctx.update_because(head(id), Target::of(record), reason, changes);
                } else {
                    ctx.update(head(id), record, changes);
                }
            }
        }
        several => {
            let detail = format!("{} replication records carry id {id} for this endpoint", several.len());
            ctx.plan.skip(head(id), None, Reason::AmbiguousIdentity, detail);
        }
    }
}
