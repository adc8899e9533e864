//! The plan: the core's only output (SPEC §7).
//!
//! Operation ids come from stage, model and identity, never from position, so
//! two plans of the same world name the same operation the same way and a plan
//! can be reviewed, saved and applied later (Terraform's plan/apply split).

use crate::modes::{QueryFlags, ResolvedModes, ResourceType, StageStatus};
use crate::netbox::{Model, Object};
use crate::vec_map::{VecMap, VecSet};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The plan format's version: a host refuses a plan of another.
pub const FORMAT_VERSION: u32 = 1;

/// What an operation does to its NetBox object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// POST `fields` to `collection`.
    Create,
    /// PATCH each `changes[field].after` to the `target`.
    Update,
    /// DELETE the `target`.
    Delete,
    /// Do nothing: the plan says why (`reason`, `detail`).
    Skip,
}

impl Action {
    /// The four actions.
    pub const ALL: [Action; 4] = [Action::Create, Action::Update, Action::Delete, Action::Skip];

    /// The wire name: `create`, `update`, `delete`, `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Skip => "skip",
        }
    }
}

/// Why an operation is in the plan. Stable codes a UI or script can filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A bootstrap object (tag, custom field, type, role, ...) NetBox lacks.
    MissingInNetbox,
    /// Proxmox has it, NetBox does not yet.
    NewInProxmox,
    /// Proxmox and NetBox disagree on fields the sync owns.
    ChangedInProxmox,
    /// NetBox has it, Proxmox no longer does.
    GoneFromProxmox,
    /// A soft-deleted VM is back in Proxmox.
    BackInProxmox,
    /// The object carries the `bootstrap-only` tag: the sync leaves it as it is.
    BootstrapOnlyTag,
    /// Its resource type's sync mode is `disabled` (or `bootstrap_only`, for a change).
    ModeDisabled,
    /// Several NetBox objects (or Proxmox items) claim one identity: none is touched.
    AmbiguousIdentity,
    /// The matching NetBox object belongs to someone else (untagged, elsewhere).
    NotOwned,
    /// A Proxmox path the decision needs is missing or failed.
    IncompleteSnapshot,
    /// The stage would delete more than `max_deletes`: it deletes nothing.
    MaxDeletesExceeded,
    /// `delete_orphans` is off: a gone VM is reported, not retired.
    OrphanKept,
    /// Deleting would take manually created objects with it.
    HasManualObjects,
    /// A NetBox VM row for what is now a Proxmox template.
    IsTemplate,
    /// A replication job whose guest has no VM in NetBox.
    UnknownVm,
    /// An SDN termination whose target already terminates another L2VPN.
    SdnConflict,
    /// Proxmox has it, but NetBox (or the plugin) has no way to store it.
    UnsupportedByNetbox,
    /// What it belongs to (the cluster, the VM) is not in NetBox.
    MissingParent,
    /// A same-name NetBox object with no Proxmox identity: not copied, not
    /// taken (unless `adopt_by_name`).
    UnidentifiedSameName,
    /// An operator changed the field in NetBox and Proxmox changed it too
    /// (`conflicts` has the three values and the choices).
    OperatorEdited,
    /// NetBox's change log could not be read: whether an operator changed
    /// the field is unknown, so it is not written.
    OwnershipUnknown,
    /// A run for some VMs (`$.subset`) leaves this to a full run.
    SubsetRun,
}

/// Which rule found an existing object (SPEC §3.1): an operation on an
/// existing object says how it was matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    /// The Proxbox plugin's sync-state record.
    SyncState,
    /// Our custom fields (`proxmox_vmid`, `proxmox_vm_type`, `proxmox_endpoint`).
    CustomField,
    /// The custom fields older Proxbox releases wrote (read only).
    LegacyCustomField,
    /// A same-name object without identity, adopted because `adopt_by_name` is on.
    AdoptedByName,
    /// The object's own key: a name, a parent and a name, an address.
    NaturalKey,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 22] = {
        use Reason::*;
        [
            MissingInNetbox,
            NewInProxmox,
            ChangedInProxmox,
            GoneFromProxmox,
            BackInProxmox,
            BootstrapOnlyTag,
            ModeDisabled,
            AmbiguousIdentity,
            NotOwned,
            IncompleteSnapshot,
            MaxDeletesExceeded,
            OrphanKept,
            HasManualObjects,
            IsTemplate,
            UnknownVm,
            SdnConflict,
            UnsupportedByNetbox,
            MissingParent,
            UnidentifiedSameName,
            OperatorEdited,
            OwnershipUnknown,
            SubsetRun,
        ]
    };
}

impl MatchedBy {
    /// For messages: `the sync-state record`, ...
    pub fn label(self) -> &'static str {
        match self {
            MatchedBy::SyncState => "the sync-state record",
            MatchedBy::CustomField => "the custom fields",
            MatchedBy::LegacyCustomField => "the legacy Proxbox custom fields",
            MatchedBy::AdoptedByName => "the name",
            MatchedBy::NaturalKey => "the natural key",
        }
    }
}

