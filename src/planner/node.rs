//! Proxmox nodes as `dcim.device` (identity: device name within the cluster;
//! a same-name device elsewhere is adopted only when tagged `proxbox`).

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, TAG_PROXBOX};
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{reference, OpHead, Reason, Warning, WarningCode};
use serde_json::Value;

fn head(name: &str) -> OpHead<'_> {
    OpHead {
        stage: Stage::Devices.name(),
        resource: Some(ResourceType::Node),
        model: netbox::DEVICE,
        identity: name,
        key: name.to_owned(),
    }
}

pub fn device_name(ctx: &Context, node: &str) -> String {
    ctx.settings
        .options
        .node_device_name_template
        .replace("{node}", node)
        .replace("{cluster}", &ctx.inventory.cluster_name)
}

enum Match<'o, 'a> {
    Ours(&'o Object<'a>),
    Adopt(&'o Object<'a>),
    None,
    Refused(Reason, String),
}

fn find<'o, 'a>(devices: &'o [Object<'a>], name: &str, cluster_id: Option<u64>) -> Match<'o, 'a> {
    let same_name: Vec<&Object> = devices
        .iter()
        .filter(|d| d.str("name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .collect();
    let (in_cluster, elsewhere): (Vec<&Object>, Vec<&Object>) = same_name
        .into_iter()
        .partition(|d| cluster_id.is_some() && d.fk("cluster") == cluster_id);
    match (in_cluster.as_slice(), elsewhere.as_slice()) {
        ([device], _) => Match::Ours(device),
        ([], []) => Match::None,
        ([], [device]) if device.has_tag(TAG_PROXBOX) => Match::Adopt(device),
        ([], [device]) => Match::Refused(
            Reason::NotOwned,
            format!(
                "device {name:?} (id {}) exists outside the cluster and is not tagged proxbox",
                device.id
            ),
        ),
        (many, _) if many.len() > 1 => Match::Refused(
            Reason::AmbiguousIdentity,
            format!("{} devices named {name:?} in the cluster", many.len()),
        ),
        (_, many) => Match::Refused(
            Reason::AmbiguousIdentity,
            format!("{} devices named {name:?} elsewhere", many.len()),
        ),
    }
}

pub fn plan(ctx: &mut Context) {
    let planning = !ctx.mode(ResourceType::Node).is_disabled();
    if !planning {
        ctx.skip_disabled(Stage::Devices, ResourceType::Node, netbox::DEVICE);
    }
    let loaded = ctx.loaded;
    let devices = loaded.get(netbox::DEVICE);
    let mut names = Vec::new();
    for node in &ctx.inventory.nodes {
        let name = device_name(ctx, &node.name);
        names.push(name.to_lowercase());
        match find(devices, &name, ctx.refs.cluster_id) {
            Match::Ours(device) | Match::Adopt(device) => {
                ctx.refs.devices.insert(node.name.clone(), Value::from(device.id));
                if planning && !ctx.protected(head(&name), ResourceType::Node, device) {
                    let fields = desired(ctx, &name, Some(device));
                    ctx.update(head(&name), device, changes(device, &fields));
                }
            }
            Match::None if planning => {
                if ctx.refs.cluster.is_none() {
                    ctx.plan.skip(
                        head(&name),
                        None,
                        Reason::IncompleteSnapshot,
                        "the cluster is not in NetBox",
                    );
                    continue;
                }
                let fields = desired(ctx, &name, None);
                let id = ctx.create(head(&name), Reason::NewInProxmox, create_payload(&fields));
                ctx.refs.devices.insert(node.name.clone(), reference(&id));
            }
            Match::None => {}
            Match::Refused(reason, detail) => {
                if planning {
                    ctx.plan.skip(head(&name), None, reason, detail.clone());
                }

                let code = match reason {
                    Reason::NotOwned => WarningCode::NotOwned,
                    _ => WarningCode::AmbiguousIdentity,
                };
                ctx.plan.warn(Warning::new(code, detail));
            }
        }
    }
    if planning {
        plan_gone(ctx, &names);
    }
}

fn desired(ctx: &Context, name: &str, existing: Option<&Object>) -> Vec<Field> {
    let flag = |name: &str| !ctx.settings.overwrite.get(name);
    let ours = ctx.creation_tags(ResourceType::Node);
    let tags = match existing {
        Some(device) => merged_tags(device, &ours),
        None => ours,
    };
    let or_null = |v: &Option<Value>| v.clone().unwrap_or(Value::Null);
    let mut fields = vec![
        Field::new("name", Kind::Scalar, name).create_only(true),
        Field::new("status", Kind::Choice, "active").create_only(flag("overwrite_device_status")),
        Field::new("role", Kind::ForeignKey, or_null(&ctx.refs.device_role)).create_only(flag("overwrite_device_role")),
        Field::new("device_type", Kind::ForeignKey, or_null(&ctx.refs.device_type))
            .create_only(flag("overwrite_device_type")),
        Field::new("cluster", Kind::ForeignKey, or_null(&ctx.refs.cluster)),
        Field::new("tags", Kind::Tags, tag_list(&tags)).create_only(flag("overwrite_device_tags")),
    ];
    if existing.is_none() {
        fields.push(Field::new("site", Kind::ForeignKey, or_null(&ctx.refs.site)));
    }
    fields
}

/// Devices of our cluster that no node explains any more.
fn plan_gone(ctx: &mut Context, names: &[String]) {
    let Some(cluster_id) = ctx.refs.cluster_id else {
        return;
    };
    let loaded = ctx.loaded;
    for device in loaded.get(netbox::DEVICE) {
        let name = device.str("name").unwrap_or_default();
        let gone = device.fk("cluster") == Some(cluster_id) && !names.contains(&name.to_lowercase());
        if !gone || !device.has_tag(TAG_PROXBOX) {
            continue;
        }
        let identity = format!("{name}#{}", device.id);
        if !ctx.protected(head(&identity), ResourceType::Node, device) {
            ctx.plan.delete(head(&identity), device, Reason::GoneFromProxmox);
            ctx.refs.mark_deleted(netbox::DEVICE, device.id);
        }
    }
}
