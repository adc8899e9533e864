//! QEMU and LXC guests as `virtualization.virtualmachine`.
//!
//! Identity is (endpoint, vmid, type) in custom fields, never the name: names
//! change, collide and get edited by operators. Templates are never VMs.

use super::bootstrap::{proxmox_tag, Prerequisite};
use super::context::{Context, Subset, VmSlot};
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason, WarningCode};
use crate::source::{disk_mib, Guest, GuestKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const PLANNER: Planner = Planner {
    name: "vm",
    stage: Stage::VirtualMachines,
    governed_by: &[ResourceType::Vm],
    reads: &[netbox::VIRTUAL_MACHINE],
    prerequisites: &[Prerequisite::CustomFields],
    needs: &["cluster", "node"],
    proxmox: ask,
    run: plan,
};

const LIFECYCLE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_vm_tags"),
    report_unowned: true,
    lookup: &[
        ("cluster_id", "cluster"),
        ("cf_proxmox_vmid", "custom_fields.proxmox_vmid"),
        ("cf_proxmox_vm_type", "custom_fields.proxmox_vm_type"),
        ("cf_proxmox_endpoint", "custom_fields.proxmox_endpoint"),
    ],
    ..Lifecycle::synced(
        "virtual-machines",
        ResourceType::Vm,
        netbox::VIRTUAL_MACHINE,
        Gone::SoftDelete,
    )
};

/// NetBox's `VirtualMachine.name` holds at most 64 characters.
const NAME_MAX: usize = 64;

fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask.guests(false).map(|g| g.config_path.clone()).collect();
    paths.iter().for_each(|path| ask.want(path));
}

/// (vmid, type) of a NetBox VM that belongs to this endpoint.
pub fn identity_of(vm: &Object, endpoint: u64) -> Option<(u64, GuestKind)> {
    let cf_u64 = |name| vm.custom_field(name).and_then(crate::json::loose_u64);
    if cf_u64("proxmox_endpoint") != Some(endpoint) {
        return None;
    }
    let vmid = cf_u64("proxmox_vmid")?;
    let kind = vm.custom_field("proxmox_vm_type").and_then(Value::as_str)?;
    Some((vmid, GuestKind::parse(&kind.to_ascii_lowercase())?))
}

fn key_of((vmid, kind): (u64, GuestKind)) -> String {
    format!("{}/{vmid}", kind.as_str())
}

/// The guest keys a subset names: its guests, and the guests of its NetBox
/// VMs (`vms`: the NetBox VMs, as far as they are read yet).
pub fn subset_keys(vms: &[Object], endpoint: Option<u64>, subset: &Subset) -> BTreeSet<String> {
    let mut keys = subset.guests.clone();
    if let Some(endpoint) = endpoint {
        let named = vms.iter().filter(|vm| subset.netbox_vm_ids.contains(&vm.id));
        keys.extend(named.filter_map(|vm| identity_of(vm, endpoint)).map(key_of));
    }
    keys
}

fn in_our_cluster(ctx: &Context, vm: &Object) -> bool {
    ctx.refs.cluster_id.is_some() && vm.fk("cluster") == ctx.refs.cluster_id
}

/// Guest key → the NetBox VMs that carry its identity.
fn claims<'a>(ctx: &Context<'a>, endpoint: u64) -> BTreeMap<String, Vec<&'a Object<'a>>> {
    let mut claims: BTreeMap<String, Vec<&Object>> = BTreeMap::new();
    for vm in ctx.objects(netbox::VIRTUAL_MACHINE) {
        if let Some(identity) = identity_of(vm, endpoint) {
            claims.entry(key_of(identity)).or_default().push(vm);
        }
    }
    claims
}

