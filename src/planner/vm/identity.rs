//! Where a NetBox VM's Proxmox identity (endpoint, vmid, type) comes from,
//! in order (SPEC §3.1): the Proxbox plugin's sync-state record, our custom
//! fields, the custom fields older Proxbox releases wrote (read only). Two
//! sources that disagree make the VM an ambiguity, never a guess.

use crate::netbox::Object;
use crate::plan::MatchedBy;
use crate::source::GuestKind;
use crate::vec_map::{VecMap, VecSet};
use serde_json::Value;

/// A NetBox VM claiming a guest.
#[derive(Clone, Copy)]
pub struct Claim<'a> {
    pub vm: &'a Object<'a>,
    pub by: MatchedBy,
    /// Its sources disagree (the text says how): it matches nothing.
    pub conflict: bool,
}

/// What the sources say about the endpoint's VMs.
#[derive(Default)]
pub struct Identities<'a> {
    /// Guest key (`qemu/101`) → the VMs claiming it.
    pub claims: VecMap<String, Vec<Claim<'a>>>,
    /// VMs with an identity from any source (of any endpoint).
    pub identified: VecSet<u64>,
    /// VM id → the name Proxmox last reported for it (to tell renames apart).
    pub reported: VecMap<u64, String>,
    /// VM id → why its sources disagree.
    pub disagreements: VecMap<u64, String>,
    /// Guest key → VMs whose sync-state record names this guest for another
    /// endpoint (two endpoints for one cluster): never ours to take.
    pub foreign: VecMap<String, Vec<(&'a Object<'a>, u64)>>,
}

/// What the sources are scoped by.
pub struct Scope<'s> {
    pub endpoint: u64,
    pub cluster_name: &'s str,
    pub cluster_id: Option<u64>,
}

pub fn key_of(vmid: u64, kind: GuestKind) -> String {
    format!("{}/{vmid}", kind.as_str())
}

fn kind_of(value: Option<&Value>) -> Option<GuestKind> {
    match value.and_then(Value::as_str).map(|k| k.trim().to_ascii_lowercase()) {
        Some(kind) if kind.is_empty() => Some(GuestKind::Qemu),
        Some(kind) => GuestKind::parse(&kind),
        // Proxbox defaults a missing type to QEMU.
        None => Some(GuestKind::Qemu),
    }
}

/// The sync-state record's identity, when it is this endpoint's (or names
/// no endpoint and our cluster: proxbox-api links endpoints afterwards).
fn from_sync_state(state: &Object, scope: &Scope) -> Option<(String, Option<String>)> {
    let ours = match state.fk("endpoint") {
        Some(endpoint) => endpoint == scope.endpoint,
        None => state
            .str("proxmox_cluster_name")
            .is_some_and(|n| n.trim().eq_ignore_ascii_case(scope.cluster_name)),
    };
    if !ours {
        return None;
    }
    let vmid = state.u64("proxmox_vm_id").filter(|v| *v > 0)?;
    let kind = kind_of(state.get("proxmox_vm_type"))?;
    let name = state
        .str("proxmox_vm_name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Some((key_of(vmid, kind), name))
}

/// The guest a record names for another endpoint, and that endpoint.
fn of_another_endpoint(state: &Object, scope: &Scope) -> Option<(String, u64)> {
    let endpoint = state.fk("endpoint").filter(|e| *e != scope.endpoint)?;
    let vmid = state.u64("proxmox_vm_id").filter(|v| *v > 0)?;
    Some((key_of(vmid, kind_of(state.get("proxmox_vm_type"))?), endpoint))
}

fn from_custom_fields(vm: &Object, scope: &Scope) -> Option<(String, Option<String>)> {
    let number = |name| vm.custom_field(name).and_then(crate::json::loose_u64);
    if number("proxmox_endpoint") != Some(scope.endpoint) {
        return None;
    }
    let vmid = number("proxmox_vmid")?;
    let kind = GuestKind::parse(&vm.custom_field("proxmox_vm_type")?.as_str()?.to_ascii_lowercase())?;
    let name = vm
        .custom_field("proxmox_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((key_of(vmid, kind), name))
}

/// Older Proxbox releases: `proxmox_vm_id` (and `proxmox_vm_type`), no
/// endpoint, so only VMs in our cluster count.
fn from_legacy_fields(vm: &Object, scope: &Scope) -> Option<(String, Option<String>)> {
    if scope.cluster_id.is_none() || vm.fk("cluster") != scope.cluster_id {
        return None;
    }
    let vmid = vm.custom_field("proxmox_vm_id").and_then(crate::json::loose_u64)?;
    let kind = kind_of(vm.custom_field("proxmox_vm_type"))?;
    Some((key_of(vmid, kind), None))
}

/// Reads every source for every VM.
pub fn read<'a>(vms: &'a [Object<'a>], states: &'a [Object<'a>], scope: &Scope) -> Identities<'a> {
    let state_of: VecMap<u64, &Object> =
        VecMap::from_iter(states.iter().filter_map(|s| Some((s.fk("virtual_machine")?, s))));
    let mut found = Identities::default();
    let mut claims = Vec::new();
    for vm in vms {
        if let Some((key, endpoint)) = state_of.get(&vm.id).and_then(|s| of_another_endpoint(s, scope)) {
            found.foreign.entry(key).or_default().push((vm, endpoint));
        }
        let sources = [
            (
                MatchedBy::SyncState,
                state_of.get(&vm.id).and_then(|s| from_sync_state(s, scope)),
            ),
            (MatchedBy::CustomField, from_custom_fields(vm, scope)),
            (MatchedBy::LegacyCustomField, from_legacy_fields(vm, scope)),
        ];
        let said: Vec<(MatchedBy, String, Option<String>)> = sources
            .into_iter()
            .filter_map(|(by, identity)| identity.map(|(key, name)| (by, key, name)))
            .collect();
        let mut keys: Vec<&String> = said.iter().map(|(_, key, _)| key).collect();
        crate::sort::sort(&mut keys);
        keys.dedup();
        let anything = state_of.contains_key(&vm.id) || vm.custom_field("proxmox_vmid").is_some();
        if anything || !said.is_empty() {
            found.identified.insert(vm.id);
        }
        if let Some(name) = said.iter().find_map(|(_, _, name)| name.clone()) {
            found.reported.insert(vm.id, name);
        }
        let conflict = keys.len() > 1;
        if conflict {
            let text: Vec<String> = said
                .iter()
                .map(|(by, key, _)| format!("{} says {key}", by.label()))
                .collect();
            found.disagreements.insert(vm.id, text.join(", "));
        }
        let mut claimed = VecSet::new();
        for (by, key, _) in &said {
            if claimed.insert(key.clone()) {
                let claim = Claim { vm, by: *by, conflict };
                claims.push((key.clone(), claim));
            }
        }
    }
    found.claims = VecMap::grouped(claims);
    found
}