/// The existing NetBox object an update, delete or skip is about.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Target {
    /// A NetBox id, or `{"$ref": op}` for an object this plan creates first.
    #[cfg_attr(test, schemars(with = "crate::schema::IdOrRef"))]
    pub id: Value,
    /// The precondition: apply refuses the operation if this changed.
    pub last_updated: Option<String>,
}

impl Target {
    pub(crate) fn of(object: &Object) -> Target {
        Target {
            id: Value::from(object.id),
            last_updated: object.last_updated().map(str::to_owned),
        }
    }

    /// An object created earlier in this plan: no precondition to check.
    pub(crate) fn created(reference: &Value) -> Target {
        Target {
            id: reference.clone(),
            last_updated: None,
        }
    }
}

/// One field of an update: what NetBox holds, and what the sync writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Change {
    /// The value NetBox holds now (`null` when absent).
    pub before: Value,
    /// The value to PATCH.
    pub after: Value,
}

/// One step of the plan: create, update, delete or skip one NetBox object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Operation {
    /// `<stage>:<model>:<identity>`: the same in every plan of the same world.
    pub id: String,
    /// The stage that planned it (a sync type, or a bookkeeping stage).
    #[cfg_attr(test, schemars(with = "crate::schema::OperationStage"))]
    pub stage: &'static str,
    /// The sync-mode resource type that governs it, where one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceType>,
    /// NetBox's `app_label.model`.
    pub model: &'static str,
    /// The REST collection to write to.
    pub collection: &'static str,
    /// What it does.
    pub action: Action,
    /// The object's name for people: `qemu/101 web01`, `pve1/vmbr0`, ...
    pub key: String,
    /// Why it is in the plan.
    pub reason: Reason,
    /// The reason in words, where there is more to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The existing object (not for a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// How the existing object was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<MatchedBy>,
    /// The create payload (`create` only).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// Field-level before/after (`update` only); `after` is what to PATCH.
    #[serde(skip_serializing_if = "VecMap::is_empty")]
    pub changes: VecMap<String, Change>,
    /// Operations that must succeed first: those whose `$ref` it holds, and
    /// writes NetBox needs to have seen before this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// NetBox list filters that find the object a create made (`$ref`s
    /// resolve like the payload's): what a host looks for before it re-sends
    /// a create whose answer it lost.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub lookup: Map<String, Value>,
    /// A delete, or a retire that takes an object out of service: what
    /// `max_deletes` counts.
    #[serde(skip)]
    pub removes: bool,
    /// A support object (a type, a role, a site) that is only worth creating
    /// for an operation that refers to it: dropped when nothing does.
    #[serde(skip)]
    pub only_if_referenced: bool,
    /// A skip about a stage's resource as a whole (its mode disables it, its
    /// parent is missing), not about one object: no target, and its id ends
    /// in the identity `*`. A UI shows it with its stage.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stage_wide: bool,
}

/// The identity of a stage-wide skip.
pub const STAGE_WIDE: &str = "*";

/// `{"$ref": "<op id>"}`: the id NetBox will give an object this plan creates.
pub fn reference(op_id: &str) -> Value {
    json!({ "$ref": op_id })
}

/// What a warning is about. One enum, so the codes a UI can filter on are
/// exactly these (the README lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "kebab-case")]
pub enum WarningCode {
    /// Several NetBox objects claim one identity: none is touched.
    AmbiguousIdentity,
    /// The input lists one object twice; one deterministic winner is used.
    DuplicateIdentity,
    /// NetBox keeps host addresses unique: this one is not created.
    DuplicateIp,
    /// A Proxmox answer a stage needs is missing or failed: nothing is deleted from it.
    IncompleteSnapshot,
    /// A subnet or address Proxmox reports is not a valid CIDR: it is left out.
    InvalidCidr,
    /// A stage would delete more than `max_deletes`: it deletes nothing.
    MaxDeletesExceeded,
    /// A NetBox collection could not be read: the plan is incomplete.
    NetboxUnreadable,
    /// A NetBox object with our name but no identity, or one that belongs elsewhere.
    NotOwned,
    /// NetBox has no Proxbox plugin: its rows are not planned, the rest is.
    ProxboxPluginAbsent,
    /// `/cluster/status` or `/cluster/resources` failed: nothing can be planned.
    ProxmoxUnreadable,
    /// An SDN path older Proxmox releases do not have (404/501).
    SdnPathUnsupported,
    /// An SDN answer is not what Proxmox sends: that part of the SDN is not planned.
    SdnUnreadable,
    /// Proxmox has it, the plugin cannot store it.
    SdnUnsupported,
    /// Rows of a Proxmox list that are not objects: they are skipped.
    UnreadableRow,
    /// A same-name NetBox object with no identity holds back a create.
    UnidentifiedSameName,
    /// NetBox's change log (or the journal) could not be read: updates an
    /// operator may have made are held.
    ChangelogUnreadable,
    /// `on_operator_edit` is `ask`: conflicts wait for a choice.
    DecisionsPending,
    /// A guest disk without `size=` (a passthrough device, a bind mount):
    /// NetBox's virtual disks need a size; a NetBox disk of its name is kept.
    UnsizedDisk,
}

