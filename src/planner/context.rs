//! What every resource planner works with: the inputs, read once (`Context`),
//! the NetBox objects a plan reads (`Loaded`), the tags NetBox has (`Tags`),
//! and the references planners hand each other (`Refs`).

use crate::error::{ErrorCode, PlanError, Result};
use crate::json::Path;
use crate::modes::{ResolvedModes, ResourceType, SyncMode};
use crate::netbox::{self, Collection, Model, NetboxState, Object};
use crate::plan::{Change, MatchedBy, OpHead, PlanBuilder, Reason, Target, Warning, WarningCode};
use crate::settings::Settings;
use crate::source::{Fetched, Inventory, Nic, ProxmoxSnapshot};
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};
use std::rc::Rc;

pub const TAG_PROXBOX: &str = "proxbox";
pub const TAG_BOOTSTRAP_ONLY: &str = "bootstrap-only";
pub const TAG_SOFT_DELETED: &str = "proxbox-soft-deleted";

/// The NetBox objects the plan reads, per model, sorted by id.
pub struct Loaded<'a> {
    objects: VecMap<&'static str, Vec<Object<'a>>>,
    failed: VecMap<&'static str, (Option<u64>, String)>,
}

impl<'a> Loaded<'a> {
    /// Reads the collections; one object listed twice (offset pagination
    /// does that while someone writes) is kept once: its newest copy, ties
    /// broken by content, so the choice never depends on list order.
    pub fn load(netbox: &NetboxState<'a>, models: &[Model], warnings: &mut Vec<Warning>) -> Result<Self> {
        let mut loaded = Loaded {
            objects: VecMap::new(),
            failed: VecMap::new(),
        };
        for model in models {
            if loaded.objects.contains_key(model.name) || loaded.failed.contains_key(model.name) {
                continue;
            }
            match netbox.collection(*model)? {
                Collection::Objects(mut objects) => {
                    newest_copy_last(&mut objects);
                    let before = objects.len();
                    objects.reverse();
                    objects.dedup_by_key(|o| o.id);
                    objects.reverse();
                    if objects.len() < before {
                        let message = format!(
                            "{} lists {} object(s) more than once; each is read once (its newest copy)",
                            model.collection,
                            before - objects.len()
                        );
                        warnings.push(Warning::new(WarningCode::DuplicateIdentity, message).in_collection(*model));
                    }
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

    pub fn by_id(&self, model: Model, id: u64) -> Option<&Object<'a>> {
        let objects = self.get(model);
        objects
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .and_then(|at| objects.get(at))
    }

    /// Whether a collection was read (a plugin's is not, where the plugin is
    /// not installed).
    pub fn readable(&self, model: Model) -> bool {
        self.objects.contains_key(model.name)
    }

    /// Why a stage cannot read what it needs. The plugin's bookkeeping is
    /// not needed: without the plugin, there is none.
    pub fn unavailable(&self, models: &[Model]) -> Option<Warning> {
        self.first_failure(models, |model| model.is_bookkeeping())
    }

    /// Why a stage cannot read the plugin rows it links to: without the
    /// plugin there are none, which is no reason not to run.
    pub fn unavailable_links(&self, models: &[Model]) -> Option<Warning> {
        self.first_failure(models, |_| true)
    }

    /// The first collection that failed, but for a 404 (the plugin is not
    /// installed) of one the stage can do without.
    fn first_failure(&self, models: &[Model], optional: impl Fn(Model) -> bool) -> Option<Warning> {
        models.iter().find_map(|model| {
            let (status, message) = self.failed.get(model.name)?;
            if optional(*model) && *status == Some(404) {
                return None;
            }
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

/// Puts the copies of one id oldest first, ties broken by content, so that
/// `dedup` after `reverse` keeps the newest. The objects come sorted by id
/// (`NetboxState::collection`, a stable sort): only the copies of one id,
/// rare, are compared by time and digest, a hash of the whole record, too
/// dear to take on every comparison among 100,000 objects.
fn newest_copy_last(objects: &mut [Object]) {
    for copies in objects
        .chunk_by_mut(|a, b| a.id == b.id)
        .filter(|copies| copies.len() > 1)
    {
        crate::sort::sort_by_cached_key(copies, |o| (o.last_updated().map(str::to_owned), o.digest()));
    }
}

/// The tags NetBox has and this plan creates. Tag names are unique in NetBox
/// as well as slugs, so a tag is found by either: an operator's `prod` with
/// slug `production` is the tag Proxmox's `prod` means.
#[derive(Default)]
pub struct Tags {
    by_slug: VecSet<String>,
    slug_by_name: VecMap<String, String>,
    /// Tags created in this plan: slug → op id (for `depends_on`).
    pub created: VecMap<String, String>,
}

impl Tags {
    pub fn of(tags: &[Object]) -> Tags {
        let mut known = Tags::default();
        for tag in tags {
            if let Some(slug) = tag.str("slug") {
                known.by_slug.insert(slug.to_owned());
                if let Some(name) = tag.str("name") {
                    known.slug_by_name.insert(name.trim().to_lowercase(), slug.to_owned());
                }
            }
        }
        known
    }

    /// The slug of the tag called `name` (or slugged `slug`), if NetBox or
    /// this plan has it.
    pub fn find(&self, name: &str, slug: &str) -> Option<String> {
        if self.by_slug.contains(slug) {
            return Some(slug.to_owned());
        }
        self.slug_by_name.get(&name.trim().to_lowercase()).cloned()
    }

    pub fn planned(&mut self, name: &str, slug: &str, op: String) {
        self.by_slug.insert(slug.to_owned());
        self.slug_by_name.insert(name.trim().to_lowercase(), slug.to_owned());
        self.created.insert(slug.to_owned(), op);
    }
}

/// The slugs of our three own tags, as NetBox spells them (see `Tags::find`).
#[derive(Clone, Debug)]
pub struct OwnTags {
    pub proxbox: String,
    pub bootstrap_only: String,
    pub soft_deleted: String,
}

impl Default for OwnTags {
    fn default() -> Self {
        OwnTags {
            proxbox: TAG_PROXBOX.to_owned(),
            bootstrap_only: TAG_BOOTSTRAP_ONLY.to_owned(),
            soft_deleted: TAG_SOFT_DELETED.to_owned(),
        }
    }
}

/// What later stages need to know about a guest's NetBox VM.
#[derive(Clone, Debug)]
pub struct VmSlot {
    pub reference: Value,
    pub existing_id: Option<u64>,
    pub guest_index: usize,
}

#[derive(Clone, Debug)]
pub struct InterfaceSlot {
    pub reference: Value,
    pub existing_id: Option<u64>,
    /// `qemu/101/net0`: ids and keys of the interface's children.
    pub label: String,
    pub guest_index: usize,
    pub nic: Nic,
    pub primary_mac: Option<u64>,
}

/// A node interface later stages refer to (VM bridges, the node's IPs).
#[derive(Clone, Debug)]
pub struct NodeInterfaceSlot {
    pub reference: Value,
    pub existing_id: Option<u64>,
    /// `pve1/vmbr0`: ids and keys of the interface's children.
    pub label: String,
    /// `cidr`, `cidr6` (empty when the node's network could not be read).
    pub addresses: Vec<crate::parse::Cidr>,
}

/// A node's interfaces, as far as the plan knows them.
#[derive(Clone, Debug, Default)]
pub struct NodeNetwork {
    pub device_id: Option<u64>,
    /// Its `/nodes/{node}/network` was read: what it does not list is gone.
    pub complete: bool,
    pub interfaces: VecMap<String, NodeInterfaceSlot>,
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
    pub devices: VecMap<String, Value>,
    /// The plugin's tracking rows (where it is installed): the cluster's, and
    /// the nodes' by node name.
    pub proxmox_cluster: Option<Value>,
    pub proxmox_nodes: VecMap<String, Value>,
    /// The plugin's storage records this plan creates or matched, by name.
    pub storages: VecMap<String, Value>,
    pub vms: VecMap<String, VmSlot>,
    /// Node name → its interfaces.
    pub node_networks: VecMap<String, NodeNetwork>,
    /// Host addresses this plan creates, with the create's identity: NetBox
    /// keeps them unique across node and VM interfaces alike. Looked up,
    /// never listed: a hash map, as creates come in no address order.
    pub planned_addresses: std::collections::HashMap<std::net::IpAddr, String>,
    /// (guest key, interface name) → interface reference. Shared: the MAC and
    /// IP planners walk them while they add operations.
    pub interfaces: VecMap<(String, String), Rc<InterfaceSlot>>,
    pub tags: Tags,
    pub own_tags: OwnTags,
    /// A same-name custom field of another type cannot hold VM identities
    /// (so no VM may be created).
    pub identity_fields_conflict: bool,
    /// Object ids this plan deletes, per model (so references to them are dropped).
    pub deleted: VecMap<&'static str, VecSet<u64>>,
    /// Sidecar model → the object each sidecar belongs to → the sidecar's id.
    pub sidecars: VecMap<&'static str, VecMap<u64, u64>>,
    /// Guest key → the last write of its VM's disks: a later write of the VM
    /// waits for it (see `disk::serialize_with_vm`).
    pub last_disk_write: VecMap<String, String>,
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
                        out.extend(refs.tags.created.get(slug).cloned());
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

    /// An object a cascade would have taken that moves elsewhere instead.
    pub fn unmark_deleted(&mut self, model: Model, id: u64) {
        if let Some(ids) = self.deleted.get_mut(model.name) {
            ids.remove(&id);
        }
    }
}

/// The guests a plan is limited to (`$.subset`): the per-VM syncs of the
/// Proxbox plugin, and the preview of one VM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subset {
    pub guests: VecSet<String>,
    pub netbox_vm_ids: VecSet<u64>,
}

pub struct Context<'a> {
    pub settings: &'a Settings,
    pub modes: &'a ResolvedModes,
    pub snapshot: &'a ProxmoxSnapshot<'a>,
    pub inventory: &'a Inventory<'a>,
    pub loaded: &'a Loaded<'a>,
    /// `None`: every guest. Else the guest keys (`qemu/101`) in scope, once
    /// the VM planner has matched the subset's NetBox ids to guests.
    pub in_scope: Option<VecSet<String>>,
    pub refs: Refs,
    pub plan: PlanBuilder,
    /// Who changed what in NetBox since the sync wrote it (`ownership`).
    pub ownership: super::ownership::Ownership<'a>,
}

impl<'a> Context<'a> {
    pub fn mode(&self, resource: ResourceType) -> SyncMode {
        self.modes.effective(resource)
    }

    pub fn endpoint_id(&self) -> Option<u64> {
        self.settings.endpoint.id
    }

    /// The endpoint id: VMs, templates, replications and SDN rows are
    /// identified by it, so a stage that plans them cannot run without it.
    pub fn required_endpoint_id(&self) -> Result<u64> {
        self.endpoint_id().ok_or_else(|| {
            PlanError::new(
                ErrorCode::MissingField,
                Path::ROOT.key("endpoint").key("id"),
                "the endpoint id is required: VMs, templates, replications and SDN rows are identified by it",
            )
        })
    }

    /// Whether a guest (`qemu/101`) is one this plan is about.
    pub fn guest_in_scope(&self, key: &str) -> bool {
        self.in_scope.as_ref().is_none_or(|keys| keys.contains(key))
    }

    /// Where the Proxbox plugin is installed, identities and links live in its
    /// sync-state records and tracking rows; elsewhere in our custom fields.
    pub fn plugin_installed(&self) -> bool {
        self.loaded.readable(netbox::PROXMOX_CLUSTER)
    }

    /// Ours: carries the `proxbox` tag (we created or adopted it).
    pub fn owned(&self, object: &Object) -> bool {
        object.has_tag(&self.refs.own_tags.proxbox)
    }

    /// SPEC §2: under `bootstrap_only`, an object tagged `bootstrap-only` is
    /// never patched or deleted.
    pub fn bootstrap_protected(&self, resource: ResourceType, object: &Object) -> bool {
        self.mode(resource) == SyncMode::BootstrapOnly && object.has_tag(&self.refs.own_tags.bootstrap_only)
    }

    /// Tags a new object gets: `proxbox`, plus `bootstrap-only` under that
    /// mode. Only on create: objects created before a switch to
    /// `bootstrap_only` carry no tag and keep being synced (SPEC §2).
    pub fn creation_tags(&self, resource: Option<ResourceType>) -> Vec<String> {
        let mut tags = vec![self.refs.own_tags.proxbox.clone()];
        if resource.is_some_and(|r| self.mode(r) == SyncMode::BootstrapOnly) {
            tags.push(self.refs.own_tags.bootstrap_only.clone());
        }
        tags
    }

    /// A Proxmox list a stage needs: missing is an input error (the host
    /// skipped what `discover` listed); failed or not a list is a warning, and
    /// the stage leaves its objects as they are.
    pub fn required_list(&mut self, path: &str, what: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.snapshot.required(path)? {
            Fetched::Data(Value::Array(rows)) => Ok(Some(rows)),
            other => {
                let why = if other.data().is_some() {
                    "not a list".to_owned()
                } else {
                    other.failure()
                };
                let message = format!("{path} could not be read ({why}); {what} left as they are");
                self.plan
                    .warn(Warning::new(WarningCode::IncompleteSnapshot, message).at_path(path));
                Ok(None)
            }
        }
    }

    /// Plans a create; `depends_on` comes from the payload itself.
    pub fn create(
        &mut self,
        head: OpHead,
        reason: Reason,
        fields: Map<String, Value>,
        lookup: Map<String, Value>,
    ) -> String {
        let deps = self.refs.dependencies(&fields.values().collect::<Vec<_>>());
        self.plan.create(head, reason, fields, lookup, deps)
    }

    /// Plans an update when something changed (else counts it unchanged);
    /// `depends_on` comes from the new values and a `$ref` target.
    pub fn update(
        &mut self,
        head: OpHead,
        target: Target,
        reason: Reason,
        changes: VecMap<String, Change>,
        matched_by: Option<MatchedBy>,
    ) -> Option<String> {
        let mut deps = self
            .refs
            .dependencies(&changes.values().map(|c| &c.after).collect::<Vec<_>>());
        deps.extend(self.refs.dependencies(&[&target.id]));
        self.plan.update(head, target, reason, changes, matched_by, deps)
    }

    /// A Proxmox list's rows by their `key`, one each: of two rows with one
    /// key, the winner is chosen by content (never by list order), and a
    /// warning says so. Rows that are not objects are skipped, warned.
    pub fn rows_by_key<'v>(
        &mut self,
        path: &str,
        rows: &'v [Value],
        key: &str,
    ) -> VecMap<String, &'v Map<String, Value>> {
        let mut sorted: Vec<&Map<String, Value>> = rows.iter().filter_map(Value::as_object).collect();
        if sorted.len() < rows.len() {
            let message = format!("{path} has rows that are not objects; they are skipped");
            self.plan
                .warn(Warning::new(WarningCode::UnreadableRow, message).at_path(path));
        }
        crate::sort::sort_by_cached_key(&mut sorted, |row| Value::Object((*row).clone()).to_string());
        let mut by_key = VecMap::new();
        for row in sorted {
            let Some(id) = crate::json::loose_string(row.get(key)) else {
                continue;
            };
            if by_key.contains_key(&id) {
                let message = format!("{path} lists {key} {id} twice; one row is used");
                self.plan
                    .warn(Warning::new(WarningCode::DuplicateIdentity, message).at_path(path));
                continue;
            }
            by_key.insert(id, row);
        }
        by_key
    }

    /// The model's objects: a shorthand that keeps the borrow on `loaded`.
    pub fn objects(&self, model: Model) -> &'a [Object<'a>] {
        self.loaded.get(model)
    }

    pub fn object(&self, model: Model, id: u64) -> Option<&'a Object<'a>> {
        self.loaded.by_id(model, id)
    }
}

/// Objects by the object a field of theirs points at (disks by VM, interfaces by device).
pub fn by_parent<'o, 'a>(objects: &'o [Object<'a>], field: &str) -> VecMap<u64, Vec<&'o Object<'a>>> {
    grouped_by(objects, |object| object.fk(field))
}

/// Objects by a number of theirs, in their order (by id): what a planner
/// looks up once per Proxmox object, which a scan would make quadratic.
pub fn grouped_by<'o, 'a>(
    objects: &'o [Object<'a>],
    key: impl Fn(&Object) -> Option<u64>,
) -> VecMap<u64, Vec<&'o Object<'a>>> {
    VecMap::grouped(objects.iter().filter_map(|object| Some((key(object)?, object))))
}

/// Objects assigned to interfaces of one model (IPs, MACs), by interface id.
pub fn by_interface<'o, 'a>(objects: &'o [Object<'a>], interface: Model) -> VecMap<u64, Vec<&'o Object<'a>>> {
    grouped_by(objects, |object| {
        object
            .u64("assigned_object_id")
            .filter(|_| object.str("assigned_object_type") == Some(interface.name))
    })
}
