//! The JavaScript boundary. It converts values and errors, nothing else: every
//! rule lives in the core so that native tests cover exactly what ships.

use crate::error::{ErrorCode, PlanError};
use js_sys::{Error as JsError, JsString, Reflect, Uint8Array};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;

fn js_error(error: &PlanError) -> JsValue {
    let js = JsError::new(&error.to_string());
    js.set_name("ProxboxPlannerError");
    // Reflect::set only fails on frozen or proxied objects; a fresh Error is neither.
    let _ = Reflect::set(&js, &"code".into(), &error.code.as_str().into());
    let _ = Reflect::set(&js, &"path".into(), &error.path.as_str().into());
    let _ = Reflect::set(&js, &"detail".into(), &error.message.as_str().into());
    js.into()
}

/// Any JS value, through the engine's `JSON.stringify` and serde_json's
/// parser: a cycle, a BigInt or a value nested deeper than serde_json's
/// limit (128) becomes an error with a path, never a stack overflow that
/// would leave the module unusable. `undefined` and `null` become `Null`.
fn from_js(value: &JsValue, path: &str) -> Result<Value, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Value::Null);
    }
    let invalid = |why: String| js_error(&PlanError::new(ErrorCode::InvalidValue, path, why));
    let text = js_sys::JSON::stringify(value)
        .map_err(|_| invalid("cannot be turned into JSON (a cycle, a BigInt, too deep?)".to_owned()))?;
    if text.is_undefined() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&utf8_of(&text)).map_err(|e| invalid(format!("cannot be read as JSON: {e}")))
}

/// Results cross as JSON text, parsed by the engine: serde_json already
/// serialises every type here (the plan, natively), so the module carries
/// one serialiser per type, not a second one for JS objects.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(|e| {
        js_error(&PlanError::new(
            ErrorCode::InvalidValue,
            "$",
            format!("cannot convert the result: {e}"),
        ))
    })?;
    js_sys::JSON::parse(&text)
}

/// The planner input as UTF-8 JSON text, through the engine's
/// `JSON.stringify`: the fastest road across the boundary for large inputs,
/// and the one parser (serde_json's) for every entry point.
fn input_text(input: &JsValue) -> Result<Vec<u8>, JsValue> {
    let text = js_sys::JSON::stringify(input).map_err(|_| {
        js_error(&PlanError::new(
            ErrorCode::InvalidValue,
            "$",
            "the input cannot be turned into JSON (a cycle, a BigInt?)",
        ))
    })?;
    // `undefined` (or a function) has no JSON: it is read as `null`, not an object.
    if text.is_undefined() {
        return Ok(b"null".to_vec());
    }
    Ok(utf8_of(&text))
}

fn present(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

// Generated from the Rust types (see `schema.rs`); the signatures below name them.
#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("../pkg/types.d.ts");

#[wasm_bindgen]
pub fn version() -> String {
    crate::VERSION.to_owned()
}

#[wasm_bindgen(js_name = effectiveSyncMode, unchecked_return_type = "SyncMode")]
pub fn effective_sync_mode(
    #[wasm_bindgen(unchecked_param_type = "Settings | null | undefined")] settings: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Endpoint | null | undefined")] endpoint: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] resource_type: JsValue,
) -> Result<String, JsValue> {
    let settings = from_js(&settings, "$.settings")?;
    let endpoint = from_js(&endpoint, "$.endpoint")?;
    let resource_type = from_js(&resource_type, "$.resource_type")?;
    crate::effective_sync_mode(present(&settings), present(&endpoint), &resource_type)
        .map(|mode| mode.as_str().to_owned())
        .map_err(|e| js_error(&e))
}

#[wasm_bindgen(js_name = resolveSyncModes, unchecked_return_type = "ModeReport")]
pub fn resolve_sync_modes(
    #[wasm_bindgen(unchecked_optional_param_type = "Settings | null")] settings: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "Endpoint | null")] endpoint: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "string[] | null")] sync_types: JsValue,
) -> Result<JsValue, JsValue> {
    let settings = from_js(&settings, "$.settings")?;
    let endpoint = from_js(&endpoint, "$.endpoint")?;
    let sync_types = from_js(&sync_types, "$.sync_types")?;
    let report = crate::resolve_sync_modes(present(&settings), present(&endpoint), present(&sync_types))
        .map_err(|e| js_error(&e))?;
    to_js(&report)
}

/// `plan(input)`: the planner input object in, the plan object out.
#[wasm_bindgen(unchecked_return_type = "Plan")]
pub fn plan(#[wasm_bindgen(unchecked_param_type = "PlanInput")] input: JsValue) -> Result<JsValue, JsValue> {
    let output = crate::plan_json_bytes(&input_text(&input)?).map_err(|e| js_error(&e))?;
    js_sys::JSON::parse(&output)
}

/// `planJson(text)`: JSON text (a string, or its UTF-8 bytes) in, JSON text
/// out (no object conversion at all).
#[wasm_bindgen(js_name = planJson)]
pub fn plan_json(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] input: JsValue,
) -> Result<String, JsValue> {
    let bytes = match input.dyn_ref::<JsString>() {
        Some(text) => utf8_of(text),
        None => match input.dyn_ref::<Uint8Array>() {
            Some(bytes) => bytes.to_vec(),
            None => {
                return Err(js_error(&PlanError::new(
                    ErrorCode::WrongType,
                    "$",
                    "planJson takes the input as JSON text: a string or a Uint8Array of UTF-8",
                )))
            }
        },
    };
    crate::plan_json_bytes(&bytes).map_err(|e| js_error(&e))
}

