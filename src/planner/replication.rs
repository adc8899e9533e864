//! Proxmox storage replication jobs as the plugin's `replications` records
//! (identity: endpoint + job id `<guest>-<jobnum>`). Metadata only: nothing
//! is written to Proxmox. They have no sync mode of their own: like their
//! stage (SPEC §1.1) they run while VMs or templates do, linking to the NetBox
//! VMs that exist. A job gone from Proxmox is marked `stale`, never deleted.

use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::vm_data::linked_vm;
use super::{governing, Ask, Planner};
use crate::error::Result;
use crate::json::{loose_flag, loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason};
use crate::proxmox_path;
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "replication",
    stage: Stage::Replications,
    governed_by: &[ResourceType::Vm, ResourceType::VmTemplate],
    reads: &[netbox::REPLICATION],
    links: &[],
    prerequisites: &[],
    needs: &["vm", "node"],
    proxmox: ask,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    lookup: &[("endpoint_id", "endpoint"), ("replication_id", "replication_id")],
    ..Lifecycle::synced(
        "replications",
        ResourceType::Vm,
        netbox::REPLICATION,
        Gone::Status("stale"),
    )
};

/// The Proxmox default when a job sets no schedule.
const DEFAULT_SCHEDULE: &str = "*/15";

fn ask(ask: &mut Ask) {
    if ask.writes {
        ask.want(proxmox_path::REPLICATION);
    }
}

/// `jobnum` from the row, else from the id's `-<jobnum>` suffix.
fn jobnum(row: &Map<String, Value>, id: &str) -> Option<u64> {
    row.get("jobnum")
        .and_then(loose_u64)
        .or_else(|| id.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
}

fn desired(ctx: &Context, row: &Map<String, Value>, id: &str, guest: u64, vm: Value) -> Desired {
    let text = |key: &str| loose_string(row.get(key)).map_or(Value::Null, Value::from);
    // The plugin's tracking row of the target node.
    let target_node = loose_string(row.get("target")).and_then(|node| ctx.refs.proxmox_nodes.get(&node).cloned());
    let rate = row
        .get("rate")
        .and_then(|r| r.as_f64().or_else(|| r.as_str()?.parse().ok()));
    Desired::fields(vec![
        Field::new("endpoint", Kind::ForeignKey, ctx.endpoint_id()),
        Field::new("replication_id", Kind::Scalar, id),
        Field::new("virtual_machine", Kind::ForeignKey, vm),
        Field::new("guest", Kind::Scalar, guest),
        Field::new("jobnum", Kind::Scalar, jobnum(row, id)),
        Field::new("target", Kind::Scalar, text("target")),
        Field::new("proxmox_node", Kind::ForeignKey, target_node),
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
    ])
}

/// The job's guest: `guest`, else the id's `<guest>-` prefix.
fn guest_of(row: &Map<String, Value>, id: &str) -> Option<u64> {
    row.get("guest")
        .and_then(loose_u64)
        .or_else(|| id.split('-').next()?.parse().ok())
}

/// Whether the record's guest (`guest` vmid) is one this plan is about.
fn record_in_scope(ctx: &Context, record: &Object) -> bool {
    let vmid = record.u64("guest").unwrap_or_default();
    ctx.guest_in_scope(&format!("qemu/{vmid}")) || ctx.guest_in_scope(&format!("lxc/{vmid}"))
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let spec = Lifecycle {
        resource: Some(governing(ctx, PLANNER.governed_by)),
        ..LIFECYCLE
    };
    let ours: Vec<&Object> = ctx
        .objects(netbox::REPLICATION)
        .iter()
        .filter(|r| r.fk("endpoint") == Some(endpoint))
        .collect();
    let scope: Vec<&Object> = ours.iter().copied().filter(|r| record_in_scope(ctx, r)).collect();
    let mut reconciler = Reconciler::for_run(ctx, &spec, writes, scope);
    if !reconciler.planning() {
        return Ok(());
    }
    let Some(rows) = ctx.required_list(proxmox_path::REPLICATION, "replication records are")? else {
        return Ok(());
    };
    let inventory = ctx.inventory;
    for (id, row) in ctx.rows_by_key(proxmox_path::REPLICATION, rows, "id") {
        let candidates: Vec<&Object> = ours
            .iter()
            .copied()
            .filter(|r| r.str("replication_id") == Some(id.as_str()))
            .collect();
        let guest = guest_of(row, &id);
        let resource = guest.and_then(|vmid| inventory.guests.iter().find(|g| g.vmid == vmid));
        if resource.is_some_and(|g| !ctx.guest_in_scope(&g.key())) {
            candidates.iter().for_each(|r| reconciler.keep(r));
            continue;
        }
        plan_job(ctx, &mut reconciler, row, &id, candidates);
    }
    reconciler.retire(ctx, true, |record| {
        record.str("replication_id").unwrap_or_default().to_owned()
    });
    Ok(())
}

fn plan_job<'a>(
    ctx: &mut Context<'a>,
    reconciler: &mut Reconciler<'_, 'a>,
    row: &Map<String, Value>,
    id: &str,
    candidates: Vec<&'a Object<'a>>,
) {
    let item = Item {
        identity: id.to_owned(),
        key: id.to_owned(),
        proxmox_path: Some(proxmox_path::REPLICATION.to_owned()),
    };
    let found = Found::among(candidates, MatchedBy::NaturalKey, "replication records");
    let Some(guest) = guest_of(row, id) else {
        let detail = "the job names no guest".to_owned();
        return reconciler.hold(ctx, &item, found, Reason::IncompleteSnapshot, detail);
    };
    match linked_vm(ctx, guest) {
        Ok((_, vm)) => {
            let vm = vm.reference;
            reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, row, id, guest, vm));
        }
        Err((reason, detail)) => reconciler.hold(ctx, &item, found, reason, detail),
    }
}
