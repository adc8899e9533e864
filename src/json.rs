//! Reading untrusted JSON with precise error locations.
//!
//! `Path` is a borrowed linked list: building one per field read costs nothing,
//! and it is only rendered to a string when an error is reported. That keeps
//! error paths exact without slowing down a 50,000-guest plan.

use crate::error::{ErrorCode, PlanError, Result};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub const ROOT: Path<'static> = Path::Root("$");

    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(root) => f.write_str(root),
            Path::Key(parent, key) if is_identifier(key) => write!(f, "{parent}.{key}"),
            Path::Key(parent, key) => {
                write!(f, "{parent}[")?;
                // A JSON string literal is an unambiguous, escaped rendering of any key.
                let quoted = Value::String((*key).to_owned()).to_string();
                f.write_str(&quoted)?;
                f.write_str("]")
            }
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn wrong_type(path: &Path, expected: &str, found: &Value) -> PlanError {
    PlanError::new(
        ErrorCode::WrongType,
        path,
        format!("expected {expected}, found {}", type_name(found)),
    )
}

pub fn as_object<'v>(value: &'v Value, path: &Path) -> Result<&'v Map<String, Value>> {
    value.as_object().ok_or_else(|| wrong_type(path, "an object", value))
}

pub fn as_array<'v>(value: &'v Value, path: &Path) -> Result<&'v Vec<Value>> {
    value.as_array().ok_or_else(|| wrong_type(path, "an array", value))
}

/// A field that is absent or `null` is `None`; any other non-string is an error.
pub fn opt_str<'v>(obj: &'v Map<String, Value>, key: &str, path: &Path) -> Result<Option<&'v str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(&path.key(key), "a string", other)),
    }
}

pub fn opt_bool(obj: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(&path.key(key), "a boolean", other)),
    }
}

pub fn opt_u64(obj: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<u64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong_type(&path.key(key), "a non-negative integer", value)),
    }
}

/// Proxmox answers numbers as JSON numbers or as strings depending on the
/// endpoint and version (`"memory": 4096` or `"memory": "4096"`); accept both.
pub fn loose_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.is_finite()).map(|f| f as u64)),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

/// Truthiness the way Proxmox writes flags: `1`, `"1"`, `true`.
pub fn loose_flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(other) => loose_u64(other).is_some_and(|n| n != 0),
        None => false,
    }
}

/// A string field, or a number rendered as text (Proxmox is not consistent).
pub fn loose_string(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_jsonpath() {
        let root = Path::ROOT;
        let proxmox = root.key("proxmox");
        let status = proxmox.key("/cluster/status");
        let first = status.index(0);
        let name = first.key("name");
        assert_eq!(name.to_string(), r#"$.proxmox["/cluster/status"][0].name"#);
        let odd = root.key("a\"b");
        assert_eq!(odd.to_string(), r#"$["a\"b"]"#);
    }

    #[test]
    fn loose_numbers_accept_strings_and_numbers() {
        assert_eq!(loose_u64(&serde_json::json!(4096)), Some(4096));
        assert_eq!(loose_u64(&serde_json::json!("4096")), Some(4096));
        assert_eq!(loose_u64(&serde_json::json!(" 12 ")), Some(12));
        assert_eq!(loose_u64(&serde_json::json!("x")), None);
        assert_eq!(loose_u64(&serde_json::json!(-1)), None);
        assert!(loose_flag(Some(&serde_json::json!("1"))));
        assert!(!loose_flag(Some(&serde_json::json!(0))));
        assert!(!loose_flag(None));
    }
}
