//! Archived Proxmox tasks of the guests as the plugin's `task-history` rows
//! (identity: the UPID), read per online node from
//! `/nodes/{n}/tasks?source=archive`, newest first, one page after another.
//!
//! Bounded and incremental without a clock: a node's archive is read from
//! the newest task back, and planned down to the start of the newest task
//! NetBox already holds for that node, at most `task_history_per_node`
//! tasks per run. A first run brings in the latest tasks; every later run
//! what happened since, which its first page usually holds: the next page is
//! read only while a full page reached no task NetBox knows. The pages are
//! found from the archive itself, never from what NetBox holds (Proxmox's
//! `since` would make them depend on it): a saved input re-plans the same.
//! Tasks are history: never deleted, only their outcome fields corrected.
//! Governed by `sync_mode_vm`; tasks of nodes and of guests without a
//! NetBox VM have nowhere to go and are not planned.

use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::vm::claimed_ids;
use super::vm_data::linked_vm;
use super::{Ask, Planner};
use crate::error::Result;
use crate::json::{loose_string, loose_u64};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason, Warning, WarningCode};
use crate::proxmox_path;
use crate::source::{Fetched, Guest, ProxmoxSnapshot};
use crate::time::{epoch_from_iso, iso_from_epoch};
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "task_history",
    stage: Stage::TaskHistory,
    governed_by: &[ResourceType::Vm],
    reads: &[netbox::TASK_HISTORY],
    links: &[],
    prerequisites: &[],
    needs: &["vm"],
    proxmox: ask,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    lookup: &[("upid", "upid")],
    ..Lifecycle::synced("task-history", ResourceType::Vm, netbox::TASK_HISTORY, Gone::Keep)
};

/// The first page of a node's archive: what an incremental run needs.
const FIRST_PAGE: u64 = 100;
/// Tasks per later archive request (proxbox-api's page size).
const PAGE: u64 = 500;

/// The task's type → the action a description names, first match wins
/// (proxbox-api's wording, so rows it wrote read the same).
const ACTIONS: [(&str, &str); 17] = [
    ("start", "Start"),
    ("shutdown", "Shutdown"),
    ("reboot", "Reboot"),
    ("stop", "Stop"),
    ("pause", "Pause"),
    ("resume", "Resume"),
    ("suspend", "Suspend"),
    ("delete", "Delete"),
    ("create", "Create"),
    ("clone", "Clone"),
    ("move", "Move"),
    ("backup", "Backup"),
    ("restore", "Restore"),
    ("snapshot", "Snapshot"),
    ("rollback", "Rollback"),
    ("migrate", "Migrate"),
    ("convert", "Convert"),
];

/// What a node's archive gave this run, page by page.
#[derive(Default)]
struct Archive<'a> {
    tasks: Vec<&'a Map<String, Value>>,
    /// The next page to fetch.
    missing: Option<String>,
    /// A page that failed, and why.
    failed: Option<(String, String)>,
}

fn start_of(task: &Map<String, Value>) -> Option<i64> {
    let from_upid = || {
        let upid = task.get("upid")?.as_str()?;
        i64::from_str_radix(upid.split(':').nth(4)?, 16).ok()
    };
    task.get("starttime").and_then(Value::as_i64).or_else(from_upid)
}

/// The node's pages from the newest task back: while a page is full, the
/// bound is not reached and no task as old as `since` showed up.
fn archive<'a>(snapshot: &ProxmoxSnapshot<'a>, node: &str, since: Option<i64>, bound: u64) -> Archive<'a> {
    let mut read = Archive::default();
    let mut start = 0;
    while start < bound {
        let page_size = if start == 0 { FIRST_PAGE } else { PAGE };
        let limit = page_size.min(bound - start);
        let path = proxmox_path::node_tasks(node, start, limit);
        let page = match snapshot.get(&path) {
            Fetched::Missing => {
                read.missing = Some(path);
                break;
            }
            Fetched::Data(Value::Array(page)) => page,
            other => {
                let why = other
                    .data()
                    .map_or_else(|| other.failure(), |_| "not a list".to_owned());
                read.failed = Some((path, why));
                break;
            }
        };
        read.tasks.extend(page.iter().filter_map(Value::as_object));
        let reached_since = since.is_some_and(|since| {
            page.iter()
                .filter_map(Value::as_object)
                .any(|t| start_of(t).is_some_and(|s| s <= since))
        });
        if (page.len() as u64) < limit || reached_since {
            break;
        }
        start += limit;
    }
    read
}

