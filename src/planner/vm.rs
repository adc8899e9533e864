//! QEMU and LXC guests as `virtualization.virtualmachine`.
//!
//! Identity is (endpoint, vmid, type) in custom fields, never the name: names
//! change, collide and get edited by operators. Templates are never VMs.

use super::bootstrap::ensure_tag;
use super::diff::{changes, create_payload, merged_tags, tag_list, Field, Kind};
use super::{Context, TAG_PROXBOX, TAG_SOFT_DELETED};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::parse;
use crate::plan::{reference, Change, OpHead, Reason, Target, Warning, WarningCode};
use crate::source::{disk_mib, Guest};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What later stages need to know about a guest's NetBox VM.
#[derive(Clone, Debug)]
pub struct VmSlot {
    pub reference: Value,
    pub existing_id: Option<u64>,
    pub guest_index: usize,
}

fn head(identity: &str, key: String) -> OpHead<'_> {
    OpHead {
        stage: Stage::VirtualMachines.name(),
        resource: Some(ResourceType::Vm),
        model: netbox::VIRTUAL_MACHINE,
        identity,
        key,
    }
}

/// (vmid, type) of a NetBox VM that belongs to this endpoint.
fn identity_of(vm: &Object, endpoint: u64) -> Option<(u64, String)> {
    let cf_u64 = |name| vm.custom_field(name).and_then(crate::json::loose_u64);
    if cf_u64("proxmox_endpoint") != Some(endpoint) {
        return None;
    }
    let vmid = cf_u64("proxmox_vmid")?;
    let kind = vm.custom_field("proxmox_vm_type").and_then(Value::as_str)?;
    Some((vmid, kind.to_ascii_lowercase()))
}

/// Matches guests to NetBox VMs; plans creates and updates when `planning`.
pub fn plan(ctx: &mut Context, planning: bool) -> Result<()> {
    let endpoint = super::required_endpoint_id(ctx)?;
    let mode = ctx.mode(ResourceType::Vm);
    let planning = planning && !mode.is_disabled();
    if ctx.refs.cluster.is_none() {
        if planning {
            let detail = format!(
                "cluster {:?} is not in NetBox (is cluster sync disabled?)",
                ctx.inventory.cluster_name
            );
            let head = OpHead {
                identity: "*",
                ..head("*", "every vm".to_owned())
            };
            ctx.plan.skip(head, None, Reason::IncompleteSnapshot, detail);
        }
        return Ok(());
    }
    let loaded = ctx.loaded;
    let mut by_identity: BTreeMap<(u64, String), Vec<&Object>> = BTreeMap::new();
    for vm in loaded.get(netbox::VIRTUAL_MACHINE) {
        if let Some(identity) = identity_of(vm, endpoint) {
            by_identity.entry(identity).or_default().push(vm);
        }
    }
    let inventory = ctx.inventory;
    let names = assign_names(ctx, &by_identity);
    for (index, guest) in inventory.guests.iter().enumerate().filter(|(_, g)| !g.template) {
        let key = guest.key();
        let label = format!("{key} {}", guest.name);
        let candidates = by_identity
            .remove(&(guest.vmid, guest.kind.as_str().to_owned()))
            .unwrap_or_default();
        let in_cluster: Vec<&Object> = candidates
            .iter()
            .copied()
            .filter(|vm| in_our_cluster(ctx, vm))
            .collect();
        let name = names.get(&key).cloned().unwrap_or_else(|| guest.name.clone());
        match (in_cluster.as_slice(), candidates.len()) {
            ([vm], _) => {
                ctx.refs.vms.insert(
                    key.clone(),
                    VmSlot {
                        reference: Value::from(vm.id),
                        existing_id: Some(vm.id),
                        guest_index: index,
                    },
                );
                if planning && !ctx.protected(head(&key, label), ResourceType::Vm, vm) {
                    plan_update(ctx, guest, vm, &name);
                }
            }
            ([], 0) if planning => {
                let fields = desired(ctx, guest, &name, None);
                let id = ctx.create(head(&key, label), Reason::NewInProxmox, create_payload(&fields));
                ctx.refs.vms.insert(
                    key,
                    VmSlot {
                        reference: reference(&id),
                        existing_id: None,
                        guest_index: index,
                    },
                );
            }
            ([], 0) => {}
            (found, total) => {
                let ids: Vec<String> = candidates.iter().map(|vm| vm.id.to_string()).collect();
                let detail = if found.len() > 1 {
                    format!(
                        "{} NetBox VMs carry this identity (ids {})",
                        found.len(),
                        ids.join(", ")
                    )
                } else {
                    format!(
                        "{total} NetBox VM(s) with this identity are in another cluster (ids {})",
                        ids.join(", ")
                    )
                };
                if planning {
                    ctx.plan.ambiguous(head(&key, label.clone()), &label, detail);
                } else {
                    ctx.plan.warn(Warning::new(
                        WarningCode::AmbiguousIdentity,
                        format!("{label}: {detail}"),
                    ));
                }
            }
        }
    }
    if planning {
        plan_gone(ctx, by_identity);
    }
    Ok(())
}

