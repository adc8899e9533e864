//! The NetBox side: objects as the REST API returns them (full, not brief),
//! and the models the planner writes.

use crate::error::{ErrorCode, PlanError, Result};
use crate::json::{loose_u64, Path};
use crate::vec_map::VecMap;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// A NetBox model the planner reads or writes, where its REST collection is,
/// and the fields of its objects the planners compare, match or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    /// NetBox's `app_label.model` name, as operations carry it in `model`.
    pub name: &'static str,
    /// The REST collection, from `/api/` to its trailing slash.
    pub collection: &'static str,
    /// Besides `id` and `last_updated`, which every model is read with (the
    /// precondition of an update or delete).
    pub reads: &'static [&'static str],
}

macro_rules! models {
    ($($ident:ident = $name:literal at $collection:literal reads [$($field:literal),* $(,)?];)*) => {
        $(pub(crate) const $ident: Model = Model { name: $name, collection: $collection, reads: &[$($field),*] };)*
        /// Every NetBox model the planner reads or writes, in one table.
        pub const ALL_MODELS: &[Model] = &[$($ident),*];
    };
}

// The lists: what the planners of each model read (`Object::get` and its
// typed accessors, tags, custom fields) and what they write (an object read
// back is compared field by field with what a create would write). A field
// missing here reads as null, which the convergence tests catch (their
// simulator answers with only these fields, as NetBox does for `?fields=`).

