//! Desired fields versus what NetBox has: one comparison for every planner, so
//! that "unchanged" means the same thing everywhere (and re-plans converge).

use crate::netbox::Object;
use crate::plan::{Action, Change, Operation, Reason};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How a field reads back from NetBox, so it can be compared with what we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Strings, numbers, booleans; `null` and `""` are the same.
    Scalar,
    /// `{"value": "active", "label": "Active"}` reads as `"active"`.
    Choice,
    /// A nested object reads as its id.
    ForeignKey,
    /// `[{"slug": ...}]`, compared as sorted slug sets.
    Tags,
    /// Only the keys we write are compared; NetBox merges a PATCH of them.
    CustomFields,
    /// A list of references, compared as a set of ids.
    ForeignKeys,
}

#[derive(Clone)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub value: Value,
    /// False when an overwrite flag keeps this field out of updates.
    pub update: bool,
}

impl Field {
    pub fn new(name: &'static str, kind: Kind, value: impl Into<Value>) -> Field {
        Field {
            name,
            kind,
            value: value.into(),
            update: true,
        }
    }

    pub fn create_only(mut self, create_only: bool) -> Field {
        self.update = !create_only;
        self
    }
}

pub fn create_payload(fields: &[Field]) -> Map<String, Value> {
    fields.iter().map(|f| (f.name.to_owned(), f.value.clone())).collect()
}

fn current(object: &Object, field: &Field) -> Value {
    match field.kind {
        Kind::Scalar => object.get(field.name).cloned().unwrap_or(Value::Null),
        Kind::Choice => object.choice(field.name).map(Value::from).unwrap_or(Value::Null),
        Kind::ForeignKey => object.fk(field.name).map(Value::from).unwrap_or(Value::Null),
        Kind::Tags => tag_list(&object.tags()),
        Kind::ForeignKeys => sorted_references(object.get(field.name).unwrap_or(&Value::Null)),
        Kind::CustomFields => {
            let ours = field.value.as_object().into_iter().flatten();
            let values = ours.map(|(key, _)| (key.clone(), object.custom_field(key).cloned().unwrap_or(Value::Null)));
            Value::Object(values.collect())
        }
    }
}

/// `[{"slug": "a"}, ...]` in slug order.
pub fn tag_list(slugs: &[String]) -> Value {
    let mut slugs: Vec<&String> = slugs.iter().collect();
    slugs.sort();
    slugs.dedup();
    Value::Array(slugs.into_iter().map(|s| serde_json::json!({ "slug": s })).collect())
}

/// Ids in ascending order, then `$ref`s by op id: a stable form of a set.
pub fn sorted_references(value: &Value) -> Value {
    let mut items: Vec<Value> = value.as_array().cloned().unwrap_or_default();
    items.sort_by_key(|v| (v.as_u64().is_none(), v.as_u64().unwrap_or(0), v.to_string()));
    Value::Array(items)
}

/// Our tags added to the operator's: tags are merged, never replaced.
pub fn merged_tags(object: &Object, ours: &[String]) -> Vec<String> {
    let mut all = object.tags();
    all.extend(ours.iter().cloned());
    all.sort();
    all.dedup();
    all
}

/// Equality as NetBox means it: `4` and `4.0` agree, `null` and `""` agree.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Null, Value::String(s)) | (Value::String(s), Value::Null) => s.is_empty(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}

/// Whether a field already holds its desired value, compared in place (a
/// `false` only means "compare the slow way" below): most
/// fields of most objects are unchanged, and building their `before` values
/// only to compare them was a large share of a re-plan.
fn unchanged(object: &Object, field: &Field) -> bool {
    match field.kind {
        Kind::Scalar => same(object.get(field.name).unwrap_or(&Value::Null), &field.value),
        Kind::Choice => match (object.choice(field.name), &field.value) {
            (Some(current), Value::String(wanted)) => current == wanted,
            (None, Value::Null) => true,
            _ => false,
        },
        Kind::ForeignKey => match (object.fk(field.name), &field.value) {
            (Some(current), Value::Number(wanted)) => wanted.as_u64() == Some(current),
            (None, Value::Null) => true,
            _ => false,
        },
        Kind::Tags => {
            let wanted = field.value.as_array().map(Vec::as_slice).unwrap_or_default();
            let current = object.tag_slugs();
            current.len() == wanted.len()
                && current
                    .iter()
                    .zip(wanted)
                    .all(|(c, w)| w.get("slug").and_then(Value::as_str) == Some(c.as_str()))
        }
        Kind::ForeignKeys | Kind::CustomFields => false,
    }
}

pub fn changes(object: &Object, fields: &[Field]) -> BTreeMap<String, Change> {
    let mut changes = BTreeMap::new();
    for field in fields.iter().filter(|f| f.update) {
        if unchanged(object, field) {
            continue;
        }
        let before = current(object, field);
        if field.kind == Kind::CustomFields {
            // Only the keys that differ, so the PATCH touches nothing else.
            let (Value::Object(before), Value::Object(after)) = (&before, &field.value) else {
                continue;
            };
            let differing: Vec<&String> = after
                .iter()
                .filter(|(k, v)| !same(before.get(k.as_str()).unwrap_or(&Value::Null), v))
                .map(|(k, _)| k)
                .collect();
            if !differing.is_empty() {
                let pick = |map: &Map<String, Value>| {
                    Value::Object(
                        differing
                            .iter()
                            .map(|k| ((*k).clone(), map.get(*k).cloned().unwrap_or(Value::Null)))
                            .collect(),
                    )
                };
                changes.insert(
                    field.name.to_owned(),
                    Change {
                        before: pick(before),
                        after: pick(after),
                    },
                );
            }
        } else if field.kind == Kind::ForeignKeys {
            let after = sorted_references(&field.value);
            if !same(&before, &after) {
                changes.insert(field.name.to_owned(), Change { before, after });
            }
        } else if !same(&before, &field.value) {
            changes.insert(
                field.name.to_owned(),
                Change {
                    before,
                    after: field.value.clone(),
                },
            );
        }
    }
    changes
}

/// Deletes and VM soft-deletes: what `max_deletes` counts. (Marking a
/// replication record stale removes nothing.)
pub fn is_removal(op: &Operation) -> bool {
    let soft_delete = op.action == Action::Update
        && op.reason == Reason::GoneFromProxmox
        && op.model == crate::netbox::VIRTUAL_MACHINE.name;
    op.action == Action::Delete || soft_delete
}
