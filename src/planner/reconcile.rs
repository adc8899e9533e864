//! The one lifecycle every resource goes through (SPEC §2, §3, §6):
//!
//! - **match**: the planner finds the NetBox objects that claim a Proxmox
//!   object's identity and hands them over as `Found`;
//! - **create** when there are none, **update** when there is one, a `skip`
//!   and a warning when there are several (never a guess);
//! - **protect**: an object tagged `bootstrap-only` under that mode is left
//!   alone, and a disabled resource plans nothing at all (its stage skip says so);
//! - **retire**: objects of the planner's scope that no Proxmox object
//!   explained any more go as the resource's `Gone` policy says, only when the
//!   planner read its source completely, and only when they are ours.
//!
//! Resource planners only say what they want and what matched; every one of
//! these decisions is taken here, the same way for all of them.

use super::context::Context;
use super::diff::{changes, create_payload, tag_list, Field, Kind};
use super::ownership::{Edit, CHANGELOG_MARKER, KEEP_LINE};
use crate::modes::ResourceType;
use crate::netbox::{self, Model, Object};
use crate::plan::{
    reference, Change, FieldConflict, MatchedBy, OpHead, Operation, Reason, Target, Warning, WarningCode,
    ACCEPT_PROXMOX, KEEP_NETBOX, STAGE_WIDE,
};
use crate::settings::OnOperatorEdit;
use crate::vec_map::{VecMap, VecSet};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What happens to an object no Proxmox object explains any more.
#[derive(Clone, Copy, Debug)]
pub enum Gone {
    /// Deleted. NetBox deletes what is assigned to it in `cascades` along
    /// with it: when one of those is not ours, the object is kept instead.
    Delete { cascades: &'static [Model] },
    /// Given this status, never deleted (replications, SDN rows).
    Status(&'static str),
    /// VMs: kept (`orphan-kept`) unless `delete_orphans` is on, then
    /// `decommissioning` plus the soft-delete tag; restored when back.
    SoftDelete,
    /// Never retired (clusters, VLANs, bootstrap objects).
    Keep,
}

/// What makes a gone object ours to retire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The `proxbox` tag (SPEC §6).
    Tag,
    /// Being a plugin row of our endpoint: the endpoint link is the claim.
    Endpoint,
}

/// One resource's lifecycle rules: a row of the table each planner declares.
pub struct Lifecycle {
    pub stage: &'static str,
    /// `None` for bootstrap objects, which no sync mode governs.
    pub resource: Option<ResourceType>,
    pub model: Model,
    /// `new-in-proxmox`, or `missing-in-netbox` for bootstrap objects.
    pub create_reason: Reason,
    /// Whether the model carries tags (tags and custom fields do not).
    pub tagged: bool,
    /// The overwrite flag that lets updates merge tags; `None`: always merged.
    pub tags_flag: Option<&'static str>,
    pub gone: Gone,
    /// Fields by which other objects of the model point at an object and
    /// keep NetBox from deleting it (`on_delete=RESTRICT`: an interface's
    /// `parent`): it is deleted after them, and kept while one of them stays.
    pub restricted_by: &'static [&'static str],
    pub owner: Owner,
    /// A gone object that is not ours gets a `not-owned` skip (identity
    /// holders: VMs, templates) or is passed over in silence (an operator's
    /// interface on a synced VM never was Proxmox's).
    pub report_unowned: bool,
    /// False for objects created once and never patched (bootstrap objects:
    /// an operator may recolour a tag).
    pub updates: bool,
    /// How a host finds the object a create made (after a lost answer):
    /// NetBox filter ← payload field, `custom_fields.x` for a custom field.
    pub lookup: &'static [(&'static str, &'static str)],
}

impl Lifecycle {
    /// The usual row: a synced resource, tagged, patched, retired only when
    /// tagged, passed over in silence when not ours. Planners override what
    /// differs.
    pub const fn synced(stage: &'static str, resource: ResourceType, model: Model, gone: Gone) -> Lifecycle {
        Lifecycle {
            stage,
            resource: Some(resource),
            model,
            create_reason: Reason::NewInProxmox,
            tagged: true,
            tags_flag: None,
            gone,
            restricted_by: &[],
            owner: Owner::Tag,
            report_unowned: false,
            updates: true,
            lookup: &[],
        }
    }

