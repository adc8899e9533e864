//! The Proxbox plugin's bookkeeping, where the plugin is installed: its
//! sync-state sidecars (one per VM, node device and cluster, holding the
//! Proxmox identity the plugin's UI and proxbox-api read) and its tracking
//! rows (`proxmox-clusters`, `proxmox-nodes`, which templates and
//! replications link to). Written like proxbox-api writes them, so switching
//! either way duplicates nothing.

use super::context::Context;
use super::diff::{Field, Kind};
use super::reconcile::{Desired, Found, Gone, Item, Lifecycle, Outcome, Owner, Reconciler};
use crate::modes::ResourceType;
use crate::netbox::{self, Model, Object};
use crate::plan::MatchedBy;
use crate::vec_map::VecMap;
use serde_json::Value;

/// One sidecar model: its lifecycle row and the field that links it to its object.
pub struct SyncState {
    pub spec: Lifecycle,
    /// The object it belongs to, and the field that links it there.
    pub parent: Model,
    pub link: &'static str,
}

const fn sidecar(
    stage: &'static str,
    resource: ResourceType,
    model: Model,
    (parent, link): (Model, &'static str),
    lookup: &'static [(&'static str, &'static str)],
) -> SyncState {
    SyncState {
        spec: Lifecycle {
            // A sidecar's tags are the plugin's business: they are not written.
            tagged: false,
            owner: Owner::Endpoint,
            lookup,
            ..Lifecycle::synced(stage, resource, model, Gone::Keep)
        },
        parent,
        link,
    }
}

pub const VM: SyncState = sidecar(
    "virtual-machines",
    ResourceType::Vm,
    netbox::VM_SYNC_STATE,
    (netbox::VIRTUAL_MACHINE, "virtual_machine"),
    &[("virtual_machine_id", "virtual_machine")],
);
pub const DEVICE: SyncState = sidecar(
    "devices",
    ResourceType::Node,
    netbox::DEVICE_SYNC_STATE,
    (netbox::DEVICE, "device"),
    &[("device_id", "device")],
);
pub const CLUSTER: SyncState = sidecar(
    "devices",
    ResourceType::Cluster,
    netbox::CLUSTER_SYNC_STATE,
    (netbox::CLUSTER, "cluster"),
    &[("cluster_id", "cluster")],
);

pub const VIRTUAL_DISK: SyncState = sidecar(
    "vm-disks",
    ResourceType::Vm,
    netbox::VIRTUAL_DISK_SYNC_STATE,
    (netbox::VIRTUAL_DISK, "virtual_disk"),
    &[("virtual_disk_id", "virtual_disk")],
);
pub const VM_INTERFACE: SyncState = sidecar(
    "vm-interfaces",
    ResourceType::VmInterface,
    netbox::VM_INTERFACE_SYNC_STATE,
    (netbox::VM_INTERFACE, "vm_interface"),
    &[("vm_interface_id", "vm_interface")],
);

/// The sidecar of an existing object. Indexed on first use: there is one
/// per VM, disk and interface, and a scan for each would be quadratic.
fn of<'a>(ctx: &mut Context<'a>, which: &SyncState, object: u64) -> Option<&'a Object<'a>> {
    let model = which.spec.model;
    if !ctx.refs.sidecars.contains_key(model.name) {
        let mut index = VecMap::new();
        for state in ctx.objects(model) {
            if let Some(parent) = state.fk(which.link) {
                index.entry(parent).or_insert(state.id);
            }
        }
        ctx.refs.sidecars.insert(model.name, index);
    }
    let id = *ctx.refs.sidecars.get(model.name)?.get(&object)?;
    ctx.object(model, id)
}

/// An object's reference and, when it exists, its id.
#[derive(Clone, Debug)]
pub struct Linked {
    pub reference: Value,
    pub existing: Option<u64>,
}

impl Linked {
    pub fn of(outcome: &Outcome, created: Option<Value>) -> Option<Linked> {
        match outcome {
            Outcome::Existing(object) => Some(Linked {
                reference: Value::from(object.id),
                existing: Some(object.id),
            }),
            Outcome::Created => created.map(|reference| Linked {
                reference,
                existing: None,
            }),
            Outcome::Skipped => None,
        }
    }
}

/// Plans an object's sidecar with these fields (the link added): created
/// with it, kept current after, left alone while its object is (tagged
/// bootstrap-only), and written only once the operations in `after` (when
/// planned) went through. `after` holds the object's own operation (a
/// sidecar that ran ahead of a refused rename would record a name NetBox does
/// not have) and the tracking rows the sidecar names: the plugin refuses a
/// sidecar whose tracking row does not link its object yet, and an update
/// that makes the link is not a `$ref` the executor would wait for. Nothing
/// where the plugin is not installed.
pub fn plan<'a>(
    ctx: &mut Context<'a>,
    which: &SyncState,
    writes: bool,
    (key, after): (&str, &[String]),
    object: &Linked,
    fields: Vec<Field>,
) {
    let resource = which.spec.resource.unwrap_or(ResourceType::Vm);
    let parent = object.existing.and_then(|id| ctx.object(which.parent, id));
    if !ctx.plugin_installed() || parent.is_some_and(|o| ctx.bootstrap_protected(resource, o)) {
        return;
    }
    let found = match object.existing.and_then(|id| of(ctx, which, id)) {
        Some(state) => Found::One(state, MatchedBy::NaturalKey),
        None => Found::None,
    };
    let item = Item {
        identity: key.to_owned(),
        key: key.to_owned(),
        proxmox_path: None,
    };
    let mut all = vec![Field::new(which.link, Kind::ForeignKey, object.reference.clone()).create_only()];
    all.extend(fields);
    let mut reconciler = Reconciler::for_run(ctx, &which.spec, writes, []);
    reconciler.item(ctx, &item, found, |_, _| Desired::fields(all));
    let op = which.spec.head(key, String::new()).id();
    for before in after {
        ctx.plan.add_dependency(&op, before);
    }
}
