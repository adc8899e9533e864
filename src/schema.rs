//! The JSON Schemas of the plan and of the input, and the TypeScript
//! declarations of the package, all generated from the Rust types.
//!
//! Test builds only (schemars is a dev-dependency, so the wasm carries none
//! of it): `cargo test --lib schema` fails when a checked-in file under
//! `pkg/` is stale, and `PROXBOX_WRITE_SCHEMA=1 cargo test --lib schema`
//! rewrites them. The wasm build embeds `pkg/types.d.ts` as its type section.

mod typescript;

use crate::modes::{PerType, ResourceType, Stage, SyncMode, RESOURCES};
use crate::settings::{OVERWRITE_FLAGS, TASK_HISTORY_PER_NODE_MAX};
use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A NetBox id, or `{"$ref": "<op id>"}` for an object the plan creates first.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum IdOrRef {
    Id(u64),
    Ref {
        #[serde(rename = "$ref")]
        reference: String,
    },
}

/// A stage name, or `bootstrap` for the support objects (tags, types,
/// roles, sites) the stages refer to.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum OperationStage {
    Stage(Stage),
    Bootstrap(Bootstrap),
}

#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
pub enum Bootstrap {
    #[serde(rename = "bootstrap")]
    Bootstrap,
}

impl<T: JsonSchema> JsonSchema for PerType<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("PerType_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let value = generator.subschema_for::<T>().to_value();
        let properties: Map<String, Value> = ResourceType::ALL
            .iter()
            .map(|r| (r.name().to_owned(), value.clone()))
            .collect();
        let required: Vec<&str> = ResourceType::ALL.iter().map(|r| r.name()).collect();
        json_schema!({
            "type": "object",
            "properties": properties,
            "required": required,
            "propertyNames": generator.subschema_for::<ResourceType>().to_value(),
            "additionalProperties": false,
        })
    }
}

/// A field conflict's ways out: the operation each choice puts in its place.
#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
pub struct Choices {
    #[serde(rename = "accept-proxmox")]
    pub accept_proxmox: crate::plan::Operation,
    #[serde(rename = "keep-netbox")]
    pub keep_netbox: crate::plan::Operation,
}

/// What a fetch that failed leaves in the input instead of an answer.
#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
pub struct FetchError {
    pub status: Option<u16>,
    pub message: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
pub struct Failed {
    pub error: FetchError,
}

/// A Proxmox answer's `data`, or the error that replaced it.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ProxmoxAnswer {
    Failed(Failed),
    Data(Value),
}

/// A NetBox collection's (fully paginated) `results`, or the error that replaced them.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum NetboxAnswer {
    Rows(Vec<Map<String, Value>>),
    Failed(Failed),
}

pub type ProxmoxAnswers = BTreeMap<String, ProxmoxAnswer>;
pub type NetboxAnswers = BTreeMap<String, NetboxAnswer>;

/// `$.origin`: where the host read NetBox (never a token).
#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
pub struct OriginIn {
    pub netbox_url: Option<String>,
    pub netbox_version: Option<String>,
    pub instance: Option<StringOrNumber>,
}

#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum StringOrNumber {
    String(String),
    Number(i64),
}

/// `$.subset`: plan only these guests (`qemu/101`) and the guests of these NetBox VMs.
#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
pub struct SubsetIn {
    pub guests: Option<Vec<String>>,
    pub netbox_vm_ids: Option<Vec<u64>>,
}

/// The plugin's settings object (`GET /api/plugins/proxbox/settings/`). Keys
/// the planner does not read (`id`, `url`, ...) are allowed and ignored.
pub struct Settings;

/// The plugin's endpoint object: the settings' keys as overrides, where
/// `null` or `""` inherits the global value.
pub struct Endpoint;

fn sync_mode_properties(generator: &mut SchemaGenerator, inherit: bool) -> Map<String, Value> {
    let mode = generator.subschema_for::<SyncMode>().to_value();
    let mode = if inherit {
        serde_json::json!({ "anyOf": [mode, { "const": "" }, { "type": "null" }] })
    } else {
        mode
    };
    RESOURCES
        .iter()
        .map(|spec| (format!("sync_mode_{}", spec.name), mode.clone()))
        .collect()
}

fn overwrite_properties(inherit: bool) -> Map<String, Value> {
    let kind = if inherit {
        serde_json::json!(["boolean", "null"])
    } else {
        serde_json::json!("boolean")
    };
    OVERWRITE_FLAGS
        .iter()
        .map(|(name, _)| ((*name).to_owned(), serde_json::json!({ "type": kind })))
        .collect()
}

fn on_operator_edit(generator: &mut SchemaGenerator) -> Value {
    let mode = generator.subschema_for::<crate::settings::OnOperatorEdit>().to_value();
    serde_json::json!({ "anyOf": [mode, { "const": "" }, { "type": "null" }] })
}

