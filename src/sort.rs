//! Sorting, and collecting into sorted maps, with one copy of the sort in
//! the wasm.
//!
//! std's sorts are generic over the element and the comparison: every
//! `sort_by_key` with its own closure, and every `collect` into a `BTreeMap`
//! or `BTreeSet` (which sorts first), compiled another 4-8 KB of sort code;
//! 57 of them were a quarter of the module (the planner's maps are
//! `crate::vec_map`'s now, which sort through here). These sort positions instead,
//! through one comparison behind a `dyn` (so std's sort is compiled once),
//! then move the elements into place. Stable, like `slice::sort_by`.

use serde_json::{Map, Value};
use std::cmp::Ordering;

/// The stable sort every helper below goes through: positions `0..len`,
/// ordered by `compare`.
fn sorted_positions(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|a, b| compare(*a, *b));
    order
}

/// Puts `items[order[i]]` at `i`, following each cycle of the permutation.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut at = start;
        while let Some(&from) = order.get(at) {
            if from == start {
                break;
            }
            items.swap(at, from);
            if let Some(slot) = order.get_mut(at) {
                *slot = at;
            }
            at = from;
        }
        if let Some(slot) = order.get_mut(at) {
            *slot = at;
        }
    }
}

/// Up to this many elements, an insertion sort in place: no positions to
/// allocate (a NetBox record's fields, its tags).
const SMALL: usize = 20;

fn insertion_sort<T>(items: &mut [T], compare: &mut dyn FnMut(&T, &T) -> Ordering) {
    for end in 1..items.len() {
        let mut at = end;
        while let (Some(before), Some(this)) = (at.checked_sub(1).and_then(|b| items.get(b)), items.get(at)) {
            if compare(before, this) != Ordering::Greater {
                break;
            }
            items.swap(at - 1, at);
            at -= 1;
        }
    }
}

fn sort_dyn<T>(items: &mut [T], compare: &mut dyn FnMut(&T, &T) -> Ordering) {
    if items.len() <= SMALL {
        insertion_sort(items, compare);
        return;
    }
    let order = {
        let view: &[T] = items;
        sorted_positions(view.len(), &mut |a, b| match (view.get(a), view.get(b)) {
            (Some(a), Some(b)) => compare(a, b),
            _ => Ordering::Equal,
        })
    };
    permute(items, order);
}

/// `slice::sort_by`.
pub fn sort_by<T>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    sort_dyn(items, &mut compare);
}

/// `slice::sort`.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_dyn(items, &mut T::cmp);
}

/// `slice::sort_by_key`: the key is computed on every comparison.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_dyn(items, &mut |a, b| key(a).cmp(&key(b)));
}

/// `slice::sort_by_cached_key`: the key is computed once per element.
pub fn sort_by_cached_key<T, K: Ord>(items: &mut [T], key: impl FnMut(&T) -> K) {
    if items.len() < 2 {
        return;
    }
    let keys: Vec<K> = items.iter().map(key).collect();
    let order = sorted_positions(keys.len(), &mut |a, b| keys.get(a).cmp(&keys.get(b)));
    permute(items, order);
}

/// `collect()` into a JSON object (a `BTreeMap` too), by insertion.
pub fn json_map(pairs: impl IntoIterator<Item = (String, Value)>) -> Map<String, Value> {
    let mut map = Map::new();
    map.extend(pairs);
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_like_std(items in proptest::collection::vec((0u8..8, any::<u16>()), 0..100)) {
            let mut expected = items.clone();
            expected.sort_by_key(|(key, _)| *key);
            let mut by_key = items.clone();
            sort_by_key(&mut by_key, |(key, _)| *key);
            prop_assert_eq!(&by_key, &expected, "stable, like slice::sort_by_key");
            let mut cached = items.clone();
            sort_by_cached_key(&mut cached, |(key, _)| *key);
            prop_assert_eq!(&cached, &expected);
            let mut by = items.clone();
            sort_by(&mut by, |a, b| a.0.cmp(&b.0));
            prop_assert_eq!(&by, &expected);
            let mut whole = items.clone();
            sort(&mut whole);
            let mut std_whole = items;
            std_whole.sort();
            prop_assert_eq!(whole, std_whole);
        }
    }
}