/// Per node, the start of the newest task NetBox holds for the endpoint's VMs.
fn held_since(
    tasks: &[Object],
    vms: &[Object],
    states: &[Object],
    endpoint: u64,
    cluster: &str,
) -> VecMap<String, i64> {
    let ours: VecSet<u64> = claimed_ids(vms, states, endpoint, cluster);
    let mut since: VecMap<String, i64> = VecMap::new();
    for task in tasks
        .iter()
        .filter(|t| t.fk("virtual_machine").is_some_and(|vm| ours.contains(&vm)))
    {
        let (Some(node), Some(start)) = (task.str("node"), task.str("start_time").and_then(epoch_from_iso)) else {
            continue;
        };
        let newest = since.entry(node.to_owned()).or_insert(start);
        *newest = (*newest).max(start);
    }
    since
}

fn ask(ask: &mut Ask) {
    if !ask.writes || ask.subset {
        return;
    }
    let (Some(inventory), Some(endpoint)) = (ask.inventory, ask.settings.endpoint.id) else {
        return;
    };
    let read = [netbox::TASK_HISTORY, netbox::VIRTUAL_MACHINE, netbox::VM_SYNC_STATE];
    if !read.iter().all(|m| ask.netbox_read(*m)) {
        return;
    }
    let Some(tasks) = ask.netbox(netbox::TASK_HISTORY) else {
        return;
    };
    let vms = ask.netbox(netbox::VIRTUAL_MACHINE).unwrap_or_default();
    let states = ask.netbox(netbox::VM_SYNC_STATE).unwrap_or_default();
    let since = held_since(&tasks, &vms, &states, endpoint, &inventory.cluster_name);
    let bound = ask.settings.options.task_history_per_node;
    let next: Vec<String> = inventory
        .nodes
        .iter()
        .filter(|n| n.online)
        .filter_map(|n| archive(ask.snapshot, &n.name, since.get(&n.name).copied(), bound).missing)
        .collect();
    next.iter().for_each(|path| ask.want(path));
}

/// `QEMU 101 - Start`, `CT 200 - Backup`.
fn description(guest: &Guest, task_id: &str, task_type: &str) -> String {
    let kind = match guest.kind {
        crate::source::GuestKind::Qemu => "QEMU",
        crate::source::GuestKind::Lxc => "CT",
    };
    let lowered = task_type.to_ascii_lowercase();
    let action = ACTIONS
        .iter()
        .find(|(word, _)| lowered.contains(word))
        .map(|(_, action)| (*action).to_owned())
        .unwrap_or_else(|| {
            let mut chars = task_type.chars();
            chars
                .next()
                .map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
        });
    format!("{kind} {task_id} - {action}")
}

/// Only a finished task's outcome may still change in NetBox (an older run
/// linked it to the wrong VM, say): the rest is a record of what happened.
fn desired(task: &Map<String, Value>, node: &str, start: i64, guest: &Guest, vm: Value) -> Desired {
    let text = |key: &str| loose_string(task.get(key));
    let task_id = text("id").unwrap_or_else(|| guest.vmid.to_string());
    let task_type = text("type").unwrap_or_else(|| "unknown".to_owned());
    let outcome = text("exitstatus")
        .or_else(|| text("status"))
        .unwrap_or_else(|| "unknown".to_owned());
    let ended = task
        .get("endtime")
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .map(iso_from_epoch);
    Desired::fields(vec![
        Field::new("upid", Kind::Scalar, text("upid")).create_only(),
        Field::new("node", Kind::Scalar, text("node").unwrap_or_else(|| node.to_owned())).create_only(),
        Field::new("pid", Kind::Scalar, task.get("pid").and_then(loose_u64)).create_only(),
        Field::new("pstart", Kind::Scalar, task.get("pstart").and_then(loose_u64)).create_only(),
        Field::new("task_id", Kind::Scalar, task_id.as_str()).create_only(),
        Field::new("task_type", Kind::Scalar, task_type.as_str()).create_only(),
        Field::new(
            "username",
            Kind::Scalar,
            text("user").unwrap_or_else(|| "root@pam".to_owned()),
        )
        .create_only(),
        Field::new("start_time", Kind::Scalar, iso_from_epoch(start)).create_only(),
        Field::new("description", Kind::Scalar, description(guest, &task_id, &task_type)).create_only(),
        Field::new("virtual_machine", Kind::ForeignKey, vm),
        Field::new("vm_type", Kind::Scalar, guest.kind.as_str()),
        Field::new("end_time", Kind::Scalar, ended),
        Field::new("status", Kind::Scalar, outcome.as_str()),
        Field::new("task_state", Kind::Scalar, "stopped"),
        Field::new("exitstatus", Kind::Scalar, outcome.as_str()),
    ])
}

