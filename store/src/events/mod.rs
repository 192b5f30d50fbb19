//! The event recorder: what users read under `Events:` in `describe`.
//!
//! Repeats of the same event (same object, reason and message) bump `count` and
//! `lastTimestamp` on one Event instead of adding objects. Events are memory-only in the
//! store (bounded there too), and a repeat is written at most once per
//! `MIN_UPDATE_INTERVAL`, so a crash-looping pod does not churn every watcher; `flush`
//! writes the held-back counts.

mod dedup;

use crate::{Store, StoreError};
use coracle_config::core::{Event, EventSource};
use coracle_config::meta::ObjectReference;
use coracle_config::object::Object;
use dedup::{DedupKey, DedupTable, Seen, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Distinct events remembered for deduplication (the store keeps at most as many).
pub const MAX_REMEMBERED: usize = 1000;

/// The shortest time between two writes of one repeating event.
pub const MIN_UPDATE_INTERVAL: Duration = Duration::from_secs(5);

/// `Normal` or `Warning`, as `type` on an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Records events through the store; cheap to clone, shared by every component.
#[derive(Clone)]
pub struct Recorder {
    store: Store,
    source: EventSource,
    table: Arc<Mutex<DedupTable>>,
}

/// The reference an Event carries to the object it is about.
pub fn reference_to(obj: &Object) -> ObjectReference {
    let m = obj.metadata();
    ObjectReference {
        kind: obj.info().kind.to_string(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: obj.info().api_version(),
        resource_version: m.resource_version.clone(),
        field_path: String::new(),
    }
}

impl Recorder {
    /// A recorder whose events name `component` (e.g. `deployment-controller`, `kubelet`)
    /// and `host` as their source.
    pub fn new(store: Store, component: &str, host: &str) -> Recorder {
        Recorder {
            store,
            source: EventSource { component: component.to_string(), host: host.to_string() },
            table: Arc::new(Mutex::new(DedupTable::new(MAX_REMEMBERED, MIN_UPDATE_INTERVAL))),
        }
    }

    /// The same recorder, with events sourced from another component.
    pub fn for_component(&self, component: &str) -> Recorder {
        Recorder {
            store: self.store.clone(),
            source: EventSource { component: component.to_string(), host: self.source.host.clone() },
            table: self.table.clone(),
        }
    }

    /// Records an event about `involved`. Failures are logged, never returned: an event
    /// that cannot be stored must not stop the work it describes.
    pub fn record(&self, involved: &Object, type_: EventType, reason: &str, message: impl Into<String>) {
        self.record_ref(&reference_to(involved), type_, reason, message);
    }

    /// Records an event about a referenced object (the kubelet names a container with
    /// `fieldPath`, e.g. `spec.containers{web}`).
    pub fn record_ref(&self, involved: &ObjectReference, type_: EventType, reason: &str, message: impl Into<String>) {
        let message = message.into();
        let key = DedupKey {
            uid: involved.uid.clone(),
            field_path: involved.field_path.clone(),
            type_: type_.as_str(),
            reason: reason.to_string(),
            message: message.clone(),
        };
        let now = Instant::now();
        let wall = SystemTime::now();
        let timestamp = coracle_config::time::rfc3339(wall);
        let namespace = if involved.namespace.is_empty() { "default".to_string() } else { involved.namespace.clone() };
        let fresh = || Seen {
            name: event_name(&involved.name, wall),
            namespace,
            involved: involved.clone(),
            count: 1,
            first_timestamp: timestamp.clone(),
            last_timestamp: timestamp.clone(),
            written_count: 0,
            last_write: now,
            last_seen: now,
        };
        // The table lock covers only the bookkeeping; the store write happens after it.
        let (write, seen) = self.lock().observe(key.clone(), fresh, &timestamp, now);
        log::debug!("event {} {} {}: {reason}: {message}", type_.as_str(), involved.kind, involved.name);
        if write != Write::Defer {
            self.write(&key, &seen);
        }
        self.flush_due(now);
    }

    /// Writes every held-back repeat now.
    pub fn flush(&self) {
        let pending = self.lock().pending();
        for (key, seen) in pending {
            self.write(&key, &seen);
        }
    }

    fn lock(&self) -> MutexGuard<'_, DedupTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes held-back repeats whose interval has passed.
    fn flush_due(&self, now: Instant) {
        let due: Vec<(DedupKey, Seen)> = self
            .lock()
            .pending()
            .into_iter()
            .filter(|(_, s)| now.duration_since(s.last_write) >= MIN_UPDATE_INTERVAL)
            .collect();
        for (key, seen) in due {
            self.write(&key, &seen);
        }
    }

    fn write(&self, key: &DedupKey, seen: &Seen) {
        let involved = &seen.involved;
        let event = Event {
            metadata: coracle_config::ObjectMeta {
                name: seen.name.clone(),
                namespace: seen.namespace.clone(),
                ..Default::default()
            },
            involved_object: involved.clone(),
            reason: key.reason.clone(),
            message: key.message.clone(),
            source: self.source.clone(),
            first_timestamp: Some(seen.first_timestamp.clone()),
            last_timestamp: Some(seen.last_timestamp.clone()),
            count: Some(seen.count),
            type_: key.type_.to_string(),
            reporting_component: self.source.component.clone(),
            reporting_instance: self.source.host.clone(),
            ..Default::default()
        };
        let obj = Object::Event(event);
        // A repeat updates the stored Event; one evicted from the store's bounded set is
        // created again under the same name.
        let result = match self.store.update(obj.clone()) {
            Err(StoreError::NotFound { .. }) => self.store.create(obj),
            other => other,
        };
        match result {
            Ok(_) => self.lock().written(key, seen.count, Instant::now()),
            Err(e) => {
                if !self.store.is_shut_down() {
                    log::warn!("recording event {} for {} {}: {e}", key.reason, involved.kind, involved.name);
                }
                self.lock().forget(key);
            }
        }
    }
}

/// `<object>.<hex nanoseconds>`, as Kubernetes names events.
fn event_name(object: &str, at: SystemTime) -> String {
    let nanos = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    format!("{object}.{nanos:x}")
}

#[cfg(test)]
mod tests;
