//! FNV-1a, for hashed lookups and for the input fingerprint a plan carries.
//!
//! The keys and inputs are the caller's own data, so SipHash's resistance to
//! chosen collisions buys nothing here, and FNV is several times cheaper. The
//! fingerprint says "this plan saw this world": it ignores list order (the
//! plan does too) and is never used for security.

use serde_json::Value;
use std::hash::Hasher;

pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Hashes of items whose order does not matter, summed (a multiset hash).
pub fn unordered<T>(items: impl IntoIterator<Item = T>, hash: impl Fn(&mut Fnv1a, T)) -> u64 {
    let mut sum = 0u64;
    let mut count = 0u64;
    for item in items {
        let mut one = Fnv1a::default();
        hash(&mut one, item);
        sum = sum.wrapping_add(one.finish());
        count += 1;
    }
    sum ^ count.rotate_left(32)
}

/// A JSON value; objects by sorted key (serde_json's map is ordered), arrays
/// in any order, numbers by value (`4` and `4.0` agree, as NetBox's do).
pub fn value(state: &mut Fnv1a, value: &Value) {
    match value {
        Value::Null => state.write_u8(0),
        Value::Bool(b) => state.write_u8(1 + u8::from(*b)),
        Value::Number(n) => {
            state.write_u8(3);
            state.write_u64(n.as_f64().unwrap_or_default().to_bits());
        }
        Value::String(text) => {
            state.write_u8(4);
            state.write(text.as_bytes());
            state.write_u8(0xff);
        }
        Value::Array(items) => {
            state.write_u8(5);
            state.write_u64(unordered(items, self::value));
        }
        Value::Object(map) => {
            state.write_u8(6);
            for (key, item) in map {
                state.write(key.as_bytes());
                state.write_u8(0xff);
                self::value(state, item);
            }
            state.write_u8(0xfe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: &Value) -> u64 {
        let mut state = Fnv1a::default();
        value(&mut state, v);
        state.finish()
    }

    #[test]
    fn list_order_is_ignored_but_content_is_not() {
        assert_eq!(of(&json!([1, {"a": "x"}, 3])), of(&json!([3, 1, {"a": "x"}])));
        assert_ne!(of(&json!([1, 2])), of(&json!([1, 2, 2])));
        assert_ne!(of(&json!({"a": "b"})), of(&json!({"ab": ""})));
        assert_ne!(of(&json!(["a", "b"])), of(&json!(["ab"])));
        assert_eq!(of(&json!(4)), of(&json!(4.0)));
    }
}
