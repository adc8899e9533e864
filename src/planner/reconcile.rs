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
use crate::modes::ResourceType;
use crate::netbox::{Model, Object};
use crate::plan::{reference, Change, MatchedBy, OpHead, Reason, Target, Warning, WarningCode};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

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
        self.lookup
            .iter()
            .filter_map(|(filter, field)| Some(((*filter).to_owned(), read(field)?.clone())))
            .filter(|(_, value)| !value.is_null())
            .collect()
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
        candidates.sort_by_key(|o| o.id);
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
    claimed: BTreeSet<u64>,
    /// Op id of each create, by identity.
    created: BTreeMap<String, String>,
}

impl<'s, 'a> Reconciler<'s, 'a> {
    /// `planning`: false when the stage does not run or the resource is
    /// disabled; then items are matched (children still need their parents)
    /// and nothing is written. `scope`: the objects this run answers for.
    pub fn new(spec: &'s Lifecycle, planning: bool, scope: impl IntoIterator<Item = &'a Object<'a>>) -> Self {
        let mut scope: Vec<&Object> = scope.into_iter().collect();
        scope.sort_by_key(|o| o.id);
        scope.dedup_by_key(|o| o.id);
        Reconciler {
            spec,
            planning,
            scope,
            claimed: BTreeSet::new(),
            created: BTreeMap::new(),
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
                    let head = spec.head("*", format!("every {}", resource.name()));
                    let detail = ctx.modes.disabled_reason(resource);
                    ctx.plan.skip(head, None, Reason::ModeDisabled, detail, None);
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
                let head = self.spec.head("*", format!("every {}", resource.name()));
                ctx.plan.skip(head, None, reason, detail, None);
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
        let mut changes = changes(object, &fields, &ctx.settings.overwrite);
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
    }

    /// The scope's objects no item claimed, per the `Gone` policy. Only when
    /// the planner read its whole source (`complete`), so an object is never
    /// retired because an answer was missing.
    pub fn retire(self, ctx: &mut Context, complete: bool, name: impl Fn(&Object) -> String) {
        if !self.planning || !complete {
            return;
        }
        let mut named = BTreeSet::new();
        for object in self.scope.iter().filter(|o| !self.claimed.contains(&o.id)) {
            let mut identity = name(object);
            // Two leftovers under one name (a duplicated identity) get told apart by id.
            if !named.insert(identity.clone()) {
                identity = format!("{identity}#{}", object.id);
            }
            retire_one(ctx, self.spec, object, &identity);
        }
    }
}

fn retire_one(ctx: &mut Context, spec: &Lifecycle, object: &Object, identity: &str) {
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
        Gone::Delete { cascades } => delete(ctx, spec, object, head(), cascades),
        Gone::Status(status) => {
            let changes = BTreeMap::from([("status".to_owned(), status_change(object, status))]);
            ctx.update(head(), Target::of(object), Reason::GoneFromProxmox, changes, None);
        }
        Gone::SoftDelete => {
            let mut tags = object.tags();
            tags.push(ctx.refs.own_tags.soft_deleted.clone());
            let changes = BTreeMap::from([
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

/// Deletes, unless NetBox would take something that is not ours with it.
fn delete(ctx: &mut Context, spec: &Lifecycle, object: &Object, head: OpHead, cascades: &[Model]) {
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
    ctx.plan.delete(head, object);
    ctx.refs.mark_deleted(spec.model, object.id);
    for (model, child) in children {
        ctx.refs.mark_deleted(model, child.id);
    }
}
