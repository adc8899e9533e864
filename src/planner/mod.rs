//! From snapshot + NetBox state + settings to a plan.
//!
//! Each resource has its own module; they run in stage order and hand each
//! other references (`Refs`) to the NetBox objects they matched or created.

mod bootstrap;
mod cluster;
mod diff;
mod interface;
mod ip;
mod mac;
mod node;
mod replication;
pub(crate) mod sdn;
mod storage;
mod template;
mod vm;

use crate::error::Result;
use crate::input::InputDoc;
use crate::json::Path;
use crate::modes::{parse_sync_types, ResolvedModes, ResourceType, Stage, SyncMode};
use crate::netbox::{self, Collection, Model, NetboxState, Object};
use crate::plan::{
    Change, EndpointInfo, OpHead, Origin, Plan, PlanBuilder, Reason, Target, Warning, WarningCode, FORMAT_VERSION,
};
use crate::settings::{read_settings, Settings};
use crate::source::{self, Inventory, ProxmoxSnapshot};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

pub use vm::VmSlot;

pub const TAG_PROXBOX: &str = "proxbox";
pub const TAG_BOOTSTRAP_ONLY: &str = "bootstrap-only";
pub const TAG_SOFT_DELETED: &str = "proxbox-soft-deleted";
pub const BOOTSTRAP: &str = "bootstrap";

/// The NetBox collections each stage reads (also what `discover` asks for).
pub fn collections_for(stage: Stage) -> &'static [Model] {
    use netbox::*;
    match stage {
        Stage::Devices => &[
            CLUSTER,
            DEVICE,
            SITE,
            CLUSTER_TYPE,
            MANUFACTURER,
            DEVICE_TYPE,
            DEVICE_ROLE,
        ],
        Stage::Storage => &[CLUSTER, STORAGE],
        Stage::VirtualMachines => &[CLUSTER, DEVICE, VIRTUAL_MACHINE, CUSTOM_FIELD],
        Stage::VmTemplates => &[VM_TEMPLATE],
        Stage::VmInterfaces => &[CLUSTER, VIRTUAL_MACHINE, VM_INTERFACE, VLAN, SITE, CUSTOM_FIELD],
        Stage::IpAddresses => &[
            CLUSTER,
            VIRTUAL_MACHINE,
            VM_INTERFACE,
            MAC_ADDRESS,
            IP_ADDRESS,
            CUSTOM_FIELD,
        ],
        Stage::Replications => &[CLUSTER, VIRTUAL_MACHINE, CUSTOM_FIELD, REPLICATION],
        Stage::Sdn => &[
            VLAN,
            L2VPN,
            L2VPN_TERMINATION,
            ROUTE_TARGET,
            PREFIX,
            SDN_CONTROLLER,
            SDN_ZONE,
            SDN_VNET,
            SDN_SUBNET,
            SDN_FABRIC,
            SDN_ROUTE_MAP,
            SDN_PREFIX_LIST,
            SDN_BINDING,
        ],
    }
}

/// The model a stage is mostly about, for its one skip when it does not run.
fn stage_model(stage: Stage) -> Model {
    use netbox::*;
    match stage {
        Stage::Devices => CLUSTER,
        Stage::Storage => STORAGE,
        Stage::VirtualMachines => VIRTUAL_MACHINE,
        Stage::VmTemplates => VM_TEMPLATE,
        Stage::VmInterfaces => VM_INTERFACE,
        Stage::IpAddresses => IP_ADDRESS,
        Stage::Sdn => SDN_ZONE,
        Stage::Replications => REPLICATION,
    }
}

/// SPEC §2: a disabled stage plans one skip (not one per object).
fn skip_stages(plan: &mut PlanBuilder, statuses: &[crate::modes::StageStatus]) {
    for status in statuses.iter().filter(|s| !s.run) {
        let stage = status.stage;
        let resource = stage.spec().gated_by.first().copied();
        let head = OpHead {
            stage: stage.name(),
            resource,
            model: stage_model(stage),
            identity: "*",
            key: format!("stage {}", stage.name()),
        };
        plan.skip(
            head,
            None,
            Reason::ModeDisabled,
            status.reason.clone().unwrap_or_default(),
        );
    }
}

/// Collections every plan reads: tags are written by every stage.
pub const ALWAYS_READ: &[Model] = &[netbox::TAG];

/// Stages the planner implements; the others are listed but plan nothing yet.
pub fn implemented(stage: Stage) -> bool {
    !collections_for(stage).is_empty()
}

