//! Bootstrap (SPEC §2): the tags, custom fields, cluster type, manufacturer,
//! device type, role and site the other planners refer to. Created only when
//! NetBox lacks them, never updated (an operator may recolour a tag) and never
//! retired: the lifecycle with `updates: false` and `Gone::Keep`.

use super::context::{Context, Tags, TAG_BOOTSTRAP_ONLY, TAG_PROXBOX, TAG_SOFT_DELETED};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Owner, Reconciler};
use super::Planner;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Model, Object};
use crate::parse;
use crate::plan::{Change, MatchedBy, Reason, Target, Warning, WarningCode};
use serde_json::Value;

pub const BOOTSTRAP: &str = "bootstrap";

/// Bootstrap objects a planner refers to (tags are always there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    /// The VM identity custom fields.
    CustomFields,
    ClusterType,
    /// Manufacturer, device type, role and site for node devices.
    NodeTypes,
}

impl Prerequisite {
    pub fn reads(self) -> &'static [Model] {
        match self {
            Prerequisite::CustomFields => &[netbox::CUSTOM_FIELD],
            Prerequisite::ClusterType => &[netbox::CLUSTER_TYPE],
            Prerequisite::NodeTypes => &[
                netbox::MANUFACTURER,
                netbox::DEVICE_TYPE,
                netbox::DEVICE_ROLE,
                netbox::SITE,
            ],
        }
    }
}

const fn lifecycle(model: Model, tagged: bool, lookup: &'static [(&'static str, &'static str)]) -> Lifecycle {
    Lifecycle {
        stage: BOOTSTRAP,
        resource: None,
        model,
        create_reason: Reason::MissingInNetbox,
        tagged,
        tags_flag: None,
        gone: Gone::Keep,
        restricted_by: &[],
        owner: Owner::Tag,
        report_unowned: false,
        updates: false,
        lookup,
    }
}

const TAG: Lifecycle = lifecycle(netbox::TAG, false, &[("slug", "slug")]);
const CUSTOM_FIELD: Lifecycle = lifecycle(netbox::CUSTOM_FIELD, false, &[("name", "name")]);
const CLUSTER_TYPE: Lifecycle = lifecycle(netbox::CLUSTER_TYPE, true, &[("slug", "slug")]);
const MANUFACTURER: Lifecycle = lifecycle(netbox::MANUFACTURER, true, &[("slug", "slug")]);
const DEVICE_TYPE: Lifecycle = lifecycle(netbox::DEVICE_TYPE, true, &[("slug", "slug")]);
const DEVICE_ROLE: Lifecycle = lifecycle(netbox::DEVICE_ROLE, true, &[("slug", "slug")]);
const SITE: Lifecycle = lifecycle(netbox::SITE, true, &[("slug", "slug")]);

struct TagSpec {
    slug: &'static str,
    name: &'static str,
    color: &'static str,
    description: &'static str,
}

const TAGS: [TagSpec; 3] = [
    TagSpec {
        slug: TAG_PROXBOX,
        name: "Proxbox",
        color: "ff9800",
        description: "Created or adopted by proxbox-planner.",
    },
    TagSpec {
        slug: TAG_BOOTSTRAP_ONLY,
        name: "Bootstrap only",
        color: "9e9e9e",
        description: "Objects created by Proxbox bootstrap-only sync mode; future syncs leave them untouched.",
    },
    TagSpec {
        slug: TAG_SOFT_DELETED,
        name: "Proxbox soft-deleted",
        color: "f44336",
        description: "Gone from Proxmox; kept in NetBox with status decommissioning.",
    },
];

/// The VM identity custom fields (SPEC §3.1), plus the name Proxmox last
/// reported, which tells a Proxmox rename from an operator's.
const CUSTOM_FIELDS: [(&str, &str, &str); 4] = [
    ("proxmox_vmid", "integer", "Proxmox VMID"),
    ("proxmox_vm_type", "text", "Proxmox guest type (qemu or lxc)"),
    ("proxmox_endpoint", "integer", "Proxbox endpoint id"),
    ("proxmox_name", "text", "Name Proxmox last reported"),
];

const VM_MODEL: &str = "virtualization.virtualmachine";

pub const SITE_SLUG: &str = "proxbox-basic-site";

fn text(name: &'static str, value: &str) -> Field {
    Field::new(name, Kind::Scalar, value)
}

fn find<'o, 'a>(objects: &'o [Object<'a>], field: &str, value: &str) -> Option<&'o Object<'a>> {
    objects
        .iter()
        .find(|o| o.str(field).is_some_and(|v| v.trim().eq_ignore_ascii_case(value)))
}

fn item(identity: &str) -> Item {
    Item {
        identity: identity.to_owned(),
        key: identity.to_owned(),
        proxmox_path: None,
    }
}

