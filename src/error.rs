//! Structured input errors.
//!
//! A panic inside wasm kills the module for the whole page, so every bad input
//! becomes a `PlanError` instead: a stable `code` a program can branch on, the
//! JSON path of the offending value, and a message a person can act on.

use serde::Serialize;
use std::fmt;

/// Stable, machine-readable error codes (kebab-case on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(transform = crate::schema::unit_enum))]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The input text is not JSON at all.
    InvalidJson,
    /// A value has the wrong JSON type (a string where an object was expected, ...).
    WrongType,
    /// A required value is absent.
    MissingField,
    /// A value has the right type but is not acceptable.
    InvalidValue,
    /// A sync mode other than `always`, `bootstrap_only` or `disabled`.
    UnknownSyncMode,
    /// A resource type other than the ten sync-mode types.
    UnknownResourceType,
    /// A sync type (stage name) that does not exist.
    UnknownSyncType,
}

impl ErrorCode {
    /// The wire name: `invalid-json`, `wrong-type`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid-json",
            ErrorCode::WrongType => "wrong-type",
            ErrorCode::MissingField => "missing-field",
            ErrorCode::InvalidValue => "invalid-value",
            ErrorCode::UnknownSyncMode => "unknown-sync-mode",
            ErrorCode::UnknownResourceType => "unknown-resource-type",
            ErrorCode::UnknownSyncType => "unknown-sync-type",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An input error: what is wrong, where, and a stable code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[error("{message} (at {path})")]
pub struct PlanError {
    /// What kind of problem it is.
    pub code: ErrorCode,
    /// JSONPath-style location of the offending value, e.g. `$.settings.sync_mode_vm`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl PlanError {
    /// An error of `code` at `path` (a `json::Path` or a string).
    pub fn new(code: ErrorCode, path: impl fmt::Display, message: impl Into<String>) -> Self {
        PlanError {
            code,
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// The core's result: a value or a `PlanError`.
pub type Result<T, E = PlanError> = std::result::Result<T, E>;