    pub fn head<'k>(&self, identity: &'k str, key: String) -> OpHead<'k> {
        OpHead {
            stage: self.stage,
            resource: self.resource,
            model: self.model,
            identity,
            key,
        }
    }

    fn retired(&self, ctx: &Context, object: &Object) -> bool {
        match self.gone {
            Gone::SoftDelete => object.has_tag(&ctx.refs.own_tags.soft_deleted),
            Gone::Status(status) => object.choice("status") == Some(status),
            Gone::Delete { .. } | Gone::Keep => false,
        }
    }

    fn owns(&self, ctx: &Context, object: &Object) -> bool {
        match self.owner {
            Owner::Tag => ctx.owned(object),
            Owner::Endpoint => true,
        }
    }

    fn protected(&self, ctx: &Context, object: &Object) -> bool {
        self.resource.is_some_and(|r| ctx.bootstrap_protected(r, object))
    }

    /// `{filter: value}` from a create payload.
    fn lookup(&self, payload: &Map<String, Value>) -> Map<String, Value> {
        let read = |field: &str| match field.split_once('.') {
            Some((outer, inner)) => payload.get(outer).and_then(|v| v.get(inner)),
            None => payload.get(field),
        };
        crate::sort::json_map(
            self.lookup
                .iter()
                .filter_map(|(filter, field)| Some(((*filter).to_owned(), read(field)?.clone())))
                .filter(|(_, value)| !value.is_null()),
        )
    }
}

/// The NetBox objects that claim one Proxmox object's identity.
pub enum Found<'a> {
    None,
    One(&'a Object<'a>, MatchedBy),
    Several(Vec<&'a Object<'a>>, String),
    /// An object holds the identity but may not be taken (it belongs elsewhere).
    Refused(Option<&'a Object<'a>>, Reason, WarningCode, String),
}

impl<'a> Found<'a> {
    /// Zero, one or several candidates found by one rule.
    pub fn among(mut candidates: Vec<&'a Object<'a>>, by: MatchedBy, what: &str) -> Self {
        crate::sort::sort_by_key(&mut candidates, |o| o.id);
        candidates.dedup_by_key(|o| o.id);
        match candidates.len() {
            0 => Found::None,
            1 => Found::One(candidates.remove(0), by),
            n => {
                let ids: Vec<String> = candidates.iter().map(|o| o.id.to_string()).collect();
                let detail = format!("{n} NetBox {what} carry this identity (ids {})", ids.join(", "));
                Found::Several(candidates, detail)
            }
        }
    }

    fn objects(&self) -> Vec<&'a Object<'a>> {
        match self {
            Found::None | Found::Refused(None, ..) => Vec::new(),
            Found::One(object, _) | Found::Refused(Some(object), ..) => vec![*object],
            Found::Several(objects, _) => objects.clone(),
        }
    }
}

/// What one Proxmox object should be in NetBox. The fields come from a
/// closure, so a protected or unplanned object costs nothing.
pub struct Item {
    /// The last part of the operation id (`qemu/101`).
    pub identity: String,
    /// A label for people (`qemu/101 web01`).
    pub key: String,
    /// The Proxmox answer its warnings point at.
    pub proxmox_path: Option<String>,
}

pub struct Desired {
    pub fields: Vec<Field>,
    /// Tags besides ours (Proxmox's), by slug.
    pub tags: Vec<String>,
}

impl Desired {
    pub fn fields(fields: Vec<Field>) -> Desired {
        Desired {
            fields,
            tags: Vec::new(),
        }
    }
}

/// What the lifecycle did with one item, for the planners of its children.
#[derive(Clone, Copy)]
pub enum Outcome<'a> {
    /// Created by this plan: children refer to it by `$ref`.
    Created,
    /// An existing object (updated, unchanged or protected).
    Existing(&'a Object<'a>),
    /// Not matched, not created: children have nothing to hang off.
    Skipped,
}