#[wasm_bindgen]
extern "C" {
    type TextEncoder;
    #[wasm_bindgen(constructor)]
    fn new() -> TextEncoder;
    #[wasm_bindgen(method, js_name = encodeInto)]
    fn encode_into(this: &TextEncoder, source: &JsString, destination: &Uint8Array) -> EncodedInto;

    type EncodedInto;
    #[wasm_bindgen(method, getter)]
    fn read(this: &EncodedInto) -> u32;
    #[wasm_bindgen(method, getter)]
    fn written(this: &EncodedInto) -> u32;
}

/// A JS string's UTF-8, written straight into wasm memory by the engine's
/// `TextEncoder.encodeInto`. wasm-bindgen's own `&str` conversion copies
/// ASCII one character at a time in JavaScript: a quarter of `planJson`'s
/// time for 10,000 guests.
fn utf8_of(text: &JsString) -> Vec<u8> {
    let encoder = TextEncoder::new();
    let units = text.length();
    // ASCII fits exactly. Anything else stops encodeInto early, and the rest
    // gets room for its worst case, three bytes per UTF-16 unit.
    let mut out = Vec::with_capacity(units as usize);
    let read = encode_into_spare(&encoder, text, &mut out);
    if read < units {
        out.reserve_exact(3 * (units - read) as usize);
        encode_into_spare(&encoder, &text.slice(read, units), &mut out);
    }
    out
}

/// Encodes into `out`'s spare capacity; returns the UTF-16 units read.
fn encode_into_spare(encoder: &TextEncoder, text: &JsString, out: &mut Vec<u8>) -> u32 {
    let spare = out.spare_capacity_mut();
    // SAFETY: the view covers exactly `out`'s spare capacity and is dropped
    // before anything can allocate (which could move wasm memory); encodeInto
    // writes at most the view's length and reports how much it wrote.
    let done = unsafe {
        let view = Uint8Array::view_mut_raw(spare.as_mut_ptr().cast::<u8>(), spare.len());
        encoder.encode_into(text, &view)
    };
    let written = (done.written() as usize).min(spare.len());
    // SAFETY: encodeInto initialised the first `written` bytes of the spare capacity.
    unsafe { out.set_len(out.len() + written) };
    done.read()
}

/// Bytes of linear memory the module holds (it never shrinks, so after a call
/// this is that call's peak): the benchmark's measure of the planner's memory.
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    let pages = core::arch::wasm32::memory_size(0);
    #[cfg(not(target_arch = "wasm32"))]
    let pages = 0;
    (pages * WASM_PAGE) as f64
}

const WASM_PAGE: usize = 64 * 1024;

/// `matchesExisting(payload, object)`: does a NetBox object already hold
/// what a create with this payload (its `$ref`s resolved) would write?
#[wasm_bindgen(js_name = matchesExisting)]
pub fn matches_existing(
    #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] payload: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] object: JsValue,
) -> Result<bool, JsValue> {
    let payload = from_js(&payload, "$.payload")?;
    let object = from_js(&object, "$.object")?;
    crate::matches_existing(&payload, &object).map_err(|e| js_error(&e))
}

/// `isProxmoxReadPath(path)`: whether `path` is one of the Proxmox GET paths
/// `discover` can name (a proxy that reads for someone else checks this).
#[wasm_bindgen(js_name = isProxmoxReadPath)]
pub fn is_proxmox_read_path(path: &str) -> bool {
    crate::proxmox_path::is_read_path(path)
}

/// `discover(input)`: what to fetch next; loop until `complete`.
#[wasm_bindgen(unchecked_return_type = "Discovery")]
pub fn discover(#[wasm_bindgen(unchecked_param_type = "PlanInput")] input: JsValue) -> Result<JsValue, JsValue> {
    let discovery = crate::discover_json_bytes(&input_text(&input)?).map_err(|e| js_error(&e))?;
    to_js(&discovery)
}
