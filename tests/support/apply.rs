//! Applies a plan to NetBox state JSON like NetBox would: assigns ids, resolves
//! `$ref`s, returns objects in the REST read shape (nested foreign keys,
//! tag objects, choice objects), merges custom fields, cascades deletes, and
//! refuses stale preconditions and dangling references.

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

const CHOICES: [&str; 4] = ["status", "mode", "job_type", "remove_job"];
const INTERFACES: &str = "/api/virtualization/interfaces/";
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
    clock: u64,
}

pub fn apply(state: &mut Value, plan: &Value) -> Result<(), String> {
    let clock = 1_000;
    let mut sim = Simulator {
        state,
        index: HashMap::new(),
        next_id: HashMap::new(),
        created: BTreeMap::new(),
        touched: BTreeSet::new(),
        clock,
    };
    let mut done = BTreeSet::new();
    for op in plan["operations"].as_array().ok_or("no operations")? {
        let id = op["id"].as_str().ok_or("op without id")?.to_owned();
        for dep in op["depends_on"].as_array().into_iter().flatten() {
            if !done.contains(dep.as_str().unwrap_or_default()) {
                return Err(format!("{id} runs before its dependency {dep}"));
            }
        }
        sim.apply_op(op).map_err(|e| format!("{id}: {e}"))?;
        let collection = op["collection"].as_str().unwrap_or_default();
        sim.constraints(collection)
            .map_err(|e| format!("{id}: NetBox refuses: {e}"))?;
        done.insert(id);
    }
    Ok(())
}

/// NetBox's `IPADDRESS_ROLES_NONUNIQUE`.
const SHARED_ROLES: [&str; 6] = ["anycast", "vip", "vrrp", "hsrp", "glbp", "carp"];

