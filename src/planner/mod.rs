//! From snapshot + NetBox state + settings to a plan.
//!
//! One module per resource; each declares a row of `PLANNERS` (what it reads,
//! which planners' matches it needs, what it asks of Proxmox) and goes through
//! the one lifecycle in `reconcile`. This file only orchestrates: it picks the
//! planners the running stages need, in table order, and hands them a
//! `Context`. `discover` reads the same table.

mod address;
mod backup;
mod backup_routine;
mod bootstrap;
mod cluster;
pub(crate) mod context;
mod diff;
mod disk;
mod interface;
mod ip;
mod mac;
mod node;
mod node_interface;
mod ownership;
mod proxbox;
mod reconcile;
mod replication;
mod sdn;
mod snapshot;
mod storage;
mod task_history;
mod template;
mod vm;
mod vm_data;

use crate::error::PlanError;
use crate::error::Result;
use crate::input::InputDoc;
use crate::json::Path;
use crate::modes::{mode_report, parse_sync_types, ResourceType, Stage, StageStatus};
use crate::netbox::{self, Model, NetboxState};
use crate::plan::{EndpointInfo, OpHead, Origin, Plan, PlanBuilder, Reason, Warning, WarningCode, FORMAT_VERSION};
use crate::settings::{read_settings, Settings};
use crate::source::{self, Guest, Inventory, ProxmoxSnapshot};
use crate::vec_map::VecSet;
use context::{Context, Loaded, Refs, Subset};

pub use bootstrap::Prerequisite;
pub use diff::holds;

/// What a planner asks of Proxmox, given what has been fetched so far.
pub struct Ask<'s, 'a> {
    pub snapshot: &'s ProxmoxSnapshot<'a>,
    /// `None` until `/cluster/status` and `/cluster/resources` are read.
    pub inventory: Option<&'s Inventory<'a>>,
    /// Whether the planner writes (its stage runs) or only matches.
    pub writes: bool,
    pub settings: &'s Settings,
    netbox: &'s NetboxState<'a>,
    in_scope: &'s dyn Fn(&Guest) -> bool,
    /// Whether the run is limited to some guests (`$.subset`).
    pub subset: bool,
    wanted: &'s mut Vec<String>,
}

impl<'a> Ask<'_, 'a> {
    pub fn want(&mut self, path: &str) {
        if !self.snapshot.has(path) {
            self.wanted.push(path.to_owned());
        }
    }

    /// Whether a NetBox collection has been read (or failed): asks that
    /// depend on what NetBox holds wait for it.
    pub fn netbox_read(&self, model: Model) -> bool {
        self.netbox.has(model)
    }

    /// A NetBox collection's objects (`None` before it is read, or when it
    /// could not be).
    pub fn netbox(&self, model: Model) -> Option<Vec<netbox::Object<'a>>> {
        if !self.netbox.has(model) {
            return None;
        }
        match self.netbox.collection(model).ok()? {
            netbox::Collection::Objects(objects) => Some(objects),
            netbox::Collection::Failed { .. } => None,
        }
    }

    /// Guests this plan is about (`$.subset`), templates or not.
    pub fn guests(&self, templates: bool) -> impl Iterator<Item = &Guest<'_>> {
        let in_scope = self.in_scope;
        self.inventory
            .into_iter()
            .flat_map(|i| i.guests.iter())
            .filter(move |g| g.template == templates && in_scope(g))
    }
}

/// One resource planner: a row of the table below.
pub struct Planner {
    pub name: &'static str,
    pub stage: Stage,
    /// The sync-mode resources that decide whether it writes.
    pub governed_by: &'static [ResourceType],
    /// NetBox collections it reads (what its lifecycle's cascades reach included).
    pub reads: &'static [Model],
    /// Plugin rows it only links to (a virtual disk's storage): read where
    /// the plugin is installed; without the plugin there are none, and the
    /// planner runs all the same.
    pub links: &'static [Model],
    /// Bootstrap objects it refers to.
    pub prerequisites: &'static [Prerequisite],
    /// Planners whose matches it needs: they run, match-only when their own
    /// stage does not.
    pub needs: &'static [&'static str],
    pub proxmox: fn(&mut Ask),
    /// `writes`: false when it runs only so others can use its matches.
    pub run: fn(&mut Context, bool) -> Result<()>,
}