/// The NetBox objects the plan reads, per model.
pub struct Loaded<'a> {
    objects: BTreeMap<&'static str, Vec<Object<'a>>>,
    failed: BTreeMap<&'static str, (Option<u64>, String)>,
}

impl<'a> Loaded<'a> {
    fn load(netbox: &NetboxState<'a>, models: &[Model]) -> Result<Self> {
        let mut loaded = Loaded {
            objects: BTreeMap::new(),
            failed: BTreeMap::new(),
        };
        for model in models {
            if loaded.objects.contains_key(model.name) || loaded.failed.contains_key(model.name) {
                continue;
            }
            match netbox.collection(*model)? {
                Collection::Objects(objects) => {
                    loaded.objects.insert(model.name, objects);
                }
                Collection::Failed { status, message } => {
                    loaded.failed.insert(model.name, (status, message));
                }
            }
        }
        Ok(loaded)
    }

    pub fn get(&self, model: Model) -> &[Object<'a>] {
        self.objects.get(model.name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Objects are sorted by id, so lookups are a binary search.
    pub fn by_id(&self, model: Model, id: u64) -> Option<&Object<'a>> {
        let objects = self.get(model);
        objects
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .and_then(|at| objects.get(at))
    }

    /// Why a stage cannot read what it needs: a warning code and message.
    fn unavailable(&self, models: &[Model]) -> Option<Warning> {
        models.iter().find_map(|model| {
            let (status, message) = self.failed.get(model.name)?;
            let warning = if model.is_plugin() && *status == Some(404) {
                Warning::new(
                    WarningCode::ProxboxPluginAbsent,
                    format!("{message} (is the Proxbox plugin installed?)"),
                )
            } else {
                Warning::new(WarningCode::NetboxUnreadable, message.clone())
            };
            Some(warning.in_collection(*model))
        })
    }
}

/// References later stages need: an existing id (`3`) or a `$ref`.
#[derive(Default)]
pub struct Refs {
    pub cluster: Option<Value>,
    pub cluster_id: Option<u64>,
    pub site: Option<Value>,
    pub cluster_type: Option<Value>,
    pub device_role: Option<Value>,
    pub device_type: Option<Value>,
    pub devices: BTreeMap<String, Value>,
    pub vms: BTreeMap<String, VmSlot>,
    /// (guest key, interface name) → interface reference. Shared: the MAC and
    /// IP planners walk them while they add operations.
    pub interfaces: BTreeMap<(String, String), Rc<InterfaceSlot>>,
    /// Tags created in this plan: slug → op id (for `depends_on`).
    pub created_tags: BTreeMap<String, String>,
    /// Tag slugs NetBox has or this plan creates.
    pub known_tags: std::collections::BTreeSet<String>,
    /// Object ids this plan deletes, per model (so references to them are dropped).
    pub deleted: BTreeMap<&'static str, std::collections::BTreeSet<u64>>,
}

#[derive(Clone, Debug)]
pub struct InterfaceSlot {
    pub reference: Value,
    pub existing_id: Option<u64>,
    /// `qemu/101/net0`: ids and keys of the interface's children.
    pub label: String,
    pub guest_index: usize,
    pub nic: crate::source::Nic,
    pub primary_mac: Option<u64>,
}

impl Refs {
    /// Ops a payload depends on: every `$ref` in it and every tag it names
    /// that this plan creates.
    pub fn dependencies(&self, values: &[&Value]) -> Vec<String> {
        fn walk(value: &Value, refs: &Refs, out: &mut Vec<String>) {
            match value {
                Value::Object(obj) => {
                    if let Some(Value::String(id)) = obj.get("$ref") {
                        out.push(id.clone());
                    }
                    if let (Some(Value::String(slug)), 1) = (obj.get("slug"), obj.len()) {
                        out.extend(refs.created_tags.get(slug).cloned());
                    }
                    obj.values().for_each(|v| walk(v, refs, out));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        values.iter().for_each(|v| walk(v, self, &mut out));
        out
    }

    pub fn is_deleted(&self, model: Model, id: u64) -> bool {
        self.deleted.get(model.name).is_some_and(|ids| ids.contains(&id))
    }

    pub fn mark_deleted(&mut self, model: Model, id: u64) {
        self.deleted.entry(model.name).or_default().insert(id);
    }
}

/// A Proxmox list a stage needs: missing is an input error (the host skipped
/// what `discover` listed); failed or not a list is a warning, and the stage
/// leaves its objects as they are.
pub fn required_list<'a>(ctx: &mut Context<'a>, path: &str, what: &str) -> Result<Option<&'a Vec<Value>>> {
    match ctx.snapshot.required(path)? {
        source::Fetched::Data(Value::Array(rows)) => Ok(Some(rows)),
        other => {
            let why = if other.data().is_some() {
                "not a list".to_owned()
            } else {
                other.failure()
            };
            let message = format!("{path} could not be read ({why}); {what} left as they are");
            ctx.plan
                .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(path));
            Ok(None)
        }
    }
}

/// The endpoint id: VMs, templates, replications and SDN rows are identified
/// by it, so a stage that plans them cannot run without it.
pub fn required_endpoint_id(ctx: &Context) -> Result<u64> {
    ctx.endpoint_id().ok_or_else(|| {
        crate::error::PlanError::new(
            crate::error::ErrorCode::MissingField,
            Path::ROOT.key("endpoint").key("id"),
            "the endpoint id is required: VMs, templates, replications and SDN rows are identified by it",
        )
    })
}

/// A `bootstrap-only` tagged object under `bootstrap_only`: never patched.
pub fn bootstrap_protected(ctx: &Context, resource: ResourceType, object: &Object) -> bool {
    ctx.mode(resource) == SyncMode::BootstrapOnly && object.has_tag(TAG_BOOTSTRAP_ONLY)
}

pub struct Context<'a> {
    pub settings: &'a Settings,
    pub modes: &'a ResolvedModes,
    pub snapshot: &'a ProxmoxSnapshot<'a>,
    pub inventory: &'a Inventory<'a>,
    pub loaded: &'a Loaded<'a>,
    pub refs: Refs,
    pub plan: PlanBuilder,
}

