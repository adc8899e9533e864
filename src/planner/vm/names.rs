//! VM names (SPEC §3.1): Proxmox's, made unique per cluster with ` (2)`,
//! ` (3)` (lowest free number, guests in vmid order), shortened to NetBox's 64
//! characters so the suffix still fits; an operator's rename in NetBox is
//! kept; and renames are ordered so that no two VMs hold one name at any moment.

use super::LIFECYCLE;
use crate::modes::ResourceType;
use crate::netbox::{self, Object};
use crate::plan::{Change, Reason, Target};
use crate::planner::context::Context;
use crate::source::Guest;
use crate::vec_map::{VecMap, VecSet};
use serde_json::Value;
use std::collections::HashSet;

/// NetBox's `VirtualMachine.name` holds at most 64 characters.
const NAME_MAX: usize = 64;

/// The NetBox VM each guest matched, and the name Proxmox last reported for
/// each VM (by VM id).
pub struct Matched<'m, 'a> {
    pub vms: &'m VecMap<String, &'a Object<'a>>,
    pub reported: &'m VecMap<u64, String>,
}

/// `name` with ` (n)` for n ≥ 2, shortened so the whole fits NetBox's limit.
pub fn name_form(name: &str, n: u32) -> String {
    let suffix = if n >= 2 { format!(" ({n})") } else { String::new() };
    let room = NAME_MAX.saturating_sub(suffix.chars().count());
    let base: String = name.trim().chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

/// `name` itself or a de-duplicated form of it (`name (3)`).
pub fn is_form_of(current: &str, name: &str) -> bool {
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
fn operator_named(vm: &Object, reported: Option<&String>) -> Option<String> {
    let current = vm.str("name")?;
    let ours = reported.is_some_and(|reported| is_form_of(current, reported));
    (!ours).then(|| current.to_owned())
}

/// NetBox names per guest key: Proxmox's name, with ` (2)`, ` (3)` for
/// duplicates in the cluster (lowest free number, guests in vmid order).
/// Names are unique per cluster, case-insensitively: every VM of the
/// cluster that no guest explains (manual ones, kept orphans) holds its
/// name. A name already in NetBox that still fits is kept, so names never churn.
pub fn assign(ctx: &Context, matched: &Matched, writes: bool) -> VecMap<String, String> {
    let guests: Vec<(&Guest, Option<&Object>)> = ctx
        .inventory
        .guests
        .iter()
        .filter(|g| !g.template)
        .map(|guest| (guest, matched.vms.get(&guest.key()).copied()))
        .collect();
    let explained: VecSet<u64> = VecSet::from_iter(guests.iter().filter_map(|(_, vm)| vm.map(|vm| vm.id)));
    // Looked up and added to one name at a time, never listed: a hash set.
    let mut taken: HashSet<String> = HashSet::from_iter(
        ctx.objects(netbox::VIRTUAL_MACHINE)
            .iter()
            .filter(|vm| super::in_our_cluster(ctx, vm) && !explained.contains(&vm.id))
            .filter_map(|vm| vm.str("name").map(str::to_lowercase)),
    );
    // Per guest (as in `guests`), its name; a map by key at the end.
    let mut names: Vec<Option<String>> = vec![None; guests.len()];
    // Names that cannot change first (an operator's, or on a VM this plan
    // does not write), then names that still fit, then the rest.
    let fixed = |vm: &Object| -> Option<String> {
        let frozen = !writes || ctx.bootstrap_protected(ResourceType::Vm, vm);
        match frozen {
            true => vm.str("name").map(str::to_owned),
            false => operator_named(vm, matched.reported.get(&vm.id)),
        }
    };
    for ((_, vm), name) in guests.iter().zip(&mut names) {
        if let Some(kept) = vm.and_then(fixed) {
            taken.insert(kept.to_lowercase());
            *name = Some(kept);
        }
    }
    for ((guest, vm), name) in guests.iter().zip(&mut names) {
        let current = vm.and_then(|vm| vm.str("name"));
        if let Some(current) = current.filter(|c| name.is_none() && is_form_of(c, &guest.name)) {
            if taken.insert(current.to_lowercase()) {
                *name = Some(current.to_owned());
            }
        }
    }
    for ((guest, _), name) in guests.iter().zip(&mut names) {
        if name.is_some() {
            continue;
        }
        let mut n = 1;
        let mut candidate = name_form(&guest.name, n);
        while taken.contains(&candidate.to_lowercase()) {
            n += 1;
            candidate = name_form(&guest.name, n);
        }
        taken.insert(candidate.to_lowercase());
        *name = Some(candidate);
    }
    guests
        .iter()
        .zip(names)
        .filter_map(|((guest, _), name)| Some((guest.key(), name?)))
        .collect()
}

/// NetBox names are unique per cluster at every moment: a VM that takes the
/// name another of ours is giving up (a rename in this plan) waits for that
/// rename. Where renames go round in a circle (two guests swap names), the
/// first of the circle gives its name up first, under a stand-in name.
pub fn follow_renames(ctx: &mut Context, matched: &Matched, names: &VecMap<String, String>) {
    let current = |key: &str| matched.vms.get(key).copied();
    let mut given_up: VecMap<String, String> = VecMap::new();
    for (key, name) in names {
        if let Some(held) = current(key)
            .and_then(|vm| vm.str("name"))
            .filter(|c| !c.eq_ignore_ascii_case(name))
        {
            given_up.insert(held.to_lowercase(), key.clone());
        }
    }
    // Who waits for whom: the VM taking a name waits for the VM giving it up.
    let waits: VecMap<&str, &str> = VecMap::from_iter(
        names
            .iter()
            .filter_map(|(key, name)| Some((key.as_str(), given_up.get(&name.to_lowercase())?.as_str())))
            .filter(|(key, holder)| key != holder),
    );
    let mut freed: VecMap<&str, String> = VecMap::new();
    for start in waits.keys() {
        let mut at = *start;
        let mut seen = VecSet::from_iter([at]);
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
    let change = Change {
        before: Value::from(held),
        after: Value::from(stand_in),
    };
    let changes = VecMap::from_iter([("name".to_owned(), change)]);
    ctx.update(head, Target::of(vm), Reason::ChangedInProxmox, changes, None)
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
