//! QEMU and LXC guests as `virtualization.virtualmachine`.
//!
//! Identity is (endpoint, vmid, type), never the name (`identity`: the
//! plugin's sync-state record, our custom fields, Proxbox's legacy ones):
//! names change, collide and get edited by operators. A same-name VM with no
//! identity is adopted only when `adopt_by_name` says so; otherwise the guest
//! waits (never a silent second copy). Templates are never VMs.

mod identity;
mod names;

use super::bootstrap::{proxmox_tag, Prerequisite};
use super::context::{Context, Subset, VmSlot};
use super::diff::{Field, Kind};
use super::proxbox::{self, Linked};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Reconciler};
use super::{Ask, Planner};
use crate::error::Result;
use crate::modes::{ResourceType, Stage};
use crate::netbox::{self, Object};
use crate::plan::{MatchedBy, Reason, WarningCode};
use crate::source::{disk_mib, Guest};
use crate::vec_map::{VecMap, VecSet};
use identity::{Claim, Identities, Scope};
use names::Matched;
use serde_json::{json, Value};

pub const PLANNER: Planner = Planner {
    name: "vm",
    stage: Stage::VirtualMachines,
    governed_by: &[ResourceType::Vm],
    reads: &[netbox::VIRTUAL_MACHINE, netbox::VM_SYNC_STATE],
    links: &[],
    prerequisites: &[Prerequisite::CustomFields],
    needs: &["cluster", "node"],
    proxmox: ask,
    run: plan,
};

/// VM names are unique per cluster: a created VM is found again by its
/// cluster and name.
const LIFECYCLE: Lifecycle = Lifecycle {
    tags_flag: Some("overwrite_vm_tags"),
    report_unowned: true,
    lookup: &[("cluster_id", "cluster"), ("name", "name")],
    ..Lifecycle::synced(
        "virtual-machines",
        ResourceType::Vm,
        netbox::VIRTUAL_MACHINE,
        Gone::SoftDelete,
    )
};

fn ask(ask: &mut Ask) {
    if !ask.writes {
        return;
    }
    let paths: Vec<String> = ask.guests(false).map(|g| g.config_path.clone()).collect();
    paths.iter().for_each(|path| ask.want(path));
}

fn identities<'a>(ctx: &Context<'a>, endpoint: u64) -> Identities<'a> {
    let scope = Scope {
        endpoint,
        cluster_name: &ctx.inventory.cluster_name,
        cluster_id: ctx.refs.cluster_id,
    };
    identity::read(
        ctx.objects(netbox::VIRTUAL_MACHINE),
        ctx.objects(netbox::VM_SYNC_STATE),
        &scope,
    )
}

/// The guest keys a subset names: its guests, and the guests of its NetBox
/// VMs (as far as the VMs and their sync-state records are read yet).
pub fn subset_keys(
    vms: &[Object],
    states: &[Object],
    endpoint: Option<u64>,
    cluster: &str,
    subset: &Subset,
) -> VecSet<String> {
    let mut keys = subset.guests.clone();
    if let Some(endpoint) = endpoint {
        let scope = Scope {
            endpoint,
            cluster_name: cluster,
            cluster_id: None,
        };
        let found = identity::read(vms, states, &scope);
        let named = found
            .claims
            .iter()
            .filter(|(_, claims)| claims.iter().any(|c| subset.netbox_vm_ids.contains(&c.vm.id)));
        keys.extend(named.map(|(key, _)| key.clone()));
    }
    keys
}

/// The NetBox VMs this endpoint's identities claim, as the VMs and their
/// sync-state records tell before anything is matched (no cluster id yet):
/// what `discover` and the planner both read, so they agree.
pub fn claimed_ids(vms: &[Object], states: &[Object], endpoint: u64, cluster: &str) -> VecSet<u64> {
    let scope = Scope {
        endpoint,
        cluster_name: cluster,
        cluster_id: None,
    };
    let found = identity::read(vms, states, &scope);
    VecSet::from_iter(found.claims.values().flatten().map(|claim| claim.vm.id))
}

fn in_our_cluster(ctx: &Context, vm: &Object) -> bool {
    ctx.refs.cluster_id.is_some() && vm.fk("cluster") == ctx.refs.cluster_id
}

/// How each guest matched: by an identity, by name (adopted, or refused).
struct Matching<'a> {
    found: Identities<'a>,
    /// Guest key → the one VM it matched (for names and children).
    vms: VecMap<String, &'a Object<'a>>,
    /// Guest key → an identity-less same-name VM in the cluster: adopted when
    /// `adopt_by_name` is on, else the guest waits.
    same_name: VecMap<String, &'a Object<'a>>,
}

