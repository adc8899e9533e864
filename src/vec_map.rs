//! Sorted-vector maps and sets: the planner's `BTreeMap`/`BTreeSet`, with
//! less code in the wasm.
//!
//! std's B-tree compiles a set of node functions (search, insert, split,
//! merge, drop, the iterators) for every key and value type: about 600
//! functions, a sixth of the module. These keep their entries in one `Vec`,
//! sorted by key, found by binary search through one comparison behind a
//! `dyn` (so the search loop is compiled once); what each type adds is little
//! more than a `Vec` of its pairs. Iteration, `Serialize` and equality follow
//! the key order, like the B-tree's.
//!
//! An insert in the middle moves the entries after it: fine for the many
//! small maps, and for big ones built in key order (an insert at the end
//! moves nothing) or by `collect`/`extend`, which sort once (stable: a
//! repeated key keeps its last value, as in `BTreeMap::from_iter`).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

/// The binary search every map goes through: `Ok(i)` where `compare(i)` is
/// `Equal`, else `Err(i)`, the position that keeps the order.
fn search(len: usize, compare: &mut dyn FnMut(usize) -> Ordering) -> Result<usize, usize> {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        match compare(middle) {
            Ordering::Less => low = middle + 1,
            Ordering::Greater => high = middle,
            Ordering::Equal => return Ok(middle),
        }
    }
    Err(low)
}

/// Sorts pairs by key (stable), then keeps the last of each run of equal
/// keys: what inserting them one by one gives. The pairs before `sorted_to`
/// are known to be in order already (so an `extend` in order costs nothing
/// more than the new pairs).
fn sort_keep_last<K: Ord, V>(entries: &mut Vec<(K, V)>, sorted_to: usize) {
    let unchecked = entries.get(sorted_to.saturating_sub(1)..).unwrap_or_default();
    if unchecked.windows(2).any(|pair| matches!(pair, [a, b] if a.0 >= b.0)) {
        crate::sort::sort_by(entries, |a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
    }
}

/// A map kept sorted by key (see the module).
#[derive(Clone, PartialEq, Eq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap { entries: Vec::new() }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V> VecMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        VecMap { entries: Vec::new() }
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in key order, mutable.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// The values in key order, owned.
    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    /// The entry with the smallest key.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// The entry with the greatest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Keeps the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        let entries = &self.entries;
        search(entries.len(), &mut |at| match entries.get(at) {
            Some((k, _)) => k.borrow().cmp(key),
            None => Ordering::Greater,
        })
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        self.entries.get(at).map(|(_, v)| v)
    }

    /// The value of `key`, mutable.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        self.entries.get_mut(at).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Takes the value of `key` out.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        Some(self.entries.remove(at).1)
    }
}

impl<K: Ord, T> VecMap<K, Vec<T>> {
    /// Items by key, each key's in the order given: `entry(key).or_default()
    /// .push(item)` for every pair, with one sort instead of an insert in the
    /// middle for every new key.
    pub fn grouped(pairs: impl IntoIterator<Item = (K, T)>) -> Self {
        let mut pairs: Vec<(K, T)> = pairs.into_iter().collect();
        crate::sort::sort_by(&mut pairs, |a, b| a.0.cmp(&b.0));
        let mut entries: Vec<(K, Vec<T>)> = Vec::new();
        for (key, item) in pairs {
            match entries.last_mut() {
                Some((last, items)) if *last == key => items.push(item),
                _ => entries.push((key, vec![item])),
            }
        }
        VecMap { entries }
    }
}

impl<K, V: Default> VecMap<K, V> {
    /// Takes the value of `key` out, leaving the default in its place: a
    /// `remove` that moves no entries, for a map that is read once per key.
    pub fn take<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.get_mut(key).map(std::mem::take)
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => self.entries.get_mut(at).map(|(_, v)| std::mem::replace(v, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// The place of `key`, to read or fill.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let found = self.find(&key);
        Entry { map: self, key, found }
    }
}

/// A key's place in a [`VecMap`] (`BTreeMap::entry`'s, for the calls the
/// planner makes).
pub struct Entry<'m, K, V> {
    map: &'m mut VecMap<K, V>,
    key: K,
    found: Result<usize, usize>,
}