impl<'a> Context<'a> {
    pub fn mode(&self, resource: ResourceType) -> SyncMode {
        self.modes.effective(resource)
    }

    pub fn endpoint_id(&self) -> Option<u64> {
        self.settings.endpoint.id
    }

    /// Tags a new object gets: `proxbox`, plus `bootstrap-only` under that mode.
    pub fn creation_tags(&self, resource: ResourceType) -> Vec<String> {
        let mut tags = vec![TAG_PROXBOX.to_owned()];
        if self.mode(resource) == SyncMode::BootstrapOnly {
            tags.push(TAG_BOOTSTRAP_ONLY.to_owned());
        }
        tags.sort();
        tags
    }

    /// SPEC §2: under `bootstrap_only`, a tagged object is never patched or
    /// deleted. Returns true (and plans the skip) when the object is protected.
    pub fn protected(&mut self, head: OpHead, resource: ResourceType, object: &Object) -> bool {
        let protected = bootstrap_protected(self, resource, object);
        if protected {
            self.plan.skip(
                head,
                Some(object),
                Reason::BootstrapOnlyTag,
                "tagged bootstrap-only: sync leaves it untouched",
            );
        }
        protected
    }

    /// Plans a create; `depends_on` comes from the payload itself.
    pub fn create(&mut self, head: OpHead, reason: Reason, fields: Map<String, Value>) -> String {
        let deps = self.refs.dependencies(&fields.values().collect::<Vec<_>>());
        self.plan.create(head, reason, fields, deps)
    }

    /// Plans an update when something changed (else counts it unchanged).
    pub fn update(&mut self, head: OpHead, object: &Object, changes: BTreeMap<String, Change>) -> Option<String> {
        let deps = self
            .refs
            .dependencies(&changes.values().map(|c| &c.after).collect::<Vec<_>>());
        self.plan.update(head, object, changes, deps)
    }

    /// An update for another reason than a Proxmox change (soft-delete, restore).
    pub fn update_because(&mut self, head: OpHead, target: Target, reason: Reason, changes: BTreeMap<String, Change>) {
        let mut deps = self
            .refs
            .dependencies(&changes.values().map(|c| &c.after).collect::<Vec<_>>());
        deps.extend(self.refs.dependencies(&[&target.id]));
        self.plan.update_because(head, target, reason, changes, deps);
    }