#[rustfmt::skip]
models! {
    TAG = "extras.tag" at "/api/extras/tags/"
        reads ["color", "description", "name", "slug"];
    CUSTOM_FIELD = "extras.customfield" at "/api/extras/custom-fields/"
        reads ["description", "group_name", "label", "name", "object_types", "required", "type"];
    SITE = "dcim.site" at "/api/dcim/sites/"
        reads ["name", "slug", "status", "tags"];
    CLUSTER_TYPE = "virtualization.clustertype" at "/api/virtualization/cluster-types/"
        reads ["name", "slug", "tags"];
    CLUSTER = "virtualization.cluster" at "/api/virtualization/clusters/"
        reads ["name", "status", "tags", "type"];
    MANUFACTURER = "dcim.manufacturer" at "/api/dcim/manufacturers/"
        reads ["name", "slug", "tags"];
    DEVICE_TYPE = "dcim.devicetype" at "/api/dcim/device-types/"
        reads ["manufacturer", "model", "slug", "tags", "u_height"];
    DEVICE_ROLE = "dcim.devicerole" at "/api/dcim/device-roles/"
        reads ["color", "name", "slug", "tags", "vm_role"];
    DEVICE = "dcim.device" at "/api/dcim/devices/"
        reads ["cluster", "device_type", "name", "oob_ip", "primary_ip4", "primary_ip6", "role", "site", "status",
            "tags"];
    VIRTUAL_MACHINE = "virtualization.virtualmachine" at "/api/virtualization/virtual-machines/"
        reads ["cluster", "comments", "custom_fields", "description", "device", "disk", "memory", "name",
            "primary_ip4", "primary_ip6", "site", "status", "tags", "vcpus", "virtual_disk_count"];
    VM_INTERFACE = "virtualization.vminterface" at "/api/virtualization/interfaces/"
        reads ["enabled", "mode", "mtu", "name", "primary_mac_address", "tags", "untagged_vlan", "virtual_machine"];
    VIRTUAL_DISK = "virtualization.virtualdisk" at "/api/virtualization/virtual-disks/"
        reads ["description", "name", "size", "tags", "virtual_machine"];
    DEVICE_INTERFACE = "dcim.interface" at "/api/dcim/interfaces/"
        reads ["bridge", "description", "device", "enabled", "lag", "mtu", "name", "parent", "tags", "type"];
    MAC_ADDRESS = "dcim.macaddress" at "/api/dcim/mac-addresses/"
        reads ["assigned_object_id", "assigned_object_type", "mac_address", "tags"];
    IP_ADDRESS = "ipam.ipaddress" at "/api/ipam/ip-addresses/"
        reads ["address", "assigned_object_id", "assigned_object_type", "role", "status", "tags", "vrf"];
    VLAN = "ipam.vlan" at "/api/ipam/vlans/"
        reads ["group", "name", "site", "status", "tags", "vid"];
    VM_TEMPLATE = "netbox_proxbox.proxmoxvmtemplate" at "/api/plugins/proxbox/vm-templates/"
        reads ["cloud_init_enabled", "cluster", "description", "disk", "disk_config", "memory", "name", "net_config",
            "node", "node_name", "os_type", "proxmox_endpoint", "proxmox_type", "raw_config", "status", "tags",
            "vcpus", "vmid"];
    STORAGE = "netbox_proxbox.proxmoxstorage" at "/api/plugins/proxbox/storage/"
        reads ["cluster", "content", "datastore", "enabled", "export", "format", "is_mountpoint",
            "max_protected_backups", "monhost", "mountpoint", "name", "namespace", "nodes", "path", "pool", "port",
            "preallocation", "prune_backups", "raw_config", "server", "share", "shared", "storage_type", "subdir",
            "tags", "username"];
    REPLICATION = "netbox_proxbox.replication" at "/api/plugins/proxbox/replications/"
        reads ["comment", "disable", "endpoint", "guest", "job_type", "jobnum", "proxmox_node", "rate", "raw_config",
            "remove_job", "replication_id", "schedule", "source", "status", "tags", "target", "virtual_machine"];
    SDN_CONTROLLER = "netbox_proxbox.proxmoxsdncontroller" at "/api/plugins/proxbox/sdn-controllers/"
        reads ["asn", "cluster_name", "controller_name", "controller_type", "endpoint", "loopback", "nodes", "peers",
            "raw_config", "state", "status", "tags"];
    SDN_ZONE = "netbox_proxbox.proxmoxsdnzone" at "/api/plugins/proxbox/sdn-zones/"
        reads ["cluster_name", "controller", "dns", "endpoint", "ipam", "mtu", "raw_config", "rt_import", "state",
            "status", "tag", "tags", "vrf_vxlan", "zone_name", "zone_type"];
    SDN_VNET = "netbox_proxbox.proxmoxsdnvnet" at "/api/plugins/proxbox/sdn-vnets/"
        reads ["alias", "cluster_name", "endpoint", "l2vpn", "raw_config", "state", "status", "tag", "tags",
            "vlanaware", "vnet_name", "vnet_type", "zone_name"];
    SDN_SUBNET = "netbox_proxbox.proxmoxsdnsubnet" at "/api/plugins/proxbox/sdn-subnets/"
        reads ["cluster_name", "endpoint", "gateway", "prefix", "raw_config", "skip_reason", "snat", "status",
            "subnet", "subnet_type", "tags", "vnet_name", "zone_name"];
    SDN_FABRIC = "netbox_proxbox.proxmoxsdnfabric" at "/api/plugins/proxbox/sdn-fabrics/"
        reads ["asn", "cluster_name", "endpoint", "fabric_name", "fabric_type", "raw_config", "status", "tags"];
    SDN_ROUTE_MAP = "netbox_proxbox.proxmoxsdnroutemap" at "/api/plugins/proxbox/sdn-route-maps/"
        reads ["action", "cluster_name", "endpoint", "match_ip", "match_peer", "name", "order", "raw_config",
            "set_community", "status", "tags"];
    SDN_PREFIX_LIST = "netbox_proxbox.proxmoxsdnprefixlist" at "/api/plugins/proxbox/sdn-prefix-lists/"
        reads ["action", "cidr", "cluster_name", "endpoint", "ge", "le", "name", "raw_config", "status", "tags"];
    SDN_BINDING = "netbox_proxbox.proxmoxsdnbinding" at "/api/plugins/proxbox/sdn-bindings/"
        reads ["cluster_name", "conflict_reason", "endpoint", "node", "raw_config", "source_name", "source_type",
            "status", "tags", "target_id", "target_type", "vnet_name", "zone_name"];
    L2VPN = "vpn.l2vpn" at "/api/vpn/l2vpns/"
        reads ["description", "identifier", "import_targets", "name", "slug", "status", "tags", "type"];
    L2VPN_TERMINATION = "vpn.l2vpntermination" at "/api/vpn/l2vpn-terminations/"
        reads ["assigned_object_id", "assigned_object_type", "l2vpn", "tags"];
    ROUTE_TARGET = "ipam.routetarget" at "/api/ipam/route-targets/"
        reads ["description", "name", "tags"];
    PREFIX = "ipam.prefix" at "/api/ipam/prefixes/"
        reads ["description", "prefix", "status", "tags", "vrf"];
    PROXMOX_CLUSTER = "netbox_proxbox.proxmoxcluster" at "/api/plugins/proxbox/proxmox-clusters/"
        reads ["cluster_id", "endpoint", "mode", "name", "netbox_cluster", "nodes_count", "quorate", "tags",
            "version"];
    PROXMOX_NODE = "netbox_proxbox.proxmoxnode" at "/api/plugins/proxbox/proxmox-nodes/"
        reads ["endpoint", "ip_address", "local", "max_cpu", "max_memory", "name", "netbox_device", "node_id",
            "online", "proxmox_cluster", "tags"];
    VM_SYNC_STATE = "netbox_proxbox.proxboxvirtualmachinesyncstate" at "/api/plugins/proxbox/sync-state/virtual-machines/"
        reads ["endpoint", "proxmox_cluster", "proxmox_cluster_name", "proxmox_node", "proxmox_node_name",
            "proxmox_status", "proxmox_vm_id", "proxmox_vm_name", "proxmox_vm_type", "tags", "virtual_machine"];
    DEVICE_SYNC_STATE = "netbox_proxbox.proxboxdevicesyncstate" at "/api/plugins/proxbox/sync-state/devices/"
        reads ["device", "endpoint", "proxmox_cluster", "proxmox_cluster_name", "proxmox_node", "proxmox_node_name",
            "tags"];
    CLUSTER_SYNC_STATE = "netbox_proxbox.proxboxclustersyncstate" at "/api/plugins/proxbox/sync-state/clusters/"
        reads ["cluster", "proxmox_cluster", "proxmox_cluster_name", "tags"];
    VIRTUAL_DISK_SYNC_STATE = "netbox_proxbox.proxboxvirtualdisksyncstate" at "/api/plugins/proxbox/sync-state/virtual-disks/"
        reads ["endpoint", "proxbox_storage", "proxbox_storage_raw_value", "proxmox_cluster", "proxmox_cluster_name",
            "proxmox_node", "proxmox_node_name", "tags", "virtual_disk"];
    VM_INTERFACE_SYNC_STATE = "netbox_proxbox.proxboxvminterfacesyncstate" at "/api/plugins/proxbox/sync-state/vm-interfaces/"
        reads ["endpoint", "proxbox_bridge", "proxbox_bridge_raw_value", "proxmox_cluster", "proxmox_cluster_name",
            "proxmox_node", "proxmox_node_name", "tags", "vm_interface"];
    VM_BACKUP = "netbox_proxbox.vmbackup" at "/api/plugins/proxbox/backups/"
        reads ["creation_time", "encrypted", "format", "node", "notes", "proxmox_storage", "size", "status", "storage",
            "subtype", "tags", "used", "verification_state", "verification_upid", "virtual_machine", "vmid",
            "volume_id"];
    VM_SNAPSHOT = "netbox_proxbox.vmsnapshot" at "/api/plugins/proxbox/snapshots/"
        reads ["description", "name", "node", "parent", "snaptime", "status", "subtype", "tags", "virtual_machine",
            "vmid"];
    TASK_HISTORY = "netbox_proxbox.vmtaskhistory" at "/api/plugins/proxbox/task-history/"
        reads ["description", "end_time", "exitstatus", "node", "pid", "pstart", "start_time", "status", "tags",
            "task_id", "task_state", "task_type", "upid", "username", "virtual_machine", "vm_type"];
    BACKUP_ROUTINE = "netbox_proxbox.backuproutine" at "/api/plugins/proxbox/backup-routines/"
        reads ["bwlimit", "comment", "enabled", "endpoint", "fleecing", "fleecing_storage", "io_workers", "job_id",
            "keep_all", "keep_daily", "keep_last", "keep_monthly", "keep_weekly", "keep_yearly", "mode", "node",
            "notes_template", "pbs_change_detection_mode", "pool", "raw_config", "repeat_missed", "schedule",
            "selection", "status", "storage", "tags", "vmid", "zstd"];
    OBJECT_CHANGE = "core.objectchange" at "/api/core/object-changes/"
        reads ["action", "changed_object_id", "changed_object_type", "message", "postchange_data",
            "prechange_data", "time", "user", "user_name"];
    JOURNAL_ENTRY = "extras.journalentry" at "/api/extras/journal-entries/"
        reads ["assigned_object_id", "assigned_object_type", "comments", "kind"];
}

