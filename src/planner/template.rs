//! Proxmox templates as the plugin's `vm-templates` records (identity:
//! endpoint + vmid), never as VirtualMachines. Governed by
//! `sync_mode_vm_template` alone. `source_vm` and `cloned_vms` belong to
//! operators: they are never written.

use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, TAG_PROXBOX};
use crate::error::Result;
use crate::json::loose_u64;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{OpHead, Reason};
use crate::source::{disk_mib, is_disk_key, Guest};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const STAGE: Stage = Stage::VmTemplates;

fn head(identity: &str, key: String) -> OpHead<'_> {
    OpHead {
        stage: STAGE.name(),
        resource: Some(ResourceType::VmTemplate),
        model: netbox::VM_TEMPLATE,
        identity,
        key,
    }
}

const CLOUD_INIT_KEYS: [&str; 5] = ["ciuser", "cipassword", "sshkeys", "ipconfig0", "citype"];

fn cloud_init(config: &Map<String, Value>) -> bool {
    CLOUD_INIT_KEYS.iter().any(|k| config.contains_key(*k))
        || config
            .iter()
            .any(|(k, v)| is_disk_key(k) && v.as_str().is_some_and(|v| v.contains("cloudinit")))
}

fn pick(config: &Map<String, Value>, keep: impl Fn(&str) -> bool) -> Value {
    Value::Object(
        config
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn is_net_key(key: &str) -> bool {
    key.strip_prefix("net")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn desired(ctx: &Context, guest: &Guest, config: &Map<String, Value>, existing: Option<&Object>) -> Vec<Field> {
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
    let ours = ctx.creation_tags(ResourceType::VmTemplate);
    let tags = match existing {
        Some(record) => merged_tags(record, &ours),
        None => ours,
    };
    vec![
        Field::new("name", Kind::Scalar, guest.name.as_str()),
        Field::new("vmid", Kind::Scalar, guest.vmid),
        Field::new("proxmox_endpoint", Kind::ForeignKey, ctx.endpoint_id()),
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
        Field::new("tags", Kind::Tags, tag_list(&tags)),
    ]
}

pub fn plan(ctx: &mut Context) -> Result<()> {
    if ctx.mode(ResourceType::VmTemplate).is_disabled() {
        ctx.skip_disabled(STAGE, ResourceType::VmTemplate, netbox::VM_TEMPLATE);
        return Ok(());
    }
    let endpoint = super::required_endpoint_id(ctx)?;
    let loaded = ctx.loaded;
    let mut records: BTreeMap<u64, Vec<&Object>> = BTreeMap::new();
    for record in loaded
        .get(netbox::VM_TEMPLATE)
        .iter()
        .filter(|r| r.fk("proxmox_endpoint") == Some(endpoint))
    {
        if let Some(vmid) = record.u64("vmid") {
            records.entry(vmid).or_default().push(record);
        }
    }
    let inventory = ctx.inventory;
    let mut seen = BTreeSet::new();
    for guest in inventory.guests.iter().filter(|g| g.template) {
        seen.insert(guest.vmid);
        let key = guest.key();
        let label = format!("{key} {}", guest.name);
        let existing = records.get(&guest.vmid).map(Vec::as_slice).unwrap_or_default();
        let Some(config) = guest.config() else {
            let detail = format!("config unavailable ({}): left as it is", guest.config.failure());
            ctx.plan.skip(
                head(&key, label),
                existing.first().copied(),
                Reason::IncompleteSnapshot,
                detail,
            );
            continue;
        };
        match existing {
            [] => {
                let fields = desired(ctx, guest, config, None);
                ctx.create(head(&key, label), Reason::NewInProxmox, create_payload(&fields));
            }
            [record] => {
                if !ctx.protected(head(&key, label.clone()), ResourceType::VmTemplate, record) {
                    let fields = desired(ctx, guest, config, Some(record));
                    ctx.update(head(&key, label), record, changes(record, &fields));
                }
            }
            several => {
                let detail = format!("{} vm-templates records carry vmid {}", several.len(), guest.vmid);
                ctx.plan.ambiguous(head(&key, label.clone()), &label, detail);
            }
        }
    }
    for (vmid, gone) in records.into_iter().filter(|(vmid, _)| !seen.contains(vmid)) {
        for record in gone {
            let key = format!("vmid/{vmid}#{}", record.id);
            let label = format!("template {vmid} {}", record.str("name").unwrap_or_default());
            if ctx.protected(head(&key, label.clone()), ResourceType::VmTemplate, record) {
                continue;
            }
            if record.has_tag(TAG_PROXBOX) {
                ctx.plan.delete(head(&key, label), record, Reason::GoneFromProxmox);
            } else {
                let detail = "gone from Proxmox, but not tagged proxbox: left for an operator";
                ctx.plan.skip(head(&key, label), Some(record), Reason::NotOwned, detail);
            }
        }
    }
    Ok(())
}