/// The lifecycle of one planner run over one model: items go through
/// `item`, then `retire` handles the scope's leftovers.
pub struct Reconciler<'s, 'a> {
    pub spec: &'s Lifecycle,
    planning: bool,
    scope: Vec<&'a Object<'a>>,
    claimed: VecSet<u64>,
    /// Op id of each create, by identity (looked up, never listed: a hash
    /// map, as creates come in no key order).
    created: HashMap<String, String>,
}

impl<'s, 'a> Reconciler<'s, 'a> {
    /// `planning`: false when the stage does not run or the resource is
    /// disabled; then items are matched (children still need their parents)
    /// and nothing is written. `scope`: the objects this run answers for.
    pub fn new(spec: &'s Lifecycle, planning: bool, scope: impl IntoIterator<Item = &'a Object<'a>>) -> Self {
        let mut scope: Vec<&Object> = scope.into_iter().collect();
        crate::sort::sort_by_key(&mut scope, |o| o.id);
        scope.dedup_by_key(|o| o.id);
        Reconciler {
            spec,
            planning,
            scope,
            claimed: VecSet::new(),
            created: HashMap::new(),
        }
    }

    /// A planner run: it writes when its stage runs (`writes`) and its
    /// resource is not disabled. A disabled resource in a running stage gets
    /// its one skip (SPEC §2), not one per object.
    pub fn for_run(
        ctx: &mut Context<'a>,
        spec: &'s Lifecycle,
        writes: bool,
        scope: impl IntoIterator<Item = &'a Object<'a>>,
    ) -> Self {
        let disabled = spec.resource.is_some_and(|r| ctx.mode(r).is_disabled());
        if writes && disabled {
            if let Some(resource) = spec.resource {
                let said = ctx.plan.operations().iter().any(|op| {
                    op.stage == spec.stage && op.resource == Some(resource) && op.reason == Reason::ModeDisabled
                });
                if !said {
                    let head = spec.head(STAGE_WIDE, format!("every {}", resource.name()));
                    let detail = ctx.modes.disabled_reason(resource);
                    ctx.plan.skip_stage_wide(head, Reason::ModeDisabled, detail);
                }
            }
        }
        Reconciler::new(spec, writes && !disabled, scope)
    }

    /// Whether the mode lets this resource write (the stage runs, the
    /// resource is not disabled).
    pub fn planning(&self) -> bool {
        self.planning
    }

    /// The `$ref` of the object an item's create made.
    pub fn reference_of(&self, identity: &str) -> Option<Value> {
        self.created.get(identity).map(|op| reference(op))
    }

    /// The id of the create an item made.
    pub fn created_op(&self, identity: &str) -> Option<&str> {
        self.created.get(identity).map(String::as_str)
    }

    /// One Proxmox object through match → create / update / protect.
    pub fn item(
        &mut self,
        ctx: &mut Context<'a>,
        item: &Item,
        found: Found<'a>,
        desired: impl FnOnce(&mut Context<'a>, Option<&Object>) -> Desired,
    ) -> Outcome<'a> {
        self.claimed.extend(found.objects().iter().map(|o| o.id));
        let spec = self.spec;
        let head = || spec.head(&item.identity, item.key.clone());
        match found {
            Found::None if self.planning => {
                let wanted = desired(ctx, None);
                let op = self.create(ctx, item, wanted);
                self.created.insert(item.identity.clone(), op);
                Outcome::Created
            }
            Found::None => Outcome::Skipped,
            Found::One(object, matched_by) => {
                if self.planning && spec.updates {
                    if spec.protected(ctx, object) {
                        let detail = "tagged bootstrap-only: sync leaves it untouched";
                        ctx.plan
                            .skip(head(), Some(object), Reason::BootstrapOnlyTag, detail, Some(matched_by));
                    } else {
                        let wanted = desired(ctx, Some(object));
                        self.update(ctx, item, object, matched_by, wanted);
                    }
                }
                Outcome::Existing(object)
            }
            Found::Several(objects, detail) => {
                let first = objects.first().copied();
                self.refuse(
                    ctx,
                    item,
                    first,
                    Reason::AmbiguousIdentity,
                    WarningCode::AmbiguousIdentity,
                    detail,
                );
                Outcome::Skipped
            }
            Found::Refused(object, reason, code, detail) => {
                self.refuse(ctx, item, object, reason, code, detail);
                Outcome::Skipped
            }
        }
    }