impl WarningCode {
    /// Every code, in declaration order.
    pub const ALL: [WarningCode; 18] = {
        use WarningCode::*;
        [
            AmbiguousIdentity,
            DuplicateIdentity,
            DuplicateIp,
            IncompleteSnapshot,
            InvalidCidr,
            MaxDeletesExceeded,
            NetboxUnreadable,
            NotOwned,
            ProxboxPluginAbsent,
            ProxmoxUnreadable,
            SdnPathUnsupported,
            SdnUnreadable,
            SdnUnsupported,
            UnreadableRow,
            UnidentifiedSameName,
            ChangelogUnreadable,
            DecisionsPending,
            UnsizedDisk,
        ]
    };

    /// Codes after which the plan cannot be trusted to be complete: a host
    /// must report such a run as failed, never as "nothing to do".
    pub fn makes_plan_incomplete(self) -> bool {
        matches!(self, WarningCode::ProxmoxUnreadable | WarningCode::NetboxUnreadable)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
/// Something a person should know about the plan; `code` says what.
pub struct Warning {
    /// What it is about.
    pub code: WarningCode,
    /// What happened and what the plan does about it.
    pub message: String,
    /// The Proxmox answer it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxmox_path: Option<String>,
    /// The NetBox object it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netbox_collection: Option<&'static str>,
    /// The NetBox object's id, with `netbox_collection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netbox_id: Option<u64>,
    /// The stage it concerns, when it is about a whole stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(with = "Option<crate::schema::OperationStage>"))]
    pub stage: Option<&'static str>,
}

impl Warning {
    pub(crate) fn new(code: WarningCode, message: impl Into<String>) -> Warning {
        Warning {
            code,
            message: message.into(),
            proxmox_path: None,
            netbox_collection: None,
            netbox_id: None,
            stage: None,
        }
    }

    pub(crate) fn at_path(mut self, path: impl Into<String>) -> Warning {
        self.proxmox_path = Some(path.into());
        self
    }

    pub(crate) fn about(mut self, model: Model, id: u64) -> Warning {
        self.netbox_collection = Some(model.collection);
        self.netbox_id = Some(id);
        self
    }

    pub(crate) fn in_stage(mut self, stage: &'static str) -> Warning {
        self.stage = Some(stage);
        self
    }

    /// Names the collection alone (an unreadable one).
    pub(crate) fn in_collection(mut self, model: Model) -> Warning {
        self.netbox_collection = Some(model.collection);
        self
    }
}

/// Where a plan was made, so it is applied nowhere else (Terraform refuses a
/// plan for another workspace the same way). Tokens never enter it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Origin {
    /// The NetBox base URL the input was read from (origin and path prefix).
    pub netbox_url: Option<String>,
    /// NetBox's version, as its status endpoint reported it.
    pub netbox_version: Option<String>,
    /// A stable id of the NetBox instance, where the host found one.
    pub instance: Option<String>,
    /// FNV-1a of the input (list order aside): the world this plan saw.
    pub input_fingerprint: String,
}

/// What `conflicts` lists: each entry says its `kind`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConflictEntry {
    /// An SDN termination not written (`sdn-termination`).
    SdnTermination(Conflict),
    /// A field both an operator and Proxmox changed (`operator-edited`).
    OperatorEdited(FieldConflict),
}

/// A field an operator changed in NetBox after the sync last wrote it, and
/// Proxmox changed too. The operation with the same `id` does what
/// `resolution` says; `choices` holds the operation for each way out, which a
/// host puts in its place when someone chooses (`apply --accept-proxmox ID`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FieldConflict {
    /// The operation's id: `<stage>:<model>:<identity>@<field>`.
    pub id: String,
    /// The operation's stage.
    #[cfg_attr(test, schemars(with = "crate::schema::OperationStage"))]
    pub stage: &'static str,
    /// NetBox's `app_label.model` of the object.
    pub model: &'static str,
    /// The object's NetBox id.
    pub object_id: u64,
    /// The object's name for people, as in its operation.
    pub key: String,
    /// The field both changed.
    pub field: String,
    /// What the sync last wrote (before the operator's edit).
    pub base: Value,
    /// What NetBox holds now (the operator's value).
    pub netbox: Value,
    /// What Proxmox says now.
    pub proxmox: Value,
    /// Who changed it in NetBox, and when (the change log's latest edit).
    pub changed_by: Option<String>,
    /// When, as NetBox's change log records it.
    pub changed_at: Option<String>,
    /// What the plan does (`on_operator_edit`).
    pub resolution: crate::settings::OnOperatorEdit,
    /// `accept-proxmox` (an update) and `keep-netbox` (a journal entry
    /// that keeps the operator's value for good).
    #[cfg_attr(test, schemars(with = "crate::schema::Choices"))]
    pub choices: VecMap<&'static str, Operation>,
}