fn nothing(_: &mut Ask) {}

/// The resource whose mode decides for a planner governed by several (its
/// first that is not disabled): replications run while VMs or templates do.
pub fn governing(ctx: &Context, resources: &[ResourceType]) -> ResourceType {
    resources
        .iter()
        .copied()
        .find(|r| !ctx.mode(*r).is_disabled())
        .or_else(|| resources.first().copied())
        .unwrap_or(ResourceType::Vm)
}

/// Every planner, in the order they run: parents before children.
pub const PLANNERS: &[Planner] = &[
    cluster::PLANNER,
    node::PLANNER,
    storage::PLANNER,
    vm::PLANNER,
    template::PLANNER,
    task_history::PLANNER,
    disk::PLANNER,
    backup::PLANNER,
    snapshot::PLANNER,
    node_interface::PLANNER,
    node_interface::ADDRESSES,
    interface::PLANNER,
    mac::PLANNER,
    ip::PLANNER,
    sdn::PLANNER,
    replication::PLANNER,
    backup_routine::PLANNER,
];

/// Collections every plan reads: tags are written by every stage.
pub const ALWAYS_READ: &[Model] = &[netbox::TAG];

fn planner(name: &str) -> Option<&'static Planner> {
    PLANNERS.iter().find(|p| p.name == name)
}

/// The planners a set of running stages needs, in table order, each with
/// whether it writes.
pub fn selected(running: &[Stage]) -> Vec<(&'static Planner, bool)> {
    let mut wanted: VecSet<&str> = VecSet::new();
    let mut stack: Vec<&'static Planner> = PLANNERS.iter().filter(|p| running.contains(&p.stage)).collect();
    while let Some(next) = stack.pop() {
        if wanted.insert(next.name) {
            stack.extend(next.needs.iter().filter_map(|name| planner(name)));
        }
    }
    PLANNERS
        .iter()
        .filter(|p| wanted.contains(p.name))
        .map(|p| (p, running.contains(&p.stage)))
        .collect()
}

/// The NetBox collections the selected planners read (a subset of NetBox
/// VMs needs the VMs to know which guests they are).
pub fn reads(selected: &[(&Planner, bool)], subset: Option<&Subset>) -> Vec<Model> {
    let mut models: Vec<Model> = ALWAYS_READ.to_vec();
    if subset.is_some_and(|s| !s.netbox_vm_ids.is_empty()) && !selected.is_empty() {
        models.extend([netbox::VIRTUAL_MACHINE, netbox::VM_SYNC_STATE]);
    }
    for (planner, _) in selected {
        models.extend(planner.reads.iter().chain(planner.links).copied());
        models.extend(planner.prerequisites.iter().flat_map(|p| p.reads()));
    }
    let mut seen = VecSet::new();
    models.retain(|m| seen.insert(m.name));
    models
}

/// What `discover` has read so far, for the planners' asks.
pub struct Read<'s, 'a> {
    pub settings: &'s Settings,
    pub snapshot: &'s ProxmoxSnapshot<'a>,
    pub inventory: Option<&'s Inventory<'a>>,
    pub netbox: &'s NetboxState<'a>,
    pub subset: bool,
}

/// The Proxmox paths the selected planners still need.
pub fn asks(selected: &[(&Planner, bool)], read: &Read, in_scope: &dyn Fn(&Guest) -> bool) -> Vec<String> {
    let mut wanted = Vec::new();
    for (planner, writes) in selected {
        let mut ask = Ask {
            snapshot: read.snapshot,
            inventory: read.inventory,
            writes: *writes,
            settings: read.settings,
            netbox: read.netbox,
            in_scope,
            subset: read.subset,
            wanted: &mut wanted,
        };
        (planner.proxmox)(&mut ask);
    }
    crate::sort::sort(&mut wanted);
    wanted.dedup();
    wanted
}