    /// Never a guess: a warning, and (when writing) a skip; nothing is created.
    fn refuse(
        &self,
        ctx: &mut Context,
        item: &Item,
        object: Option<&Object>,
        reason: Reason,
        code: WarningCode,
        detail: String,
    ) {
        let mut warning = Warning::new(code, format!("{}: {detail}", item.key));
        if let Some(path) = &item.proxmox_path {
            warning = warning.at_path(path.clone());
        }
        if let Some(object) = object {
            warning = warning.about(self.spec.model, object.id);
        }
        ctx.plan.warn(warning);
        if self.planning {
            let head = self.spec.head(&item.identity, item.key.clone());
            let target = object.filter(|_| reason != Reason::AmbiguousIdentity);
            ctx.plan.skip(head, target, reason, detail, None);
        }
    }

    /// A Proxmox object that cannot be planned now (its data could not be
    /// read, it has no parent in NetBox): its NetBox object, if any, is left
    /// as it is and never counted as gone; the skip says why.
    pub fn hold(&mut self, ctx: &mut Context<'a>, item: &Item, found: Found<'a>, reason: Reason, detail: String) {
        let objects = found.objects();
        self.claimed.extend(objects.iter().map(|o| o.id));
        if self.planning {
            let head = self.spec.head(&item.identity, item.key.clone());
            ctx.plan.skip(head, objects.first().copied(), reason, detail, None);
        }
    }

    /// Nothing of this resource can be planned (its parent is missing): one
    /// skip says so, and nothing is retired.
    pub fn skip_all(mut self, ctx: &mut Context, reason: Reason, detail: &str) {
        if self.planning {
            if let Some(resource) = self.spec.resource {
                let head = self.spec.head(STAGE_WIDE, format!("every {}", resource.name()));
                ctx.plan.skip_stage_wide(head, reason, detail);
            }
        }
        self.planning = false;
    }

    /// Leaves a scope object alone without retiring it (claimed elsewhere).
    pub fn keep(&mut self, object: &Object) {
        self.claimed.insert(object.id);
    }

    fn create(&self, ctx: &mut Context, item: &Item, desired: Desired) -> String {
        let mut fields = desired.fields;
        if self.spec.tagged {
            let mut tags = ctx.creation_tags(self.spec.resource);
            tags.extend(desired.tags);
            fields.push(Field::new("tags", Kind::Tags, tag_list(&tags)));
        }
        let payload = create_payload(&fields);
        let lookup = self.spec.lookup(&payload);
        let head = self.spec.head(&item.identity, item.key.clone());
        ctx.create(head, self.spec.create_reason, payload, lookup)
    }

