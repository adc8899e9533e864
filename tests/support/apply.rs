//! Applies a plan to NetBox state JSON like NetBox would: assigns ids, resolves
//! `$ref`s, returns objects in the REST read shape (nested foreign keys,
//! tag objects, choice objects), merges custom fields, cascades deletes,
//! refuses stale preconditions and dangling references, and records every
//! write in the change log (`/api/core/object-changes/`) as the sync's user,
//! with the planner's change-log message. `operator_edit` is a change made
//! in NetBox by someone else, recorded the same way.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Foreign-key fields → the collection they point into.
fn fk_collection(collection: &str, field: &str) -> Option<&'static str> {
    let template = collection == "/api/plugins/proxbox/vm-templates/";
    let routine = collection == ROUTINES;
    Some(match field {
        "cluster" if template => "/api/plugins/proxbox/proxmox-clusters/",
        "node" if template || routine => "/api/plugins/proxbox/proxmox-nodes/",
        "storage" if routine => STORAGE,
        "proxmox_storage" | "fleecing_storage" => STORAGE,
        "cluster" | "netbox_cluster" => "/api/virtualization/clusters/",
        "netbox_device" => "/api/dcim/devices/",
        "proxmox_cluster" => "/api/plugins/proxbox/proxmox-clusters/",
        "proxmox_node" => "/api/plugins/proxbox/proxmox-nodes/",
        "type" if collection == "/api/virtualization/clusters/" => "/api/virtualization/cluster-types/",
        "site" => "/api/dcim/sites/",
        "role" => "/api/dcim/device-roles/",
        "device_type" => "/api/dcim/device-types/",
        "manufacturer" => "/api/dcim/manufacturers/",
        "device" => "/api/dcim/devices/",
        "parent" | "bridge" | "lag" if collection == DEVICE_INTERFACES => DEVICE_INTERFACES,
        "proxbox_bridge" => DEVICE_INTERFACES,
        "proxbox_storage" => "/api/plugins/proxbox/storage/",
        "virtual_disk" => DISKS,
        "vm_interface" => INTERFACES,
        "virtual_machine" => "/api/virtualization/virtual-machines/",
        "untagged_vlan" => "/api/ipam/vlans/",
        "primary_ip4" | "primary_ip6" => "/api/ipam/ip-addresses/",
        "primary_mac_address" => "/api/dcim/mac-addresses/",
        "endpoint" | "proxmox_endpoint" => "/api/plugins/proxbox/endpoints/proxmox/",
        "l2vpn" => "/api/vpn/l2vpns/",
        "prefix" if collection != "/api/ipam/prefixes/" => "/api/ipam/prefixes/",
        "vrf" => "/api/ipam/vrfs/",
        "import_targets" | "export_targets" => "/api/ipam/route-targets/",
        _ => return None,
    })
}

const CHOICES: [&str; 5] = ["status", "mode", "job_type", "remove_job", "kind"];
const INTERFACES: &str = "/api/virtualization/interfaces/";
pub const CHANGELOG: &str = "/api/core/object-changes/";
pub const JOURNAL: &str = "/api/extras/journal-entries/";

/// The NetBox user the sync's token belongs to (what `$.sync_user` names).
pub const SYNC_USER: (u64, &str) = (1, "proxbox-sync");
/// Someone editing NetBox by hand.
pub const OPERATOR: (u64, &str) = (2, "alice");
const DEVICE_INTERFACES: &str = "/api/dcim/interfaces/";
const DISKS: &str = "/api/virtualization/virtual-disks/";
const VMS: &str = "/api/virtualization/virtual-machines/";
const DISK_STATES: &str = "/api/plugins/proxbox/sync-state/virtual-disks/";
const INTERFACE_STATES: &str = "/api/plugins/proxbox/sync-state/vm-interfaces/";
const IPS: &str = "/api/ipam/ip-addresses/";
const MACS: &str = "/api/dcim/mac-addresses/";
/// The objects assigned to an interface (`assigned_object_*`), which NetBox deletes with it.
const ASSIGNED: [&str; 2] = [IPS, MACS];
const STORAGE: &str = "/api/plugins/proxbox/storage/";
const BACKUPS: &str = "/api/plugins/proxbox/backups/";
const SNAPSHOTS: &str = "/api/plugins/proxbox/snapshots/";
const TASKS: &str = "/api/plugins/proxbox/task-history/";
const ROUTINES: &str = "/api/plugins/proxbox/backup-routines/";

