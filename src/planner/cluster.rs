//! The endpoint's cluster (identity: name, case-insensitive).

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::Context;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{reference, OpHead, Reason, Warning, WarningCode};
use serde_json::Value;

fn head(name: &str) -> OpHead<'_> {
    OpHead {
        stage: Stage::Devices.name(),
        resource: Some(ResourceType::Cluster),
        model: netbox::CLUSTER,
        identity: name,
        key: name.to_owned(),
    }
}

/// Finds (and, when the devices stage runs, creates or updates) the cluster
/// every other object hangs off.
pub fn resolve(ctx: &mut Context, plan: bool) {
    let name = ctx.inventory.cluster_name.clone();
    let identity = name.to_lowercase();
    let loaded = ctx.loaded;
    let candidates: Vec<&Object> = loaded
        .get(netbox::CLUSTER)
        .iter()
        .filter(|c| c.str("name").is_some_and(|n| n.eq_ignore_ascii_case(&name)))
        .collect();
    let disabled = ctx.mode(ResourceType::Cluster).is_disabled();
    if plan && disabled {
        ctx.skip_disabled(Stage::Devices, ResourceType::Cluster, netbox::CLUSTER);
    }
    match candidates.as_slice() {
        [] if plan && !disabled => {
            let fields = [
                Field::new("name", Kind::Scalar, name.as_str()),
                Field::new(
                    "type",
                    Kind::ForeignKey,
                    ctx.refs.cluster_type.clone().unwrap_or(Value::Null),
                ),
                Field::new("status", Kind::Choice, "active"),
                Field::new("tags", Kind::Tags, tag_list(&ctx.creation_tags(ResourceType::Cluster))),
            ];
            let id = ctx.create(head(&identity), Reason::NewInProxmox, create_payload(&fields));
            ctx.refs.cluster = Some(reference(&id));
        }
        [] => {}
        [cluster] => {
            ctx.refs.cluster = Some(Value::from(cluster.id));
            ctx.refs.cluster_id = Some(cluster.id);
            if plan && !disabled && !ctx.protected(head(&identity), ResourceType::Cluster, cluster) {
                let ours = ctx.creation_tags(ResourceType::Cluster);
                let update_tags = ctx.settings.overwrite.get("overwrite_cluster_tags");
                let fields = [
                    Field::new("tags", Kind::Tags, tag_list(&merged_tags(cluster, &ours))).create_only(!update_tags)
                ];
                ctx.update(head(&identity), cluster, changes(cluster, &fields));
            }
        }
        several => {
            let ids: Vec<String> = several.iter().map(|c| c.id.to_string()).collect();
            let detail = format!(
                "{} NetBox clusters are named {name:?} (ids {})",
                several.len(),
                ids.join(", ")
            );
            if plan {
                ctx.plan
                    .skip(head(&identity), None, Reason::AmbiguousIdentity, detail.clone());
            }
            ctx.plan.warn(Warning::new(
                WarningCode::AmbiguousIdentity,
                format!("{detail}; nothing is planned for this cluster"),
            ));
        }
    }
}