    fn update(&self, ctx: &mut Context, item: &Item, object: &Object, matched_by: MatchedBy, desired: Desired) {
        let spec = self.spec;
        let own = &ctx.refs.own_tags;
        let retired = spec.retired(ctx, object);
        let mut tags: Vec<String> = object.tags();
        // Where the endpoint link is the claim (plugin rows the plugin writes
        // too), the tag is set on create only: re-adding it to the rows the
        // plugin wrote would be a change on every run after the plugin's.
        if spec.owner == Owner::Tag {
            tags.push(own.proxbox.clone());
        }
        tags.extend(desired.tags);
        tags.retain(|t| !(retired && *t == own.soft_deleted));
        let mut fields = desired.fields;
        let tag_field = Field::new("tags", Kind::Tags, tag_list(&tags));
        if spec.tagged {
            fields.push(match spec.tags_flag {
                Some(flag) => tag_field.overwritten_by(flag),
                None => tag_field,
            });
        }
        let wanted = changes(object, &fields, &ctx.settings.overwrite);
        let settled = ctx.ownership.settle(spec.model, object, &fields, wanted);
        let mut changes = settled.write;
        if retired && !changes.contains_key("tags") && object.has_tag(&own.soft_deleted) {
            // Back from the dead: the soft-delete tag goes whatever the tag flag says.
            let kept: Vec<&String> = object.tag_slugs().iter().filter(|t| **t != own.soft_deleted).collect();
            changes.insert(
                "tags".to_owned(),
                Change {
                    before: tag_list(object.tag_slugs()),
                    after: tag_list(&kept),
                },
            );
        }
        let reason = if retired {
            Reason::BackInProxmox
        } else {
            Reason::ChangedInProxmox
        };
        let head = spec.head(&item.identity, item.key.clone());
        ctx.update(head, Target::of(object), reason, changes, Some(matched_by));
        ctx.plan.operator_owned(spec.stage, settled.owned);
        for (field, change, edit) in settled.conflicts {
            disputed(ctx, spec, item, object, Disputed { field, change, edit });
        }
        for (field, change) in settled.held {
            let identity = format!("{}@{field}", item.identity);
            let head = spec.head(&identity, format!("{} {field}", item.key));
            let detail = format!(
                "{field} would become {}, but NetBox's change log could not be read to see whether an operator \
                 changed it: left as it is",
                change.after
            );
            ctx.plan.planned(head.skip_op(object, Reason::OwnershipUnknown, detail));
        }
    }

    /// The scope's objects no item claimed, per the `Gone` policy. Only when
    /// the planner read its whole source (`complete`), so an object is never
    /// retired because an answer was missing.
    pub fn retire(self, ctx: &mut Context, complete: bool, name: impl Fn(&Object) -> String) {
        if !self.planning || !complete {
            return;
        }
        let mut leftovers: Vec<&Object> = self
            .scope
            .iter()
            .copied()
            .filter(|o| !self.claimed.contains(&o.id))
            .collect();
        // What points at an object is decided first (the sort is stable: ids
        // stay in order at each depth).
        crate::sort::sort_by_key(&mut leftovers, |o| {
            std::cmp::Reverse(restriction_depth(ctx, self.spec, o))
        });
        let mut named = VecSet::new();
        let mut deleted = VecMap::new();
        for object in leftovers {
            let mut identity = name(object);
            // Two leftovers under one name (a duplicated identity) get told apart by id.
            if !named.insert(identity.clone()) {
                identity = format!("{identity}#{}", object.id);
            }
            retire_one(ctx, self.spec, object, &identity, &mut deleted);
        }
    }
}

/// One field both an operator and Proxmox changed.
struct Disputed {
    field: String,
    change: Change,
    edit: Edit,
}

/// Plans a conflict's operation as `on_operator_edit` says, with both
/// choices beside it in `conflicts`.
fn disputed(ctx: &mut Context, spec: &Lifecycle, item: &Item, object: &Object, disputed: Disputed) {
    let Disputed { field, change, edit } = disputed;
    let identity = format!("{}@{field}", item.identity);
    let key = format!("{} {field}", item.key);
    let head = || spec.head(&identity, key.clone());
    let id = head().id();
    let who = edit.user.as_deref().unwrap_or("another NetBox user");
    let when = edit.time.as_deref().map(|t| format!(" at {t}")).unwrap_or_default();
    let story = format!(
        "{who} changed {field} in NetBox{when} ({} → {}); Proxmox now has {}",
        edit.base, change.before, change.after
    );
    let deps = ctx.refs.dependencies(&[&change.after]);
    let changed = VecMap::from_iter([(field.clone(), change.clone())]);
    let mut accept = head().update_op(Target::of(object), Reason::OperatorEdited, changed, deps);
    let mut keep = keep_record(spec, item, object, &field, &story);
    keep.id = id.clone();
    let resolution = ctx.ownership.resolution;
    let planned = match resolution {
        OnOperatorEdit::Overwrite => {
            let mut op = accept.clone();
            op.detail = Some(format!(
                "{story}: Proxmox's value is written (on_operator_edit = overwrite)"
            ));
            op
        }
        OnOperatorEdit::Keep => head().skip_op(
            object,
            Reason::OperatorEdited,
            format!("{story}: NetBox's value is kept (on_operator_edit = keep)"),
        ),
        OnOperatorEdit::Ask => {
            ctx.ownership.pending += 1;
            let detail = format!("{story}: waits for a choice (apply --accept-proxmox {id} or --keep-netbox {id})");
            head().skip_op(object, Reason::OperatorEdited, detail)
        }
    };
    accept.detail = Some(format!("{story}: accepted, Proxmox's value is written"));
    let conflict = FieldConflict {
        id,
        stage: spec.stage,
        model: spec.model.name,
        object_id: object.id,
        key: item.key.clone(),
        field,
        base: edit.base,
        netbox: change.before,
        proxmox: change.after,
        changed_by: edit.user,
        changed_at: edit.time,
        resolution,
        choices: VecMap::from_iter([(ACCEPT_PROXMOX, accept), (KEEP_NETBOX, keep)]),
    };
    ctx.plan.field_conflict(conflict, planned);
}

