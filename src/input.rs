//! The planner input document (see the README): read once, from JSON text or
//! from an already parsed value. The NetBox side is reduced to compact
//! records while it is read; the rest stays JSON for the planners to walk.

use crate::error::{ErrorCode, PlanError, Result};
use crate::netbox::NetboxDoc;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
pub struct InputDoc {
    #[serde(default)]
    pub settings: Option<Value>,
    #[serde(default)]
    pub endpoint: Option<Value>,
    #[serde(default)]
    pub sync_types: Option<Value>,
    #[serde(default)]
    pub proxmox: Option<Value>,
    #[serde(default)]
    pub netbox: NetboxDoc,
}

fn not_an_object(found: &str) -> PlanError {
    PlanError::new(
        ErrorCode::WrongType,
        "$",
        format!("expected the planner input object, found {found}"),
    )
}

impl InputDoc {
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
