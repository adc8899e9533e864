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
    /// The NetBox user the host's token belongs to: the sync, in NetBox's
    /// change log (`GET /api/authentication-check/`).
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Option<SyncUser>"))]
    pub sync_user: Option<Value>,
}

/// `$.sync_user`: `{"id": 3, "username": "proxbox"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SyncUser {
    pub id: u64,
    pub username: Option<String>,
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

/// What valid JSON text holds, named like `json::type_name` names a parsed
/// value (by its first character).
fn kind_of_text(text: &str) -> &'static str {
    match text.trim_start().bytes().next() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "another JSON value",
    }
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
            &self.sync_user,
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

    pub fn sync_user(&self) -> Result<Option<SyncUser>> {
        let path = crate::json::Path::ROOT.key("sync_user");
        let Some(user) = self.sync_user.as_ref().filter(|u| !u.is_null()) else {
            return Ok(None);
        };
        let obj = crate::json::as_object(user, &path)?;
        let id = crate::json::opt_u64(obj, "id", &path)?.ok_or_else(|| {
            PlanError::new(
                ErrorCode::MissingField,
                path.key("id"),
                "the sync's NetBox user needs its id",
            )
        })?;
        let username = crate::json::opt_str(obj, "username", &path)?.map(str::to_owned);
        Ok(Some(SyncUser { id, username }))
    }

    pub fn from_json(text: &str) -> Result<InputDoc> {
        let doc = serde_json::from_str(text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => not_an_object(kind_of_text(text)),
            _ => PlanError::new(
                ErrorCode::InvalidJson,
                format!("$ (line {}, column {})", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            ),
        })?;
        // serde reads a struct from an array too (`[settings, endpoint, ...]`):
        // the input is an object, as `from_value` requires.
        match kind_of_text(text) {
            "an object" => Ok(doc),
            found => Err(not_an_object(found)),
        }
    }

    pub fn from_value(value: &Value) -> Result<InputDoc> {
        if !value.is_object() {
            return Err(not_an_object(crate::json::type_name(value)));
        }
        InputDoc::deserialize(value).map_err(|e| not_an_object(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text and parsed value are refused alike, naming what was found.
    #[test]
    fn input_that_is_not_an_object_is_named_either_way() {
        for (text, found) in [
            ("[1]", "an array"),
            (" 42", "a number"),
            ("\"x\"", "a string"),
            ("null", "null"),
            ("true", "a boolean"),
        ] {
            let from_text = InputDoc::from_json(text).unwrap_err();
            let from_value = InputDoc::from_value(&serde_json::from_str(text).unwrap()).unwrap_err();
            assert_eq!(from_text, from_value, "{text}");
            assert_eq!(
                from_text.message,
                format!("expected the planner input object, found {found}")
            );
            assert_eq!((from_text.code, from_text.path.as_str()), (ErrorCode::WrongType, "$"));
        }
    }
}