/// The Proxbox plugin's own bookkeeping (its tracking rows and sync-state
/// sidecars): kept where the plugin is installed, and a NetBox without the
/// plugin simply has none (planners go on without them).
pub const BOOKKEEPING: &[Model] = &[
    PROXMOX_CLUSTER,
    PROXMOX_NODE,
    VM_SYNC_STATE,
    DEVICE_SYNC_STATE,
    CLUSTER_SYNC_STATE,
    VIRTUAL_DISK_SYNC_STATE,
    VM_INTERFACE_SYNC_STATE,
];

impl Model {
    /// What to ask NetBox for (`?fields=`): the id, `last_updated`, `reads`.
    pub fn query_fields(self) -> Vec<&'static str> {
        let mut fields = vec!["id", "last_updated"];
        fields.extend(self.reads);
        fields
    }

    /// Collections the Proxbox plugin provides: absent when it is not installed.
    pub fn is_plugin(self) -> bool {
        self.collection.starts_with("/api/plugins/")
    }

    /// One of the plugin's tracking rows or sync-state sidecars (`BOOKKEEPING`).
    pub fn is_bookkeeping(self) -> bool {
        BOOKKEEPING.contains(&self)
    }
}

/// One NetBox object, reduced while parsing to what the planners read: the
/// id, the tag slugs, the custom fields and the fields of `FIELDS`, with
/// nested objects collapsed to their id (`{"id": 3, ...}` → `3`) and choices
/// to their value (`{"value": "active", ...}` → `"active"`). Everything else a
/// REST object carries (urls, display strings, ...) is skipped unallocated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub id: u64,
    /// Sorted by field id.
    fields: Vec<(FieldId, Value)>,
    tags: Vec<String>,
    custom_fields: Map<String, Value>,
}