/// Whether a field is a choice (read back as `{value, label}`) in that collection.
fn is_choice(collection: &str, field: &str) -> bool {
    match field {
        // A task's status is free text (its exit status).
        "status" => collection != TASKS && collection != "/api/extras/custom-fields/",
        "subtype" | "format" => collection == BACKUPS || collection == SNAPSHOTS,
        _ => CHOICES.contains(&field) && collection != "/api/extras/custom-fields/",
    }
}

pub struct Simulator<'s> {
    state: &'s mut Value,
    /// collection → id → position, so large states apply in linear time.
    index: HashMap<String, HashMap<u64, usize>>,
    next_id: HashMap<String, u64>,
    created: BTreeMap<String, u64>,
    touched: BTreeSet<(String, u64)>,
    /// VMs whose disks changed since their `disk` was last summed.
    disk_sums_due: BTreeSet<u64>,
    /// collection → unique key → the object that holds it (see `constraints`).
    unique: HashMap<String, HashMap<(String, String), u64>>,
    clock: u64,
    /// The plan's `changelog_message`, which the host sends with each write.
    message: String,
}

pub fn apply(state: &mut Value, plan: &Value) -> Result<(), String> {
    let clock = clock_of(state);
    let mut sim = Simulator {
        state,
        index: HashMap::new(),
        next_id: HashMap::new(),
        created: BTreeMap::new(),
        touched: BTreeSet::new(),
        disk_sums_due: BTreeSet::new(),
        unique: HashMap::new(),
        clock,
        message: plan["changelog_message"].as_str().unwrap_or_default().to_owned(),
    };
    let applied = sim.apply_all(plan);
    // What was applied before a refusal stays applied, as in NetBox.
    sim.settle_disk_sums();
    applied
}

impl Simulator<'_> {
    fn apply_all(&mut self, plan: &Value) -> Result<(), String> {
        let mut done = BTreeSet::new();
        for op in plan["operations"].as_array().ok_or("no operations")? {
            let id = op["id"].as_str().ok_or("op without id")?.to_owned();
            for dep in op["depends_on"].as_array().into_iter().flatten() {
                if !done.contains(dep.as_str().unwrap_or_default()) {
                    return Err(format!("{id} runs before its dependency {dep}"));
                }
            }
            let collection = op["collection"].as_str().unwrap_or_default();
            if collection == VMS {
                self.settle_disk_sums();
            }
            let written = self.apply_op(op).map_err(|e| format!("{id}: {e}"))?;
            self.constraints(collection, written)
                .map_err(|e| format!("{id}: NetBox refuses: {e}"))?;
            done.insert(id);
        }
        Ok(())
    }
}

/// NetBox's `IPADDRESS_ROLES_NONUNIQUE`.
const SHARED_ROLES: [&str; 6] = ["anycast", "vip", "vrrp", "hsrp", "glbp", "carp"];