/// One guest's candidates: those in our cluster; a claim only elsewhere is
/// an ambiguity too (a VM cannot belong to two clusters).
/// No candidate and no custom fields to store an identity in: nothing may be
/// created (it could never be found again).
fn found<'a>(ctx: &Context<'a>, candidates: &[&'a Object<'a>]) -> Found<'a> {
    if candidates.is_empty() && ctx.refs.identity_fields_conflict {
        let detail = "NetBox has no usable custom fields to store the VM identity in".to_owned();
        return Found::Refused(None, Reason::UnsupportedByNetbox, WarningCode::NotOwned, detail);
    }
    let (here, elsewhere): (Vec<&Object>, Vec<&Object>) = candidates.iter().partition(|vm| in_our_cluster(ctx, vm));
    if here.is_empty() && !elsewhere.is_empty() {
        let ids: Vec<String> = elsewhere.iter().map(|vm| vm.id.to_string()).collect();
        let detail = format!(
            "{} NetBox VM(s) with this identity are in another cluster (ids {})",
            elsewhere.len(),
            ids.join(", ")
        );
        return Found::Several(elsewhere, detail);
    }
    Found::among(here, MatchedBy::CustomField, "VMs")
}

/// Matches guests to NetBox VMs; plans creates and updates when `writes`.
fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let claims = claims(ctx, endpoint);
    let retirable = claims
        .iter()
        .filter(|(key, _)| subset_allows(ctx, key))
        .flat_map(|(_, vms)| vms.iter().copied())
        .filter(|vm| in_our_cluster(ctx, vm))
        .collect::<Vec<_>>();
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, retirable);
    if ctx.refs.cluster.is_none() {
        let detail = format!(
            "cluster {:?} is not in NetBox (is cluster sync disabled?)",
            ctx.inventory.cluster_name
        );
        reconciler.skip_all(ctx, Reason::MissingParent, &detail);
        return Ok(());
    }
    let names = assign_names(ctx, &claims, reconciler.planning());
    let inventory = ctx.inventory;
    for (index, guest) in inventory.guests.iter().enumerate() {
        let key = guest.key();
        let candidates = claims.get(&key).map(Vec::as_slice).unwrap_or_default();
        if guest.template {
            now_a_template(ctx, &mut reconciler, &key, candidates);
            continue;
        }
        if !ctx.guest_in_scope(&key) {
            candidates.iter().for_each(|vm| reconciler.keep(vm));
            continue;
        }
        let item = Item {
            identity: key.clone(),
            key: format!("{key} {}", guest.name),
            proxmox_path: Some(guest.config_path.clone()),
        };
        let name = names.get(&key).cloned().unwrap_or_else(|| guest.name.clone());
        let found = found(ctx, candidates);
        let outcome = reconciler.item(ctx, &item, found, |ctx, existing| {
            desired(ctx, guest, &name, existing.is_none())
        });
        let slot = match outcome {
            Outcome::Existing(vm) => Some((Value::from(vm.id), Some(vm.id))),
            Outcome::Created => reconciler.reference_of(&key).map(|r| (r, None)),
            Outcome::Skipped => None,
        };
        let slot = slot.map(|(reference, existing_id)| VmSlot {
            reference,
            existing_id,
            guest_index: index,
        });
        ctx.refs.vms.extend(slot.map(|slot| (key, slot)));
    }
    reconciler.retire(ctx, true, |vm| {
        identity_of(vm, endpoint)
            .map(key_of)
            .unwrap_or_else(|| format!("#{}", vm.id))
    });
    follow_renames(ctx, &claims, &names);
    Ok(())
}