/// The choice that writes Proxmox's value over the operator's.
pub const ACCEPT_PROXMOX: &str = "accept-proxmox";
/// The choice that keeps the operator's value for good.
pub const KEEP_NETBOX: &str = "keep-netbox";

/// An SDN termination the planner would not write because its target
/// already terminates another L2VPN (SPEC §5): recorded, never overwritten.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Conflict {
    /// What Proxmox terminates there: `vnet`, ...
    pub source_type: String,
    /// Its Proxmox name.
    pub source_name: String,
    /// The NetBox model of the termination's target.
    pub target_type: String,
    /// The target's NetBox id.
    pub target_id: u64,
    /// The L2VPN the planner wanted there: an id, or a `$ref` to its create.
    #[cfg_attr(test, schemars(with = "crate::schema::IdOrRef"))]
    pub intended_l2vpn: Value,
    /// That L2VPN's slug.
    pub intended_l2vpn_slug: String,
    /// The L2VPN the target terminates now.
    pub existing_l2vpn: u64,
    /// Why it is not written, in words.
    pub reason: String,
}

/// Operations of each action, and what needed none.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Counts {
    /// Creates.
    pub create: u64,
    /// Updates.
    pub update: u64,
    /// Deletes.
    pub delete: u64,
    /// Skips.
    pub skip: u64,
    /// Objects already as Proxmox says: no operation.
    pub unchanged: u64,
    /// Fields an operator changed that Proxmox did not: left alone, no operation.
    pub operator_owned: u64,
}

