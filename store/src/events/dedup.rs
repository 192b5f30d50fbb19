//! The recorder's memory of recent events: one entry per (object, reason, message), so a
//! repeat bumps a count instead of adding an object, bounded so a flood cannot grow it.

use coracle_config::meta::ObjectReference;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What makes two events "the same" (Kubernetes' aggregation key, minus the source).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DedupKey {
    pub uid: String,
    pub field_path: String,
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
}

/// One remembered event.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The stored Event's name and namespace.
    pub name: String,
    pub namespace: String,
    /// The object the event is about.
    pub involved: ObjectReference,
    pub count: i32,
    pub first_timestamp: String,
    pub last_timestamp: String,
    /// The count last written to the store.
    pub written_count: i32,
    pub last_write: Instant,
    pub last_seen: Instant,
}

/// What the caller should write after `observe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// A first occurrence: create the Event.
    Create,
    /// A repeat due for writing: update the Event's count and lastTimestamp.
    Update,
    /// A repeat held back by the rate limit; `flush` writes it later.
    Defer,
}

/// Bounded table of recent events.
pub(crate) struct DedupTable {
    entries: HashMap<DedupKey, Seen>,
    capacity: usize,
    min_update_interval: Duration,
}

impl DedupTable {
    pub fn new(capacity: usize, min_update_interval: Duration) -> DedupTable {
        DedupTable { entries: HashMap::new(), capacity, min_update_interval }
    }

    /// Notes one occurrence; `fresh` names the Event a first occurrence is stored as.
    pub fn observe(
        &mut self,
        key: DedupKey,
        fresh: impl FnOnce() -> Seen,
        timestamp: &str,
        now: Instant,
    ) -> (Write, Seen) {
        if let Some(seen) = self.entries.get_mut(&key) {
            seen.count += 1;
            seen.last_timestamp = timestamp.to_string();
            seen.last_seen = now;
            let due = now.duration_since(seen.last_write) >= self.min_update_interval;
            return (if due { Write::Update } else { Write::Defer }, seen.clone());
        }
        if self.entries.len() >= self.capacity {
            self.evict_oldest();
        }
        let seen = fresh();
        self.entries.insert(key, seen.clone());
        (Write::Create, seen)
    }

    /// Records that `count` of the entry named `name` reached the store.
    pub fn written(&mut self, key: &DedupKey, count: i32, now: Instant) {
        if let Some(seen) = self.entries.get_mut(key) {
            seen.written_count = seen.written_count.max(count);
            seen.last_write = now;
        }
    }

    /// Entries whose newest count has not been written yet.
    pub fn pending(&self) -> Vec<(DedupKey, Seen)> {
        self.entries.iter().filter(|(_, s)| s.count > s.written_count).map(|(k, s)| (k.clone(), s.clone())).collect()
    }

    /// Forgets an entry (its Event could not be stored).
    pub fn forget(&mut self, key: &DedupKey) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn evict_oldest(&mut self) {
        let oldest = self.entries.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.entries.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reason: &str) -> DedupKey {
        DedupKey {
            uid: "u".into(),
            field_path: String::new(),
            type_: "Normal",
            reason: reason.into(),
            message: "m".into(),
        }
    }

    fn fresh(name: &str, now: Instant) -> Seen {
        Seen {
            name: name.into(),
            namespace: "default".into(),
            involved: ObjectReference::default(),
            count: 1,
            first_timestamp: "t0".into(),
            last_timestamp: "t0".into(),
            written_count: 0,
            last_write: now,
            last_seen: now,
        }
    }

    #[test]
    fn repeats_count_and_are_rate_limited() {
        let t0 = Instant::now();
        let mut table = DedupTable::new(10, Duration::from_secs(5));
        let (w, _) = table.observe(key("A"), || fresh("a", t0), "t0", t0);
        assert_eq!(w, Write::Create);
        table.written(&key("A"), 1, t0);
        let (w, seen) = table.observe(key("A"), || unreachable!(), "t1", t0 + Duration::from_secs(1));
        assert_eq!((w, seen.count, seen.last_timestamp.as_str()), (Write::Defer, 2, "t1"));
        assert_eq!(table.pending().len(), 1);
        let (w, seen) = table.observe(key("A"), || unreachable!(), "t2", t0 + Duration::from_secs(6));
        assert_eq!((w, seen.count), (Write::Update, 3));
        table.written(&key("A"), 3, t0 + Duration::from_secs(6));
        assert!(table.pending().is_empty());
    }

    #[test]
    fn the_least_recently_seen_entry_makes_room() {
        let t0 = Instant::now();
        let mut table = DedupTable::new(2, Duration::ZERO);
        table.observe(key("A"), || fresh("a", t0), "t", t0);
        table.observe(key("B"), || fresh("b", t0), "t", t0 + Duration::from_secs(1));
        table.observe(key("A"), || unreachable!(), "t", t0 + Duration::from_secs(2));
        table.observe(key("C"), || fresh("c", t0), "t", t0 + Duration::from_secs(3));
        assert_eq!(table.len(), 2);
        // B was seen least recently, so it went; A is still a repeat.
        let (w, _) = table.observe(key("A"), || unreachable!(), "t", t0 + Duration::from_secs(4));
        assert_eq!(w, Write::Update);
        let (w, _) = table.observe(key("B"), || fresh("b2", t0), "t", t0 + Duration::from_secs(5));
        assert_eq!(w, Write::Create);
    }
}