/// The journal entry on `object` that keeps the operator's value of `field`
/// for good (see `ownership`): deleting it gives the field back to Proxmox.
fn keep_record(spec: &Lifecycle, item: &Item, object: &Object, field: &str, story: &str) -> Operation {
    let comments = format!(
        "{CHANGELOG_MARKER} keeps NetBox's value of {field}: {story}.\n\
         Delete this journal entry to let Proxmox's value through again.\n\n{KEEP_LINE} {field}"
    );
    let fields = Map::from_iter([
        ("assigned_object_type".to_owned(), Value::from(spec.model.name)),
        ("assigned_object_id".to_owned(), Value::from(object.id)),
        ("kind".to_owned(), Value::from("info")),
        ("comments".to_owned(), Value::from(comments)),
    ]);
    let lookup = Map::from_iter([
        ("assigned_object_type".to_owned(), Value::from(spec.model.name)),
        ("assigned_object_id".to_owned(), Value::from(object.id)),
    ]);
    let identity = format!("{}@{field}", item.identity);
    let head = OpHead {
        stage: spec.stage,
        resource: spec.resource,
        model: netbox::JOURNAL_ENTRY,
        identity: &identity,
        key: format!("{} {field}", item.key),
    };
    let mut op = head.create_op(Reason::OperatorEdited, fields, lookup, Vec::new());
    op.detail = Some(format!(
        "{story}: kept for good (a journal entry on the object records it)"
    ));
    op
}

/// How many `restricted_by` links lead up from an object (a VLAN on a bond
/// on a NIC: 1 for the bond, 2 for the VLAN).
fn restriction_depth(ctx: &Context, spec: &Lifecycle, object: &Object) -> usize {
    let mut depth = 0;
    let mut at = *object;
    while let Some(up) = spec.restricted_by.iter().find_map(|field| at.fk(field)) {
        match ctx.object(spec.model, up) {
            // A loop in what NetBox holds cannot be deeper than its objects.
            Some(next) if depth < ctx.objects(spec.model).len() => {
                depth += 1;
                at = *next;
            }
            _ => break,
        }
    }
    depth
}