impl<'m, K, V> Entry<'m, K, V> {
    /// The value, made by `make` if the key had none.
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'m mut V {
        let at = match self.found {
            Ok(at) => at,
            Err(at) => {
                self.map.entries.insert(at, (self.key, make()));
                at
            }
        };
        match self.map.entries.get_mut(at) {
            Some((_, v)) => v,
            None => unreachable!("the entry was found or inserted at {at}"),
        }
    }

    /// The value, `value` if the key had none.
    pub fn or_insert(self, value: V) -> &'m mut V {
        self.or_insert_with(|| value)
    }

    /// The value, the default if the key had none.
    pub fn or_default(self) -> &'m mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut entries: Vec<(K, V)> = pairs.into_iter().collect();
        sort_keep_last(&mut entries, 0);
        VecMap { entries }
    }
}

impl<K: Ord, V> Extend<(K, V)> for VecMap<K, V> {
    /// Appends, then sorts once if the new keys were not all in order after
    /// the old ones (the old entries come first among equal keys, so a new
    /// value wins, as with `insert`).
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        let sorted_to = self.entries.len();
        self.entries.extend(pairs);
        sort_keep_last(&mut self.entries, sorted_to);
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'m, K, V> IntoIterator for &'m VecMap<K, V> {
    type Item = (&'m K, &'m V);
    type IntoIter = std::iter::Map<std::slice::Iter<'m, (K, V)>, fn(&'m (K, V)) -> (&'m K, &'m V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<'m, K, V> IntoIterator for &'m mut VecMap<K, V> {
    type Item = (&'m K, &'m mut V);
    type IntoIter = std::iter::Map<std::slice::IterMut<'m, (K, V)>, fn(&'m mut (K, V)) -> (&'m K, &'m mut V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A set kept sorted (a [`VecMap`] of keys).
#[derive(Clone, PartialEq, Eq)]
pub struct VecSet<T> {
    map: VecMap<T, ()>,
}

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        VecSet { map: VecMap::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for VecSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T> VecSet<T> {
    /// An empty set.
    pub const fn new() -> Self {
        VecSet { map: VecMap::new() }
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.map.keys()
    }

    /// The smallest element.
    pub fn first(&self) -> Option<&T> {
        self.map.first_key_value().map(|(k, _)| k)
    }

    /// The greatest element.
    pub fn last(&self) -> Option<&T> {
        self.map.last_key_value().map(|(k, _)| k)
    }

    /// Whether `value` is in the set.
    pub fn contains<Q: Ord + ?Sized>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.map.contains_key(value)
    }

    /// Takes `value` out; whether it was in.
    pub fn remove<Q: Ord + ?Sized>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.map.remove(value).is_some()
    }

    /// Keeps the elements `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.map.retain(|k, ()| keep(k));
    }
}

impl<T: Ord> VecSet<T> {
    /// Adds `value`; whether it was new (an equal element stays as it was).
    pub fn insert(&mut self, value: T) -> bool {
        match self.map.find(&value) {
            Ok(_) => false,
            Err(at) => {
                self.map.entries.insert(at, (value, ()));
                true
            }
        }
    }
}

impl<T: Ord> FromIterator<T> for VecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        VecSet {
            map: items.into_iter().map(|item| (item, ())).collect(),
        }
    }
}

impl<T: Ord> Extend<T> for VecSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        self.map.extend(items.into_iter().map(|item| (item, ())));
    }
}

impl<T: Ord, const N: usize> From<[T; N]> for VecSet<T> {
    fn from(items: [T; N]) -> Self {
        items.into_iter().collect()
    }
}

impl<T> IntoIterator for VecSet<T> {
    type Item = T;
    type IntoIter = std::iter::Map<std::vec::IntoIter<(T, ())>, fn((T, ())) -> T>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.entries.into_iter().map(|(item, ())| item)
    }
}