fn matching<'a>(ctx: &Context<'a>, endpoint: u64) -> Matching<'a> {
    let found = identities(ctx, endpoint);
    let mut vms = VecMap::new();
    for (key, claims) in &found.claims {
        if let [claim] = claims.as_slice() {
            if !claim.conflict && in_our_cluster(ctx, claim.vm) {
                vms.insert(key.clone(), claim.vm);
            }
        }
    }
    let anonymous: Vec<&Object> = ctx
        .objects(netbox::VIRTUAL_MACHINE)
        .iter()
        .filter(|vm| in_our_cluster(ctx, vm) && !found.identified.contains(&vm.id))
        .collect();
    let mut same_name = VecMap::new();
    let mut taken = VecSet::new();
    for guest in ctx.inventory.guests.iter().filter(|g| !g.template) {
        let key = guest.key();
        if found.claims.contains_key(&key) {
            continue;
        }
        let name = guest.name.trim();
        let vm = anonymous
            .iter()
            .find(|vm| !taken.contains(&vm.id) && vm.str("name").is_some_and(|n| n.trim().eq_ignore_ascii_case(name)));
        if let Some(vm) = vm {
            taken.insert(vm.id);
            same_name.insert(key.clone(), *vm);
            if ctx.settings.options.adopt_by_name {
                vms.insert(key, *vm);
            }
        }
    }
    Matching { found, vms, same_name }
}

/// One guest's candidates, as the lifecycle takes them.
fn found<'a>(ctx: &Context<'a>, matching: &Matching<'a>, key: &str) -> Found<'a> {
    if let Some(vm) = matching.same_name.get(key) {
        if ctx.settings.options.adopt_by_name {
            return Found::One(vm, MatchedBy::AdoptedByName);
        }
        let detail = format!(
            "NetBox VM {:?} (id {}) in the cluster has this name but no Proxmox identity: it is not \
             copied; set adopt_by_name to adopt it, or give it its identity",
            vm.str("name").unwrap_or_default(),
            vm.id
        );
        return Found::Refused(
            Some(vm),
            Reason::UnidentifiedSameName,
            WarningCode::UnidentifiedSameName,
            detail,
        );
    }
    let claims: &[Claim] = matching.found.claims.get(key).map(Vec::as_slice).unwrap_or_default();
    if let Some(claim) = claims.iter().find(|c| c.conflict) {
        let why = matching
            .found
            .disagreements
            .get(&claim.vm.id)
            .cloned()
            .unwrap_or_default();
        let detail = format!("the identities of NetBox VM {} disagree: {why}", claim.vm.id);
        return Found::Refused(
            Some(claim.vm),
            Reason::AmbiguousIdentity,
            WarningCode::AmbiguousIdentity,
            detail,
        );
    }
    let mut foreign = matching.found.foreign.get(key).into_iter().flatten();
    if let Some((vm, endpoint)) = foreign.find(|(vm, _)| claims.is_empty() && in_our_cluster(ctx, vm)) {
        let detail = format!("NetBox VM {} carries this identity for endpoint {endpoint}", vm.id);
        return Found::Refused(
            Some(vm),
            Reason::AmbiguousIdentity,
            WarningCode::AmbiguousIdentity,
            detail,
        );
    }
    if claims.is_empty() && ctx.refs.identity_fields_conflict && !ctx.plugin_installed() {
        let detail = "NetBox has no usable custom fields to store the VM identity in".to_owned();
        return Found::Refused(None, Reason::UnsupportedByNetbox, WarningCode::NotOwned, detail);
    }
    let (here, elsewhere): (Vec<&Claim>, Vec<&Claim>) = claims.iter().partition(|c| in_our_cluster(ctx, c.vm));
    if here.is_empty() && !elsewhere.is_empty() {
        let ids: Vec<String> = elsewhere.iter().map(|c| c.vm.id.to_string()).collect();
        let detail = format!(
            "{} NetBox VM(s) with this identity are in another cluster (ids {})",
            elsewhere.len(),
            ids.join(", ")
        );
        return Found::Several(elsewhere.iter().map(|c| c.vm).collect(), detail);
    }
    let by = here.first().map_or(MatchedBy::NaturalKey, |c| c.by);
    Found::among(here.iter().map(|c| c.vm).collect(), by, "VMs")
}