/// The stage's one skip when it does not run (SPEC §2: not one per object).
fn skip_stages(plan: &mut PlanBuilder, statuses: &[StageStatus]) {
    for status in statuses.iter().filter(|s| !s.run) {
        let stage = status.stage;
        let model = PLANNERS
            .iter()
            .find(|p| p.stage == stage)
            .and_then(|p| p.reads.first().copied())
            .unwrap_or(netbox::TAG);
        let head = OpHead {
            stage: stage.name(),
            resource: stage.spec().gated_by.first().copied(),
            model,
            identity: crate::plan::STAGE_WIDE,
            key: format!("stage {}", stage.name()),
        };
        let detail = status.reason.clone().unwrap_or_default();
        plan.skip_stage_wide(head, Reason::ModeDisabled, detail);
    }
}

fn endpoint_info(settings: &Settings, inventory: Option<&Inventory>) -> EndpointInfo {
    EndpointInfo {
        id: settings.endpoint.id,
        name: settings.endpoint.name.clone(),
        cluster: inventory.map(|i| i.cluster_name.clone()),
    }
}

/// The whole planner: `$` is the input document of the README.
pub fn plan(input: &InputDoc) -> Result<Plan> {
    let (plan, ownership) = run(input)?;
    match ownership {
        Some(error) => Err(error),
        None => Ok(plan),
    }
}

/// For `discover`: the NetBox history (change log, journal) queries the plan
/// needs, per collection; empty once given, or when nothing needs it.
pub fn history_queries(input: &InputDoc) -> Result<ownership::HistoryQueries> {
    let netbox_state = NetboxState::read(&input.netbox)?;
    if ownership::HISTORY.iter().any(|m| netbox_state.has(*m)) {
        return Ok(ownership::HistoryQueries::new());
    }
    let mut queries = ownership::HistoryQueries::new();
    run_with(input, |ownership| {
        queries = ownership.queries()?;
        Ok(())
    })?;
    Ok(queries)
}

/// The plan, and the error to give instead when it needed NetBox history it
/// was not given.
fn run(input: &InputDoc) -> Result<(Plan, Option<PlanError>)> {
    let mut missing = None;
    let plan = run_with(input, |ownership| {
        missing = ownership.missing();
        Ok(())
    })?;
    Ok((plan, missing))
}

/// The planner, with a look at what ownership learnt once the planners ran.
fn run_with(input: &InputDoc, mut after: impl FnMut(&ownership::Ownership) -> Result<()>) -> Result<Plan> {
    let settings = read_settings(input.settings.as_ref(), input.endpoint.as_ref())?;
    let stages = parse_sync_types(input.sync_types.as_ref(), &Path::ROOT.key("sync_types"))?;
    let subset = input.subset()?;
    let report = mode_report(&settings, &stages);
    let snapshot = ProxmoxSnapshot::read(input.proxmox.as_ref())?;
    let netbox_state = NetboxState::read(&input.netbox)?;
    let running: Vec<Stage> = report.stages.iter().filter(|s| s.run).map(|s| s.stage).collect();
    let selected = selected(&running);
    let mut builder = PlanBuilder::default();
    skip_stages(&mut builder, &report.stages);
    let inventory = match selected.is_empty() {
        true => None,
        false => read_inventory(&snapshot, &mut builder)?,
    };
    let endpoint = endpoint_info(&settings, inventory.as_ref());
    if let Some(inventory) = &inventory {
        let mut warnings = Vec::new();
        let loaded = Loaded::load(&netbox_state, &reads(&selected, subset.as_ref()), &mut warnings)?;
        warnings.into_iter().for_each(|w| builder.warn(w));
        let ownership = ownership::Ownership::read(&netbox_state, input.sync_user()?, settings.on_operator_edit)?;
        let mut ctx = Context {
            settings: &settings,
            modes: &report.modes,
            snapshot: &snapshot,
            inventory,
            loaded: &loaded,
            in_scope: None,
            refs: Refs::default(),
            plan: builder,
            ownership,
        };
        let (vms, states) = (ctx.objects(netbox::VIRTUAL_MACHINE), ctx.objects(netbox::VM_SYNC_STATE));
        let cluster = &inventory.cluster_name;
        ctx.in_scope = subset
            .as_ref()
            .map(|s| vm::subset_keys(vms, states, settings.endpoint.id, cluster, s));
        run_planners(&mut ctx, &selected)?;
        after(&ctx.ownership)?;
        ownership_warnings(&mut ctx);
        builder = ctx.plan;
    }
    let finished = builder.finish();
    Ok(Plan {
        format_version: FORMAT_VERSION,
        planner_version: crate::VERSION,
        complete: !finished.warnings.iter().any(|w| w.code.makes_plan_incomplete()),
        origin: origin(input)?,
        endpoint,
        modes: report.modes,
        stages: report.stages,
        query_flags: report.query_flags,
        operations: finished.operations,
        conflicts: finished.conflicts,
        warnings: finished.warnings,
        summary: finished.summary,
        changelog_message: format!("{} {}", ownership::CHANGELOG_MARKER, crate::VERSION),
    })
}