    /// One skip per stage and disabled resource (SPEC §2), not one per object.
    pub fn skip_disabled(&mut self, stage: Stage, resource: ResourceType, model: Model) {
        let reason = self.modes.disabled_reason(resource);
        let head = OpHead {
            stage: stage.name(),
            resource: Some(resource),
            model,
            identity: "*",
            key: format!("every {}", resource.name()),
        };
        self.plan.skip(head, None, Reason::ModeDisabled, reason);
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
    let settings = read_settings(input.settings.as_ref(), input.endpoint.as_ref())?;
    let stages = parse_sync_types(input.sync_types.as_ref(), &Path::ROOT.key("sync_types"))?;
    let report = crate::mode_report(&settings, &stages);
    let snapshot = ProxmoxSnapshot::read(input.proxmox.as_ref())?;
    let netbox_state = NetboxState::read(&input.netbox)?;

    let running: Vec<Stage> = report.stages.iter().filter(|s| s.run).map(|s| s.stage).collect();
    let mut builder = PlanBuilder::default();
    skip_stages(&mut builder, &report.stages);
    let mut inventory = None;
    if running.iter().any(|s| implemented(*s)) {
        match source::inventory(&snapshot)? {
            Ok(found) => inventory = Some(found),
            Err(unreadable) => builder.warn(
                Warning::new(
                    WarningCode::ProxmoxUnreadable,
                    format!("{}; nothing can be planned for this endpoint", unreadable.why),
                )
                .at_path(unreadable.path),
            ),
        }
    }
    let endpoint = endpoint_info(&settings, inventory.as_ref());

    let builder = match &inventory {
        Some(inventory) => {
            let mut models: Vec<Model> = ALWAYS_READ.to_vec();
            models.extend(running.iter().flat_map(|s| collections_for(*s).iter().copied()));
            let loaded = Loaded::load(&netbox_state, &models)?;
            let mut ctx = Context {
                settings: &settings,
                modes: &report.modes,
                snapshot: &snapshot,
                inventory,
                loaded: &loaded,
                refs: Refs::default(),
                plan: builder,
            };
            run_stages(&mut ctx, &running)?;
            ctx.plan
        }
        None => builder,
    };
    let finished = builder.finish();
    let given = input.origin()?;
    let origin = Origin {
        netbox_url: given.netbox_url,
        netbox_version: given.netbox_version,
        instance: given.instance,
        input_fingerprint: input.fingerprint(),
    };
    Ok(Plan {
        format_version: FORMAT_VERSION,
        planner_version: crate::VERSION,
        complete: !finished.warnings.iter().any(|w| w.code.makes_plan_incomplete()),
        origin,
        endpoint,
        modes: report.modes,
        stages: report.stages,
        query_flags: report.query_flags,
        operations: finished.operations,
        conflicts: finished.conflicts,
        warnings: finished.warnings,
        summary: finished.summary,
    })
}

fn run_stages(ctx: &mut Context, running: &[Stage]) -> Result<()> {
    if let Some(mut warning) = ctx.loaded.unavailable(ALWAYS_READ) {
        warning.message.push_str("; nothing can be planned");
        ctx.plan.warn(warning);
        return Ok(());
    }
    let runnable: Vec<Stage> = running
        .iter()
        .copied()
        .filter(|stage| match ctx.loaded.unavailable(collections_for(*stage)) {
            Some(mut warning) => {
                warning.message = format!("stage {} skipped: {}", stage.name(), warning.message);
                ctx.plan.warn(warning.in_stage(stage.name()));
                false
            }
            None => true,
        })
        .collect();
    bootstrap::plan(ctx, &runnable)?;
    cluster::resolve(ctx, runnable.contains(&Stage::Devices));
    let needs_vms = runnable
        .iter()
        .any(|s| matches!(s, Stage::VmInterfaces | Stage::IpAddresses | Stage::Replications));
    if needs_vms && !runnable.contains(&Stage::VirtualMachines) {
        vm::plan(ctx, false)?;
    }
    for stage in runnable {
        match stage {
            Stage::Devices => node::plan(ctx),
            Stage::Storage => storage::plan(ctx)?,
            Stage::VirtualMachines => vm::plan(ctx, true)?,
            Stage::VmTemplates => template::plan(ctx)?,
            Stage::VmInterfaces => interface::plan(ctx),
            Stage::IpAddresses => {
                mac::plan(ctx);
                ip::plan(ctx);
            }
            Stage::Replications => replication::plan(ctx)?,
            Stage::Sdn => sdn::plan(ctx),
        }
        let max = ctx.settings.options.max_deletes;
        ctx.plan.guard_deletes(stage.name(), diff::is_removal, max);
    }
    Ok(())
}