/// `deleted`: object id → the op that deletes it, for what this retire deleted so far.
fn retire_one(ctx: &mut Context, spec: &Lifecycle, object: &Object, identity: &str, deleted: &mut VecMap<u64, String>) {
    if matches!(spec.gone, Gone::Keep) || spec.retired(ctx, object) {
        return;
    }
    let head = || spec.head(identity, identity.to_owned());
    let orphan_kept = matches!(spec.gone, Gone::SoftDelete) && !ctx.settings.options.delete_orphans;
    let skip = |ctx: &mut Context, reason: Reason, detail: &str| {
        ctx.plan.skip(head(), Some(object), reason, detail, None);
    };
    if orphan_kept {
        return skip(
            ctx,
            Reason::OrphanKept,
            "gone from Proxmox; delete_orphans is off, so it is kept as it is",
        );
    }
    if !spec.owns(ctx, object) {
        if spec.report_unowned {
            skip(ctx, Reason::NotOwned, "gone from Proxmox, but not tagged proxbox");
        }
        return;
    }
    if spec.protected(ctx, object) {
        return skip(
            ctx,
            Reason::BootstrapOnlyTag,
            "tagged bootstrap-only: sync leaves it untouched",
        );
    }
    match spec.gone {
        Gone::Delete { cascades } => delete(ctx, spec, object, head(), cascades, deleted),
        Gone::Status(status) => {
            let changes = VecMap::from_iter([("status".to_owned(), status_change(object, status))]);
            ctx.update(head(), Target::of(object), Reason::GoneFromProxmox, changes, None);
        }
        Gone::SoftDelete => {
            let mut tags = object.tags();
            tags.push(ctx.refs.own_tags.soft_deleted.clone());
            let changes = VecMap::from_iter([
                ("status".to_owned(), status_change(object, "decommissioning")),
                (
                    "tags".to_owned(),
                    Change {
                        before: tag_list(object.tag_slugs()),
                        after: tag_list(&tags),
                    },
                ),
            ]);
            ctx.plan.removal(head(), Target::of(object), changes);
        }
        Gone::Keep => {}
    }
}

fn status_change(object: &Object, status: &str) -> Change {
    Change {
        before: object.choice("status").into(),
        after: status.into(),
    }
}

/// The objects that point at `object` through a `restricted_by` field and
/// still will after this plan: neither deleted nor moved elsewhere by it.
fn staying_restrictors<'a>(
    ctx: &Context<'a>,
    spec: &Lifecycle,
    object: &Object,
    deleted: &VecMap<u64, String>,
) -> (Vec<&'a Object<'a>>, Vec<u64>) {
    let mut staying = Vec::new();
    let mut going = Vec::new();
    for field in spec.restricted_by {
        for other in ctx
            .objects(spec.model)
            .iter()
            .filter(|o| o.fk(field) == Some(object.id))
        {
            let moved = ctx
                .plan
                .changes_of(spec.model, other.id)
                .and_then(|changes| changes.get(*field))
                .is_some_and(|change| change.after != object.id);
            match deleted.contains_key(&other.id) {
                true => going.push(other.id),
                false if moved => {}
                false => staying.push(other),
            }
        }
    }
    (staying, going)
}

/// Deletes, unless NetBox would take something that is not ours with it,
/// or refuse because something that stays points at it.
fn delete(
    ctx: &mut Context,
    spec: &Lifecycle,
    object: &Object,
    head: OpHead,
    cascades: &[Model],
    deleted: &mut VecMap<u64, String>,
) {
    let (staying, going) = staying_restrictors(ctx, spec, object, deleted);
    if !staying.is_empty() {
        let names: Vec<&str> = staying.iter().map(|o| o.str("name").unwrap_or_default()).collect();
        let detail = format!(
            "gone from Proxmox, but {} that stay refer to it, and NetBox keeps it while they do",
            names.join(", ")
        );
        ctx.plan
            .skip(head, Some(object), Reason::HasManualObjects, detail, None);
        return;
    }
    let assigned_here = |o: &&Object| {
        o.str("assigned_object_type") == Some(spec.model.name) && o.u64("assigned_object_id") == Some(object.id)
    };
    let children: Vec<(Model, &Object)> = cascades
        .iter()
        .flat_map(|model| ctx.objects(*model).iter().filter(assigned_here).map(|o| (*model, o)))
        .collect();
    if children.iter().any(|(_, child)| !ctx.owned(child)) {
        let detail = "gone from Proxmox, but manually created objects are assigned to it and would be deleted with it";
        ctx.plan
            .skip(head, Some(object), Reason::HasManualObjects, detail, None);
        return;
    }
    let op = head.id();
    ctx.plan.delete(head, object);
    // NetBox deletes it only once they are gone.
    for other in going.iter().filter_map(|id| deleted.get(id)) {
        ctx.plan.add_dependency(&op, other);
    }
    deleted.insert(object.id, op);
    ctx.refs.mark_deleted(spec.model, object.id);
    for (model, child) in children {
        ctx.refs.mark_deleted(model, child.id);
    }
}