/// The keys NetBox keeps unique in a collection, of one object: tag names and
/// slugs, VM names per cluster (case-insensitively), interface and disk names
/// per VM and per device, host addresses in the global table, one sync-state
/// record per object, and the plugin's constraints on backups, snapshots
/// (vmid, name, node: not per VM), task UPIDs and backup routines (endpoint,
/// job id). None in a collection without such a rule.
fn unique_keys(collection: &str, object: &Value) -> Result<Vec<(String, String)>, String> {
    let lower = |v: &Value| v.as_str().unwrap_or_default().to_lowercase();
    let per_parent = |parent: &str| {
        (
            object[parent]["id"].to_string(),
            object["name"].as_str().unwrap_or_default().to_owned(),
        )
    };
    Ok(match collection {
        "/api/extras/tags/" => vec![
            ("slug".to_owned(), lower(&object["slug"])),
            ("name".to_owned(), lower(&object["name"])),
        ],
        VMS => vec![(object["cluster"]["id"].to_string(), lower(&object["name"]))],
        INTERFACES | DISKS => vec![per_parent("virtual_machine")],
        DEVICE_INTERFACES => vec![per_parent("device")],
        DISK_STATES | INTERFACE_STATES | "/api/plugins/proxbox/sync-state/virtual-machines/" => {
            let link = match collection {
                DISK_STATES => "virtual_disk",
                INTERFACE_STATES => "vm_interface",
                _ => "virtual_machine",
            };
            vec![(link.to_owned(), object[link]["id"].to_string())]
        }
        IPS if object["vrf"].is_null() && !SHARED_ROLES.contains(&object["role"]["value"].as_str().unwrap_or("")) => {
            let address = object["address"].as_str().unwrap_or_default();
            let host = address.split('/').next().unwrap_or_default();
            let host: std::net::IpAddr = host.parse().map_err(|_| format!("bad address {object}"))?;
            vec![("global".to_owned(), host.to_string())]
        }
        BACKUPS => {
            let key = ["storage", "subtype", "format", "volume_id", "vmid"].map(|f| object[f].to_string());
            vec![(object["virtual_machine"]["id"].to_string(), key.join(" "))]
        }
        SNAPSHOTS => vec![(
            object["vmid"].to_string(),
            format!("{} {}", object["name"], object["node"]),
        )],
        TASKS => vec![("upid".to_owned(), object["upid"].to_string())],
        ROUTINES => vec![(object["endpoint"]["id"].to_string(), object["job_id"].to_string())],
        _ => Vec::new(),
    })
}