/// What the change log could not tell, and what waits for a choice: one
/// warning each.
fn ownership_warnings(ctx: &mut Context) {
    let ownership = &ctx.ownership;
    if let Some(why) = ownership.unreadable().filter(|_| ownership.held > 0) {
        let message = format!(
            "{why}: {} field update(s) an operator may have made are held (ownership-unknown); \
             give the token view permission on core.objectchange and extras.journalentry",
            ownership.held
        );
        let warning = Warning::new(WarningCode::ChangelogUnreadable, message).in_collection(netbox::OBJECT_CHANGE);
        ctx.plan.warn(warning);
    }
    if ownership.pending > 0 {
        let message = format!(
            "{} field(s) changed both by an operator and in Proxmox wait for a choice (on_operator_edit = ask): \
             see conflicts; apply --accept-proxmox ID or --keep-netbox ID",
            ownership.pending
        );
        ctx.plan.warn(Warning::new(WarningCode::DecisionsPending, message));
    }
}

/// What `/cluster/status` and `/cluster/resources` say, or the warning that
/// they could not be read.
fn read_inventory<'a>(snapshot: &ProxmoxSnapshot<'a>, plan: &mut PlanBuilder) -> Result<Option<Inventory<'a>>> {
    match source::inventory(snapshot)? {
        Ok(mut found) => {
            std::mem::take(&mut found.warnings)
                .into_iter()
                .for_each(|w| plan.warn(w));
            Ok(Some(found))
        }
        Err(unreadable) => {
            let message = format!("{}; nothing can be planned for this endpoint", unreadable.why);
            plan.warn(Warning::new(WarningCode::ProxmoxUnreadable, message).at_path(unreadable.path));
            Ok(None)
        }
    }
}

fn origin(input: &InputDoc) -> Result<Origin> {
    let given = input.origin()?;
    Ok(Origin {
        netbox_url: given.netbox_url,
        netbox_version: given.netbox_version,
        instance: given.instance,
        input_fingerprint: input.fingerprint(),
    })
}

/// A planner whose collections could not be read does not run (and says so);
/// the others run in table order, then each stage's deletes are guarded.
fn run_planners(ctx: &mut Context, selected: &[(&Planner, bool)]) -> Result<()> {
    if let Some(mut warning) = ctx.loaded.unavailable(ALWAYS_READ) {
        warning.message.push_str("; nothing can be planned");
        ctx.plan.warn(warning);
        return Ok(());
    }
    let mut blocked: VecSet<&str> = VecSet::new();
    let runnable: Vec<(&Planner, bool)> = selected
        .iter()
        .copied()
        .filter(|(planner, _)| {
            let missing = ctx
                .loaded
                .unavailable(planner.reads)
                .or_else(|| ctx.loaded.unavailable_links(planner.links));
            let after_blocked = planner.needs.iter().any(|n| blocked.contains(n));
            if let Some(mut warning) = missing.filter(|_| !after_blocked) {
                let stage = planner.stage.name();
                warning.message = format!("stage {stage} skipped: {}", warning.message);
                if !ctx.plan.has_warning(&warning) {
                    ctx.plan.warn(warning.in_stage(stage));
                }
                blocked.insert(planner.name);
                return false;
            }
            if after_blocked {
                blocked.insert(planner.name);
            }
            !after_blocked
        })
        .collect();
    bootstrap::plan(ctx, &runnable);
    for (planner, writes) in &runnable {
        (planner.run)(ctx, *writes)?;
    }
    let max = ctx.settings.options.max_deletes;
    let mut stages: Vec<&'static str> = runnable.iter().map(|(p, _)| p.stage.name()).collect();
    stages.dedup();
    for stage in stages {
        ctx.plan.guard_deletes(stage, max);
    }
    Ok(())
}

