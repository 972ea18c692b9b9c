//! First-in-first-out windows of keys, so that "have I seen this before?" stays exact for
//! recent keys while memory stays bounded over an hour of 300k spans/s.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// A set that forgets its oldest key once it holds `capacity` keys.
///
/// The question it answers ("was this key among the last `capacity` distinct keys?") is exact;
/// keys older than that are forgotten and would count as new again.
#[derive(Debug)]
pub(crate) struct FifoSet<K> {
    capacity: usize,
    set: HashSet<K>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Copy> FifoSet<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        FifoSet {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Inserts `key`; returns false if it was already in the window.
    pub(crate) fn insert(&mut self, key: K) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// A map that forgets its oldest entry once it holds `capacity` entries. Re-inserting a key
/// updates its value but not its age: the first insertion decides when it is forgotten.
#[derive(Debug)]
pub(crate) struct FifoMap<K, V> {
    capacity: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> FifoMap<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        FifoMap {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Some(v) = self.map.get_mut(&key) {
            *v = value;
            return;
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        if self.order.len() > self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
        }
    }

    /// The value under `key`, inserted as `V::default()` (possibly forgetting the oldest)
    /// if absent; true when it was inserted. With capacity 0 nothing is kept and the
    /// value returned is a scratch one.
    pub(crate) fn get_or_default(&mut self, key: K) -> (&mut V, bool)
    where
        V: Default,
    {
        if self.capacity == 0 {
            self.map.clear();
            return (self.map.entry(key).or_default(), true);
        }
        let new = !self.map.contains_key(&key);
        if new {
            self.order.push_back(key.clone());
            if self.order.len() > self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
        (self.map.entry(key).or_default(), new)
    }

    /// Every value kept, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_forgets_oldest() {
        let mut s = FifoSet::new(2);
        assert!(s.insert(1));
        assert!(!s.insert(1));
        assert!(s.insert(2));
        assert!(s.insert(3));
        assert!(s.insert(1), "1 was pushed out by 3");
        assert!(!s.insert(3));
    }

    #[test]
    fn map_forgets_oldest() {
        let mut m = FifoMap::new(2);
        m.insert("a", 1);
        m.insert("b", 2);
        m.insert("a", 3);
        assert_eq!(m.get(&"a"), Some(&3));
        m.insert("c", 4);
        assert_eq!(m.get(&"a"), None);
        assert_eq!((m.get(&"b"), m.get(&"c")), (Some(&2), Some(&4)));
    }
}