impl Counts {
    fn add(&mut self, action: Action) {
        match action {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Delete => self.delete += 1,
            Action::Skip => self.skip += 1,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
/// The plan's counts, in total and per stage.
pub struct Summary {
    /// The whole plan.
    #[serde(flatten)]
    pub total: Counts,
    /// Each stage that planned anything.
    #[cfg_attr(test, schemars(with = "VecMap<crate::schema::OperationStage, Counts>"))]
    pub stages: VecMap<&'static str, Counts>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
/// The Proxmox endpoint the plan is for, as the input named it.
pub struct EndpointInfo {
    /// The plugin's endpoint id.
    pub id: Option<u64>,
    /// The endpoint's name.
    pub name: Option<String>,
    /// The Proxmox cluster's name.
    pub cluster: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
/// What the core returns: everything a host needs to show, apply and report a sync.
pub struct Plan {
    /// `FORMAT_VERSION`.
    pub format_version: u32,
    /// The planner that made it (`VERSION`).
    pub planner_version: &'static str,
    /// False when the input was too incomplete to plan (see the warnings):
    /// an empty plan then means "could not look", not "nothing to do".
    pub complete: bool,
    /// Where it was made, so it is applied nowhere else.
    pub origin: Origin,
    /// The endpoint it is for.
    pub endpoint: EndpointInfo,
    /// The sync modes in force.
    pub modes: ResolvedModes,
    /// The requested stages, each with whether it ran.
    pub stages: Vec<StageStatus>,
    /// What the original plugin would send its backend.
    pub query_flags: QueryFlags,
    /// What to do, in an order that respects `depends_on`.
    pub operations: Vec<Operation>,
    /// What the plan would not decide alone.
    pub conflicts: Vec<ConflictEntry>,
    /// What a person should know.
    pub warnings: Vec<Warning>,
    /// Counts of `operations`.
    pub summary: Summary,
    /// What a host sends as `changelog_message` with every write of this
    /// plan: NetBox's change log then names the sync whoever's token it was.
    pub changelog_message: String,
}

pub(crate) struct Finished {
    pub operations: Vec<Operation>,
    pub warnings: Vec<Warning>,
    pub conflicts: Vec<ConflictEntry>,
    pub summary: Summary,
}

/// Collects operations while the resource planners run.
#[derive(Default)]
pub(crate) struct PlanBuilder {
    operations: Vec<Operation>,
    index: OpIndex,
    warnings: Vec<Warning>,
    conflicts: Vec<ConflictEntry>,
    unchanged: VecMap<&'static str, u64>,
    operator_owned: VecMap<&'static str, u64>,
}

/// Where operations are in `PlanBuilder::operations`: the planners look
/// operations up once per object, which a scan would make quadratic.
#[derive(Default)]
struct OpIndex {
    /// By operation id.
    position: std::collections::HashMap<String, usize>,
    /// The update of each existing object, by model and id.
    updates: std::collections::HashMap<(&'static str, u64), usize>,
}

impl OpIndex {
    fn add(&mut self, at: usize, op: &Operation) {
        self.position.insert(op.id.clone(), at);
        if let (Action::Update, Some(id)) = (op.action, op.target.as_ref().and_then(|t| t.id.as_u64())) {
            self.updates.entry((op.model, id)).or_insert(at);
        }
    }
}

/// What every operation has; the constructors below fill in the rest.
pub(crate) struct OpHead<'k> {
    pub stage: &'static str,
    pub resource: Option<ResourceType>,
    pub model: Model,
    pub identity: &'k str,
    pub key: String,
}

impl OpHead<'_> {
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.stage, self.model.name, self.identity)
    }

    /// An update of the object, not planned yet (a choice of a conflict).
    pub fn update_op(
        self,
        target: Target,
        reason: Reason,
        changes: VecMap<String, Change>,
        depends_on: Vec<String>,
    ) -> Operation {
        let mut op = self.operation(Action::Update, reason);
        op.target = Some(target);
        op.changes = changes;
        op.depends_on = sorted_unique(depends_on);
        op
    }

    /// A create, not planned yet (a choice of a conflict).
    pub fn create_op(
        self,
        reason: Reason,
        fields: Map<String, Value>,
        lookup: Map<String, Value>,
        depends_on: Vec<String>,
    ) -> Operation {
        let mut op = self.operation(Action::Create, reason);
        op.fields = fields;
        op.lookup = lookup;
        op.depends_on = sorted_unique(depends_on);
        op
    }

    /// A skip of an existing object, not planned yet.
    pub fn skip_op(self, object: &Object, reason: Reason, detail: String) -> Operation {
        let mut op = self.operation(Action::Skip, reason);
        op.target = Some(Target::of(object));
        op.detail = Some(detail);
        op
    }

    fn operation(self, action: Action, reason: Reason) -> Operation {
        Operation {
            id: self.id(),
            stage: self.stage,
            resource: self.resource,
            model: self.model.name,
            collection: self.model.collection,
            action,
            key: self.key,
            reason,
            detail: None,
            target: None,
            matched_by: None,
            fields: Map::new(),
            changes: VecMap::new(),
            depends_on: Vec::new(),
            lookup: Map::new(),
            removes: false,
            only_if_referenced: false,
            stage_wide: false,
        }
    }
}

fn sorted_unique(mut ids: Vec<String>) -> Vec<String> {
    crate::sort::sort(&mut ids);
    ids.dedup();
    ids
}

impl PlanBuilder {
    /// Operation ids are identities: two Proxmox rows that map to the same
    /// object (a duplicated job id, say) must not plan it twice. The first wins.
    fn push(&mut self, op: Operation) {
        if !self.index.position.contains_key(&op.id) {
            self.index.add(self.operations.len(), &op);
            self.operations.push(op);
        } else {
            let message = format!("{} is planned once; another Proxmox row maps to the same object", op.id);
            self.warnings
                .push(Warning::new(WarningCode::DuplicateIdentity, message));
        }
    }

    /// Returns the new operation's id, for `$ref`s and `depends_on`.
    pub fn create(
        &mut self,
        head: OpHead,
        reason: Reason,
        fields: Map<String, Value>,
        lookup: Map<String, Value>,
        depends_on: Vec<String>,
    ) -> String {
        let op = head.create_op(reason, fields, lookup, depends_on);
        let id = op.id.clone();
        self.push(op);
        id
    }

    /// Plans the update when anything changed, else counts the object unchanged.
    pub fn update(
        &mut self,
        head: OpHead,
        target: Target,
        reason: Reason,
        changes: VecMap<String, Change>,
        matched_by: Option<MatchedBy>,
        depends_on: Vec<String>,
    ) -> Option<String> {
        if changes.is_empty() {
            *self.unchanged.entry(head.stage).or_default() += 1;
            return None;
        }
        let mut op = head.update_op(target, reason, changes, depends_on);
        op.matched_by = matched_by;
        let id = op.id.clone();
        self.push(op);
        Some(id)
    }

    /// An update that takes a gone object out of service (a VM soft-delete).
    pub fn removal(&mut self, head: OpHead, target: Target, changes: VecMap<String, Change>) {
        let mut op = head.operation(Action::Update, Reason::GoneFromProxmox);
        op.target = Some(target);
        op.changes = changes;
        op.removes = true;
        self.push(op);
    }

    pub fn delete(&mut self, head: OpHead, object: &Object) {
        let mut op = head.operation(Action::Delete, Reason::GoneFromProxmox);
        op.target = Some(Target::of(object));
        op.removes = true;
        self.push(op);
    }

    pub fn skip(
        &mut self,
        head: OpHead,
        object: Option<&Object>,
        reason: Reason,
        detail: impl Into<String>,
        matched_by: Option<MatchedBy>,
    ) {
        let mut op = head.operation(Action::Skip, reason);
        op.target = object.map(Target::of);
        op.detail = Some(detail.into());
        op.matched_by = matched_by;
        self.push(op);
    }

    /// The one skip of a stage's resource as a whole (see `Operation::stage_wide`).
    pub fn skip_stage_wide(&mut self, head: OpHead, reason: Reason, detail: impl Into<String>) {
        let head = OpHead {
            identity: STAGE_WIDE,
            ..head
        };
        let mut op = head.operation(Action::Skip, reason);
        op.detail = Some(detail.into());
        op.stage_wide = true;
        self.push(op);
    }

    pub fn warn(&mut self, warning: Warning) {
        self.warnings.push(warning);
    }

    pub fn has_warning(&self, warning: &Warning) -> bool {
        self.warnings.contains(warning)
    }

    /// Whether an operation with this id is planned.
    pub fn has(&self, id: &str) -> bool {
        self.index.position.contains_key(id)
    }

    /// The planned operation with this id.
    pub fn get(&self, id: &str) -> Option<&Operation> {
        self.index.position.get(id).and_then(|&at| self.operations.get(at))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Operation> {
        let at = *self.index.position.get(id)?;
        self.operations.get_mut(at)
    }

    /// Makes `op` wait for `after`, when both are planned and `after` does
    /// not already wait for `op` (which would be a cycle).
    pub fn add_dependency(&mut self, op: &str, after: &str) {
        if !self.has(op) || !self.has(after) {
            return;
        }
        let cycle = self.get(after).is_some_and(|o| o.depends_on.iter().any(|d| d == op));
        if cycle {
            return;
        }
        if let Some(waiting) = self.get_mut(op) {
            if !waiting.depends_on.iter().any(|d| d == after) {
                waiting.depends_on.push(after.to_owned());
                crate::sort::sort(&mut waiting.depends_on);
            }
        }
    }

    /// The changes an update of this plan makes to an object, if it has one.
    pub fn changes_of(&self, model: Model, id: u64) -> Option<&VecMap<String, Change>> {
        self.update_of(model, id).map(|op| &op.changes)
    }

    /// This plan's update of an existing object, if it has one.
    pub fn update_of(&self, model: Model, id: u64) -> Option<&Operation> {
        let at = *self.index.updates.get(&(model.name, id))?;
        self.operations.get(at).filter(|op| op.action == Action::Update)
    }

    /// Marks a create as needed only by what refers to it (see `finish`).
    pub fn only_if_referenced(&mut self, id: &str) {
        if let Some(op) = self.get_mut(id) {
            op.only_if_referenced = true;
        }
    }

    /// Drops the support creates nothing refers to, until none is left
    /// (a device type nothing uses takes its manufacturer with it).
    fn drop_unreferenced(&mut self) {
        loop {
            let referenced: VecSet<&str> = VecSet::from_iter(
                self.operations
                    .iter()
                    .flat_map(|op| op.depends_on.iter().map(String::as_str)),
            );
            let unused: VecSet<String> = VecSet::from_iter(
                self.operations
                    .iter()
                    .filter(|op| op.only_if_referenced && !referenced.contains(op.id.as_str()))
                    .map(|op| op.id.clone()),
            );
            if unused.is_empty() {
                return;
            }
            self.operations.retain(|op| !unused.contains(&op.id));
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.index = OpIndex::default();
        for (at, op) in self.operations.iter().enumerate() {
            self.index.add(at, op);
        }
    }

    /// Whether the operation with this id is a create.
    pub fn creates(&self, id: &str) -> bool {
        self.get(id).is_some_and(|op| op.action == Action::Create)
    }

    pub fn conflict(&mut self, conflict: Conflict) {
        self.conflicts.push(ConflictEntry::SdnTermination(conflict));
    }

    /// A field conflict and the operation that carries out its resolution.
    pub fn field_conflict(&mut self, conflict: FieldConflict, planned: Operation) {
        self.push(planned);
        self.conflicts.push(ConflictEntry::OperatorEdited(conflict));
    }

    /// A planned skip or update built elsewhere (`OpHead::skip_op`, ...).
    pub fn planned(&mut self, op: Operation) {
        self.push(op);
    }

    /// Fields left to the operator in a stage: no operation, a count.
    pub fn operator_owned(&mut self, stage: &'static str, fields: u64) {
        if fields > 0 {
            *self.operator_owned.entry(stage).or_default() += fields;
        }
    }

    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The `max_deletes` guard (SPEC §6): above the limit, a stage's deletes
    /// (and soft-deletes) all become skips. All or nothing: a partial delete
    /// would depend on an arbitrary order.
    pub fn guard_deletes(&mut self, stage: &'static str, max: u64) {
        let removes = |op: &Operation| op.stage == stage && op.removes && op.action != Action::Skip;
        let count = self.operations.iter().filter(|op| removes(op)).count() as u64;
        if count <= max {
            return;
        }
        for op in self.operations.iter_mut().filter(|op| removes(op)) {
            op.detail = Some(format!(
                "{} {} planned; max_deletes is {max}",
                count,
                op.action.as_str()
            ));
            op.action = Action::Skip;
            op.reason = Reason::MaxDeletesExceeded;
            op.changes.clear();
        }
        let message = format!(
            "stage {stage} would remove {count} objects, more than max_deletes ({max}); nothing was removed. \
             Check the snapshot, then raise max_deletes in the settings to allow it"
        );
        self.warn(Warning::new(WarningCode::MaxDeletesExceeded, message).in_stage(stage));
    }

    /// Creates and updates in dependency order, then deletes children-first.
    pub fn finish(mut self) -> Finished {
        self.drop_unreferenced();
        let (deletes, writes): (Vec<Operation>, Vec<Operation>) =
            self.operations.into_iter().partition(|op| op.action == Action::Delete);
        let mut operations = Vec::with_capacity(writes.len() + deletes.len());
        let mut rest = writes.into_iter().peekable();
        while let Some(first) = rest.next() {
            let stage = first.stage;
            let mut segment = vec![first];
            while let Some(op) = rest.next_if(|op| op.stage == stage) {
                segment.push(op);
            }
            operations.extend(group_runs(segment));
        }
        operations.extend(ordered_deletes(deletes));
        let mut summary = Summary::default();
        for op in &operations {
            summary.total.add(op.action);
            summary.stages.entry(op.stage).or_default().add(op.action);
        }
        for (stage, count) in self.unchanged {
            summary.total.unchanged += count;
            summary.stages.entry(stage).or_default().unchanged += count;
        }
        for (stage, count) in self.operator_owned {
            summary.total.operator_owned += count;
            summary.stages.entry(stage).or_default().operator_owned += count;
        }
        Finished {
            operations,
            warnings: self.warnings,
            conflicts: self.conflicts,
            summary,
        }
    }
}

/// Deletes children first: in the reverse of the order planned (planners
/// retire parents before children), moved only where one waits for another
/// (an interface NetBox keeps while a VLAN on it exists).
fn ordered_deletes(deletes: Vec<Operation>) -> Vec<Operation> {
    // A queue that loses its smallest elements one by one: the B-tree (a
    // sorted vector would move every element left at each step).
    use std::collections::BTreeSet;
    let mut pending: Vec<Option<Operation>> = deletes.into_iter().rev().map(Some).collect();
    let waits = |op: &Operation, pending: &[Option<Operation>]| {
        op.depends_on
            .iter()
            .any(|dep| pending.iter().flatten().any(|other| other.id == *dep))
    };
    let mut ordered = Vec::with_capacity(pending.len());
    let mut left: BTreeSet<usize> = BTreeSet::new();
    left.extend(0..pending.len());
    while !left.is_empty() {
        let next = left
            .iter()
            .copied()
            .find(|at| {
                pending
                    .get(*at)
                    .and_then(Option::as_ref)
                    .is_some_and(|op| !waits(op, &pending))
            })
            // A cycle cannot come out of the planners; keep the rest in order.
            .or_else(|| left.first().copied());
        let Some(at) = next else { break };
        left.remove(&at);
        ordered.extend(pending.get_mut(at).and_then(Option::take));
    }
    ordered
}

/// Reorders one stage's operations so that operations on the same collection
/// with the same action stand together (an executor sends each run as one
/// bulk request), without ever putting an operation before what it depends
/// on. When the runs themselves depend on each other without a circle (tags
/// before VMs before their sync-state records), every run is one block, in
/// dependency order; otherwise `interleaved_runs` does what it can.
fn group_runs(segment: Vec<Operation>) -> Vec<Operation> {
    use crate::vec_map::VecSet;
    use std::collections::HashMap;
    let run_of = |op: &Operation| (op.collection, op.action);
    let mut keys: Vec<(&str, Action)> = Vec::new();
    for op in &segment {
        if !keys.contains(&run_of(op)) {
            keys.push(run_of(op));
        }
    }
    let position: HashMap<&str, usize> = segment.iter().enumerate().map(|(i, op)| (op.id.as_str(), i)).collect();
    let key_index = |key: (&str, Action)| keys.iter().position(|k| *k == key).unwrap_or_default();
    let mut after: Vec<VecSet<usize>> = vec![VecSet::new(); keys.len()];
    for op in &segment {
        let key = key_index(run_of(op));
        for dep in op.depends_on.iter().filter_map(|d| position.get(d.as_str())) {
            let dep_key = segment.get(*dep).map(|d| key_index(run_of(d))).unwrap_or(key);
            if dep_key != key {
                if let Some(set) = after.get_mut(key) {
                    set.insert(dep_key);
                }
            }
        }
    }
    // Kahn over the runs, earliest first among the ready ones.
    let mut order: Vec<usize> = Vec::with_capacity(keys.len());
    let mut placed = vec![false; keys.len()];
    while order.len() < keys.len() {
        let next = (0..keys.len()).find(|k| {
            !placed.get(*k).copied().unwrap_or(true)
                && after
                    .get(*k)
                    .is_some_and(|deps| deps.iter().all(|d| placed.get(*d).copied().unwrap_or(false)))
        });
        let Some(next) = next else {
            return interleaved_runs(segment);
        };
        if let Some(slot) = placed.get_mut(next) {
            *slot = true;
        }
        order.push(next);
    }
    let mut by_key: Vec<Vec<Operation>> = vec![Vec::new(); keys.len()];
    for op in segment {
        let key = key_index(run_of(&op));
        if let Some(list) = by_key.get_mut(key) {
            list.push(op);
        }
    }
    // Inside a run, what waits on another of the run comes after it.
    order
        .into_iter()
        .flat_map(|key| interleaved_runs(std::mem::take(by_key.get_mut(key).unwrap_or(&mut Vec::new()))))
        .collect()
}

/// Kahn's algorithm over operations, preferring to continue the current run,
/// else the earliest ready operation that others wait on (a tag first, so
/// that the VMs before and after it stay one run), else the earliest ready
/// one: deterministic, and the identity when nothing can be grouped.
fn interleaved_runs(segment: Vec<Operation>) -> Vec<Operation> {
    // Queues that lose elements one by one: B-trees (see ordered_deletes).
    use std::collections::{BTreeSet, HashMap};
    let position: HashMap<&str, usize> = segment.iter().enumerate().map(|(i, op)| (op.id.as_str(), i)).collect();
    let mut waiting_on = vec![0usize; segment.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); segment.len()];
    for (i, op) in segment.iter().enumerate() {
        for dep in op.depends_on.iter().filter_map(|d| position.get(d.as_str())) {
            if let (Some(count), Some(list)) = (waiting_on.get_mut(i), dependents.get_mut(*dep)) {
                *count += 1;
                list.push(i);
            }
        }
    }
    let run_of = |i: usize| segment.get(i).map(|op| (op.collection, op.action));
    let mut ready: BTreeSet<usize> = BTreeSet::new();
    let mut ready_by_run: HashMap<(&str, Action), BTreeSet<usize>> = HashMap::new();
    let make_ready = |i: usize, ready: &mut BTreeSet<usize>, by_run: &mut HashMap<(&str, Action), BTreeSet<usize>>| {
        ready.insert(i);
        if let Some(run) = run_of(i) {
            by_run.entry(run).or_default().insert(i);
        }
    };
    for i in (0..segment.len()).filter(|i| waiting_on.get(*i) == Some(&0)) {
        make_ready(i, &mut ready, &mut ready_by_run);
    }
    let mut order = Vec::with_capacity(segment.len());
    let mut current = None;
    while let Some(first) = ready.first().copied() {
        let same_run = current.and_then(|run| ready_by_run.get(&run).and_then(|set| set.first().copied()));
        let awaited = || {
            ready
                .iter()
                .copied()
                .find(|i| dependents.get(*i).is_some_and(|d| !d.is_empty()))
        };
        let next = same_run.or_else(awaited).unwrap_or(first);
        ready.remove(&next);
        current = run_of(next);
        if let Some(set) = current.and_then(|run| ready_by_run.get_mut(&run)) {
            set.remove(&next);
        }
        order.push(next);
        for dependent in dependents.get(next).into_iter().flatten() {
            if let Some(count) = waiting_on.get_mut(*dependent) {
                *count -= 1;
                if *count == 0 {
                    make_ready(*dependent, &mut ready, &mut ready_by_run);
                }
            }
        }
    }
    let mut slots: Vec<Option<Operation>> = segment.into_iter().map(Some).collect();
    let mut grouped: Vec<Operation> = order
        .iter()
        .filter_map(|i| slots.get_mut(*i).and_then(Option::take))
        .collect();
    // A dependency cycle cannot come out of the planners; keep anything left, in order.
    grouped.extend(slots.into_iter().flatten());
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` lists every variant: adding one without listing it fails here.
    #[test]
    fn the_code_lists_are_complete() {
        let listed = |code: WarningCode| WarningCode::ALL.contains(&code);
        let every_warning = |code: WarningCode| match code {
            WarningCode::AmbiguousIdentity
            | WarningCode::DuplicateIdentity
            | WarningCode::DuplicateIp
            | WarningCode::IncompleteSnapshot
            | WarningCode::InvalidCidr
            | WarningCode::MaxDeletesExceeded
            | WarningCode::NetboxUnreadable
            | WarningCode::NotOwned
            | WarningCode::ProxboxPluginAbsent
            | WarningCode::ProxmoxUnreadable
            | WarningCode::SdnPathUnsupported
            | WarningCode::SdnUnreadable
            | WarningCode::SdnUnsupported
            | WarningCode::UnreadableRow
            | WarningCode::UnidentifiedSameName
            | WarningCode::ChangelogUnreadable
            | WarningCode::DecisionsPending
            | WarningCode::UnsizedDisk => listed(code),
        };
        assert!(WarningCode::ALL.into_iter().all(every_warning));
        let every_reason = |reason: Reason| match reason {
            Reason::MissingInNetbox
            | Reason::NewInProxmox
            | Reason::ChangedInProxmox
            | Reason::GoneFromProxmox
            | Reason::BackInProxmox
            | Reason::BootstrapOnlyTag
            | Reason::ModeDisabled
            | Reason::AmbiguousIdentity
            | Reason::NotOwned
            | Reason::IncompleteSnapshot
            | Reason::MaxDeletesExceeded
            | Reason::OrphanKept
            | Reason::HasManualObjects
            | Reason::IsTemplate
            | Reason::UnknownVm
            | Reason::SdnConflict
            | Reason::UnsupportedByNetbox
            | Reason::MissingParent
            | Reason::UnidentifiedSameName
            | Reason::OperatorEdited
            | Reason::OwnershipUnknown
            | Reason::SubsetRun => Reason::ALL.contains(&reason),
        };
        assert!(Reason::ALL.into_iter().all(every_reason));
    }
}
