//! The endpoint's cluster. Identity: the cluster the plugin's tracking row
//! (`proxmox-clusters`, endpoint + name) links, else its name,
//! case-insensitive. Every other planner hangs off it, so it is matched
//! whenever anything runs; clusters are never retired. Where the Proxbox
//! plugin is installed, its tracking row and the cluster's sync-state record
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
use crate::plan::MatchedBy;
use crate::proxmox_path;
use serde_json::Value;

pub const PLANNER: Planner = Planner {
    name: "cluster",
    stage: Stage::Devices,
    governed_by: &[ResourceType::Cluster],
    reads: &[netbox::CLUSTER, netbox::PROXMOX_CLUSTER, netbox::CLUSTER_SYNC_STATE],
    links: &[],
    prerequisites: &[Prerequisite::ClusterType],
    needs: &[],
    proxmox: nothing,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_cluster_tags"),
    lookup: &[("name", "name")],
    ..Lifecycle::synced("devices", ResourceType::Cluster, netbox::CLUSTER, Gone::Keep)
};

/// The plugin's tracking row (never deleted by sync, like the plugin's own).
const TRACKING: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    lookup: &[("endpoint_id", "endpoint"), ("name", "name")],
    ..Lifecycle::synced("devices", ResourceType::Cluster, netbox::PROXMOX_CLUSTER, Gone::Keep)
};

fn item(identity: String, key: &str) -> Item {
    Item {
        identity,
        key: key.to_owned(),
        proxmox_path: Some(proxmox_path::CLUSTER_STATUS.to_owned()),
    }
}

/// This endpoint's tracking row for the cluster.
fn tracking_row<'a>(ctx: &Context<'a>, name: &str) -> Option<&'a Object<'a>> {
    let endpoint = ctx.endpoint_id()?;
    ctx.objects(netbox::PROXMOX_CLUSTER)
        .iter()
        .find(|row| row.fk("endpoint") == Some(endpoint) && row.str("name").is_some_and(|n| n.trim() == name))
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let name = ctx.inventory.cluster_name.clone();
    let tracking = tracking_row(ctx, &name);
    let linked = tracking.and_then(|row| ctx.object(netbox::CLUSTER, row.fk("netbox_cluster")?));
    let found = match linked {
        Some(cluster) => Found::One(cluster, MatchedBy::SyncState),
        None => {
            let candidates: Vec<&Object> = ctx
                .objects(netbox::CLUSTER)
                .iter()
                .filter(|c| c.str("name").is_some_and(|n| n.trim().eq_ignore_ascii_case(&name)))
                .collect();
            Found::among(candidates, MatchedBy::NaturalKey, "clusters")
        }
    };
    let identity = name.to_lowercase();
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, []);
    let cluster_type = ctx.refs.cluster_type.clone().unwrap_or(Value::Null);
    let outcome = reconciler.item(ctx, &item(identity.clone(), &name), found, |_, _| {
        Desired::fields(vec![
            Field::new("name", Kind::Scalar, name.as_str()).create_only(),
            Field::new("type", Kind::ForeignKey, cluster_type).create_only(),
            Field::new("status", Kind::Choice, "active").create_only(),
        ])
    });
    let Some(cluster) = Linked::of(&outcome, reconciler.reference_of(&identity)) else {
        return Ok(());
    };
    ctx.refs.cluster = Some(cluster.reference.clone());
    ctx.refs.cluster_id = cluster.existing;
    plan_bookkeeping(ctx, writes && reconciler.planning(), &name, tracking, &cluster);
    Ok(())
}

/// The plugin's tracking row and the cluster's sync-state record.
fn plan_bookkeeping<'a>(
    ctx: &mut Context<'a>,
    writes: bool,
    name: &str,
    tracking: Option<&'a Object<'a>>,
    cluster: &Linked,
) {
    if !ctx.plugin_installed() {
        return;
    }
    let identity = format!("{name}/tracking");
    let found = match tracking {
        Some(row) => Found::One(row, MatchedBy::NaturalKey),
        None => Found::None,
    };
    let info = &ctx.inventory.cluster;
    let fields = vec![
        Field::new("endpoint", Kind::ForeignKey, ctx.endpoint_id()).create_only(),
        Field::new("name", Kind::Scalar, name).create_only(),
        Field::new("netbox_cluster", Kind::ForeignKey, cluster.reference.clone()),
        Field::new("cluster_id", Kind::Scalar, info.id.clone().unwrap_or_default()),
        Field::new(
            "mode",
            Kind::Choice,
            if info.standalone { "standalone" } else { "cluster" },
        ),
        Field::new("nodes_count", Kind::Scalar, info.nodes),
        Field::new("quorate", Kind::Scalar, info.quorate),
        Field::new("version", Kind::Scalar, info.version),
    ];
    let mut reconciler = Reconciler::new(&TRACKING, writes, []);
    let outcome = reconciler.item(ctx, &item(identity.clone(), name), found, |_, _| {
        Desired::fields(fields)
    });
    let row = Linked::of(&outcome, reconciler.reference_of(&identity));
    ctx.refs.proxmox_cluster = row.as_ref().map(|r| r.reference.clone());
    let state = vec![
        Field::new("proxmox_cluster", Kind::ForeignKey, ctx.refs.proxmox_cluster.clone()),
        Field::new("proxmox_cluster_name", Kind::Scalar, name),
    ];
    let after = [
        LIFECYCLE.head(&name.to_lowercase(), String::new()).id(),
        TRACKING.head(&identity, String::new()).id(),
    ];
    let key = format!("{name}/sync-state");
    proxbox::plan(ctx, &proxbox::CLUSTER, writes, (&key, &after), cluster, state);
}
