//! The durable object store: one JSON file per object, atomic writes, a persisted
//! monotonic resourceVersion, an in-memory index and ordered watch fan-out.
//!
//! SKELETON: the signatures below are the contract the API, controllers and node code
//! against; the bodies are being written.

use coracle_config::object::{Object, ResourceInfo};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// How dependents of a deleted object are treated (`propagationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes now; the garbage collector deletes dependents afterwards.
    #[default]
    Background,
    /// Dependents go first; the owner stays, with a deletionTimestamp and the
    /// `foregroundDeletion` finalizer, until they are gone.
    Foreground,
    /// Dependents stay, with the owner's reference removed.
    Orphan,
}

/// What a DELETE asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub propagation: Propagation,
    /// For pods: Some(0) removes at once; otherwise the pod is marked terminating
    /// (deletionTimestamp, deletionGracePeriodSeconds) when graceful pod deletion is on,
    /// and the node removes it once its containers are gone.
    pub grace_period_seconds: Option<i64>,
    /// `preconditions.uid` / `preconditions.resourceVersion`.
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// What changed, in the order the store applied it.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Arc<Object>),
    Modified(Arc<Object>),
    Deleted(Arc<Object>),
}

impl WatchEvent {
    pub fn object(&self) -> &Arc<Object> {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
        }
    }

    /// `ADDED`, `MODIFIED` or `DELETED`, as a watch stream spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
        }
    }
}

/// Which objects a watcher or list wants.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// None: every resource type.
    pub resource: Option<&'static ResourceInfo>,
    /// None: every namespace.
    pub namespace: Option<String>,
}

#[derive(Debug)]
pub enum StoreError {
    NotFound {
        resource: &'static ResourceInfo,
        name: String,
    },
    AlreadyExists {
        resource: &'static ResourceInfo,
        name: String,
    },
    /// The update carried a stale resourceVersion, or a precondition failed.
    Conflict {
        resource: &'static ResourceInfo,
        name: String,
        message: String,
    },
    /// A watch asked for a resourceVersion older than the window kept in memory.
    Expired {
        requested: u64,
        oldest: u64,
    },
    /// The request is malformed in a way only the store can see (e.g. neither name nor
    /// generateName).
    Invalid {
        message: String,
    },
    Io {
        context: String,
        error: std::io::Error,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

impl std::error::Error for StoreError {}

/// A live subscription; events arrive in resourceVersion order. Dropping it unsubscribes.
pub struct Watcher {
    _private: (),
}

impl Watcher {
    /// Blocks until the next event, or returns None after `timeout` or once the store shuts down.
    pub fn next_timeout(&self, timeout: std::time::Duration) -> Option<(u64, WatchEvent)> {
        let _ = timeout;
        todo!()
    }
}

/// Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (or creates) the store under `data_dir`, removing torn temp files and loading
    /// every object into memory.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let _ = data_dir;
        todo!()
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        todo!()
    }

    /// Stores a new object: assigns uid, resourceVersion, creationTimestamp, generation 1
    /// (kinds with a spec), a name from generateName. The object is already defaulted and
    /// validated.
    pub fn create(&self, obj: Object) -> Result<Arc<Object>, StoreError> {
        let _ = obj;
        todo!()
    }

    /// Replaces an object. A non-empty resourceVersion must match (409 otherwise); uid and
    /// creationTimestamp are kept; generation bumps only if the spec changed; nothing is
    /// written when nothing changed. `status` is kept from the stored object: status is
    /// written through `update_status`.
    pub fn update(&self, obj: Object) -> Result<Arc<Object>, StoreError> {
        let _ = obj;
        todo!()
    }

    /// Replaces only the status of an object. `persist` false keeps the change in memory
    /// (probe results, usage figures) until the next persisted write, sparing flash.
    pub fn update_status(&self, obj: Object, persist: bool) -> Result<Arc<Object>, StoreError> {
        let _ = (obj, persist);
        todo!()
    }

    pub fn get(&self, resource: &ResourceInfo, namespace: &str, name: &str) -> Option<Arc<Object>> {
        let _ = (resource, namespace, name);
        todo!()
    }

    /// Every object the filter selects, and the resourceVersion the list is consistent at.
    pub fn list(&self, filter: &Filter) -> (Vec<Arc<Object>>, u64) {
        let _ = filter;
        todo!()
    }

    /// Deletes an object (see `DeleteOptions`); returns the object as it was removed or as
    /// it now stands marked for deletion.
    pub fn delete(
        &self,
        resource: &ResourceInfo,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Arc<Object>, StoreError> {
        let _ = (resource, namespace, name, options);
        todo!()
    }

    /// Subscribes to changes after `from` (None: from now). A `from` older than the kept
    /// window is `Expired` (the API answers 410 Gone).
    pub fn watch(&self, filter: Filter, from: Option<u64>) -> Result<Watcher, StoreError> {
        let _ = (filter, from);
        todo!()
    }
}
