//! TypeScript declarations from JSON Schema definitions: the subset schemars
//! writes for our types (objects, string enums, unions, arrays, maps, refs).

use serde_json::{Map, Value};

const HEADER: &str = "\
// Generated from the Rust types by `PROXBOX_WRITE_SCHEMA=1 cargo test --lib schema`: do not edit.
// pkg/schema/plan.schema.json and pkg/schema/input.schema.json are generated alongside.
";

const ERROR: &str = "
/** Every error the package throws: `code` to branch on, `path` the JSON path of the offending value. */
export interface ProxboxPlannerError extends Error {
  name: \"ProxboxPlannerError\";
  code: ErrorCode;
  path: string;
  detail: string;
}
";

pub fn declarations(definitions: &Map<String, Value>) -> String {
    let mut out = String::from(HEADER);
    for (name, schema) in definitions {
        out.push('\n');
        out.push_str(&declaration(name, schema));
    }
    out.push_str(ERROR);
    out
}

fn doc(schema: &Value, indent: &str) -> String {
    match schema.get("description").and_then(Value::as_str) {
        Some(text) => {
            let lines: Vec<String> = text
                .lines()
                .map(|l| format!("{indent} * {l}").trim_end().to_owned())
                .collect();
            format!("{indent}/**\n{}\n{indent} */\n", lines.join("\n"))
        }
        None => String::new(),
    }
}

fn declaration(name: &str, schema: &Value) -> String {
    let is_interface = schema.get("type") == Some(&Value::from("object"))
        && schema.get("properties").is_some()
        && schema
            .get("additionalProperties")
            .is_none_or(|a| a == &Value::Bool(false));
    if is_interface {
        format!(
            "{}export interface {name} {}\n",
            doc(schema, ""),
            object_body(schema, "")
        )
    } else {
        format!("{}export type {name} = {};\n", doc(schema, ""), ts(schema, ""))
    }
}

fn object_body(schema: &Value, indent: &str) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let inner = format!("{indent}  ");
    let mut out = String::from("{\n");
    for (key, property) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let optional = if required.contains(&key.as_str()) { "" } else { "?" };
        let key = if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            key.clone()
        } else {
            format!("{key:?}")
        };
        out.push_str(&doc(property, &inner));
        out.push_str(&format!("{inner}{key}{optional}: {};\n", ts(property, &inner)));
    }
    match schema.get("additionalProperties") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => out.push_str(&format!("{inner}[key: string]: unknown;\n")),
        Some(extra) => out.push_str(&format!("{inner}[key: string]: {};\n", ts(extra, &inner))),
    }
    out.push_str(indent);
    out.push('}');
    out
}

fn union(parts: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::new();
    for part in parts {
        if !unique.contains(&part) {
            unique.push(part);
        }
    }
    if unique.is_empty() {
        "never".to_owned()
    } else {
        unique.join(" | ")
    }
}

fn ts(schema: &Value, indent: &str) -> String {
    let Some(object) = schema.as_object() else {
        return if schema == &Value::Bool(false) {
            "never"
        } else {
            "unknown"
        }
        .to_owned();
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(constant) = object.get("const") {
        return constant.to_string();
    }
    if let Some(values) = object.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(Value::to_string).collect());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = object.get(key).and_then(Value::as_array) {
            return union(options.iter().map(|o| ts(o, indent)).collect());
        }
    }
    if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
        return parts.iter().map(|p| ts(p, indent)).collect::<Vec<_>>().join(" & ");
    }
    match object.get("type") {
        Some(Value::String(kind)) => typed(kind, object, indent),
        Some(Value::Array(kinds)) => union(
            kinds
                .iter()
                .filter_map(Value::as_str)
                .map(|k| typed(k, object, indent))
                .collect(),
        ),
        _ => "unknown".to_owned(),
    }
}

fn typed(kind: &str, object: &Map<String, Value>, indent: &str) -> String {
    match kind {
        "string" => "string".to_owned(),
        "integer" | "number" => "number".to_owned(),
        "boolean" => "boolean".to_owned(),
        "null" => "null".to_owned(),
        "array" => {
            let item = object
                .get("items")
                .map_or_else(|| "unknown".to_owned(), |i| ts(i, indent));
            if item.contains(' ') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        "object" => object_type(object, indent),
        _ => "unknown".to_owned(),
    }
}

/// `{ a: T, b: T, ... }` keyed by every name of an enum: `Record<Enum, T>`.
fn record_of_every_name(object: &Map<String, Value>, indent: &str) -> Option<String> {
    let names = object.get("propertyNames").filter(|n| n.get("$ref").is_some())?;
    let properties = object.get("properties")?.as_object()?;
    let required = object.get("required")?.as_array()?;
    let first = properties.values().next()?;
    let uniform = properties.values().all(|p| p == first) && required.len() == properties.len();
    uniform.then(|| format!("Record<{}, {}>", ts(names, indent), ts(first, indent)))
}

fn object_type(object: &Map<String, Value>, indent: &str) -> String {
    if let Some(record) = record_of_every_name(object, indent) {
        return record;
    }
    if object.contains_key("properties") {
        return object_body(&Value::Object(object.clone()), indent);
    }
    let value = object
        .get("additionalProperties")
        .map_or_else(|| "unknown".to_owned(), |v| ts(v, indent));
    match object.get("propertyNames") {
        Some(names) if names.get("$ref").is_some() || names.get("enum").is_some() => {
            format!("Partial<Record<{}, {value}>>", ts(names, indent))
        }
        _ => format!("Record<string, {value}>"),
    }
}
