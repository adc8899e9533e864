//! Desired fields versus what NetBox has: one comparison for every planner, so
//! that "unchanged" means the same thing everywhere (and re-plans converge),
//! and the same comparison tells a host whether an object already holds what
//! a create would write (`holds`).

use crate::netbox::Object;
use crate::plan::Change;
use crate::settings::OverwriteFlags;
use crate::vec_map::VecMap;
use serde_json::{Map, Value};

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

impl Kind {
    /// Whether an operator can own a field of this kind: tags are merged
    /// (an operator's tags stay anyway) and custom fields hold the
    /// identities the sync keeps, so both always stay the sync's.
    pub fn can_be_operators(self) -> bool {
        !matches!(self, Kind::Tags | Kind::CustomFields)
    }
}

/// Who a field belongs to when the sync would change it (the three-way
/// decision the README tabulates). `base` is what the sync last wrote,
/// `netbox` what NetBox holds now, `proxmox` what Proxmox wants now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// NetBox holds what the sync wrote (or what Proxmox wants): update as today.
    Sync,
    /// The operator edited it and Proxmox did not change: it stands, no operation.
    Operator,
    /// Both changed: `on_operator_edit` decides.
    Conflict,
}

pub fn owner(base: &Value, netbox: &Value, proxmox: &Value) -> Owner {
    let agree = (same(netbox, proxmox), same(netbox, base), same(proxmox, base));
    match agree {
        (true, _, _) | (false, true, _) => Owner::Sync,
        (false, false, true) => Owner::Operator,
        (false, false, false) => Owner::Conflict,
    }
}

/// A field's value in NetBox's change log (Django's serialization) in the
/// form the REST read of the same field compares in: decimals are strings
/// there (`"2.00"`), many-to-many fields unordered id lists.
pub fn logged(value: &Value, kind: Kind, like: &Value) -> Value {
    match (kind, value) {
        (Kind::ForeignKeys, _) => sorted_references(value),
        (Kind::Scalar, Value::String(text)) if like.is_number() => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        _ => value.clone(),
    }
}

/// When an existing object's field is patched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    Always,
    /// Set on create, never patched (a parent, a name an operator owns).
    Never,
    /// Patched while this overwrite flag is on (SPEC §3.3); creates always set it.
    Flag(&'static str),
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub value: Value,
    pub update: Update,
}

impl Field {
    pub fn new(name: &'static str, kind: Kind, value: impl Into<Value>) -> Field {
        Field {
            name,
            kind,
            value: value.into(),
            update: Update::Always,
        }
    }

    pub fn create_only(mut self) -> Field {
        self.update = Update::Never;
        self
    }

    pub fn overwritten_by(mut self, flag: &'static str) -> Field {
        self.update = Update::Flag(flag);
        self
    }

    pub fn patched(&self, flags: &OverwriteFlags) -> bool {
        match self.update {
            Update::Always => true,
            Update::Never => false,
            Update::Flag(flag) => flags.get(flag),
        }
    }
}

pub fn create_payload(fields: &[Field]) -> Map<String, Value> {
    crate::sort::json_map(fields.iter().map(|f| (f.name.to_owned(), f.value.clone())))
}

fn current(object: &Object, field: &Field) -> Value {
    match field.kind {
        Kind::Scalar => object.get(field.name).cloned().unwrap_or(Value::Null),
        Kind::Choice => object.choice(field.name).map(Value::from).unwrap_or(Value::Null),
        Kind::ForeignKey => object.fk(field.name).map(Value::from).unwrap_or(Value::Null),
        Kind::Tags => tag_list(object.tag_slugs()),
        Kind::ForeignKeys => sorted_references(object.get(field.name).unwrap_or(&Value::Null)),
        Kind::CustomFields => {
            let ours = field.value.as_object().into_iter().flatten();
            let values = ours.map(|(key, _)| (key.clone(), object.custom_field(key).cloned().unwrap_or(Value::Null)));
            Value::Object(crate::sort::json_map(values))
        }
    }
}