impl<'s, T> IntoIterator for &'s VecSet<T> {
    type Item = &'s T;
    type IntoIter = std::iter::Map<std::slice::Iter<'s, (T, ())>, fn(&'s (T, ())) -> &'s T>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.entries.iter().map(|(item, ())| item)
    }
}

impl<T: Serialize> Serialize for VecSet<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for item in self {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

/// The schema of a map or set is the B-tree's (the same JSON).
#[cfg(test)]
mod schema {
    use super::{VecMap, VecSet};
    use schemars::{JsonSchema, Schema, SchemaGenerator};
    use std::borrow::Cow;
    use std::collections::{BTreeMap, BTreeSet};

    impl<K: JsonSchema, V: JsonSchema> JsonSchema for VecMap<K, V> {
        fn inline_schema() -> bool {
            BTreeMap::<K, V>::inline_schema()
        }
        fn schema_name() -> Cow<'static, str> {
            BTreeMap::<K, V>::schema_name()
        }
        fn schema_id() -> Cow<'static, str> {
            BTreeMap::<K, V>::schema_id()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            BTreeMap::<K, V>::json_schema(generator)
        }
    }

    impl<T: JsonSchema> JsonSchema for VecSet<T> {
        fn inline_schema() -> bool {
            BTreeSet::<T>::inline_schema()
        }
        fn schema_name() -> Cow<'static, str> {
            BTreeSet::<T>::schema_name()
        }
        fn schema_id() -> Cow<'static, str> {
            BTreeSet::<T>::schema_id()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            BTreeSet::<T>::json_schema(generator)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    proptest! {
        #[test]
        fn behaves_like_the_btree(
            pairs in proptest::collection::vec((0u8..40, any::<u16>()), 0..120),
            more in proptest::collection::vec((0u8..40, any::<u16>()), 0..40),
            removed in proptest::collection::vec(0u8..40, 0..20),
        ) {
            let mut expected: BTreeMap<u8, u16> = pairs.iter().copied().collect();
            let mut collected: VecMap<u8, u16> = pairs.iter().copied().collect();
            let mut inserted = VecMap::new();
            let mut expected_inserted = BTreeMap::new();
            for (k, v) in &pairs {
                prop_assert_eq!(inserted.insert(*k, *v), expected_inserted.insert(*k, *v), "the value replaced");
            }
            prop_assert!(inserted.iter().eq(expected.iter()), "insert one by one, or collect: the same map");
            let mut by_entry: VecMap<u8, Vec<u16>> = VecMap::new();
            let mut expected_entry: BTreeMap<u8, Vec<u16>> = BTreeMap::new();
            for (k, v) in &pairs {
                by_entry.entry(*k).or_default().push(*v);
                expected_entry.entry(*k).or_default().push(*v);
            }
            prop_assert!(by_entry.iter().eq(expected_entry.iter()));
            expected.extend(more.iter().copied());
            collected.extend(more.iter().copied());
            for k in &removed {
                prop_assert_eq!(collected.remove(k), expected.remove(k));
            }
            prop_assert!(collected.iter().eq(expected.iter()), "same entries, same order");
            for k in 0u8..40 {
                prop_assert_eq!(collected.get(&k), expected.get(&k));
                prop_assert_eq!(collected.contains_key(&k), expected.contains_key(&k));
            }
            prop_assert_eq!(
                serde_json::to_string(&collected).ok(),
                serde_json::to_string(&expected).ok(),
                "serialised like the B-tree"
            );
            let set: VecSet<u8> = pairs.iter().map(|(k, _)| *k).collect();
            let expected_set: BTreeSet<u8> = pairs.iter().map(|(k, _)| *k).collect();
            prop_assert!(set.iter().eq(expected_set.iter()));
            prop_assert_eq!(set.first(), expected_set.first());
            prop_assert_eq!(serde_json::to_string(&set).ok(), serde_json::to_string(&expected_set).ok());
        }
    }
}