impl Simulator<'_> {
    /// The uniqueness rules NetBox enforces on what the planner writes
    /// (see `unique_keys`), after an operation on `collection` that wrote the
    /// object `written`: checked against an index of the collection's keys,
    /// built (and checked whole) at the first operation on it, so a large
    /// state applies in linear time.
    fn constraints(&mut self, collection: &str, written: Option<u64>) -> Result<(), String> {
        if collection == DEVICE_INTERFACES {
            self.interface_links()?;
        }
        if !self.unique.contains_key(collection) {
            let index = self.unique_index(collection)?;
            self.unique.insert(collection.to_owned(), index);
        }
        let Some(id) = written else {
            return Ok(());
        };
        let object = self.find(collection, id).cloned().unwrap_or_default();
        for key in unique_keys(collection, &object)? {
            let holder = self.unique.get(collection).and_then(|index| index.get(&key)).copied();
            // An entry can be stale (its object renamed or gone since): only
            // an object that still has the key takes it.
            let taken = match holder {
                Some(other) if other != id => match self.find(collection, other).cloned() {
                    Some(other) => unique_keys(collection, &other)?.contains(&key),
                    None => false,
                },
                _ => false,
            };
            if taken {
                return Err(format!("{collection}: {} {:?} is taken", key.0, key.1));
            }
            if let Some(index) = self.unique.get_mut(collection) {
                index.insert(key, id);
            }
        }
        Ok(())
    }

    /// Every object's keys → its id.
    fn unique_index(&mut self, collection: &str) -> Result<HashMap<(String, String), u64>, String> {
        let mut index = HashMap::new();
        for object in self.objects(collection).iter() {
            let id = object["id"].as_u64().unwrap_or_default();
            for key in unique_keys(collection, object)? {
                if index.contains_key(&key) {
                    return Err(format!("{collection}: {} {:?} is taken", key.0, key.1));
                }
                index.insert(key, id);
            }
        }
        Ok(index)
    }

    /// NetBox's rules for a device interface's links: parent, bridge and LAG
    /// on its own device, a parent only for a virtual interface, no LAG for one.
    fn interface_links(&mut self) -> Result<(), String> {
        let interfaces = self.objects(DEVICE_INTERFACES).clone();
        let device_of = |id: &Value| {
            interfaces
                .iter()
                .find(|i| i["id"] == *id)
                .map(|i| i["device"]["id"].clone())
        };
        for iface in &interfaces {
            let virtual_type = iface["type"]["value"] == "virtual";
            for field in ["parent", "bridge", "lag"] {
                let link = &iface[field]["id"];
                if link.is_null() {
                    continue;
                }
                if device_of(link) != Some(iface["device"]["id"].clone()) {
                    return Err(format!("{field} of interface {} is on another device", iface["id"]));
                }
                if *link == iface["id"] {
                    return Err(format!("interface {} is its own {field}", iface["id"]));
                }
            }
            if !iface["parent"].is_null() && !virtual_type {
                return Err(format!("only virtual interfaces may have a parent ({})", iface["id"]));
            }
            if !iface["lag"].is_null() && virtual_type {
                return Err(format!("virtual interfaces cannot have a parent LAG ({})", iface["id"]));
            }
        }
        Ok(())
    }

    fn disk_sizes(&mut self, vm: u64) -> Vec<u64> {
        self.objects(DISKS)
            .iter()
            .filter(|d| d["virtual_machine"]["id"] == vm)
            .filter_map(|d| d["size"].as_u64())
            .collect()
    }

    /// NetBox's signal: a VM's `disk` is the sum of its virtual disks' sizes
    /// (null without any), kept with a queryset update (`last_updated` stays).
    /// Summed when a VM is next read (`settle_disk_sums`): one pass over the
    /// disks for every run of disk writes, not one per disk.
    fn sum_disks(&mut self, vm: u64) {
        self.disk_sums_due.insert(vm);
    }

    fn settle_disk_sums(&mut self) {
        if self.disk_sums_due.is_empty() {
            return;
        }
        let mut sizes: BTreeMap<u64, Vec<u64>> = std::mem::take(&mut self.disk_sums_due)
            .into_iter()
            .map(|vm| (vm, Vec::new()))
            .collect();
        for disk in self.objects(DISKS).iter() {
            let vm = disk["virtual_machine"]["id"].as_u64();
            if let (Some(list), Some(size)) = (vm.and_then(|vm| sizes.get_mut(&vm)), disk["size"].as_u64()) {
                list.push(size);
            }
        }
        for (vm, sizes) in sizes {
            if let Some(object) = self.find(VMS, vm) {
                object["disk"] = if sizes.is_empty() {
                    Value::Null
                } else {
                    json!(sizes.iter().sum::<u64>())
                };
                object["virtual_disk_count"] = json!(sizes.len());
            }
        }
    }

    /// `VirtualMachine.clean`: with virtual disks, `disk` must be their sum.
    fn check_vm_disk(&mut self, vm: u64, patch: &[(String, Value)]) -> Result<(), String> {
        let Some((_, disk)) = patch.iter().find(|(field, _)| field == "disk") else {
            return Ok(());
        };
        let sizes = self.disk_sizes(vm);
        let sum: u64 = sizes.iter().sum();
        if !sizes.is_empty() && disk.as_u64() != Some(sum) {
            return Err(format!(
                "the specified disk size ({disk}) must match the aggregate size of assigned virtual disks ({sum})"
            ));
        }
        Ok(())
    }

    fn objects(&mut self, collection: &str) -> &mut Vec<Value> {
        let state = self.state.as_object_mut().unwrap();
        state
            .entry(collection.to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
    }

    fn positions(&mut self, collection: &str) -> &HashMap<u64, usize> {
        if !self.index.contains_key(collection) {
            let map = self
                .objects(collection)
                .iter()
                .enumerate()
                .filter_map(|(at, o)| Some((o["id"].as_u64()?, at)))
                .collect();
            self.index.insert(collection.to_owned(), map);
        }
        &self.index[collection]
    }

    fn find(&mut self, collection: &str, id: u64) -> Option<&mut Value> {
        let at = *self.positions(collection).get(&id)?;
        self.objects(collection).get_mut(at)
    }

    fn push(&mut self, collection: &str, object: Value) -> u64 {
        let id = match self.next_id.get(collection) {
            Some(next) => *next,
            None => {
                self.objects(collection)
                    .iter()
                    .filter_map(|o| o["id"].as_u64())
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        self.next_id.insert(collection.to_owned(), id + 1);
        let mut object = object;
        object["id"] = id.into();
        self.positions(collection);
        let objects = self.objects(collection);
        objects.push(object);
        let at = objects.len() - 1;
        self.index.get_mut(collection).unwrap().insert(id, at);
        id
    }

    fn tick(&mut self) -> String {
        self.clock += 1;
        stamp(self.clock)
    }

    /// One change-log entry by the sync for a write this simulator made.
    fn record(&mut self, action: &str, collection: &str, id: u64, before: Option<&Value>, after: Option<&Value>) {
        let time = stamp(self.clock);
        let entry = change_entry(
            SYNC_USER,
            Some(&self.message),
            action,
            collection,
            id,
            before,
            after,
            &time,
        );
        push_entry(self.state, entry);
    }

    fn resolve(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::Object(obj) if obj.contains_key("$ref") => {
                let op = obj["$ref"].as_str().unwrap_or_default();
                Value::from(*self.created.get(op).ok_or_else(|| format!("unresolved $ref {op}"))?)
            }
            Value::Object(obj) => Value::Object(
                obj.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect::<Result<_, _>>()?),
            other => other.clone(),
        })
    }

    /// The REST read shape of one written field.
    fn read_shape(&mut self, collection: &str, field: &str, value: Value) -> Result<Value, String> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        if let (Some(target), Value::Array(items)) = (fk_collection(collection, field), &value) {
            let mut shaped = Vec::new();
            for item in items {
                shaped.push(self.read_shape(collection, field, item.clone())?);
            }
            let _ = target;
            return Ok(Value::Array(shaped));
        }
        if let Some(target) = fk_collection(collection, field) {
            let id = value.as_u64().ok_or_else(|| format!("{field}: not an id: {value}"))?;
            // Endpoints are configuration the planner is given, not NetBox state it reads.
            let known = target.contains("/endpoints/") || self.find(target, id).is_some();
            if !known {
                return Err(format!("{field}: no {target} object {id}"));
            }
            return Ok(json!({ "id": id, "url": format!("http://netbox{target}{id}/") }));
        }
        if field == "tags" {
            let mut tags = Vec::new();
            for tag in value.as_array().ok_or("tags must be a list")? {
                let slug = tag["slug"].as_str().ok_or("tags are written by slug")?;
                let found = self
                    .objects("/api/extras/tags/")
                    .iter()
                    .find(|t| t["slug"] == slug)
                    .cloned();
                let found = found.ok_or_else(|| format!("tag {slug} does not exist"))?;
                tags.push(json!({ "id": found["id"], "name": found["name"], "slug": slug }));
            }
            return Ok(Value::Array(tags));
        }
        let choice = is_choice(collection, field) || (field == "type" && collection == DEVICE_INTERFACES);
        if choice {
            let text = value.as_str().ok_or_else(|| format!("{field}: not a choice string"))?;
            return Ok(json!({ "value": text, "label": text }));
        }
        if field == "assigned_object_id" {
            let id = value.as_u64().ok_or("assigned_object_id: not an id")?;
            // Checked against the assigned type in `create`, where both are known.
            let _ = id;
        }
        Ok(value)
    }

    /// Returns the id of the object it wrote, if it wrote one.
    fn apply_op(&mut self, op: &Value) -> Result<Option<u64>, String> {
        let collection = op["collection"].as_str().ok_or("no collection")?.to_owned();
        match op["action"].as_str() {
            Some("create") => self.create(op, &collection).map(Some),
            Some("update") => self.update(op, &collection).map(Some),
            Some("delete") => self.delete(op, &collection).map(|()| None),
            Some("skip") => Ok(None),
            other => Err(format!("unknown action {other:?}")),
        }
    }

    fn create(&mut self, op: &Value, collection: &str) -> Result<u64, String> {
        let fields = self.resolve(&op["fields"])?;
        let mut object = Map::new();
        for (field, value) in fields.as_object().ok_or("fields must be an object")? {
            let shaped = self.read_shape(collection, field, value.clone())?;
            object.insert(field.clone(), shaped);
        }
        if let (Some(kind), Some(id)) = (
            object.get("assigned_object_type").cloned(),
            object.get("assigned_object_id").cloned(),
        ) {
            let target = match kind.as_str() {
                Some("dcim.interface") => "/api/dcim/interfaces/",
                other => collection_of(other.unwrap_or_default())
                    .ok_or_else(|| format!("unknown assigned_object_type {other:?}"))?,
            };
            if self.find(target, id.as_u64().unwrap_or(0)).is_none() {
                return Err(format!("assigned_object_id: no {target} object {id}"));
            }
        }
        object.entry("tags").or_insert_with(|| json!([]));
        object.entry("custom_fields").or_insert_with(|| json!({}));
        object.insert("last_updated".into(), self.tick().into());
        if collection == VMS {
            object.insert("virtual_disk_count".into(), json!(0));
        }
        let vm = object.get("virtual_machine").map(|vm| vm["id"].clone());
        let id = self.push(collection, Value::Object(object));
        let written = self.find(collection, id).cloned();
        self.record("create", collection, id, None, written.as_ref());
        if collection == DISKS {
            self.sum_disks(vm.and_then(|vm| vm.as_u64()).unwrap_or_default());
        }
        self.created
            .insert(op["id"].as_str().unwrap_or_default().to_owned(), id);
        self.touched.insert((collection.to_owned(), id));
        Ok(id)
    }

    fn target(&mut self, op: &Value, collection: &str) -> Result<u64, String> {
        let id = self.resolve(&op["target"]["id"])?.as_u64().ok_or("target without id")?;
        let expected = op["target"]["last_updated"].clone();
        let touched = self.touched.contains(&(collection.to_owned(), id));
        let object = self
            .find(collection, id)
            .ok_or_else(|| format!("{collection}{id} does not exist"))?;
        if !expected.is_null() && !touched && object["last_updated"] != expected {
            return Err(format!("stale: {collection}{id} changed since planning"));
        }
        Ok(id)
    }

    fn update(&mut self, op: &Value, collection: &str) -> Result<u64, String> {
        let id = self.target(op, collection)?;
        let mut patch = Vec::new();
        for (field, change) in op["changes"].as_object().ok_or("update without changes")? {
            let after = self.resolve(&change["after"])?;
            patch.push((field.clone(), self.read_shape(collection, field, after)?));
        }
        if collection == VMS {
            self.check_vm_disk(id, &patch)?;
        }
        let stamp = self.tick();
        let before = self.find(collection, id).cloned();
        let object = self
            .find(collection, id)
            .ok_or("vanished")?
            .as_object_mut()
            .ok_or("not an object")?;
        for (field, value) in patch {
            if field == "custom_fields" {
                let merged = object.entry("custom_fields").or_insert_with(|| json!({}));
                for (k, v) in value.as_object().ok_or("custom_fields must be an object")? {
                    merged[k] = v.clone();
                }
            } else {
                object.insert(field, value);
            }
        }
        object.insert("last_updated".into(), stamp.into());
        let vm = object.get("virtual_machine").map(|vm| vm["id"].clone());
        let after = Value::Object(object.clone());
        self.record("update", collection, id, before.as_ref(), Some(&after));
        self.touched.insert((collection.to_owned(), id));
        if collection == DISKS {
            self.sum_disks(vm.and_then(|vm| vm.as_u64()).unwrap_or_default());
        }
        Ok(id)
    }

    fn delete(&mut self, op: &Value, collection: &str) -> Result<(), String> {
        let id = self.target(op, collection)?;
        if collection == DEVICE_INTERFACES {
            // `parent` is on_delete=RESTRICT.
            let children: Vec<Value> = self
                .objects(collection)
                .iter()
                .filter(|i| i["parent"]["id"] == id)
                .map(|i| i["id"].clone())
                .collect();
            if !children.is_empty() {
                return Err(format!(
                    "NetBox refuses: interfaces {children:?} have it as their parent"
                ));
            }
        }
        let before = self.find(collection, id).cloned();
        self.tick();
        self.record("delete", collection, id, before.as_ref(), None);
        self.remove(collection, id);
        Ok(())
    }

    /// Removes what NetBox deletes along with an object (`on_delete=CASCADE`).
    fn remove_children(&mut self, collection: &str, field: &str, id: u64) {
        let children: Vec<u64> = self
            .objects(collection)
            .iter()
            .filter(|o| o[field]["id"] == id)
            .filter_map(|o| o["id"].as_u64())
            .collect();
        children.into_iter().for_each(|child| self.remove(collection, child));
    }

    fn remove_assigned(&mut self, interface_type: &str, id: u64) {
        for assigned in ASSIGNED {
            let children: Vec<u64> = self
                .objects(assigned)
                .iter()
                .filter(|o| o["assigned_object_type"] == interface_type && o["assigned_object_id"] == id)
                .filter_map(|o| o["id"].as_u64())
                .collect();
            children.into_iter().for_each(|child| self.remove(assigned, child));
        }
    }

    /// NetBox's cascades: a VM takes its interfaces, disks, backups,
    /// snapshots and tasks, a device its interfaces, an interface its IPs,
    /// MACs and sync-state; links to a deleted interface, storage or node and
    /// primary pointers to a deleted address become null.
    fn remove(&mut self, collection: &str, id: u64) {
        let gone = self.find(collection, id).cloned();
        self.objects(collection).retain(|o| o["id"] != id);
        self.index.remove(collection);
        match collection {
            VMS => {
                for children_of in [INTERFACES, DISKS, BACKUPS, SNAPSHOTS, TASKS] {
                    self.remove_children(children_of, "virtual_machine", id);
                }
            }
            "/api/dcim/devices/" => self.remove_children(DEVICE_INTERFACES, "device", id),
            STORAGE => {
                self.null_pointers(BACKUPS, &["proxmox_storage"], id);
                self.null_pointers(SNAPSHOTS, &["proxmox_storage"], id);
                self.null_pointers(ROUTINES, &["storage", "fleecing_storage"], id);
                self.null_pointers(DISK_STATES, &["proxbox_storage"], id);
            }
            "/api/plugins/proxbox/proxmox-nodes/" => self.null_pointers(ROUTINES, &["node"], id),
            INTERFACES => {
                self.remove_assigned("virtualization.vminterface", id);
                self.remove_children(INTERFACE_STATES, "vm_interface", id);
            }
            DEVICE_INTERFACES => {
                self.remove_assigned("dcim.interface", id);
                for object in self.objects(DEVICE_INTERFACES) {
                    for field in ["bridge", "lag"] {
                        if object[field]["id"] == id {
                            object[field] = Value::Null;
                        }
                    }
                }
                self.null_pointers(INTERFACE_STATES, &["proxbox_bridge"], id);
            }
            DISKS => {
                self.remove_children(DISK_STATES, "virtual_disk", id);
                let vm = gone.as_ref().and_then(|d| d["virtual_machine"]["id"].as_u64());
                self.sum_disks(vm.unwrap_or_default());
            }
            IPS => self.null_pointers(VMS, &["primary_ip4", "primary_ip6"], id),
            MACS => self.null_pointers(INTERFACES, &["primary_mac_address"], id),
            _ => {}
        }
    }

    fn null_pointers(&mut self, collection: &str, fields: &[&str], id: u64) {
        for object in self.objects(collection) {
            for field in fields {
                if object[*field]["id"] == id {
                    object[*field] = Value::Null;
                }
            }
        }
    }
}