impl Simulator<'_> {
    /// The uniqueness rules NetBox enforces on what the planner writes:
    /// tag names and slugs, VM names per cluster (case-insensitively),
    /// interface names per VM, host addresses in the global table, and the
    /// plugin's constraints on backups, snapshots (vmid, name, node: not
    /// per VM), task UPIDs and backup routines (endpoint, job id).
    fn constraints(&mut self, collection: &str) -> Result<(), String> {
        let lower = |v: &Value| v.as_str().unwrap_or_default().to_lowercase();
        let keys: Vec<(String, String)> = match collection {
            "/api/extras/tags/" => self
                .objects(collection)
                .iter()
                .flat_map(|t| {
                    [
                        ("slug".to_owned(), lower(&t["slug"])),
                        ("name".to_owned(), lower(&t["name"])),
                    ]
                })
                .collect(),
            "/api/virtualization/virtual-machines/" => self
                .objects(collection)
                .iter()
                .map(|vm| (vm["cluster"]["id"].to_string(), lower(&vm["name"])))
                .collect(),
            INTERFACES => self
                .objects(collection)
                .iter()
                .map(|i| {
                    (
                        i["virtual_machine"]["id"].to_string(),
                        i["name"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            "/api/ipam/ip-addresses/" => self
                .objects(collection)
                .iter()
                .filter(|ip| ip["vrf"].is_null() && !SHARED_ROLES.contains(&ip["role"]["value"].as_str().unwrap_or("")))
                .map(|ip| {
                    let host = ip["address"]
                        .as_str()
                        .unwrap_or_default()
                        .split('/')
                        .next()
                        .unwrap_or_default();
                    let host: std::net::IpAddr = host.parse().map_err(|_| format!("bad address {ip}"))?;
                    Ok(("global".to_owned(), host.to_string()))
                })
                .collect::<Result<_, String>>()?,
            BACKUPS => self
                .objects(collection)
                .iter()
                .map(|b| {
                    let key = ["storage", "subtype", "format", "volume_id", "vmid"].map(|f| b[f].to_string());
                    (b["virtual_machine"]["id"].to_string(), key.join(" "))
                })
                .collect(),
            SNAPSHOTS => self
                .objects(collection)
                .iter()
                .map(|s| (s["vmid"].to_string(), format!("{} {}", s["name"], s["node"])))
                .collect(),
            TASKS => self
                .objects(collection)
                .iter()
                .map(|t| ("upid".to_owned(), t["upid"].to_string()))
                .collect(),
            ROUTINES => self
                .objects(collection)
                .iter()
                .map(|r| (r["endpoint"]["id"].to_string(), r["job_id"].to_string()))
                .collect(),
            _ => return Ok(()),
        };
        let mut seen = BTreeSet::new();
        for key in keys {
            if !seen.insert(key.clone()) {
                return Err(format!("{collection}: {} {:?} is taken", key.0, key.1));
            }
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
        format!(
            "2026-11-23T10:{:02}:{:02}.{:06}Z",
            (self.clock / 60) % 60,
            self.clock % 60,
            self.clock
        )
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
        if is_choice(collection, field) {
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

    fn apply_op(&mut self, op: &Value) -> Result<(), String> {
        let collection = op["collection"].as_str().ok_or("no collection")?.to_owned();
        match op["action"].as_str() {
            Some("create") => self.create(op, &collection),
            Some("update") => self.update(op, &collection),
            Some("delete") => self.delete(op, &collection),
            Some("skip") => Ok(()),
            other => Err(format!("unknown action {other:?}")),
        }
    }

    fn create(&mut self, op: &Value, collection: &str) -> Result<(), String> {
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
                Some("virtualization.vminterface") => INTERFACES,
                Some("ipam.vlan") => "/api/ipam/vlans/",
                Some("dcim.interface") => "/api/dcim/interfaces/",
                other => return Err(format!("unknown assigned_object_type {other:?}")),
            };
            if self.find(target, id.as_u64().unwrap_or(0)).is_none() {
                return Err(format!("assigned_object_id: no {target} object {id}"));
            }
        }
        object.entry("tags").or_insert_with(|| json!([]));
        object.entry("custom_fields").or_insert_with(|| json!({}));
        object.insert("last_updated".into(), self.tick().into());
        let id = self.push(collection, Value::Object(object));
        self.created
            .insert(op["id"].as_str().unwrap_or_default().to_owned(), id);
        self.touched.insert((collection.to_owned(), id));
        Ok(())
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

    fn update(&mut self, op: &Value, collection: &str) -> Result<(), String> {
        let id = self.target(op, collection)?;
        let mut patch = Vec::new();
        for (field, change) in op["changes"].as_object().ok_or("update without changes")? {
            let after = self.resolve(&change["after"])?;
            patch.push((field.clone(), self.read_shape(collection, field, after)?));
        }
        let stamp = self.tick();
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
        self.touched.insert((collection.to_owned(), id));
        Ok(())
    }

    fn delete(&mut self, op: &Value, collection: &str) -> Result<(), String> {
        let id = self.target(op, collection)?;
        self.remove(collection, id);
        Ok(())
    }

    /// NetBox's cascades: a VM takes its interfaces, backups, snapshots and
    /// tasks, an interface its IPs and MACs; pointers to a deleted address,
    /// storage or node become null.
    fn remove(&mut self, collection: &str, id: u64) {
        self.objects(collection).retain(|o| o["id"] != id);
        self.index.remove(collection);
        match collection {
            "/api/virtualization/virtual-machines/" => {
                for children_of in [INTERFACES, BACKUPS, SNAPSHOTS, TASKS] {
                    let children: Vec<u64> = self
                        .objects(children_of)
                        .iter()
                        .filter(|i| i["virtual_machine"]["id"] == id)
                        .filter_map(|i| i["id"].as_u64())
                        .collect();
                    children.into_iter().for_each(|child| self.remove(children_of, child));
                }
            }
            STORAGE => {
                self.null_pointers(BACKUPS, &["proxmox_storage"], id);
                self.null_pointers(SNAPSHOTS, &["proxmox_storage"], id);
                self.null_pointers(ROUTINES, &["storage", "fleecing_storage"], id);
            }
            "/api/plugins/proxbox/proxmox-nodes/" => self.null_pointers(ROUTINES, &["node"], id),
            INTERFACES => {
                for assigned in ["/api/ipam/ip-addresses/", "/api/dcim/mac-addresses/"] {
                    let children: Vec<u64> = self
                        .objects(assigned)
                        .iter()
                        .filter(|o| {
                            o["assigned_object_type"] == "virtualization.vminterface" && o["assigned_object_id"] == id
                        })
                        .filter_map(|o| o["id"].as_u64())
                        .collect();
                    children.into_iter().for_each(|child| self.remove(assigned, child));
                }
            }
            "/api/ipam/ip-addresses/" => self.null_pointers(
                "/api/virtualization/virtual-machines/",
                &["primary_ip4", "primary_ip6"],
                id,
            ),
            "/api/dcim/mac-addresses/" => self.null_pointers(INTERFACES, &["primary_mac_address"], id),
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