/// The `visit_*` methods for JSON scalars of a visitor that answers each of
/// them the same way, given the scalar's kind ("a boolean", "a number", ...).
macro_rules! scalars_become {
    ($value:ty, |$found:ident| $make:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<$value, E> {
            let $found = "a boolean";
            Ok($make)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<$value, E> {
            let $found = "a number";
            Ok($make)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<$value, E> {
            let $found = "a number";
            Ok($make)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<$value, E> {
            let $found = "a number";
            Ok($make)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<$value, E> {
            let $found = "a string";
            Ok($make)
        }
    };
}

/// Declares the fields planners read: `FIELDS` (for tests and docs) and
/// `KEYS`, every key the parser tells apart, looked up through `SLOTS`.
macro_rules! fields {
    (json: [$($json:literal),* $(,)?], reduced: [$($name:literal),* $(,)?] $(,)?) => {
        #[cfg(test)]
        const FIELDS: &[&str] = &[$($name),*];

        /// A field's index here is its id in a `Record`.
        const KEYS: &[(&str, KeyKind)] = &[
            ("id", KeyKind::Id),
            ("value", KeyKind::Value),
            ("tags", KeyKind::Tags),
            ("custom_fields", KeyKind::CustomFields),
            $(($json, KeyKind::Json),)*
            $(($name, KeyKind::Field),)*
        ];
    };
}

// A field missing here reads as null, which the convergence tests catch as a
// never-ending update. JSON blobs (Proxmox payloads) are kept exactly as they
// are; the other fields have nested objects reduced to their id or value.
#[rustfmt::skip]
fields! {
    json: ["disk_config", "net_config", "postchange_data", "prechange_data", "raw_config", "selection"],
    reduced: [
    "action", "address", "advertise_subnets", "alias", "asn", "assigned_object_id", "assigned_object_type",
    "bridge", "bwlimit", "changed_object_id", "changed_object_type", "cidr", "cloud_init_enabled", "cluster",
    "cluster_id", "cluster_name", "color", "comment", "comments", "conflict_reason", "content", "controller",
    "controller_name", "controller_type", "creation_time", "datastore", "description", "device", "device_type",
    "disable", "disk", "dns", "dns_name", "enabled", "encrypted", "end_time", "endpoint", "exitstatus", "export",
    "export_targets", "fabric_name", "fabric_type", "fleecing", "fleecing_storage", "format", "gateway", "ge",
    "group", "group_name", "guest", "identifier", "import_targets", "io_workers", "ip_address", "ipam",
    "is_mountpoint", "job_id", "job_type", "jobnum", "keep_all", "keep_daily", "keep_last", "keep_monthly",
    "keep_weekly", "keep_yearly", "kind", "l2vpn", "label", "lag", "last_updated", "le", "local", "loopback",
    "mac_address", "manufacturer", "match_ip", "match_peer", "max_cpu", "max_memory", "max_protected_backups",
    "memory", "message", "mode", "model", "monhost", "mountpoint", "mtu", "name", "namespace", "netbox_cluster",
    "netbox_device", "node", "node_id", "node_name", "nodes", "nodes_count", "notes", "notes_template",
    "object_types", "online", "oob_ip", "order", "os_type", "parent", "path", "pbs_change_detection_mode", "peers",
    "pid", "pool", "port", "preallocation", "prefix", "primary_ip4", "primary_ip6", "primary_mac_address",
    "proxbox_bridge", "proxbox_bridge_raw_value", "proxbox_storage", "proxbox_storage_raw_value", "proxmox_cluster",
    "proxmox_cluster_name", "proxmox_endpoint", "proxmox_node", "proxmox_node_name", "proxmox_status",
    "proxmox_storage", "proxmox_type", "proxmox_vm_id", "proxmox_vm_name", "proxmox_vm_type", "prune_backups",
    "pstart", "quorate", "rate", "remove_job", "repeat_missed", "replication_id", "required", "role", "rt_import",
    "schedule", "scope_id", "scope_type", "server", "set_community", "share", "shared", "site", "size",
    "skip_reason", "slug", "snaptime", "snat", "source", "source_name", "source_type", "start_time", "state",
    "status", "storage", "storage_type", "subdir", "subnet", "subnet_type", "subtype", "tag", "target", "target_id",
    "target_type", "task_id", "task_state", "task_type", "time", "type", "u_height", "untagged_vlan", "upid",
    "used", "user", "user_name", "username", "vcpus", "verification_state", "verification_upid", "version", "vid",
    "virtual_disk", "virtual_disk_count", "virtual_machine", "vlanaware", "vm_interface", "vm_role", "vm_type",
    "vmid", "vnet_name", "vnet_type", "volume_id", "vrf", "vrf_vxlan", "zone_name", "zone_type", "zstd",
    ],
}

/// One element of a NetBox collection: a record, or what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Record(Record),
    NotAnObject(&'static str),
    MissingId,
    BadId(&'static str),
}

#[derive(Clone, Copy)]
enum KeyKind {
    Id,
    /// A choice's `value`, inside a nested object.
    Value,
    Tags,
    CustomFields,
    /// Kept as JSON, exactly as it is.
    Json,
    /// Kept with nested objects reduced to their id or value.
    Field,
}

enum Key {
    Id,
    Value,
    Tags,
    CustomFields,
    Field(FieldId),
    Json(FieldId),
    Other,
}

/// A field's index in `KEYS`: records store and search these, not names.
type FieldId = u16;

/// An open-addressing table of `KEYS` indexes by `key_hash`, built at
/// compile time. Classifying every key of every NetBox object is the
/// parser's hottest path; a `match` on strings compares them one by one.
// A reference, so that run-time lookups read one table instead of copying it.
const SLOTS: &[FieldId; 1 << SLOT_BITS] = &build_slots();
const SLOT_BITS: u32 = 9;
const EMPTY: FieldId = FieldId::MAX;
const _: () = assert!(KEYS.len() * 2 < SLOTS.len(), "keep the key table at most half full");

/// The length and three bytes (first, middle, last), Fibonacci-hashed to a
/// slot: cheaper than hashing every byte, and enough to spread the names
/// (a collision only costs one more probe).
const fn key_hash(bytes: &[u8]) -> usize {
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return 0;
    };
    let middle = bytes.len() / 2;
    #[allow(clippy::indexing_slicing)] // `middle < len`: the slice is not empty
    let packed = (bytes.len() as u32) << 24 | (first as u32) << 16 | (bytes[middle] as u32) << 8 | last as u32;
    (packed.wrapping_mul(0x9E37_79B1) >> (32 - SLOT_BITS)) as usize
}

// Indexing in a const initialiser cannot panic at run time: out of bounds is
// a compile error.
#[allow(clippy::indexing_slicing)]
const fn build_slots() -> [FieldId; 1 << SLOT_BITS] {
    let mut slots = [EMPTY; 1 << SLOT_BITS];
    let mut key = 0;
    while key < KEYS.len() {
        let mut at = key_hash(KEYS[key].0.as_bytes());
        while slots[at] != EMPTY {
            at = (at + 1) % slots.len();
        }
        slots[at] = key as FieldId;
        key += 1;
    }
    slots
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        #[allow(clippy::indexing_slicing)] // both have length `a.len()`
        if a[at] != b[at] {
            return false;
        }
        at += 1;
    }
    true
}

/// The index of `key` in `KEYS`; the probe ends at an empty slot, and the
/// table is at most half full.
const fn key_index(key: &[u8]) -> Option<FieldId> {
    let mut at = key_hash(key);
    loop {
        #[allow(clippy::indexing_slicing)] // `at` is reduced modulo the table's length
        let slot = SLOTS[at];
        if slot == EMPTY {
            return None;
        }
        #[allow(clippy::indexing_slicing)] // slots only hold indexes of `KEYS`
        if same_bytes(KEYS[slot as usize].0.as_bytes(), key) {
            return Some(slot);
        }
        at = (at + 1) % SLOTS.len();
    }
}

fn field_key(key: &str) -> Key {
    let Some(index) = key_index(key.as_bytes()) else {
        return Key::Other;
    };
    match KEYS.get(index as usize).map(|(_, kind)| *kind) {
        Some(KeyKind::Id) => Key::Id,
        Some(KeyKind::Value) => Key::Value,
        Some(KeyKind::Tags) => Key::Tags,
        Some(KeyKind::CustomFields) => Key::CustomFields,
        Some(KeyKind::Json) => Key::Json(index),
        Some(KeyKind::Field) => Key::Field(index),
        None => Key::Other,
    }
}

// Every field a model is read with is one the reader keeps: asking NetBox for
// a field the parser then skips is a mistake in the lists (a build error).
#[allow(clippy::indexing_slicing, clippy::panic)] // evaluated at compile time
const _: () = {
    let mut model = 0;
    while model < ALL_MODELS.len() {
        let reads = ALL_MODELS[model].reads;
        let mut field = 0;
        while field < reads.len() {
            if key_index(reads[field].as_bytes()).is_none() {
                panic!("a model reads a field that `fields!` does not keep");
            }
            field += 1;
        }
        model += 1;
    }
};

#[allow(clippy::panic)] // evaluated at compile time: a build error, never a run-time panic
const SLUG: FieldId = match key_index(b"slug") {
    Some(index) => index,
    None => panic!("`slug` must be one of the reduced fields"),
};

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<Key, E> {
                Ok(field_key(key))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// A field value with nested objects read as their `value` (choices) or
/// their `id` (references), skipping the rest of the nested object unparsed.
struct Reduced(Value);

impl<'de> Deserialize<'de> for Reduced {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ReducedVisitor;
        impl<'de> Visitor<'de> for ReducedVisitor {
            type Value = Reduced;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NetBox field value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Reduced, A::Error> {
                let (mut id, mut choice) = (None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => id = Some(map.next_value::<Value>()?),
                        Key::Value => choice = Some(map.next_value::<Value>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Reduced(choice.or(id).unwrap_or(Value::Null)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Reduced, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Reduced>()? {
                    items.push(item.0);
                }
                Ok(Reduced(Value::Array(items)))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::Null))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Reduced, E> {
                Ok(Reduced(Value::from(v)))
            }
        }
        deserializer.deserialize_any(ReducedVisitor)
    }
}

/// `[{"slug": ...}, ...]` → the slugs; anything else reads as no tags.
struct TagSlugs(Vec<String>);

/// One tag object's slug, the rest of it skipped.
struct TagSlug(Option<String>);

impl<'de> Deserialize<'de> for TagSlug {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct SlugVisitor;
        impl<'de> Visitor<'de> for SlugVisitor {
            type Value = TagSlug;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tag")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<TagSlug, A::Error> {
                let mut slug = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Field(SLUG) => slug = map.next_value::<Value>()?.as_str().map(str::to_owned),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(TagSlug(slug))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<TagSlug, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TagSlug(None))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<TagSlug, E> {
                Ok(TagSlug(None))
            }
            scalars_become!(TagSlug, |_found| TagSlug(None));
        }
        deserializer.deserialize_any(SlugVisitor)
    }
}

impl<'de> Deserialize<'de> for TagSlugs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let tags = Reduced::deserialize_tags(deserializer)?;
        Ok(TagSlugs(tags))
    }
}

impl Reduced {
    fn deserialize_tags<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Vec<String>, D::Error> {
        struct TagsVisitor;
        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of tags")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<String>, A::Error> {
                let mut slugs = Vec::new();
                while let Some(tag) = seq.next_element::<TagSlug>()? {
                    slugs.extend(tag.0);
                }
                Ok(slugs)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<String>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Vec::new())
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Vec<String>, E> {
                Ok(Vec::new())
            }
            scalars_become!(Vec<String>, |_found| Vec::new());
        }
        deserializer.deserialize_any(TagsVisitor)
    }
}