fn collection_of(model: &str) -> Option<&'static str> {
    let mut models = proxbox_planner::ALL_MODELS.iter();
    models.find(|m| m.name == model).map(|m| m.collection)
}

fn model_of(collection: &str) -> &'static str {
    let mut models = proxbox_planner::ALL_MODELS.iter();
    models
        .find(|m| m.collection == collection)
        .map_or("unknown.model", |m| m.name)
}

/// A timestamp after every earlier one of the state (one tick per entry).
fn stamp(clock: u64) -> String {
    format!(
        "2026-11-23T{:02}:{:02}:{:02}.{:06}Z",
        (clock / 3600) % 24,
        (clock / 60) % 60,
        clock % 60,
        clock % 1_000_000
    )
}

/// The clock goes on from the last write the state recorded.
fn clock_of(state: &Value) -> u64 {
    1_000 + state[CHANGELOG].as_array().map_or(0, Vec::len) as u64
}

fn push_entry(state: &mut Value, mut entry: Value) {
    let collections = state.as_object_mut().unwrap();
    collections.entry(JOURNAL.to_owned()).or_insert_with(|| json!([]));
    let log = collections
        .entry(CHANGELOG.to_owned())
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .unwrap();
    entry["id"] = json!(log.len() as u64 + 1);
    log.push(entry);
}