/// Matches guests to NetBox VMs; plans creates and updates when `writes`.
fn plan(ctx: &mut Context, writes: bool) -> Result<()> {
    let endpoint = ctx.required_endpoint_id()?;
    let matching = matching(ctx, endpoint);
    let retirable: Vec<&Object> = matching
        .found
        .claims
        .iter()
        .filter(|(key, _)| ctx.guest_in_scope(key))
        .flat_map(|(_, claims)| claims.iter().map(|c| c.vm))
        .filter(|vm| in_our_cluster(ctx, vm))
        .collect();
    let mut reconciler = Reconciler::for_run(ctx, &LIFECYCLE, writes, retirable);
    if ctx.refs.cluster.is_none() {
        let detail = format!(
            "cluster {:?} is not in NetBox (is cluster sync disabled?)",
            ctx.inventory.cluster_name
        );
        reconciler.skip_all(ctx, Reason::MissingParent, &detail);
        return Ok(());
    }
    let matched = Matched {
        vms: &matching.vms,
        reported: &matching.found.reported,
    };
    let names = names::assign(ctx, &matched, reconciler.planning());
    let inventory = ctx.inventory;
    // Added to ctx.refs.vms after the loop, in one sort (guests are in vmid
    // order, their keys are not).
    let mut linked = Vec::new();
    for (index, guest) in inventory.guests.iter().enumerate() {
        let key = guest.key();
        let claimed: Vec<&Object> = matching
            .found
            .claims
            .get(&key)
            .into_iter()
            .flatten()
            .map(|c| c.vm)
            .collect();
        if guest.template {
            now_a_template(ctx, &mut reconciler, &key, &claimed);
            continue;
        }
        if !ctx.guest_in_scope(&key) {
            claimed.iter().for_each(|vm| reconciler.keep(vm));
            continue;
        }
        let item = Item {
            identity: key.clone(),
            key: format!("{key} {}", guest.name),
            proxmox_path: Some(guest.config_path.clone()),
        };
        let name = names.get(&key).cloned().unwrap_or_else(|| guest.name.clone());
        let found = found(ctx, &matching, &key);
        let outcome = reconciler.item(ctx, &item, found, |ctx, existing| desired(ctx, guest, &name, existing));
        if let Some(vm) = Linked::of(&outcome, reconciler.reference_of(&key)) {
            plan_sync_state(ctx, reconciler.planning(), guest, &vm);
            let slot = VmSlot {
                reference: vm.reference,
                existing_id: vm.existing,
                guest_index: index,
            };
            linked.push((key, slot));
        }
    }
    ctx.refs.vms.extend(linked);
    let key_of: VecMap<u64, &String> = VecMap::from_iter(
        matching
            .found
            .claims
            .iter()
            .flat_map(|(key, claims)| claims.iter().map(move |c| (c.vm.id, key))),
    );
    reconciler.retire(ctx, true, |vm| {
        key_of
            .get(&vm.id)
            .map_or_else(|| format!("#{}", vm.id), |key| (*key).clone())
    });
    names::follow_renames(ctx, &matched, &names);
    Ok(())
}

/// The VM's sync-state record, with what proxbox-api keeps there.
fn plan_sync_state(ctx: &mut Context, writes: bool, guest: &Guest, vm: &Linked) {
    let fields = vec![
        Field::new("endpoint", Kind::ForeignKey, ctx.endpoint_id()),
        Field::new("proxmox_vm_id", Kind::Scalar, guest.vmid),
        Field::new("proxmox_vm_type", Kind::Scalar, guest.kind.as_str()),
        Field::new("proxmox_vm_name", Kind::Scalar, guest.name.as_str()),
        Field::new("proxmox_node_name", Kind::Scalar, guest.node.as_str()),
        Field::new(
            "proxmox_node",
            Kind::ForeignKey,
            ctx.refs.proxmox_nodes.get(&guest.node).cloned(),
        ),
        Field::new(
            "proxmox_cluster_name",
            Kind::Scalar,
            ctx.inventory.cluster_name.as_str(),
        ),
        Field::new("proxmox_cluster", Kind::ForeignKey, ctx.refs.proxmox_cluster.clone()),
        Field::new("proxmox_status", Kind::Scalar, guest.status.as_str()),
    ];
    let key = format!("{}/sync-state", guest.key());
    let after = [LIFECYCLE.head(&guest.key(), String::new()).id()];
    proxbox::plan(ctx, &proxbox::VM, writes, (&key, &after), vm, fields);
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
fn desired(ctx: &mut Context, guest: &Guest, name: &str, existing: Option<&Object>) -> Desired {
    let creating = existing.is_none();
    let tags: Vec<String> = if creating || ctx.settings.overwrite.get("overwrite_vm_proxmox_tags") {
        guest
            .tags
            .iter()
            .filter_map(|tag| proxmox_tag(ctx, Stage::VirtualMachines, ResourceType::Vm, tag))
            .collect()
    } else {
        Vec::new()
    };
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
    ];
    // Without the plugin, the identity lives in our custom fields.
    if !ctx.plugin_installed() {
        let endpoint = ctx.endpoint_id().unwrap_or_default();
        let custom_fields = json!({
            "proxmox_vmid": guest.vmid, "proxmox_vm_type": guest.kind.as_str(),
            "proxmox_endpoint": endpoint, "proxmox_name": guest.name,
        });
        fields.push(Field::new("custom_fields", Kind::CustomFields, custom_fields));
    }
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
    // Once a VM has virtual disks, NetBox keeps its `disk` at their sum and
    // refuses any other value: then the disks say it (their stage), not we.
    let has_disks = existing
        .and_then(|vm| vm.u64("virtual_disk_count"))
        .is_some_and(|n| n > 0);
    if let Some(config) = guest.config().filter(|_| !has_disks) {
        let disk = Some(disk_mib(config)).filter(|mib| *mib > 0);
        fields.push(Field::new("disk", Kind::Scalar, disk));
    }
    if let Some(comments) = comments {
        fields.push(Field::new("comments", Kind::Scalar, comments).overwritten_by("overwrite_vm_description"));
    }
    Desired { fields, tags }
}
