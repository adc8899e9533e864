//! Bootstrap (SPEC §2): the tags, custom fields, cluster type, manufacturer,
//! device type, role and site the other stages refer to. Created only when
//! NetBox lacks them, never updated: an operator may recolour a tag.

use super::{Context, BOOTSTRAP, TAG_BOOTSTRAP_ONLY, TAG_PROXBOX, TAG_SOFT_DELETED};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Model, Object};
use crate::plan::{reference, OpHead, Reason};
use serde_json::{json, Map, Value};

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

pub const SITE_SLUG: &str = "proxbox-basic-site";

fn find<'o, 'a>(objects: &'o [Object<'a>], field: &str, value: &str) -> Option<&'o Object<'a>> {
    objects
        .iter()
        .find(|o| o.str(field).is_some_and(|v| v.eq_ignore_ascii_case(value)))
}

/// A reference to the existing object, or to the one this plan creates.
fn ensure(ctx: &mut Context, model: Model, slug: &str, by: (&str, &str), fields: Map<String, Value>) -> Value {
    let existing = find(ctx.loaded.get(model), "slug", slug).or_else(|| find(ctx.loaded.get(model), by.0, by.1));
    if let Some(object) = existing {
        return Value::from(object.id);
    }
    let head = OpHead {
        stage: BOOTSTRAP,
        resource: None,
        model,
        identity: slug,
        key: slug.to_owned(),
    };
    let id = ctx.create(head, Reason::MissingInNetbox, fields);
    reference(&id)
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub fn plan(ctx: &mut Context, stages: &[Stage]) -> Result<()> {
    if stages.is_empty() {
        return Ok(());
    }
    plan_tags(ctx);
    let needs_custom_fields = stages
        .iter()
        .any(|s| matches!(s, Stage::VirtualMachines | Stage::VmInterfaces | Stage::IpAddresses));
    if needs_custom_fields {
        plan_custom_fields(ctx);
    }
    if stages.contains(&Stage::Devices) {
        plan_device_types(ctx);
    }
    Ok(())
}

fn plan_tags(ctx: &mut Context) {
    for tag in ctx.loaded.get(netbox::TAG) {
        if let Some(slug) = tag.str("slug") {
            ctx.refs.known_tags.insert(slug.to_owned());
        }
    }
    let soft_delete = ctx.settings.options.delete_orphans;
    for spec in TAGS.iter().filter(|t| t.slug != TAG_SOFT_DELETED || soft_delete) {
        if ctx.refs.known_tags.contains(spec.slug) {
            continue;
        }
        let fields = obj(json!({
            "name": spec.name, "slug": spec.slug, "color": spec.color, "description": spec.description,
        }));
        let head = OpHead {
            stage: BOOTSTRAP,
            resource: None,
            model: netbox::TAG,
            identity: spec.slug,
            key: spec.slug.to_owned(),
        };
        let id = ctx.create(head, Reason::MissingInNetbox, fields);
        ctx.refs.created_tags.insert(spec.slug.to_owned(), id);
        ctx.refs.known_tags.insert(spec.slug.to_owned());
    }
}

/// A tag the planner needs beyond the bootstrap ones (a Proxmox tag): created
/// in the stage that first uses it.
pub fn ensure_tag(ctx: &mut Context, stage: Stage, resource: ResourceType, name: &str, slug: &str) {
    if slug.is_empty() || ctx.refs.known_tags.contains(slug) {
        return;
    }
    let fields = obj(json!({ "name": name, "slug": slug, "description": "Proxmox tag" }));
    let head = OpHead {
        stage: stage.name(),
        resource: Some(resource),
        model: netbox::TAG,
        identity: slug,
        key: slug.to_owned(),
    };
    let id = ctx.create(head, Reason::NewInProxmox, fields);
    ctx.refs.created_tags.insert(slug.to_owned(), id);
    ctx.refs.known_tags.insert(slug.to_owned());
}

fn plan_custom_fields(ctx: &mut Context) {
    for (name, kind, label) in CUSTOM_FIELDS {
        if find(ctx.loaded.get(netbox::CUSTOM_FIELD), "name", name).is_some() {
            continue;
        }
        let fields = obj(json!({
            "name": name, "label": label, "type": kind, "object_types": ["virtualization.virtualmachine"],
            "required": false, "group_name": "Proxmox", "description": "Maintained by proxbox-planner",
        }));
        let head = OpHead {
            stage: BOOTSTRAP,
            resource: None,
            model: netbox::CUSTOM_FIELD,
            identity: name,
            key: name.to_owned(),
        };
        ctx.create(head, Reason::MissingInNetbox, fields);
    }
}

fn plan_device_types(ctx: &mut Context) {
    let tags = super::diff::tag_list(&[TAG_PROXBOX.to_owned()]);
    if !ctx.mode(ResourceType::Cluster).is_disabled() {
        let fields = obj(json!({ "name": "Proxmox", "slug": "proxmox", "tags": tags }));
        ctx.refs.cluster_type = Some(ensure(
            ctx,
            netbox::CLUSTER_TYPE,
            "proxmox",
            ("name", "Proxmox"),
            fields,
        ));
    }
    if ctx.mode(ResourceType::Node).is_disabled() {
        return;
    }
    let fields = obj(json!({ "name": "Proxmox", "slug": "proxmox", "tags": tags }));
    let manufacturer = ensure(ctx, netbox::MANUFACTURER, "proxmox", ("name", "Proxmox"), fields);
    let fields = obj(json!({
        "manufacturer": manufacturer, "model": "Proxmox VE Node", "slug": "proxmox-ve-node", "u_height": 1, "tags": tags,
    }));
    ctx.refs.device_type = Some(ensure(
        ctx,
        netbox::DEVICE_TYPE,
        "proxmox-ve-node",
        ("model", "Proxmox VE Node"),
        fields,
    ));
    let fields = obj(json!({
        "name": "Proxmox Node", "slug": "proxmox-node", "color": "ff9800", "vm_role": false, "tags": tags,
    }));
    ctx.refs.device_role = Some(ensure(
        ctx,
        netbox::DEVICE_ROLE,
        "proxmox-node",
        ("name", "Proxmox Node"),
        fields,
    ));
    ctx.refs.site = Some(match ctx.settings.endpoint.site_id {
        Some(id) => Value::from(id),
        None => {
            let fields =
                obj(json!({ "name": "Proxbox Basic Site", "slug": SITE_SLUG, "status": "active", "tags": tags }));
            ensure(ctx, netbox::SITE, SITE_SLUG, ("name", "Proxbox Basic Site"), fields)
        }
    });
}