/// How NetBox serializes an object into its change log (Django's
/// serialization): references as ids, choices as values, tags as names.
fn logged(object: &Value) -> Value {
    fn value(v: &Value) -> Value {
        match v {
            Value::Object(o) if o.contains_key("url") && o.contains_key("id") => o["id"].clone(),
            Value::Object(o) if o.len() == 2 && o.contains_key("value") && o.contains_key("label") => {
                o["value"].clone()
            }
            Value::Array(items) => Value::Array(items.iter().map(value).collect()),
            other => other.clone(),
        }
    }
    let mut out = Map::new();
    for (key, v) in object.as_object().into_iter().flatten() {
        let shaped = match key.as_str() {
            "id" | "url" | "last_updated" | "created" => continue,
            "tags" => {
                let mut names: Vec<Value> = v.as_array().into_iter().flatten().map(|t| t["name"].clone()).collect();
                names.sort_by_key(|n| n.to_string());
                Value::Array(names)
            }
            "custom_fields" => v.clone(),
            _ => value(v),
        };
        out.insert(key.clone(), shaped);
    }
    Value::Object(out)
}

/// One `/api/core/object-changes/` object, as NetBox's REST API lists it.
#[allow(clippy::too_many_arguments)]
fn change_entry(
    user: (u64, &str),
    message: Option<&str>,
    action: &str,
    collection: &str,
    id: u64,
    before: Option<&Value>,
    after: Option<&Value>,
    time: &str,
) -> Value {
    json!({
        "time": time, "user": {"id": user.0, "username": user.1, "url": "http://netbox/api/users/users/"},
        "user_name": user.1, "action": {"value": action, "label": action},
        "changed_object_type": model_of(collection), "changed_object_id": id, "message": message.unwrap_or(""),
        "prechange_data": before.map_or(json!({}), logged), "postchange_data": after.map_or(Value::Null, logged),
    })
}

/// An edit made in NetBox by `user` (not the sync): `value` in the REST read
/// shape, `last_updated` bumped, and the change log entry NetBox records.
pub fn operator_edit(state: &mut Value, user: (u64, &str), collection: &str, id: u64, field: &str, value: Value) {
    let clock = clock_of(state) + 1;
    let objects = state[collection].as_array_mut().unwrap();
    let object = objects
        .iter_mut()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("no {collection}{id}"));
    let before = object.clone();
    object[field] = value;
    object["last_updated"] = json!(stamp(clock));
    let after = object.clone();
    let entry = change_entry(
        user,
        None,
        "update",
        collection,
        id,
        Some(&before),
        Some(&after),
        &stamp(clock),
    );
    push_entry(state, entry);
}
