//! Values a process keeps in memory between uses, bounded by their total weight: past it, the
//! least recently kept quarter is dropped at once, so that a full map sorts once per many
//! insertions rather than at each. What is kept is a cache: whoever keeps it must be right when
//! it is missing or old (see [`crate::feed::service::FoldedFeeds`] and
//! [`crate::index::KeptStatuses`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// A map of at most `max_weight` in all, the least recently kept dropped first.
#[derive(Debug)]
pub struct KeptMap<K, V> {
    max_weight: usize,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    /// Each value with its weight and when it was kept.
    entries: HashMap<K, (V, usize, u64)>,
    weight: usize,
    clock: u64,
}

impl<K: Eq + Hash + Clone, V> KeptMap<K, V> {
    /// Keeps values weighing at most `max_weight` in all.
    pub fn new(max_weight: usize) -> Self {
        KeptMap { max_weight, inner: Mutex::new(Inner { entries: HashMap::new(), weight: 0, clock: 0 }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // Every change below leaves the map whole: a panic elsewhere cannot leave it half-done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a value out.
    pub fn take(&self, key: &K) -> Option<V> {
        let mut inner = self.lock();
        let (value, weight, _) = inner.entries.remove(key)?;
        inner.weight -= weight;
        Some(value)
    }

    /// A copy of a value, left in place.
    pub fn get(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.lock().entries.get(key).map(|(value, _, _)| value.clone())
    }

    /// Keeps `value` under `key` (in place of the one kept before), unless it alone weighs more
    /// than the whole map may.
    pub fn keep(&self, key: K, value: V, weight: usize) {
        if weight > self.max_weight {
            self.take(&key);
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some((_, old, _)) = inner.entries.insert(key, (value, weight, now)) {
            inner.weight -= old;
        }
        inner.weight += weight;
        if inner.weight > self.max_weight {
            let mut ages: Vec<(u64, K)> =
                inner.entries.iter().map(|(k, (_, _, at))| (*at, k.clone())).collect();
            ages.sort_unstable_by_key(|(at, _)| *at);
            let target = self.max_weight - self.max_weight / 4;
            for (_, key) in ages {
                if inner.weight <= target {
                    break;
                }
                if let Some((_, w, _)) = inner.entries.remove(&key) {
                    inner.weight -= w;
                }
            }
        }
    }

    /// Drops every value.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.weight = 0;
    }

    /// Whether a value is kept under `key`.
    pub fn contains(&self, key: &K) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the kept values weigh in all.
    pub fn weight(&self) -> usize {
        self.lock().weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_kept_are_dropped_past_the_weight() {
        let map = KeptMap::new(8);
        for k in 0..8 {
            map.keep(k, k * 10, 1);
        }
        assert_eq!((map.len(), map.weight()), (8, 8));
        // Kept again: now the most recent.
        map.keep(0, 0, 1);
        map.keep(8, 80, 1);
        // Past 8: down to 6, dropping 1, 2 and 3, the least recently kept.
        assert_eq!((map.len(), map.weight()), (6, 6));
        for k in [1, 2, 3] {
            assert!(!map.contains(&k), "{k} was dropped");
        }
        for k in [0, 4, 5, 6, 7, 8] {
            assert_eq!(map.get(&k), Some(k * 10));
        }
        assert_eq!(map.take(&8), Some(80));
        assert_eq!((map.len(), map.weight()), (5, 5));
        // Too heavy alone: not kept, and what was kept under its key is gone.
        map.keep(0, 1, 9);
        assert!(!map.contains(&0));
        map.keep(9, 90, 3);
        assert_eq!(map.weight(), 7);
    }
}