/// For `discover`: the guest keys of a subset, as far as the NetBox VMs
/// read so far tell (`None`: every guest).
pub fn subset_scope(
    netbox: &NetboxState,
    settings: &Settings,
    inventory: Option<&Inventory>,
    subset: Option<&Subset>,
) -> Result<Option<VecSet<String>>> {
    let Some(subset) = subset else {
        return Ok(None);
    };
    let read = |model: netbox::Model| -> Result<Vec<netbox::Object>> {
        if !netbox.has(model) {
            return Ok(Vec::new());
        }
        Ok(match netbox.collection(model)? {
            netbox::Collection::Objects(objects) => objects,
            netbox::Collection::Failed { .. } => Vec::new(),
        })
    };
    let (vms, states) = (read(netbox::VIRTUAL_MACHINE)?, read(netbox::VM_SYNC_STATE)?);
    let cluster = inventory.map(|i| i.cluster_name.as_str()).unwrap_or_default();
    Ok(Some(vm::subset_keys(
        &vms,
        &states,
        settings.endpoint.id,
        cluster,
        subset,
    )))
}

impl InputDoc {
    /// `$.subset`: `{"guests": ["qemu/101"], "netbox_vm_ids": [7]}`.
    pub fn subset(&self) -> Result<Option<Subset>> {
        use crate::json::{as_array, as_object, wrong_type};
        let path = Path::ROOT.key("subset");
        let Some(value) = self.subset.as_ref().filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let obj = as_object(value, &path)?;
        let mut subset = Subset::default();
        if let Some(list) = obj.get("guests").filter(|v| !v.is_null()) {
            let list_path = path.key("guests");
            for (at, item) in as_array(list, &list_path)?.iter().enumerate() {
                let key = item
                    .as_str()
                    .and_then(source::parse_guest_key)
                    .ok_or_else(|| wrong_type(&list_path.index(at), "a guest key such as \"qemu/101\"", item))?;
                subset.guests.insert(key);
            }
        }
        if let Some(list) = obj.get("netbox_vm_ids").filter(|v| !v.is_null()) {
            let list_path = path.key("netbox_vm_ids");
            for (at, item) in as_array(list, &list_path)?.iter().enumerate() {
                let id = item
                    .as_u64()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| wrong_type(&list_path.index(at), "a NetBox VM id", item))?;
                subset.netbox_vm_ids.insert(id);
            }
        }
        Ok(Some(subset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `modes::STAGES` says when a stage runs; the planners' `governed_by`
    /// say when they write. One rule: they name the same resources.
    #[test]
    fn each_stage_is_gated_by_exactly_what_governs_its_planners() {
        for stage in Stage::ALL {
            let governing: VecSet<ResourceType> = PLANNERS
                .iter()
                .filter(|p| p.stage == stage)
                .flat_map(|p| p.governed_by.iter().copied())
                .collect();
            let gates: VecSet<ResourceType> = stage.spec().gated_by.iter().copied().collect();
            assert_eq!(governing, gates, "{stage:?}");
        }
    }

    #[test]
    fn every_need_names_a_planner_that_runs_before() {
        for (at, planner) in PLANNERS.iter().enumerate() {
            for need in planner.needs {
                let position = PLANNERS.iter().position(|p| p.name == *need);
                assert!(position.is_some_and(|p| p < at), "{} needs {need}", planner.name);
            }
        }
    }
}