fn kind_of(value: &Value) -> &'static str {
    crate::json::type_name(value)
}

/// Reads one entry, collecting its fields in `scratch` (reused from entry to
/// entry) so each record allocates its field list once, at its final size.
struct EntryVisitor<'s> {
    scratch: &'s mut Vec<(FieldId, Value)>,
}

impl<'de> Visitor<'de> for EntryVisitor<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a NetBox object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entry, A::Error> {
        let mut record = Record::default();
        let mut id = None;
        let fields = self.scratch;
        fields.clear();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => id = Some(map.next_value::<Value>()?),
                Key::Tags => {
                    let mut slugs = map.next_value::<TagSlugs>()?.0;
                    crate::sort::sort(&mut slugs);
                    slugs.dedup();
                    record.tags = slugs;
                }
                Key::CustomFields => {
                    if let Value::Object(fields) = map.next_value::<Value>()? {
                        record.custom_fields = fields;
                    }
                }
                Key::Field(field) => {
                    let value = map.next_value::<Reduced>()?.0;
                    fields.push((field, value));
                }
                Key::Json(field) => {
                    let value = map.next_value::<Value>()?;
                    fields.push((field, value));
                }
                Key::Value | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        crate::sort::sort_by_key(fields, |(field, _)| *field);
        // `append` leaves the scratch its capacity for the next entry.
        let mut kept = Vec::with_capacity(fields.len());
        kept.append(fields);
        record.fields = kept;
        Ok(match id {
            None => Entry::MissingId,
            Some(id) => match id.as_u64() {
                Some(id) => Entry::Record(Record { id, ..record }),
                None => Entry::BadId(kind_of(&id)),
            },
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry::NotAnObject("an array"))
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Entry, E> {
        Ok(Entry::NotAnObject("null"))
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Entry, E> {
        Ok(Entry::NotAnObject("null"))
    }
    scalars_become!(Entry, |found| Entry::NotAnObject(found));
}

struct EntrySeed<'s> {
    scratch: &'s mut Vec<(FieldId, Value)>,
}

impl<'de> de::DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Entry;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Entry, D::Error> {
        deserializer.deserialize_any(EntryVisitor { scratch: self.scratch })
    }
}