/// Where a support object may already be: ours by slug, else by its other
/// unique field, else the one Proxbox's own bootstrap made (so a NetBox that
/// Proxbox synced keeps its device type and site and gets no second copy).
struct Support<'s> {
    slug: &'s str,
    by: (&'static str, &'s str),
    /// Proxbox's slugs for the same object, and whether only a `proxbox`-tagged
    /// one counts (a generic slug such as `cluster` may be an operator's own).
    proxbox: &'s [(&'s str, bool)],
}

impl Support<'_> {
    fn find<'o, 'a>(&self, objects: &'o [Object<'a>]) -> Option<&'o Object<'a>> {
        let proxbox = || {
            self.proxbox
                .iter()
                .find_map(|(slug, tagged)| find(objects, "slug", slug).filter(|o| !tagged || o.has_tag(TAG_PROXBOX)))
        };
        find(objects, "slug", self.slug)
            .or_else(|| find(objects, self.by.0, self.by.1))
            .or_else(proxbox)
    }
}

/// The existing object, or the one this plan creates (only if an operation
/// refers to it): a reference either way.
fn ensure(ctx: &mut Context, spec: &Lifecycle, support: Support, fields: Vec<Field>) -> Option<Value> {
    let found = match support.find(ctx.objects(spec.model)) {
        Some(object) => Found::One(object, MatchedBy::NaturalKey),
        None => Found::None,
    };
    let mut reconciler = Reconciler::new(spec, true, []);
    match reconciler.item(ctx, &item(support.slug), found, |_, _| Desired::fields(fields)) {
        Outcome::Existing(object) => Some(Value::from(object.id)),
        Outcome::Created => {
            if let Some(op) = reconciler.created_op(support.slug) {
                ctx.plan.only_if_referenced(op);
            }
            reconciler.reference_of(support.slug)
        }
        Outcome::Skipped => None,
    }
}

pub fn plan(ctx: &mut Context, planners: &[(&Planner, bool)]) {
    if planners.is_empty() {
        return;
    }
    plan_tags(ctx);
    let needs = |p: Prerequisite| {
        planners
            .iter()
            .any(|(planner, writes)| *writes && planner.prerequisites.contains(&p))
    };
    // Where the Proxbox plugin is installed, identities go to its sync-state
    // records: no custom fields of ours.
    if needs(Prerequisite::CustomFields) && !ctx.plugin_installed() {
        plan_custom_fields(ctx);
    }
    if needs(Prerequisite::ClusterType) && !ctx.mode(ResourceType::Cluster).is_disabled() {
        let fields = vec![text("name", "Proxmox"), text("slug", "proxmox")];
        let mode = if ctx.inventory.cluster.standalone {
            "standalone"
        } else {
            "cluster"
        };
        let support = Support {
            slug: "proxmox",
            by: ("name", "Proxmox"),
            proxbox: &[(mode, true)],
        };
        ctx.refs.cluster_type = ensure(ctx, &CLUSTER_TYPE, support, fields);
    }
    if needs(Prerequisite::NodeTypes) && !ctx.mode(ResourceType::Node).is_disabled() {
        plan_node_types(ctx);
    }
}

/// Our three tags, found by slug or by name (tag names are unique too).
fn plan_tags(ctx: &mut Context) {
    ctx.refs.tags = Tags::of(ctx.objects(netbox::TAG));
    let soft_delete = ctx.settings.options.delete_orphans;
    let mut slugs = Vec::new();
    for spec in &TAGS {
        let found = ctx.refs.tags.find(spec.name, spec.slug);
        if found.is_none() && (spec.slug != TAG_SOFT_DELETED || soft_delete) {
            let fields = vec![
                text("name", spec.name),
                text("slug", spec.slug),
                text("color", spec.color),
                text("description", spec.description),
            ];
            create_tag(ctx, &TAG, spec.name, spec.slug, fields);
        }
        slugs.push(found.unwrap_or_else(|| spec.slug.to_owned()));
    }
    if let [proxbox, bootstrap_only, soft_deleted] = slugs.as_slice() {
        ctx.refs.own_tags.proxbox = proxbox.clone();
        ctx.refs.own_tags.bootstrap_only = bootstrap_only.clone();
        ctx.refs.own_tags.soft_deleted = soft_deleted.clone();
    }
}

fn create_tag(ctx: &mut Context, spec: &Lifecycle, name: &str, slug: &str, fields: Vec<Field>) {
    let mut reconciler = Reconciler::new(spec, true, []);
    reconciler.item(ctx, &item(slug), Found::None, |_, _| Desired::fields(fields));
    if let Some(op) = reconciler.created_op(slug) {
        ctx.refs.tags.planned(name, slug, op.to_owned());
    }
}