impl JsonSchema for Settings {
    fn schema_name() -> Cow<'static, str> {
        "Settings".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut properties = sync_mode_properties(generator, false);
        properties.extend(overwrite_properties(false));
        properties.extend(
            serde_json::json!({
                "delete_orphans": { "type": "boolean" },
                "max_deletes": { "type": "integer", "minimum": 0 },
                "node_device_name_template": { "type": "string" },
                "ignore_ipv6_link_local_addresses": { "type": "boolean" },
                "adopt_by_name": { "type": "boolean" },
                "task_history_per_node": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": TASK_HISTORY_PER_NODE_MAX,
                },
                "default_site": {},
                "on_operator_edit": on_operator_edit(generator),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
        json_schema!({
            "description": "The plugin's settings object (`GET /api/plugins/proxbox/settings/`); other keys are ignored.",
            "type": "object",
            "properties": properties,
        })
    }
}

impl JsonSchema for Endpoint {
    fn schema_name() -> Cow<'static, str> {
        "Endpoint".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut properties = sync_mode_properties(generator, true);
        properties.extend(overwrite_properties(true));
        properties.insert(
            "id".into(),
            serde_json::json!({ "type": ["integer", "null"], "minimum": 0 }),
        );
        properties.insert("name".into(), serde_json::json!({ "type": ["string", "null"] }));
        properties.insert("site".into(), serde_json::json!({}));
        properties.insert("on_operator_edit".into(), on_operator_edit(generator));
        json_schema!({
            "description": "The plugin's endpoint object; a `sync_mode_*` or `overwrite_*` that is null or \"\" inherits the global value.",
            "type": "object",
            "properties": properties,
        })
    }
}

/// A unit enum as one `enum` of names, its variants' docs listed in its
/// description. schemars writes a documented unit enum as `oneOf` consts,
/// which neither its map schemas (an enum-keyed map would take any key) nor
/// a reader scanning for the names read as a list of names.
pub fn unit_enum(schema: &mut Schema) {
    let Some(variants) = schema.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    let mut names = Vec::new();
    let mut lines = Vec::new();
    for variant in variants {
        let Some(name) = variant.get("const").and_then(Value::as_str) else {
            return; // not a unit enum: left as schemars wrote it
        };
        names.push(Value::from(name));
        if let Some(doc) = variant.get("description").and_then(Value::as_str) {
            lines.push(format!("- `{name}`: {}", doc.replace('\n', " ")));
        }
    }
    let mut description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !lines.is_empty() {
        description = format!("{description}\n\n{}", lines.join("\n")).trim_start().to_owned();
    }
    schema.remove("oneOf");
    schema.insert("type".into(), "string".into());
    schema.insert("enum".into(), Value::Array(names));
    if !description.is_empty() {
        schema.insert("description".into(), description.into());
    }
}

/// The plan is what the core writes: a field it skips when empty is optional.
fn output_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().for_serialize().into_generator()
}

/// The input is what hosts write: a field with a default is optional.
fn input_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().for_deserialize().into_generator()
}

/// The plan's schema (`pkg/schema/plan.schema.json`).
pub fn plan_schema() -> Schema {
    let mut schema = output_generator().into_root_schema_for::<crate::plan::Plan>();
    schema.insert(
        "$id".into(),
        "https://proxbox-planner.invalid/schema/plan.schema.json".into(),
    );
    schema
}

/// The input's schema (`pkg/schema/input.schema.json`).
pub fn input_schema() -> Schema {
    let mut schema = input_generator().into_root_schema_for::<crate::input::InputDoc>();
    schema.insert(
        "$id".into(),
        "https://proxbox-planner.invalid/schema/input.schema.json".into(),
    );
    schema
}

/// Every type the package's functions take or return, for the declarations.
fn declared_types() -> Map<String, Value> {
    let mut output = output_generator();
    output.subschema_for::<crate::plan::Plan>();
    output.subschema_for::<crate::modes::ModeReport>();
    output.subschema_for::<crate::discover::Discovery>();
    output.subschema_for::<crate::error::ErrorCode>();
    output.subschema_for::<crate::modes::ResourceType>();
    let mut input = input_generator();
    input.subschema_for::<crate::input::InputDoc>();
    let mut definitions = output.take_definitions(true);
    definitions.extend(input.take_definitions(true));
    definitions
}

/// `pkg/types.d.ts`.
pub fn typescript() -> String {
    typescript::declarations(&declared_types())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn pretty(schema: &schemars::Schema) -> String {
        serde_json::to_string_pretty(schema).unwrap_or_default() + "\n"
    }

    fn check(relative: &str, generated: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var_os("PROXBOX_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, generated).unwrap_or_else(|e| panic!("cannot write {relative}: {e}"));
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == generated,
            "{relative} is stale: the Rust types changed. Run PROXBOX_WRITE_SCHEMA=1 cargo test --lib schema and commit the result"
        );
    }

    #[test]
    fn checked_in_plan_schema_is_current() {
        check("pkg/schema/plan.schema.json", &pretty(&super::plan_schema()));
    }

    #[test]
    fn checked_in_input_schema_is_current() {
        check("pkg/schema/input.schema.json", &pretty(&super::input_schema()));
    }

    #[test]
    fn checked_in_typescript_is_current() {
        check("pkg/types.d.ts", &super::typescript());
    }
}