fn in_our_cluster(ctx: &Context, vm: &Object) -> bool {
    ctx.refs.cluster_id.is_some() && vm.fk("cluster") == ctx.refs.cluster_id
}

/// `name` itself or a de-duplicated form of it (`name (3)`).
fn is_form_of(current: &str, name: &str) -> bool {
    current == name
        || current
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(" ("))
            .and_then(|rest| rest.strip_suffix(')'))
            .is_some_and(|digits| digits.parse::<u32>().is_ok_and(|n| n >= 2))
}

/// The operator renamed the VM in NetBox when its name is neither what
/// Proxmox last reported nor a de-duplicated form of it.
fn operator_named(vm: &Object) -> Option<String> {
    let current = vm.str("name")?;
    let reported = vm.custom_field("proxmox_name").and_then(Value::as_str);
    let ours = reported.is_some_and(|reported| is_form_of(current, reported));
    (!ours).then(|| current.to_owned())
}

/// NetBox names per guest key: Proxmox's name, with ` (2)`, ` (3)` for
/// duplicates in the cluster (lowest free number, guests in vmid order). A
/// name already in NetBox that still fits is kept, so names never churn.
fn assign_names(ctx: &Context, by_identity: &BTreeMap<(u64, String), Vec<&Object>>) -> BTreeMap<String, String> {
    let ours: BTreeSet<u64> = by_identity.values().flatten().map(|vm| vm.id).collect();
    let mut taken: BTreeSet<String> = ctx
        .loaded
        .get(netbox::VIRTUAL_MACHINE)
        .iter()
        .filter(|vm| in_our_cluster(ctx, vm) && !ours.contains(&vm.id))
        .filter_map(|vm| vm.str("name").map(str::to_lowercase))
        .collect();
    let guests: Vec<(&Guest, Option<&Object>)> = ctx
        .inventory
        .guests
        .iter()
        .filter(|g| !g.template)
        .map(|guest| {
            let existing = by_identity
                .get(&(guest.vmid, guest.kind.as_str().to_owned()))
                .and_then(|c| match c.as_slice() {
                    [vm] if in_our_cluster(ctx, vm) => Some(*vm),
                    _ => None,
                });
            (guest, existing)
        })
        .collect();
    let mut names = BTreeMap::new();
    // Operators' names first, then names that still fit, then the rest.
    for (guest, vm) in &guests {
        if let Some(kept) = vm.and_then(operator_named) {
            taken.insert(kept.to_lowercase());
            names.insert(guest.key(), kept);
        }
    }
    for (guest, vm) in &guests {
        let current = vm.and_then(|vm| vm.str("name"));
        if let Some(current) = current.filter(|c| !names.contains_key(&guest.key()) && is_form_of(c, &guest.name)) {
            if taken.insert(current.to_lowercase()) {
                names.insert(guest.key(), current.to_owned());
            }
        }
    }
    for (guest, _) in &guests {
        if names.contains_key(&guest.key()) {
            continue;
        }
        let mut candidate = guest.name.clone();
        let mut n = 2;
        while taken.contains(&candidate.to_lowercase()) {
            candidate = format!("{} ({n})", guest.name);
            n += 1;
        }
        taken.insert(candidate.to_lowercase());
        names.insert(guest.key(), candidate);
    }
    names
}

fn status(guest: &Guest) -> &'static str {
    match guest.status.as_str() {
        "stopped" | "paused" | "offline" => "offline",
        _ => "active",
    }
}