/// `[{"slug": "a"}, ...]` in slug order.
pub fn tag_list<S: AsRef<str>>(slugs: &[S]) -> Value {
    let mut slugs: Vec<&str> = slugs.iter().map(AsRef::as_ref).collect();
    crate::sort::sort(&mut slugs);
    slugs.dedup();
    Value::Array(slugs.into_iter().map(|s| serde_json::json!({ "slug": s })).collect())
}

/// Ids in ascending order, then `$ref`s by op id: a stable form of a set.
pub fn sorted_references(value: &Value) -> Value {
    let mut items: Vec<Value> = value.as_array().cloned().unwrap_or_default();
    crate::sort::sort_by_key(&mut items, |v| {
        (v.as_u64().is_none(), v.as_u64().unwrap_or(0), v.to_string())
    });
    Value::Array(items)
}

/// Equality as NetBox means it: `4` and `4.0` agree, `null` and `""` agree,
/// text agrees without its outer whitespace (NetBox trims what it stores),
/// and two date-times agree when they name the same second (NetBox answers
/// in its own time zone, with microseconds).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x.trim() == y.trim() || same_instant(x, y),
        (Value::Null, Value::String(s)) | (Value::String(s), Value::Null) => s.trim().is_empty(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}

fn same_instant(a: &str, b: &str) -> bool {
    use crate::time::epoch_from_iso;
    epoch_from_iso(a).is_some_and(|x| Some(x) == epoch_from_iso(b))
}

/// Whether a field already holds its desired value, compared in place (a
/// `false` only means "compare the slow way" below): most fields of most
/// objects are unchanged, and building their `before` values only to compare
/// them was a large share of a re-plan.
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

/// The custom fields that differ, only those (a PATCH of them touches nothing else).
fn custom_field_change(before: &Value, after: &Value) -> Option<Change> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return None;
    };
    let differing: Vec<&String> = after
        .iter()
        .filter(|(k, v)| !same(before.get(k.as_str()).unwrap_or(&Value::Null), v))
        .map(|(k, _)| k)
        .collect();
    let pick = |map: &Map<String, Value>| {
        let values = differing
            .iter()
            .map(|k| ((*k).clone(), map.get(*k).cloned().unwrap_or(Value::Null)));
        Value::Object(crate::sort::json_map(values))
    };
    (!differing.is_empty()).then(|| Change {
        before: pick(before),
        after: pick(after),
    })
}

fn change(object: &Object, field: &Field) -> Option<Change> {
    if unchanged(object, field) {
        return None;
    }
    let before = current(object, field);
    let after = match field.kind {
        Kind::CustomFields => return custom_field_change(&before, &field.value),
        Kind::ForeignKeys => sorted_references(&field.value),
        _ => field.value.clone(),
    };
    (!same(&before, &after)).then_some(Change { before, after })
}

/// The updates that bring `object` to the desired fields the flags let us patch.
pub fn changes(object: &Object, fields: &[Field], flags: &OverwriteFlags) -> VecMap<String, Change> {
    VecMap::from_iter(
        fields
            .iter()
            .filter(|f| f.patched(flags))
            .filter_map(|f| Some((f.name.to_owned(), change(object, f)?))),
    )
}

/// Does `object` (a NetBox object, reduced like every input object) already
/// hold what a create with this payload would write? Tags aside: they merge.
/// Custom fields: the keys written. A host asks this before re-sending a
/// create whose outcome it does not know, with the payload's `$ref`s resolved.
pub fn holds(object: &Object, payload: &Map<String, Value>) -> bool {
    payload.iter().all(|(name, written)| match name.as_str() {
        "tags" => true,
        "custom_fields" => written
            .as_object()
            .into_iter()
            .flatten()
            .all(|(key, value)| same(object.custom_field(key).unwrap_or(&Value::Null), value)),
        _ => {
            let read = object.get(name).unwrap_or(&Value::Null);
            match (read, written) {
                (Value::Array(_), Value::Array(_)) => same(&sorted_references(read), &sorted_references(written)),
                _ => same(read, written),
            }
        }
    })
}
