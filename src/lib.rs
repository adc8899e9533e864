//! proxbox-planner: a pure planner that keeps NetBox in step with Proxmox VE.
//!
//! The core never performs I/O (sans-IO, like quinn-proto or rustls): the host
//! fetches Proxmox and NetBox JSON, hands it over, and gets back what to do.
//! Same input, same bytes out. `wasm` is the only module that knows about
//! JavaScript, and it only converts.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod discover;
mod error;
mod fingerprint;
#[cfg(target_arch = "wasm32")]
mod heap;
mod input;
mod json;
pub mod modes;
mod netbox;
mod parse;
pub mod plan;
mod planner;
pub mod proxmox_path;
#[cfg(test)]
mod schema;
mod settings;
mod sort;
mod source;
mod time;
pub mod vec_map;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use discover::{discover, discover_json, Discovery};
pub use error::{ErrorCode, PlanError, Result};
pub use modes::{ResolvedModes, ResourceType, Stage, StageStatus, SyncMode};
pub use netbox::{Model, ALL_MODELS};
pub use settings::OnOperatorEdit;

use json::Path;
pub use modes::ModeReport;
use modes::{mode_report, parse_sync_types};
use serde_json::Value;

/// This crate's version: every plan carries it as `planner_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `ProxmoxEndpoint.effective_sync_mode(type)`: endpoint → global → default,
/// without the cascade, exactly like the original plugin method.
pub fn effective_sync_mode(
    settings: Option<&Value>,
    endpoint: Option<&Value>,
    resource_type: &Value,
) -> Result<SyncMode> {
    let path = Path::ROOT.key("resource_type");
    let text = resource_type
        .as_str()
        .ok_or_else(|| json::wrong_type(&path, "a resource type string", resource_type))?;
    let resource = ResourceType::parse(text).ok_or_else(|| {
        PlanError::new(
            ErrorCode::UnknownResourceType,
            path,
            format!(
                "unknown resource type {text:?}; valid types: {}",
                ResourceType::valid_names()
            ),
        )
    })?;
    let modes = settings::read_mode_settings(settings, endpoint)?;
    Ok(modes.configured(resource).0)
}

/// The sync modes in force for `settings` and `endpoint`, and which stages of
/// `sync_types` (default: all) run, with the plugin's query flags: what the
/// plan's `modes`, `stages` and `query_flags` would say, without planning.
pub fn resolve_sync_modes(
    settings: Option<&Value>,
    endpoint: Option<&Value>,
    sync_types: Option<&Value>,
) -> Result<ModeReport> {
    let settings = settings::read_settings(settings, endpoint)?;
    let stages = parse_sync_types(sync_types, &Path::ROOT.key("sync_types"))?;
    Ok(mode_report(&settings, &stages))
}

/// The plan for one endpoint (SPEC §7): `input` is the document the README
/// describes (settings, endpoint, sync_types, proxmox, netbox).
pub fn plan(input: &Value) -> Result<plan::Plan> {
    planner::plan(&input::InputDoc::from_value(input)?)
}

/// `plan` for JSON text in and out: the fastest path from JavaScript.
///
/// ```
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sample/snapshot.json");
/// let input = std::fs::read_to_string(path).unwrap();
/// let plan: serde_json::Value = serde_json::from_str(&proxbox_planner::plan_json(&input)?).unwrap();
/// assert_eq!(plan["complete"], true);
/// assert!(plan["summary"]["create"].as_u64().unwrap() > 0, "an empty NetBox gets the cluster");
///
/// // Input the core cannot plan from is an error naming the JSON path, never
/// // a plan that would act on half the picture.
/// let error = proxbox_planner::plan_json(r#"{"endpoint": {"id": 1}, "proxmox": {}, "netbox": {}}"#).unwrap_err();
/// assert_eq!(error.path, r#"$.proxmox["/cluster/status"]"#);
/// # Ok::<(), proxbox_planner::PlanError>(())
/// ```
pub fn plan_json(input: &str) -> Result<String> {
    let plan = planner::plan(&input::InputDoc::from_json(input)?)?;
    serde_json::to_string(&plan)
        .map_err(|e| PlanError::new(ErrorCode::InvalidValue, "$", format!("cannot serialize the plan: {e}")))
}

/// `plan_json` for JSON text as UTF-8 bytes (what a file or a socket holds).
pub fn plan_json_bytes(input: &[u8]) -> Result<String> {
    plan_json(utf8_text(input)?)
}

/// `discover_json` for JSON text as UTF-8 bytes.
pub fn discover_json_bytes(input: &[u8]) -> Result<Discovery> {
    discover_json(utf8_text(input)?)
}

fn utf8_text(input: &[u8]) -> Result<&str> {
    std::str::from_utf8(input).map_err(|e| {
        PlanError::new(
            ErrorCode::InvalidJson,
            format!("$ (byte {})", e.valid_up_to()),
            "the input is not UTF-8",
        )
    })
}

/// Does the NetBox object `object` (as the REST API returns it) already hold
/// what a create with this payload would write (its `$ref`s resolved)? Tags
/// aside, which merge. A host asks this of the objects a create's `lookup`
/// finds before it re-sends a create whose answer it lost.
pub fn matches_existing(payload: &Value, object: &Value) -> Result<bool> {
    let payload = json::as_object(payload, &Path::ROOT.key("payload"))?;
    let object = netbox::object_of(object, &Path::ROOT.key("object"))?;
    Ok(planner::holds(&object.as_object(), payload))
}