/// The slug of the NetBox tag for a Proxmox tag: the existing one with that
/// slug or that name, else one created in the stage that first uses it.
pub fn proxmox_tag(ctx: &mut Context, stage: Stage, resource: ResourceType, name: &str) -> Option<String> {
    let slug = parse::slugify(name);
    if slug.is_empty() {
        return None;
    }
    if let Some(existing) = ctx.refs.tags.find(name, &slug) {
        return Some(existing);
    }
    let spec = Lifecycle {
        stage: stage.name(),
        resource: Some(resource),
        create_reason: Reason::NewInProxmox,
        ..TAG
    };
    let fields = vec![
        text("name", name),
        text("slug", &slug),
        text("description", "Proxmox tag"),
    ];
    create_tag(ctx, &spec, name, &slug, fields);
    Some(slug)
}

/// A custom field counts only where it serves: defined for VMs, with our
/// type. A same-name field for another model gets VMs added to its object
/// types (an addition, like a tag merge); one of another type cannot hold the
/// identity, and then no VM is created.
fn plan_custom_fields(ctx: &mut Context) {
    for (name, kind, label) in CUSTOM_FIELDS {
        match find(ctx.objects(netbox::CUSTOM_FIELD), "name", name) {
            None => {
                let fields = vec![
                    text("name", name),
                    text("label", label),
                    text("type", kind),
                    Field::new("object_types", Kind::Scalar, vec![VM_MODEL]),
                    Field::new("required", Kind::Scalar, false),
                    text("group_name", "Proxmox"),
                    text("description", "Maintained by proxbox-planner"),
                ];
                let mut reconciler = Reconciler::new(&CUSTOM_FIELD, true, []);
                reconciler.item(ctx, &item(name), Found::None, |_, _| Desired::fields(fields));
            }
            Some(field) if field.choice("type") != Some(kind) => {
                ctx.refs.identity_fields_conflict = true;
                let message = format!(
                    "custom field {name} exists with type {:?}, not {kind}: VM identities cannot be stored in it, \
                     so no VM is created",
                    field.choice("type").unwrap_or_default()
                );
                ctx.plan
                    .warn(Warning::new(WarningCode::NotOwned, message).about(netbox::CUSTOM_FIELD, field.id));
            }
            Some(field) => add_vm_object_type(ctx, field, name),
        }
    }
}

fn add_vm_object_type(ctx: &mut Context, field: &Object, name: &str) {
    let types: Vec<Value> = field
        .get("object_types")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if types.iter().any(|t| t.as_str() == Some(VM_MODEL)) {
        return;
    }
    let mut after = types.clone();
    after.push(Value::from(VM_MODEL));
    let change = Change {
        before: Value::Array(types),
        after: Value::Array(after),
    };
    let changes = crate::vec_map::VecMap::from_iter([("object_types".to_owned(), change)]);
    let head = CUSTOM_FIELD.head(name, name.to_owned());
    let target = Target::of(field);
    ctx.update(
        head,
        target,
        Reason::MissingInNetbox,
        changes,
        Some(MatchedBy::NaturalKey),
    );
}

fn plan_node_types(ctx: &mut Context) {
    let fields = vec![text("name", "Proxmox"), text("slug", "proxmox")];
    let support = Support {
        slug: "proxmox",
        by: ("name", "Proxmox"),
        proxbox: &[],
    };
    let manufacturer = ensure(ctx, &MANUFACTURER, support, fields);
    let fields = vec![
        Field::new("manufacturer", Kind::ForeignKey, manufacturer),
        text("model", "Proxmox VE Node"),
        text("slug", "proxmox-ve-node"),
        Field::new("u_height", Kind::Scalar, 1),
    ];
    let support = Support {
        slug: "proxmox-ve-node",
        by: ("model", "Proxmox VE Node"),
        proxbox: &[("proxmox-generic-device", false)],
    };
    ctx.refs.device_type = ensure(ctx, &DEVICE_TYPE, support, fields);
    let fields = vec![
        text("name", "Proxmox Node"),
        text("slug", "proxmox-node"),
        text("color", "ff9800"),
        Field::new("vm_role", Kind::Scalar, false),
    ];
    let support = Support {
        slug: "proxmox-node",
        by: ("name", "Proxmox Node"),
        proxbox: &[],
    };
    ctx.refs.device_role = ensure(ctx, &DEVICE_ROLE, support, fields);
    ctx.refs.site = match ctx.settings.endpoint.site_id {
        Some(id) => Some(Value::from(id)),
        None => {
            let fields = vec![
                text("name", "Proxbox Basic Site"),
                text("slug", SITE_SLUG),
                text("status", "active"),
            ];
            let proxbox_site = format!(
                "proxmox-default-site-{}",
                parse::proxbox_slug(&ctx.inventory.cluster_name)
            );
            let support = Support {
                slug: SITE_SLUG,
                by: ("name", "Proxbox Basic Site"),
                proxbox: &[(proxbox_site.as_str(), false)],
            };
            ensure(ctx, &SITE, support, fields)
        }
    };
}
