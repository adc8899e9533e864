//! Proxmox templates as the plugin's `vm-templates` records (identity:
//! endpoint + vmid), never as VirtualMachines. Governed by
//! `sync_mode_vm_template` alone. `source_vm` and `cloned_vms` belong to
//! operators: they are never written. `cluster` and `node` link the plugin's
//! tracking rows.

use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Owner, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::json::loose_u64;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason};
use crate::source::{disk_mib, is_disk_key, Guest};
use serde_json::{Map, Value};

pub const PLANNER: Planner = Planner {
    name: "template",
    stage: Stage::VmTemplates,
    governed_by: &[ResourceType::VmTemplate],
    reads: &[netbox::VM_TEMPLATE],
    links: &[],
    prerequisites: &[],
    needs: &["cluster", "node"],
    proxmox: ask,
    run: plan,
};

/// The plugin's own template sync writes these rows too and retires them by
/// endpoint: the endpoint link is the claim, as it is there.
const LIFECYCLE: Lifecycle = Lifecycle {
    owner: Owner::Endpoint,
    report_unowned: true,
    lookup: &[("proxmox_endpoint_id", "proxmox_endpoint"), ("vmid", "vmid")],
    ..Lifecycle::synced(
        "vm-templates",
        ResourceType::VmTemplate,
        netbox::VM_TEMPLATE,
        Gone::Delete { cascades: &[] },
    )
};

fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask.guests(true).map(|g| g.config_path.clone()).collect();
    paths.iter().for_each(|path| ask.want(path));
}

const CLOUD_INIT_KEYS: [&str; 5] = ["ciuser", "cipassword", "sshkeys", "ipconfig0", "citype"];

fn cloud_init(config: &Map<String, Value>) -> bool {
    CLOUD_INIT_KEYS.iter().any(|k| config.contains_key(*k))
        || config
            .iter()
            .any(|(k, v)| is_disk_key(k) && v.as_str().is_some_and(|v| v.contains("cloudinit")))
}

fn pick(config: &Map<String, Value>, keep: impl Fn(&str) -> bool) -> Value {
    Value::Object(crate::sort::json_map(
        config
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone())),
    ))
}

fn is_net_key(key: &str) -> bool {
    key.strip_prefix("net")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn desired(ctx: &Context, guest: &Guest, config: &Map<String, Value>) -> Desired {
    let number = |key: &str| config.get(key).and_then(loose_u64);
    let vcpus = guest
        .maxcpu
        .filter(|c| *c > 0)
        .or_else(|| Some(number("cores")? * number("sockets").unwrap_or(1)));
    let memory = guest.maxmem.map(|bytes| bytes >> 20).or_else(|| number("memory"));
    let description = config
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    Desired::fields(vec![
        Field::new("name", Kind::Scalar, guest.name.as_str()),
        Field::new("vmid", Kind::Scalar, guest.vmid),
        Field::new("proxmox_endpoint", Kind::ForeignKey, ctx.endpoint_id()),
        Field::new("cluster", Kind::ForeignKey, ctx.refs.proxmox_cluster.clone()),
        Field::new(
            "node",
            Kind::ForeignKey,
            ctx.refs.proxmox_nodes.get(&guest.node).cloned(),
        ),
        Field::new("node_name", Kind::Scalar, guest.node.as_str()),
        Field::new("proxmox_type", Kind::Scalar, guest.kind.as_str()),
        Field::new("status", Kind::Scalar, guest.status.as_str()),
        Field::new("vcpus", Kind::Scalar, vcpus),
        Field::new("memory", Kind::Scalar, memory),
        Field::new("disk", Kind::Scalar, disk_mib(config).div_ceil(1024)),
        Field::new(
            "os_type",
            Kind::Scalar,
            config.get("ostype").and_then(Value::as_str).unwrap_or_default(),
        ),
        Field::new("description", Kind::Scalar, description),
        Field::new("cloud_init_enabled", Kind::Scalar, cloud_init(config)),
        Field::new("net_config", Kind::Scalar, pick(config, is_net_key)),
        Field::new("disk_config", Kind::Scalar, pick(config, is_disk_key)),
        Field::new("raw_config", Kind::Scalar, Value::Object(config.clone())),
    ])
}

/// The key a record would have as a guest (`qemu/9000`).
fn record_key(record: &Object) -> String {
    format!(
        "{}/{}",
        record.str("proxmox_type").unwrap_or("qemu"),
        record.u64("vmid").unwrap_or_default()
    )
}

fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let ours: Vec<&Object> = ctx
        .objects(netbox::VM_TEMPLATE)
        .iter()
        .filter(|r| r.fk("proxmox_endpoint") == Some(endpoint) && r.u64("vmid").is_some())
        .collect();
    let in_scope: Vec<&Object> = ours
        .iter()
        .copied()
        .filter(|r| ctx.guest_in_scope(&record_key(r)))
        .collect();
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, in_scope);
    if !reconciler.planning() {
        return Ok(());
    }
    let inventory = ctx.inventory;
    for guest in inventory.guests.iter().filter(|g| g.template) {
        let key = guest.key();
        let candidates: Vec<&Object> = ours
            .iter()
            .copied()
            .filter(|r| r.u64("vmid") == Some(guest.vmid))
            .collect();
        if !ctx.guest_in_scope(&key) {
            candidates.iter().for_each(|r| reconciler.keep(r));
            continue;
        }
        let item = Item {
            identity: key.clone(),
            key: format!("{key} {}", guest.name),
            proxmox_path: Some(guest.config_path.clone()),
        };
        let found = Found::among(candidates, MatchedBy::NaturalKey, "vm-templates records");
        let Some(config) = guest.config() else {
            let detail = format!("config unavailable ({}): left as it is", guest.config.failure());
            reconciler.hold(ctx, &item, found, Reason::IncompleteSnapshot, detail);
            continue;
        };
        reconciler.item(ctx, &item, found, |ctx, _| desired(ctx, guest, config));
    }
    reconciler.retire(ctx, true, |record| {
        format!("vmid/{}#{}", record.u64("vmid").unwrap_or_default(), record.id)
    });
    Ok(())
}