/// NetBox names are unique per cluster at every moment: a VM that takes the
/// name another of ours is giving up (a rename in this plan) waits for that
/// rename. Where renames go round in a circle (two guests swap names), the
/// first of the circle gives its name up first, under a stand-in name.
fn follow_renames(ctx: &mut Context, claims: &BTreeMap<String, Vec<&Object>>, names: &BTreeMap<String, String>) {
    let current = |key: &str| {
        claims.get(key).and_then(|vms| match vms.as_slice() {
            [vm] => Some(*vm),
            _ => None,
        })
    };
    let mut given_up: BTreeMap<String, String> = BTreeMap::new();
    for (key, name) in names {
        if let Some(held) = current(key)
            .and_then(|vm| vm.str("name"))
            .filter(|c| !c.eq_ignore_ascii_case(name))
        {
            given_up.insert(held.to_lowercase(), key.clone());
        }
    }
    // Who waits for whom: the VM taking a name waits for the VM giving it up.
    let waits: BTreeMap<&str, &str> = names
        .iter()
        .filter_map(|(key, name)| Some((key.as_str(), given_up.get(&name.to_lowercase())?.as_str())))
        .filter(|(key, holder)| key != holder)
        .collect();
    let mut freed: BTreeMap<&str, String> = BTreeMap::new();
    for start in waits.keys() {
        let mut at = *start;
        let mut seen = BTreeSet::from([at]);
        while let Some(next) = waits.get(at) {
            if *next == *start && !freed.keys().any(|k| seen.contains(k)) {
                if let Some(op) = current(start).and_then(|vm| free_name(ctx, start, vm)) {
                    freed.insert(start, op);
                }
                break;
            }
            if !seen.insert(next) {
                break;
            }
            at = next;
        }
    }
    for (key, holder) in &waits {
        let op = LIFECYCLE.head(key, String::new()).id();
        let after = freed
            .get(holder)
            .cloned()
            .unwrap_or_else(|| LIFECYCLE.head(holder, String::new()).id());
        ctx.plan.add_dependency(&op, &after);
    }
    for (key, op) in &freed {
        ctx.plan.add_dependency(&LIFECYCLE.head(key, String::new()).id(), op);
    }
}

/// A rename to a stand-in name, so that the VM's name is free for the one
/// that takes it: returns the op id.
fn free_name(ctx: &mut Context, key: &str, vm: &Object) -> Option<String> {
    let held = vm.str("name")?;
    let stand_in = name_form(&format!("{held} (renaming {key})"), 1);
    let identity = format!("{key}/free-name");
    let head = LIFECYCLE.head(&identity, format!("{key} {held}"));
    let change = crate::plan::Change {
        before: Value::from(held),
        after: Value::from(stand_in),
    };
    let changes = BTreeMap::from([("name".to_owned(), change)]);
    ctx.update(
        head,
        crate::plan::Target::of(vm),
        Reason::ChangedInProxmox,
        changes,
        None,
    )
}

/// A VM row for what is now a template: templates are vm-templates
/// records, so the row is left alone (and never counted as gone).
fn now_a_template<'a>(ctx: &mut Context<'a>, reconciler: &mut Reconciler<'_, 'a>, key: &str, vms: &[&'a Object<'a>]) {
    for vm in vms {
        reconciler.keep(vm);
        if reconciler.planning() && in_our_cluster(ctx, vm) {
            let detail =
                "now a Proxmox template: templates are synced as vm-templates records, this VM row is left alone";
            let head = LIFECYCLE.head(key, format!("{key} {}", vm.str("name").unwrap_or_default()));
            ctx.plan.skip(head, Some(vm), Reason::IsTemplate, detail, None);
        }
    }
}

/// With a subset, only its VMs may be retired.
fn subset_allows(ctx: &Context, key: &str) -> bool {
    ctx.guest_in_scope(key)
}