/// What the host put under one collection path.
#[derive(Clone, Debug, PartialEq)]
pub enum CollectionDoc {
    Items(Vec<Entry>),
    /// `{"error": {"status": ..., "message": ...}}`: the host could not fetch it.
    Failed {
        status: Option<u64>,
        message: String,
    },
    Invalid(&'static str),
}

impl<'de> Deserialize<'de> for CollectionDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct DocVisitor;
        impl<'de> Visitor<'de> for DocVisitor {
            type Value = CollectionDoc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of NetBox objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<CollectionDoc, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                let mut scratch = Vec::new();
                while let Some(entry) = seq.next_element_seed(EntrySeed { scratch: &mut scratch })? {
                    items.push(entry);
                }
                Ok(CollectionDoc::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<CollectionDoc, A::Error> {
                let mut failure = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Value>()?;
                    if key == "error" {
                        let message = value.get("message").and_then(Value::as_str).unwrap_or("fetch failed");
                        let status = value.get("status").and_then(loose_u64);
                        failure = Some(CollectionDoc::Failed {
                            status,
                            message: message.to_owned(),
                        });
                    }
                }
                Ok(failure.unwrap_or(CollectionDoc::Invalid("an object")))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<CollectionDoc, E> {
                Ok(CollectionDoc::Invalid("null"))
            }
            scalars_become!(CollectionDoc, |found| CollectionDoc::Invalid(found));
        }
        deserializer.deserialize_any(DocVisitor)
    }
}

/// A reference to one record, with typed accessors.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    pub id: u64,
    record: &'a Record,
}

