//! The NetBox side: objects as the REST API returns them (full, not brief),
//! and the models the planner writes.

use crate::error::{ErrorCode, PlanError, Result};
use crate::json::{as_array, as_object, loose_u64, Path};
use serde_json::{Map, Value};

/// A NetBox model the planner reads or writes, and where its REST collection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    pub name: &'static str,
    pub collection: &'static str,
}

macro_rules! models {
    ($($ident:ident = $name:literal at $collection:literal;)*) => {
        $(pub const $ident: Model = Model { name: $name, collection: $collection };)*
        pub const ALL_MODELS: &[Model] = &[$($ident),*];
    };
}

models! {
    TAG = "extras.tag" at "/api/extras/tags/";
    CUSTOM_FIELD = "extras.customfield" at "/api/extras/custom-fields/";
    SITE = "dcim.site" at "/api/dcim/sites/";
    CLUSTER_TYPE = "virtualization.clustertype" at "/api/virtualization/cluster-types/";
    CLUSTER = "virtualization.cluster" at "/api/virtualization/clusters/";
    MANUFACTURER = "dcim.manufacturer" at "/api/dcim/manufacturers/";
    DEVICE_TYPE = "dcim.devicetype" at "/api/dcim/device-types/";
    DEVICE_ROLE = "dcim.devicerole" at "/api/dcim/device-roles/";
    DEVICE = "dcim.device" at "/api/dcim/devices/";
    VIRTUAL_MACHINE = "virtualization.virtualmachine" at "/api/virtualization/virtual-machines/";
    VM_INTERFACE = "virtualization.vminterface" at "/api/virtualization/interfaces/";
    MAC_ADDRESS = "dcim.macaddress" at "/api/dcim/mac-addresses/";
    IP_ADDRESS = "ipam.ipaddress" at "/api/ipam/ip-addresses/";
    VLAN = "ipam.vlan" at "/api/ipam/vlans/";
}

/// One NetBox object with the fields every planner needs already read.
#[derive(Clone, Debug)]
pub struct Object<'a> {
    pub id: u64,
    pub raw: &'a Map<String, Value>,
}

impl<'a> Object<'a> {
    pub fn str(&self, field: &str) -> Option<&'a str> {
        self.raw.get(field).and_then(Value::as_str)
    }

    /// A choice field reads as `{"value": "active", "label": "Active"}`.
    pub fn choice(&self, field: &str) -> Option<&'a str> {
        match self.raw.get(field)? {
            Value::String(text) => Some(text),
            Value::Object(obj) => obj.get("value").and_then(Value::as_str),
            _ => None,
        }
    }

    /// A foreign key reads as a nested object (`{"id": 3, ...}`) or a bare id.
    pub fn fk(&self, field: &str) -> Option<u64> {
        fk_id(self.raw.get(field)?)
    }

    pub fn u64(&self, field: &str) -> Option<u64> {
        self.raw.get(field).and_then(loose_u64)
    }

    pub fn custom_field(&self, name: &str) -> Option<&'a Value> {
        self.raw
            .get("custom_fields")
            .and_then(|cf| cf.get(name))
            .filter(|v| !v.is_null())
    }

    pub fn last_updated(&self) -> Option<&'a str> {
        self.str("last_updated")
    }

    /// Tag slugs, sorted.
    pub fn tags(&self) -> Vec<String> {
        let mut slugs: Vec<String> = self
            .raw
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|tag| tag.get("slug").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        slugs.sort();
        slugs.dedup();
        slugs
    }

    pub fn has_tag(&self, slug: &str) -> bool {
        self.raw
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|tags| tags.iter().any(|t| t.get("slug").and_then(Value::as_str) == Some(slug)))
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
    Failed(String),
}

pub struct NetboxState<'a> {
    collections: Option<&'a Map<String, Value>>,
}

impl<'a> NetboxState<'a> {
    pub fn read(value: Option<&'a Value>) -> Result<Self> {
        let collections = match value {
            None | Some(Value::Null) => None,
            Some(value) => Some(as_object(value, &Path::ROOT.key("netbox"))?),
        };
        Ok(NetboxState { collections })
    }

    pub fn has(&self, model: Model) -> bool {
        self.collections.is_some_and(|c| c.contains_key(model.collection))
    }

    /// The objects of a collection the plan needs. Every object must be an
    /// object with an integer `id`: anything else is an input error.
    pub fn collection(&self, model: Model) -> Result<Collection<'a>> {
        let root = Path::ROOT.key("netbox");
        let path = root.key(model.collection);
        let Some(value) = self.collections.and_then(|c| c.get(model.collection)) else {
            return Err(PlanError::new(
                ErrorCode::MissingField,
                path,
                format!(
                    "the NetBox collection {} is missing; fetch what discover() lists first",
                    model.collection
                ),
            ));
        };
        if let Some(error) = value.as_object().and_then(|obj| obj.get("error")) {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("fetch failed");
            return Ok(Collection::Failed(format!(
                "{} could not be read: {message}",
                model.collection
            )));
        }
        let items = as_array(value, &path)?;
        let mut objects = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_path = path.index(index);
            let raw = as_object(item, &item_path)?;
            let id = match raw.get("id") {
                Some(id) => id
                    .as_u64()
                    .ok_or_else(|| crate::json::wrong_type(&item_path.key("id"), "an integer id", id))?,
                None => {
                    return Err(PlanError::new(
                        ErrorCode::MissingField,
                        item_path.key("id"),
                        "a NetBox object without an id; pass the full (non-brief) REST objects",
                    ))
                }
            };
            objects.push(Object { id, raw });
        }
        objects.sort_by_key(|o| o.id);
        Ok(Collection::Objects(objects))
    }
}