/// `name` with ` (n)` for n ≥ 2, shortened so the whole fits NetBox's limit.
fn name_form(name: &str, n: u32) -> String {
    let suffix = if n >= 2 { format!(" ({n})") } else { String::new() };
    let room = NAME_MAX.saturating_sub(suffix.chars().count());
    let base: String = name.trim().chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

/// `name` itself or a de-duplicated form of it (`name (3)`).
fn is_form_of(current: &str, name: &str) -> bool {
    if current == name_form(name, 1) {
        return true;
    }
    let suffix = current
        .rsplit_once(" (")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .and_then(|digits| digits.parse::<u32>().ok());
    suffix.is_some_and(|n| n >= 2 && current == name_form(name, n))
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
/// duplicates in the cluster (lowest free number, guests in vmid order).
/// Names are unique per cluster, case-insensitively: every VM of the
/// cluster that no guest explains (manual ones, kept orphans) holds its
/// name. A name already in NetBox that still fits is kept, so names never churn.
fn assign_names(ctx: &Context, claims: &BTreeMap<String, Vec<&Object>>, writes: bool) -> BTreeMap<String, String> {
    let guests: Vec<(&Guest, Option<&Object>)> = ctx
        .inventory
        .guests
        .iter()
        .filter(|g| !g.template)
        .map(|guest| {
            let existing = claims.get(&guest.key()).and_then(|c| match c.as_slice() {
                [vm] if in_our_cluster(ctx, vm) => Some(*vm),
                _ => None,
            });
            (guest, existing)
        })
        .collect();
    let explained: BTreeSet<u64> = guests.iter().filter_map(|(_, vm)| vm.map(|vm| vm.id)).collect();
    let mut taken: BTreeSet<String> = ctx
        .objects(netbox::VIRTUAL_MACHINE)
        .iter()
        .filter(|vm| in_our_cluster(ctx, vm) && !explained.contains(&vm.id))
        .filter_map(|vm| vm.str("name").map(str::to_lowercase))
        .collect();
    let mut names = BTreeMap::new();
    // Names that cannot change first (an operator's, or on a VM this plan
    // does not write), then names that still fit, then the rest.
    let fixed = |vm: &Object| -> Option<String> {
        let frozen = !writes || ctx.bootstrap_protected(ResourceType::Vm, vm);
        match frozen {
            true => vm.str("name").map(str::to_owned),
            false => operator_named(vm),
        }
    };
    for (guest, vm) in &guests {
        if let Some(kept) = vm.and_then(fixed) {
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
        let mut n = 1;
        let mut candidate = name_form(&guest.name, n);
        while taken.contains(&candidate.to_lowercase()) {
            n += 1;
            candidate = name_form(&guest.name, n);
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

/// Proxmox tags are merged on create, and on updates while
/// `overwrite_vm_proxmox_tags` is on.
fn desired(ctx: &mut Context, guest: &Guest, name: &str, creating: bool) -> Desired {
    let tags: Vec<String> = if creating || ctx.settings.overwrite.get("overwrite_vm_proxmox_tags") {
        guest
            .tags
            .iter()
            .filter_map(|tag| proxmox_tag(ctx, Stage::VirtualMachines, ResourceType::Vm, tag))
            .collect()
    } else {
        Vec::new()
    };
    let endpoint = ctx.endpoint_id().unwrap_or_default();
    let custom_fields = json!({
        "proxmox_vmid": guest.vmid, "proxmox_vm_type": guest.kind.as_str(),
        "proxmox_endpoint": endpoint, "proxmox_name": guest.name,
    });
    let (description, comments) = note(guest);
    let mut fields = vec![
        Field::new("name", Kind::Scalar, name),
        Field::new("status", Kind::Choice, status(guest)),
        Field::new(
            "cluster",
            Kind::ForeignKey,
            ctx.refs.cluster.clone().unwrap_or(Value::Null),
        ),
        Field::new("vcpus", Kind::Scalar, guest.maxcpu.filter(|c| *c > 0)),
        Field::new("description", Kind::Scalar, description).overwritten_by("overwrite_vm_description"),
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
        fields.push(Field::new("comments", Kind::Scalar, comments).overwritten_by("overwrite_vm_description"));
    }
    Desired { fields, tags }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_so_the_suffix_fits() {
        let long = "x".repeat(70);
        assert_eq!(name_form(&long, 1).chars().count(), 64);
        let second = name_form(&long, 2);
        assert_eq!(second.chars().count(), 64);
        assert!(second.ends_with(" (2)"));
        assert!(is_form_of(&second, &long));
        assert!(is_form_of("web01 (3)", "web01"));
        assert!(!is_form_of("web01 (1)", "web01"));
        assert!(!is_form_of("web01-old", "web01"));
    }
}