impl<'a> Object<'a> {
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        let field = key_index(field.as_bytes())?;
        let fields = &self.record.fields;
        fields
            .binary_search_by_key(&field, |(id, _)| *id)
            .ok()
            .and_then(|at| fields.get(at))
            .map(|(_, v)| v)
    }

    pub fn str(&self, field: &str) -> Option<&'a str> {
        self.get(field).and_then(Value::as_str)
    }

    /// Choice fields were reduced to their value while parsing.
    pub fn choice(&self, field: &str) -> Option<&'a str> {
        self.str(field)
    }

    /// References were reduced to their id while parsing.
    pub fn fk(&self, field: &str) -> Option<u64> {
        self.get(field).and_then(Value::as_u64)
    }

    pub fn u64(&self, field: &str) -> Option<u64> {
        self.get(field).and_then(loose_u64)
    }

    pub fn custom_field(&self, name: &str) -> Option<&'a Value> {
        self.record.custom_fields.get(name).filter(|v| !v.is_null())
    }

    pub fn last_updated(&self) -> Option<&'a str> {
        self.str("last_updated")
    }

    /// Tag slugs, sorted.
    pub fn tags(&self) -> Vec<String> {
        self.record.tags.clone()
    }

    pub fn has_tag(&self, slug: &str) -> bool {
        self.record.tags.iter().any(|t| t == slug)
    }

    /// Tag slugs, sorted, without copying them.
    pub fn tag_slugs(&self) -> &'a [String] {
        &self.record.tags
    }

    /// A hash of everything kept of the object: tells two copies of one id
    /// apart without depending on which came first.
    pub fn digest(&self) -> u64 {
        use std::hash::Hasher;
        let mut state = crate::fingerprint::Fnv1a::default();
        self.record.hash_into(&mut state);
        state.finish()
    }
}

impl Record {
    pub fn as_object(&self) -> Object<'_> {
        Object {
            id: self.id,
            record: self,
        }
    }
}

/// One NetBox object given on its own (not in a collection), reduced like
/// the objects of collections are.
pub fn object_of(value: &Value, path: &Path) -> Result<Record> {
    use serde::de::DeserializeSeed;
    let mut scratch = Vec::new();
    let entry = EntrySeed { scratch: &mut scratch }
        .deserialize(value)
        .map_err(|e| PlanError::new(ErrorCode::WrongType, path, format!("not a NetBox object: {e}")))?;
    match entry {
        Entry::Record(record) => Ok(record),
        Entry::NotAnObject(found) => Err(PlanError::new(
            ErrorCode::WrongType,
            path,
            format!("expected a NetBox object, found {found}"),
        )),
        Entry::MissingId => Err(PlanError::new(
            ErrorCode::MissingField,
            path.key("id"),
            "a NetBox object without an id",
        )),
        Entry::BadId(found) => Err(PlanError::new(
            ErrorCode::WrongType,
            path.key("id"),
            format!("expected an integer id, found {found}"),
        )),
    }
}

pub fn fk_id(value: &Value) -> Option<u64> {
    match value {
        Value::Object(obj) => obj.get("id").and_then(Value::as_u64),
        other => other.as_u64(),
    }
}

/// One collection: its objects, or why it could not be fetched.
pub enum Collection<'a> {
    Objects(Vec<Object<'a>>),
    Failed { status: Option<u64>, message: String },
}

/// What the host put under `$.netbox`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum NetboxDoc {
    Collections(VecMap<String, CollectionDoc>),
    Invalid(&'static str),
    #[default]
    Absent,
}

impl<'de> Deserialize<'de> for NetboxDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct DocVisitor;
        impl<'de> Visitor<'de> for DocVisitor {
            type Value = NetboxDoc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of NetBox collections")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<NetboxDoc, A::Error> {
                let mut collections = VecMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<CollectionDoc>()?;
                    collections.insert(key, value);
                }
                Ok(NetboxDoc::Collections(collections))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<NetboxDoc, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NetboxDoc::Invalid("an array"))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<NetboxDoc, E> {
                Ok(NetboxDoc::Absent)
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<NetboxDoc, E> {
                Ok(NetboxDoc::Absent)
            }
            scalars_become!(NetboxDoc, |found| NetboxDoc::Invalid(found));
        }
        deserializer.deserialize_any(DocVisitor)
    }
}

impl Record {
    fn hash_into(&self, state: &mut crate::fingerprint::Fnv1a) {
        use crate::fingerprint::value;
        use std::hash::Hasher;
        state.write_u64(self.id);
        for (field, item) in &self.fields {
            state.write_u16(*field);
            value(state, item);
        }
        self.tags.iter().for_each(|tag| state.write(tag.as_bytes()));
        for (name, item) in &self.custom_fields {
            state.write(name.as_bytes());
            value(state, item);
        }
    }
}

impl NetboxDoc {
    /// For the input fingerprint: every record's kept fields, in any order.
    pub fn hash_into(&self, state: &mut crate::fingerprint::Fnv1a) {
        use crate::fingerprint::unordered;
        use std::hash::Hasher;
        let NetboxDoc::Collections(collections) = self else {
            state.write_u8(0);
            return;
        };
        for (path, doc) in collections {
            state.write(path.as_bytes());
            let CollectionDoc::Items(items) = doc else {
                state.write_u8(1);
                continue;
            };
            state.write_u64(unordered(items, |state, entry| match entry {
                Entry::Record(record) => record.hash_into(state),
                _ => state.write_u8(2),
            }));
        }
    }
}

pub struct NetboxState<'a> {
    collections: Option<&'a VecMap<String, CollectionDoc>>,
}

