//! Proxmox nodes as `dcim.device` (identity: the device name within the
//! cluster; a same-name device elsewhere is adopted only when tagged `proxbox`).

use super::bootstrap::Prerequisite;
use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{nothing, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason, WarningCode};
use serde_json::Value;

pub const PLANNER: Planner = Planner {
    name: "node",
    stage: Stage::Devices,
    governed_by: &[ResourceType::Node],
    reads: &[netbox::DEVICE],
    prerequisites: &[Prerequisite::NodeTypes],
    needs: &["cluster"],
    proxmox: nothing,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_device_tags"),
    lookup: &[("name", "name"), ("cluster_id", "cluster")],
    ..Lifecycle::synced(
        "devices",
        ResourceType::Node,
        netbox::DEVICE,
        Gone::Delete { cascades: &[] },
    )
};

pub fn device_name(ctx: &Context, node: &str) -> String {
    ctx.settings
        .options
        .node_device_name_template
        .replace("{node}", node)
        .replace("{cluster}", &ctx.inventory.cluster_name)
}

fn find<'a>(ctx: &Context<'a>, devices: &'a [Object<'a>], name: &str) -> Found<'a> {
    let cluster_id = ctx.refs.cluster_id;
    let (in_cluster, elsewhere): (Vec<&Object>, Vec<&Object>) = devices
        .iter()
        .filter(|d| d.str("name").is_some_and(|n| n.trim().eq_ignore_ascii_case(name)))
        .partition(|d| cluster_id.is_some() && d.fk("cluster") == cluster_id);
    match (in_cluster.as_slice(), elsewhere.as_slice()) {
        ([], []) => Found::None,
        ([], [device]) if ctx.owned(device) => Found::One(device, MatchedBy::NaturalKey),
        ([], [device]) => Found::Refused(
            Some(device),
            Reason::NotOwned,
            WarningCode::NotOwned,
            format!("device {name:?} exists outside the cluster and is not tagged proxbox"),
        ),
        ([], _) => Found::among(elsewhere, MatchedBy::NaturalKey, "devices outside the cluster"),
        _ => Found::among(in_cluster, MatchedBy::NaturalKey, "devices in the cluster"),
    }
}

fn desired(ctx: &Context, name: &str) -> Desired {
    let or_null = |v: &Option<Value>| v.clone().unwrap_or(Value::Null);
    let refs = &ctx.refs;
    Desired::fields(vec![
        Field::new("name", Kind::Scalar, name).create_only(),
        Field::new("status", Kind::Choice, "active").overwritten_by("overwrite_device_status"),
        Field::new("role", Kind::ForeignKey, or_null(&refs.device_role)).overwritten_by("overwrite_device_role"),
        Field::new("device_type", Kind::ForeignKey, or_null(&refs.device_type)).overwritten_by("overwrite_device_type"),
        Field::new("cluster", Kind::ForeignKey, or_null(&refs.cluster)),
        Field::new("site", Kind::ForeignKey, or_null(&refs.site)).create_only(),
    ])
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let devices = ctx.objects(netbox::DEVICE);
    let cluster_id = ctx.refs.cluster_id;
    let ours = devices
        .iter()
        .filter(|d| cluster_id.is_some() && d.fk("cluster") == cluster_id);
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, ours);
    if ctx.refs.cluster.is_none() {
        reconciler.skip_all(ctx, Reason::MissingParent, "the cluster is not in NetBox");
        return Ok(());
    }
    let inventory = ctx.inventory;
    for node in &inventory.nodes {
        let name = device_name(ctx, &node.name);
        let item = Item {
            identity: name.clone(),
            key: name.clone(),
            proxmox_path: Some(crate::proxmox_path::CLUSTER_STATUS.to_owned()),
        };
        let found = find(ctx, devices, &name);
        match reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, &name)) {
            Outcome::Existing(device) => {
                ctx.refs.devices.insert(node.name.clone(), Value::from(device.id));
            }
            Outcome::Created => {
                if let Some(reference) = reconciler.reference_of(&name) {
                    ctx.refs.devices.insert(node.name.clone(), reference);
                }
            }
            Outcome::Skipped => {}
        }
    }
    reconciler.retire(ctx, true, |device| {
        format!("{}#{}", device.str("name").unwrap_or_default(), device.id)
    });
    Ok(())
}
