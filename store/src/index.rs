//! The in-memory index: every live object by (resource, namespace, name), which of them
//! hold changes not yet on disk, and the arrival order of the memory-only events.

use super::Filter;
use coracle_config::object::Object;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// Events kept in memory; the oldest goes when another arrives.
pub(crate) const EVENT_LIMIT: usize = 1000;

/// `(plural, namespace, name)`; the namespace is empty for cluster-scoped objects.
pub(crate) type Key = (&'static str, String, String);

/// The key an object is indexed under.
pub(crate) fn key_of(obj: &Object) -> Key {
    let m = obj.metadata();
    (obj.info().plural, m.namespace.clone(), m.name.clone())
}

/// Events are never written to disk: repeats would wear flash for little value.
pub(crate) fn is_memory_only(obj: &Object) -> bool {
    obj.info().kind == "Event"
}

pub(crate) struct Entry {
    pub obj: Arc<Object>,
    /// Since when the in-memory object has been newer than its file (a memory-only status
    /// update), None when the file holds it. Later memory-only changes keep the first
    /// instant, so a status that never stops changing is still written every checkpoint.
    pub dirty_since: Option<Instant>,
}

impl Entry {
    /// The in-memory object is newer than its file.
    pub fn is_dirty(&self) -> bool {
        self.dirty_since.is_some()
    }
}

#[derive(Default)]
pub(crate) struct Index {
    objects: BTreeMap<Key, Entry>,
    /// Event keys, oldest first.
    events: VecDeque<Key>,
}

impl Index {
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.objects.get(key)
    }

    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        self.objects.get_mut(key)
    }

    /// Inserts or replaces an object.
    pub fn insert(&mut self, key: Key, entry: Entry) {
        if is_memory_only(&entry.obj) && !self.objects.contains_key(&key) {
            self.events.push_back(key.clone());
        }
        self.objects.insert(key, entry);
    }

    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        let removed = self.objects.remove(key)?;
        if is_memory_only(&removed.obj) {
            self.events.retain(|k| k != key);
        }
        Some(removed)
    }

    /// The oldest event, when adding one more would pass `EVENT_LIMIT`.
    pub fn event_to_evict(&self) -> Option<&Key> {
        (self.events.len() >= EVENT_LIMIT).then(|| self.events.front()).flatten()
    }

    /// Objects the filter selects and `keep` accepts, ordered by resource, namespace and name.
    pub fn select(&self, filter: &Filter, keep: impl Fn(&Object) -> bool) -> Vec<Arc<Object>> {
        let selected = |e: &&Entry| filter.matches(&e.obj) && keep(&e.obj);
        match filter.resource {
            Some(info) => {
                let start: Key = (info.plural, filter.namespace.clone().unwrap_or_default(), String::new());
                self.objects
                    .range(start..)
                    .take_while(|(k, _)| k.0 == info.plural)
                    .map(|(_, e)| e)
                    .filter(selected)
                    .map(|e| e.obj.clone())
                    .collect()
            }
            None => self.objects.values().filter(selected).map(|e| e.obj.clone()).collect(),
        }
    }

    /// Every object, in key order.
    pub fn all(&self) -> impl Iterator<Item = Arc<Object>> + '_ {
        self.objects.values().map(|e| e.obj.clone())
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<Arc<Object>> {
        self.objects
            .values()
            .filter(|e| e.obj.metadata().owner_references.iter().any(|r| r.uid == uid))
            .map(|e| e.obj.clone())
            .collect()
    }

    /// Keys of objects whose in-memory state has been newer than their file since `before`
    /// or earlier (every such key when `before` is None).
    pub fn dirty_keys(&self, before: Option<Instant>) -> Vec<Key> {
        let due = |since: Instant| before.is_none_or(|b| since <= b);
        self.objects.iter().filter(|(_, e)| e.dirty_since.is_some_and(due)).map(|(k, _)| k.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }
}