/// Description = first line of the note (≤ 200 chars); the full note goes to
/// comments when it is longer than that.
fn note(guest: &Guest) -> (String, Option<String>) {
    let text = guest
        .config()
        .and_then(|c| c.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    let first: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(200)
        .collect();
    let longer = text.chars().count() > first.chars().count();
    (first, longer.then(|| text.to_owned()))
}

fn proxmox_tag_slugs(ctx: &mut Context, guest: &Guest) -> Vec<String> {
    let mut slugs = Vec::new();
    for tag in &guest.tags {
        let slug = parse::slugify(tag);
        ensure_tag(ctx, Stage::VirtualMachines, ResourceType::Vm, tag, &slug);
        if !slug.is_empty() {
            slugs.push(slug);
        }
    }
    slugs
}

fn desired(ctx: &mut Context, guest: &Guest, name: &str, existing: Option<&Object>) -> Vec<Field> {
    let flag = |ctx: &Context, name: &str| !ctx.settings.overwrite.get(name);
    let mut ours = ctx.creation_tags(ResourceType::Vm);
    if existing.is_none() || ctx.settings.overwrite.get("overwrite_vm_proxmox_tags") {
        ours.extend(proxmox_tag_slugs(ctx, guest));
    }
    let tags = match existing {
        Some(vm) => merged_tags(vm, &ours)
            .into_iter()
            .filter(|t| t != TAG_SOFT_DELETED)
            .collect(),
        None => ours,
    };
    let endpoint = ctx.endpoint_id().unwrap_or_default();
    let custom_fields = json!({
        "proxmox_vmid": guest.vmid, "proxmox_vm_type": guest.kind.as_str(),
        "proxmox_endpoint": endpoint, "proxmox_name": guest.name,
    });
    let (description, comments) = note(guest);
    let keep_description = flag(ctx, "overwrite_vm_description");
    let mut fields = vec![
        Field::new("name", Kind::Scalar, name),
        Field::new("status", Kind::Choice, status(guest)),
        Field::new(
            "cluster",
            Kind::ForeignKey,
            ctx.refs.cluster.clone().unwrap_or(Value::Null),
        ),
        Field::new("vcpus", Kind::Scalar, guest.maxcpu.filter(|c| *c > 0)),
        Field::new("description", Kind::Scalar, description).create_only(keep_description),
        Field::new("tags", Kind::Tags, tag_list(&tags)).create_only(flag(ctx, "overwrite_vm_tags")),
        Field::new("custom_fields", Kind::CustomFields, custom_fields),
    ];
    if let Some(device) = ctx.refs.devices.get(&guest.node) {
        fields.push(Field::new("device", Kind::ForeignKey, device.clone()));
    }
    let memory = guest.maxmem.map(|bytes| bytes >> 20).or_else(|| {
        guest
            .config()
            .and_then(|c| c.get("memory"))
            .and_then(crate::json::loose_u64)
    });
    if let Some(memory) = memory {
        fields.push(Field::new("memory", Kind::Scalar, memory));
    }
    if let Some(config) = guest.config() {
        fields.push(Field::new("disk", Kind::Scalar, disk_mib(config)));
    }
    if let Some(comments) = comments {
        fields.push(Field::new("comments", Kind::Scalar, comments).create_only(keep_description));
    }
    fields
}

fn plan_update(ctx: &mut Context, guest: &Guest, vm: &Object, name: &str) {
    let key = guest.key();
    let label = format!("{key} {}", guest.name);
    let fields = desired(ctx, guest, name, Some(vm));
    let mut changes = changes(vm, &fields);
    if vm.has_tag(TAG_SOFT_DELETED) {
        // Back from the dead: the soft-delete tag is the one tag we remove.
        let tags = vm
            .tags()
            .into_iter()
            .filter(|t| t != TAG_SOFT_DELETED)
            .collect::<Vec<_>>();
        let after = fields
            .iter()
            .find(|f| f.name == "tags")
            .map(|f| f.value.clone())
            .unwrap_or_else(|| tag_list(&tags));
        changes.insert(
            "tags".to_owned(),
            Change {
                before: tag_list(&vm.tags()),
                after,
            },
        );
        ctx.update_because(head(&key, label), Target::of(vm), Reason::BackInProxmox, changes);
        return;
    }
    ctx.update(head(&key, label), vm, changes);
}

/// NetBox VMs of this endpoint and cluster that no guest explains any more.
fn plan_gone(ctx: &mut Context, leftovers: BTreeMap<(u64, String), Vec<&Object>>) {
    let templates: BTreeSet<(u64, &str)> = ctx
        .inventory
        .guests
        .iter()
        .filter(|g| g.template)
        .map(|g| (g.vmid, g.kind.as_str()))
        .collect();
    for ((vmid, kind), vms) in leftovers {
        let ours: Vec<&Object> = vms.into_iter().filter(|vm| in_our_cluster(ctx, vm)).collect();
        for vm in ours {
            let key = format!("{kind}/{vmid}");
            let label = format!("{key} {}", vm.str("name").unwrap_or_default());
            if templates.contains(&(vmid, kind.as_str())) {
                let detail =
                    "now a Proxmox template: templates are synced as vm-templates records, this VM row is left alone";
                ctx.plan.skip(head(&key, label), Some(vm), Reason::IsTemplate, detail);
                continue;
            }
            let soft_deleted = vm.has_tag(TAG_SOFT_DELETED) && vm.choice("status") == Some("decommissioning");
            if soft_deleted || ctx.protected(head(&key, label.clone()), ResourceType::Vm, vm) {
                continue;
            }
            if !ctx.settings.options.delete_orphans {
                let detail = "gone from Proxmox; delete_orphans is off, so it is kept as it is";
                ctx.plan.skip(head(&key, label), Some(vm), Reason::OrphanKept, detail);
            } else if !vm.has_tag(TAG_PROXBOX) {
                ctx.plan.skip(
                    head(&key, label),
                    Some(vm),
                    Reason::NotOwned,
                    "gone from Proxmox, but not tagged proxbox",
                );
            } else {
                let tags = tag_list(&merged_tags(vm, &[TAG_SOFT_DELETED.to_owned()]));
                let mut changes = BTreeMap::new();
                changes.insert(
                    "status".to_owned(),
                    Change {
                        before: vm.choice("status").into(),
                        after: "decommissioning".into(),
                    },
                );
                changes.insert(
                    "tags".to_owned(),
                    Change {
                        before: tag_list(&vm.tags()),
                        after: tags,
                    },
                );
                ctx.update_because(head(&key, label), Target::of(vm), Reason::GoneFromProxmox, changes);
            }
        }
    }
}