impl<'a> NetboxState<'a> {
    pub fn read(doc: &'a NetboxDoc) -> Result<Self> {
        match doc {
            NetboxDoc::Collections(collections) => Ok(NetboxState {
                collections: Some(collections),
            }),
            NetboxDoc::Absent => Ok(NetboxState { collections: None }),
            NetboxDoc::Invalid(found) => Err(PlanError::new(
                ErrorCode::WrongType,
                Path::ROOT.key("netbox"),
                format!("expected an object of NetBox collections, found {found}"),
            )),
        }
    }

    pub fn has(&self, model: Model) -> bool {
        self.collections.is_some_and(|c| c.contains_key(model.collection))
    }

    /// The objects of a collection the plan needs. Every object must be an
    /// object with an integer `id`: anything else is an input error.
    pub fn collection(&self, model: Model) -> Result<Collection<'a>> {
        let root = Path::ROOT.key("netbox");
        let path = root.key(model.collection);
        let Some(doc) = self.collections.and_then(|c| c.get(model.collection)) else {
            return Err(PlanError::new(
                ErrorCode::MissingField,
                path,
                format!(
                    "the NetBox collection {} is missing; fetch what discover() lists first",
                    model.collection
                ),
            ));
        };
        let items = match doc {
            CollectionDoc::Items(items) => items,
            CollectionDoc::Failed { status, message } => {
                let message = format!("{} could not be read: {message}", model.collection);
                return Ok(Collection::Failed {
                    status: *status,
                    message,
                });
            }
            CollectionDoc::Invalid(found) => {
                return Err(PlanError::new(
                    ErrorCode::WrongType,
                    path,
                    format!("expected an array, found {found}"),
                ))
            }
        };
        let mut objects = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_path = path.index(index);
            match item {
                Entry::Record(record) => objects.push(Object { id: record.id, record }),
                Entry::NotAnObject(found) => {
                    return Err(PlanError::new(
                        ErrorCode::WrongType,
                        item_path,
                        format!("expected a NetBox object, found {found}"),
                    ))
                }
                Entry::MissingId => {
                    return Err(PlanError::new(
                        ErrorCode::MissingField,
                        item_path.key("id"),
                        "a NetBox object without an id; pass the full (non-brief) REST objects",
                    ))
                }
                Entry::BadId(found) => {
                    return Err(PlanError::new(
                        ErrorCode::WrongType,
                        item_path.key("id"),
                        format!("expected an integer id, found {found}"),
                    ))
                }
            }
        }
        crate::sort::sort_by_key(&mut objects, |o| o.id);
        Ok(Collection::Objects(objects))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_sorted_and_every_key_is_found() {
        assert!(FIELDS.windows(2).all(|pair| pair[0] < pair[1]));
        for (index, (name, _)) in KEYS.iter().enumerate() {
            assert_eq!(key_index(name.as_bytes()), Some(index as FieldId), "{name}");
        }
        assert_eq!(KEYS[SLUG as usize].0, "slug");
        for unknown in ["", "url", "display", "created", "slugs", "i", "tagz"] {
            assert_eq!(key_index(unknown.as_bytes()), None, "{unknown}");
        }
    }

    #[test]
    fn records_keep_ids_of_references_values_of_choices_and_tag_slugs() {
        let text = json!([{
            "id": 7, "url": "https://x/api/virtualization/virtual-machines/7/", "display": "web01", "name": "web01",
            "status": {"value": "active", "label": "Active"}, "cluster": {"id": 3, "url": "u", "display": "lab", "name": "lab"},
            "primary_ip4": null, "vcpus": 2.0, "tags": [{"id": 1, "url": "u", "name": "Proxbox", "slug": "proxbox", "color": "4caf50"}],
            "custom_fields": {"proxmox_vmid": 101, "proxmox_node": null}, "config_context": {"big": [1, 2, 3]},
        }])
        .to_string();
        let doc: CollectionDoc = serde_json::from_str(&text).unwrap();
        let CollectionDoc::Items(items) = doc else {
            panic!("{doc:?}")
        };
        let Entry::Record(record) = &items[0] else {
            panic!("{items:?}")
        };
        let object = Object { id: record.id, record };
        assert_eq!(object.str("name"), Some("web01"));
        assert_eq!(object.choice("status"), Some("active"));
        assert_eq!(object.fk("cluster"), Some(3));
        assert_eq!(object.get("primary_ip4"), Some(&Value::Null));
        assert_eq!(object.get("config_context"), None, "unlisted fields are skipped");
        assert_eq!(object.tags(), ["proxbox"]);
        assert_eq!(object.custom_field("proxmox_vmid"), Some(&json!(101)));
        assert_eq!(object.custom_field("proxmox_node"), None);
    }

    #[test]
    fn bad_entries_are_reported_not_dropped() {
        let doc: CollectionDoc = serde_json::from_str(r#"[{"name": "x"}, 3, {"id": "7"}]"#).unwrap();
        assert_eq!(
            doc,
            CollectionDoc::Items(vec![
                Entry::MissingId,
                Entry::NotAnObject("a number"),
                Entry::BadId("a string")
            ])
        );
        let failed: CollectionDoc = serde_json::from_str(r#"{"error": {"status": 503, "message": "down"}}"#).unwrap();
        assert_eq!(
            failed,
            CollectionDoc::Failed {
                status: Some(503),
                message: "down".into()
            }
        );
    }
}
