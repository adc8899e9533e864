//! Proxmox nodes as `dcim.device` (identity: the device name within the
//! cluster; a same-name device elsewhere is adopted only when tagged
//! `proxbox`). Where the Proxbox plugin is installed, each node's tracking
//! row (`proxmox-nodes`, endpoint + name) and the device's sync-state record
//! are kept too.

use super::bootstrap::Prerequisite;
use super::context::Context;
use super::diff::{Field, Kind};
use super::proxbox::{self, Linked};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::{nothing, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason, WarningCode};
use crate::source::Node;
use serde_json::Value;

pub const PLANNER: Planner = Planner {
    name: "node",
    stage: Stage::Devices,
    governed_by: &[ResourceType::Node],
    reads: &[netbox::DEVICE, netbox::PROXMOX_NODE, netbox::DEVICE_SYNC_STATE],
    links: &[],
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

/// The plugin's tracking rows; gone nodes' rows go, like the plugin's own do.
const TRACKING: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    lookup: &[("endpoint_id", "endpoint"), ("name", "name")],
    ..Lifecycle::synced(
        "devices",
        ResourceType::Node,
        netbox::PROXMOX_NODE,
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

/// The device the plugin's bookkeeping links to the node: its tracking row's
/// `netbox_device`, else a device sync-state record of this endpoint naming it.
fn linked<'a>(ctx: &Context<'a>, node: &str) -> Option<&'a Object<'a>> {
    let endpoint = ctx.endpoint_id()?;
    let tracked = ctx
        .objects(netbox::PROXMOX_NODE)
        .iter()
        .find(|row| row.fk("endpoint") == Some(endpoint) && row.str("name") == Some(node))
        .and_then(|row| row.fk("netbox_device"));
    let stated = || {
        ctx.objects(netbox::DEVICE_SYNC_STATE)
            .iter()
            .find(|s| s.fk("endpoint") == Some(endpoint) && s.str("proxmox_node_name") == Some(node))
            .and_then(|s| s.fk("device"))
    };
    ctx.object(netbox::DEVICE, tracked.or_else(stated)?)
}

fn find<'a>(ctx: &Context<'a>, devices: &'a [Object<'a>], node: &str, name: &str) -> Found<'a> {
    if let Some(device) = linked(ctx, node) {
        return Found::One(device, MatchedBy::SyncState);
    }
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
    let mut devices_of_nodes = Vec::new();
    for node in &inventory.nodes {
        let name = device_name(ctx, &node.name);
        let item = Item {
            identity: name.clone(),
            key: name.clone(),
            proxmox_path: Some(crate::proxmox_path::CLUSTER_STATUS.to_owned()),
        };
        let found = find(ctx, devices, &node.name, &name);
        let outcome = reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, &name));
        if let Some(device) = Linked::of(&outcome, reconciler.reference_of(&name)) {
            ctx.refs.devices.insert(node.name.clone(), device.reference.clone());
            devices_of_nodes.push((node, device));
        }
    }
    reconciler.retire(ctx, true, |device| {
        format!("{}#{}", device.str("name").unwrap_or_default(), device.id)
    });
    plan_bookkeeping(ctx, writes, &devices_of_nodes);
    Ok(())
}

/// The nodes' tracking rows (gone ones deleted) and the devices' sync-state records.
fn plan_bookkeeping(ctx: &mut Context, writes: bool, nodes: &[(&Node, Linked)]) {
    if !ctx.plugin_installed() {
        return;
    }
    let endpoint = ctx.endpoint_id();
    let rows: Vec<&Object> = ctx
        .objects(netbox::PROXMOX_NODE)
        .iter()
        .filter(|row| endpoint.is_some() && row.fk("endpoint") == endpoint)
        .collect();
    let mut reconciler = Reconciler::for_run(ctx, &TRACKING, writes, rows.iter().copied());
    let cluster_name = ctx.inventory.cluster_name.clone();
    for (node, device) in nodes {
        let identity = format!("{}/tracking", node.name);
        let candidates = rows
            .iter()
            .copied()
            .filter(|r| r.str("name") == Some(node.name.as_str()))
            .collect();
        let found = Found::among(candidates, MatchedBy::NaturalKey, "proxmox-nodes rows");
        let item = Item {
            identity: identity.clone(),
            key: node.name.clone(),
            proxmox_path: Some(crate::proxmox_path::CLUSTER_STATUS.to_owned()),
        };
        if node.ip.is_none() && matches!(found, Found::None) {
            let detail = "Proxmox reports no IP address for the node, which the plugin's row requires".to_owned();
            reconciler.hold(ctx, &item, found, Reason::UnsupportedByNetbox, detail);
            continue;
        }
        let fields = tracking_fields(ctx, node, device);
        let outcome = reconciler.item(ctx, &item, found, |_, _| Desired::fields(fields));
        let row = Linked::of(&outcome, reconciler.reference_of(&identity)).map(|r| r.reference);
        if let Some(row) = &row {
            ctx.refs.proxmox_nodes.insert(node.name.clone(), row.clone());
        }
        let state = vec![
            Field::new("endpoint", Kind::ForeignKey, endpoint),
            Field::new("proxmox_node", Kind::ForeignKey, row),
            Field::new("proxmox_node_name", Kind::Scalar, node.name.as_str()),
            Field::new("proxmox_cluster", Kind::ForeignKey, ctx.refs.proxmox_cluster.clone()),
            Field::new("proxmox_cluster_name", Kind::Scalar, cluster_name.as_str()),
        ];
        let key = format!("{}/sync-state", node.name);
        let after = [
            LIFECYCLE.head(&device_name(ctx, &node.name), String::new()).id(),
            TRACKING.head(&identity, String::new()).id(),
        ];
        proxbox::plan(ctx, &proxbox::DEVICE, writes, (&key, &after), device, state);
    }
    reconciler.retire(ctx, true, |row| {
        format!("{}/tracking#{}", row.str("name").unwrap_or_default(), row.id)
    });
}

fn tracking_fields(ctx: &Context, node: &Node, device: &Linked) -> Vec<Field> {
    let mut fields = vec![
        Field::new("endpoint", Kind::ForeignKey, ctx.endpoint_id()).create_only(),
        Field::new("name", Kind::Scalar, node.name.as_str()).create_only(),
        Field::new("proxmox_cluster", Kind::ForeignKey, ctx.refs.proxmox_cluster.clone()),
        Field::new("netbox_device", Kind::ForeignKey, device.reference.clone()),
        Field::new("node_id", Kind::Scalar, node.node_id),
        Field::new("online", Kind::Scalar, node.online),
        Field::new("local", Kind::Scalar, node.local),
        Field::new("max_cpu", Kind::Scalar, node.max_cpu),
        Field::new("max_memory", Kind::Scalar, node.max_memory),
    ];
    if let Some(ip) = &node.ip {
        fields.push(Field::new("ip_address", Kind::Scalar, ip.as_str()));
    }
    fields
}