/// One archived task, its UPID and its start.
type Dated<'a> = (&'a Map<String, Value>, String, i64);

/// A node's tasks this run plans: newest first, down to `since` (tasks
/// that started in the same second as the newest held one count, so none is
/// missed), each UPID once, at most `bound`.
fn in_reach(mut tasks: Vec<&Map<String, Value>>, since: Option<i64>, bound: u64) -> Vec<Dated<'_>> {
    crate::sort::sort_by_cached_key(&mut tasks, |t| {
        (std::cmp::Reverse(start_of(t)), loose_string(t.get("upid")))
    });
    let mut seen = VecSet::new();
    tasks
        .into_iter()
        .filter_map(|t| Some((t, loose_string(t.get("upid"))?, start_of(t)?)))
        .filter(|(_, _, start)| since.is_none_or(|since| *start >= since))
        .filter(|(_, upid, _)| seen.insert(upid.clone()))
        .take(usize::try_from(bound).unwrap_or(usize::MAX))
        .collect()
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, []);
    if !reconciler.planning() {
        return Ok(());
    }
    if ctx.in_scope.is_some() {
        let detail =
            "task history is read per node: a run for some VMs would leave gaps in it, so only a full run reads it";
        reconciler.skip_all(ctx, Reason::SubsetRun, detail);
        return Ok(());
    }
    let inventory = ctx.inventory;
    let held = ctx.objects(netbox::TASK_HISTORY);
    let (vms, states) = (ctx.objects(netbox::VIRTUAL_MACHINE), ctx.objects(netbox::VM_SYNC_STATE));
    let since = held_since(held, vms, states, endpoint, &inventory.cluster_name);
    let by_upid: VecMap<&str, Vec<&Object>> = held.iter().fold(VecMap::new(), |mut map, task| {
        if let Some(upid) = task.str("upid") {
            map.entry(upid).or_default().push(task);
        }
        map
    });
    let bound = ctx.settings.options.task_history_per_node;
    for node in inventory.nodes.iter().filter(|n| n.online) {
        let node_since = since.get(&node.name).copied();
        let read = archive(ctx.snapshot, &node.name, node_since, bound);
        if let Some(path) = &read.missing {
            ctx.snapshot.required(path)?;
        }
        if let Some((path, why)) = read.failed {
            let message = format!(
                "{path} could not be read ({why}); the task history of node {} is left for the next run",
                node.name
            );
            ctx.plan
                .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(path));
            continue;
        }
        for (task, upid, start) in in_reach(read.tasks, node_since, bound) {
            let Some(vmid) = task.get("id").and_then(loose_u64) else {
                continue;
            };
            let Ok((guest, vm)) = linked_vm(ctx, vmid) else {
                continue;
            };
            let item = Item {
                identity: upid.clone(),
                key: upid.clone(),
                proxmox_path: None,
            };
            let candidates = by_upid.get(upid.as_str()).cloned().unwrap_or_default();
            let found = Found::among(candidates, MatchedBy::NaturalKey, "task-history rows");
            let (node_name, vm) = (node.name.as_str(), vm.reference);
            reconciler.item(ctx, &item, found, |_, _| desired(task, node_name, start, guest, vm));
        }
    }
    Ok(())
}
