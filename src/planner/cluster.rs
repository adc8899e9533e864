//! The endpoint's cluster (identity: its name, case-insensitive). Every
//! other planner hangs off it, so it is matched whenever anything runs;
//! clusters are never retired.

use super::bootstrap::Prerequisite;
use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{nothing, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::MatchedBy;
use serde_json::Value;

pub const PLANNER: Planner = Planner {
    name: "cluster",
    stage: Stage::Devices,
    governed_by: &[ResourceType::Cluster],
    reads: &[netbox::CLUSTER],
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

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let name = ctx.inventory.cluster_name.clone();
    let candidates: Vec<&Object> = ctx
        .objects(netbox::CLUSTER)
        .iter()
        .filter(|c| c.str("name").is_some_and(|n| n.trim().eq_ignore_ascii_case(&name)))
        .collect();
    let found = Found::among(candidates, MatchedBy::NaturalKey, "clusters");
    let item = Item {
        identity: name.to_lowercase(),
        key: name.clone(),
        proxmox_path: Some(crate::proxmox_path::CLUSTER_STATUS.to_owned()),
    };
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, []);
    let cluster_type = ctx.refs.cluster_type.clone().unwrap_or(Value::Null);
    let outcome = reconciler.item(ctx, &item, found, |_, _| {
        Desired::fields(vec![
            Field::new("name", Kind::Scalar, name.as_str()).create_only(),
            Field::new("type", Kind::ForeignKey, cluster_type).create_only(),
            Field::new("status", Kind::Choice, "active").create_only(),
        ])
    });
    match outcome {
        Outcome::Existing(cluster) => {
            ctx.refs.cluster = Some(Value::from(cluster.id));
            ctx.refs.cluster_id = Some(cluster.id);
        }
        Outcome::Created => ctx.refs.cluster = reconciler.reference_of(&item.identity),
        Outcome::Skipped => {}
    }
    Ok(())
}
