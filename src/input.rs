//! The planner input document (see the README): read once, from JSON text or
//! from an already parsed value. The NetBox side is reduced to compact
//! records while it is read; the rest stays JSON for the planners to walk.

use crate::error::{ErrorCode, PlanError, Result};
use crate::netbox::NetboxDoc;
use serde::Deserialize;
use serde_json::Value;

/// The planner input (see the README). The schema describes it as hosts
/// write it; the planner itself reads it tolerantly, with a JSON path in
/// every error.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(rename = "PlanInput"))]
pub struct InputDoc {
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<crate::schema::Settings>"))]
    pub settings: Option<Value>,
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<crate::schema::Endpoint>"))]
    pub endpoint: Option<Value>,
    /// Stage names (`virtual-machines`, ...) or `all`; absent means all.
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<Vec<String>>"))]
    pub sync_types: Option<Value>,
    /// Proxmox API path -> the `data` of its answer, or `{ error: { status, message } }`.
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<crate::schema::ProxmoxAnswers>"))]
    pub proxmox: Option<Value>,
    /// NetBox collection path -> its (fully paginated) `results`, or `{ error: { status, message } }`.
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "crate::schema::NetboxAnswers"))]
    pub netbox: NetboxDoc,
    /// Where the host read NetBox: echoed into the plan (see `plan::Origin`).
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<crate::schema::OriginIn>"))]
    pub origin: Option<Value>,
    /// The guests to plan, when not all (see `planner::context::Subset`).
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<crate::schema::SubsetIn>"))]
    pub subset: Option<Value>,
}

/// `$.origin` as the host gives it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OriginInput {
    pub netbox_url: Option<String>,
    pub netbox_version: Option<String>,
    pub instance: Option<String>,
}

fn not_an_object(found: &str) -> PlanError {
    PlanError::new(
        ErrorCode::WrongType,
        "$",
        format!("expected the planner input object, found {found}"),
    )
}

impl InputDoc {
    /// The parts of the input that decide the plan, hashed (list order aside).
    pub fn fingerprint(&self) -> String {
        use crate::fingerprint::{value, Fnv1a};
        use std::hash::Hasher;
        let mut state = Fnv1a::default();
        for part in [
            &self.settings,
            &self.endpoint,
            &self.sync_types,
            &self.subset,
            &self.proxmox,
        ] {
            value(&mut state, part.as_ref().unwrap_or(&Value::Null));
        }
        self.netbox.hash_into(&mut state);
        format!("fnv1a64:{:016x}", state.finish())
    }

    pub fn origin(&self) -> Result<OriginInput> {
        let path = crate::json::Path::ROOT.key("origin");
        let Some(origin) = self.origin.as_ref().filter(|o| !o.is_null()) else {
            return Ok(OriginInput::default());
        };
        let obj = crate::json::as_object(origin, &path)?;
        let text = |key: &str| crate::json::opt_str(obj, key, &path).map(|v| v.map(str::to_owned));
        let instance = match obj.get("instance") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(crate::json::wrong_type(
                    &path.key("instance"),
                    "a string or a number",
                    other,
                ))
            }
        };
        Ok(OriginInput {
            netbox_url: text("netbox_url")?,
            netbox_version: text("netbox_version")?,
            instance,
        })
    }

    pub fn from_json(text: &str) -> Result<InputDoc> {
        serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => not_an_object("another JSON value"),
            _ => PlanError::new(
                ErrorCode::InvalidJson,
                format!("$ (line {}, column {})", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            ),
        })
    }

    pub fn from_value(value: &Value) -> Result<InputDoc> {
        if !value.is_object() {
            return Err(not_an_object(crate::json::type_name(value)));
        }
        InputDoc::deserialize(value).map_err(|e| not_an_object(&e.to_string()))
    }
}
