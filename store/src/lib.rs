//! The durable object store: one JSON file per object, atomic writes, a persisted
//! monotonic resourceVersion, an in-memory index and ordered watch fan-out.
//!
//! Two locks. `writer` serializes every change and is held across its fsyncs, so versions
//! are handed out, made durable and published in one order, and a change is acknowledged
//! only once it is on disk. `state` (index, current version, watch hub) is held only for
//! in-memory work, so reads, lists and new watches never wait for the disk, and never see
//! a change before it is durable.

mod checkpoints;
mod checks;
mod deletion;
mod error;
pub mod events;
mod files;
mod ids;
mod index;
mod persist;
mod repair;
mod status;
mod typed;
mod version;
mod watch;

#[cfg(test)]
mod tests;

pub use checkpoints::{spawn_checkpoints, CHECKPOINT_AGE};
pub use deletion::{DeleteOptions, Propagation, DEFAULT_POD_GRACE_SECONDS, FOREGROUND_FINALIZER};
pub use error::StoreError;
pub use typed::Typed;
pub use watch::{Filter, WatchEnd, WatchEvent, WatchFilter, Watcher};

use checks::{check_path_safe, check_preconditions, conflict};
use coracle_config::object::{Object, ResourceInfo};
use deletion::DeletePlan;
use files::Layout;
use index::{is_memory_only, key_of, Entry, Index, Key};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use version::VersionCeiling;
use watch::WatchHub;

/// Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    layout: Layout,
    /// Serializes changes; held across their disk writes (see the module comment).
    writer: Mutex<VersionCeiling>,
    state: Mutex<State>,
    graceful_pods: AtomicBool,
    shut_down: AtomicBool,
    /// Objects repaired at load, and what was changed, until the daemon records them.
    repairs: Mutex<Vec<(Arc<Object>, String)>>,
    /// Held for the store's life: two daemons on one data folder would corrupt it.
    _lock: Flock<File>,
}

struct State {
    index: Index,
    /// The newest resourceVersion handed out.
    rv: u64,
    hub: WatchHub,
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::Io { context: context.into(), error }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change to the guarded state completes before its guard drops, so a panic in
    // another holder leaves nothing half-done worth refusing to read.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    /// Opens (or creates) the store under `data_dir`, removing torn temp files and loading
    /// every object into memory.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let layout =
            Layout::create(data_dir).map_err(io_error(format!("opening the store in {}", data_dir.display())))?;
        let lock_path = layout.root().join(".lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(format!("opening {}", lock_path.display())))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| StoreError::Io {
            context: format!("locking {}: is another coracled using {}?", lock_path.display(), data_dir.display()),
            error: errno.into(),
        })?;
        let loaded = layout.load_all().map_err(io_error("loading stored objects"))?;
        let newest = loaded.iter().map(|l| l.resource_version).max().unwrap_or(0);
        let ceiling = VersionCeiling::open(layout.root(), newest).map_err(io_error("reading the resourceVersion"))?;
        // Never 0: a watch from "0" means "from any version" (see `watch`).
        let rv = newest.max(ceiling.ceiling()).max(1);
        let mut index = Index::default();
        let mut repairs = Vec::new();
        for mut l in loaded {
            let repaired = repair::repair(&mut l.object).join("; ");
            let obj = Arc::new(l.object);
            if !repaired.is_empty() {
                log::warn!("store: {} {} repaired at load: {repaired}", obj.info().kind, obj.key());
                repairs.push((obj.clone(), repaired));
            }
            // A repaired object is newer than its file: the next flush writes it.
            let dirty = repairs.last().is_some_and(|(r, _)| Arc::ptr_eq(r, &obj));
            index.insert(key_of(&obj), Entry { obj, dirty_since: dirty.then(Instant::now) });
        }
        log::info!("store: {} objects loaded from {}, resourceVersion {rv}", index.len(), layout.root().display());
        let state = State { index, rv, hub: WatchHub::new(rv) };
        Ok(Store {
            shared: Arc::new(Shared {
                layout,
                writer: Mutex::new(ceiling),
                state: Mutex::new(state),
                graceful_pods: AtomicBool::new(false),
                shut_down: AtomicBool::new(false),
                repairs: Mutex::new(repairs),
                _lock: lock,
            }),
        })
    }

    /// The objects repaired at load (see `repair`), each with what was changed; taken once.
    pub fn take_load_repairs(&self) -> Vec<(Arc<Object>, String)> {
        std::mem::take(&mut *lock(&self.shared.repairs))
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.state).rv
    }

    /// Turns graceful pod deletion on (the node runs and removes terminated pods) or off
    /// (pods are removed as soon as they are deleted).
    pub fn set_graceful_pod_deletion(&self, on: bool) {
        self.shared.graceful_pods.store(on, Ordering::Release);
    }

    /// True once `shutdown` has run: writes fail and watchers have ended.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shut_down.load(Ordering::Acquire)
    }

    /// Stores a new object: assigns uid, resourceVersion, creationTimestamp, generation 1
    /// (kinds with a spec), a name from generateName. The object is already defaulted and
    /// validated.
    pub fn create(&self, obj: Object) -> Result<Arc<Object>, StoreError> {
        let mut w = self.begin_write()?;
        let mut obj = obj;
        obj.set_type_meta();
        let info = obj.info();
        let has_spec = obj.spec_value().is_some();
        let m = obj.metadata_mut();
        if !info.namespaced {
            m.namespace.clear();
        } else {
            check_path_safe("metadata.namespace", &m.namespace)?;
        }
        if m.name.is_empty() {
            if m.generate_name.is_empty() {
                return Err(StoreError::Invalid {
                    message: format!("{}: metadata.name or metadata.generateName is required", info.kind),
                });
            }
            m.name = self.free_generated_name(info, &m.namespace, &m.generate_name)?;
        }
        check_path_safe("metadata.name", &m.name)?;
        let key: Key = (info.plural, m.namespace.clone(), m.name.clone());
        if lock(&self.shared.state).index.get(&key).is_some() {
            return Err(StoreError::AlreadyExists { resource: info, name: m.name.clone() });
        }
        m.uid = ids::new_uid().map_err(io_error("making a uid"))?;
        m.creation_timestamp = Some(coracle_config::time::now());
        m.generation = if has_spec { 1 } else { 0 };
        m.deletion_timestamp = None;
        m.deletion_grace_period_seconds = None;
        if is_memory_only(&obj) {
            let evict = lock(&self.shared.state).index.event_to_evict().cloned();
            if let Some(oldest) = evict {
                self.commit_remove(&mut w, &oldest)?;
            }
        }
        self.commit_put(&mut w, obj, true, true)
    }

    fn free_generated_name(
        &self,
        info: &'static ResourceInfo,
        namespace: &str,
        prefix: &str,
    ) -> Result<String, StoreError> {
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let name = ids::generated_name(prefix).map_err(io_error("generating a name"))?;
            let key: Key = (info.plural, namespace.to_string(), name.clone());
            if lock(&self.shared.state).index.get(&key).is_none() {
                return Ok(name);
            }
        }
        Err(StoreError::AlreadyExists { resource: info, name: format!("{prefix}*") })
    }

    /// Replaces an object. A non-empty resourceVersion must match (409 otherwise); uid and
    /// creationTimestamp are kept; generation bumps only if the spec changed; nothing is
    /// written when nothing changed. `status` is kept from the stored object: status is
    /// written through `update_status`.
    ///
    /// An update that leaves a marked object without finalizers removes it.
    pub fn update(&self, obj: Object) -> Result<Arc<Object>, StoreError> {
        let mut w = self.begin_write()?;
        let (current, _) = self.current_for(&obj)?;
        check_preconditions(&current, &obj)?;
        let mut next = status::with_status(&obj, status::status_of(&current))?;
        next.set_type_meta();
        let spec_changed = next.spec_value() != current.spec_value();
        let (cur, m) = (current.metadata(), next.metadata_mut());
        m.namespace.clone_from(&cur.namespace);
        m.uid.clone_from(&cur.uid);
        m.resource_version.clone_from(&cur.resource_version);
        m.creation_timestamp.clone_from(&cur.creation_timestamp);
        m.deletion_timestamp.clone_from(&cur.deletion_timestamp);
        m.deletion_grace_period_seconds = cur.deletion_grace_period_seconds;
        m.generation = if cur.generation == 0 { 0 } else { cur.generation + i64::from(spec_changed) };
        if next == *current {
            return Ok(current);
        }
        if deletion::ready_to_remove(&next) {
            return self.commit_remove(&mut w, &key_of(&next));
        }
        self.commit_put(&mut w, next, true, false)
    }

    /// Replaces only the status of an object. `persist` false keeps the change in memory
    /// (probe results, usage figures, the node's pod status) until the next persisted write
    /// of the object, the next checkpoint that finds it old enough ([`Store::flush_older_than`])
    /// or the flush at shutdown, sparing flash; watchers and readers see it at once.
    pub fn update_status(&self, obj: Object, persist: bool) -> Result<Arc<Object>, StoreError> {
        let mut w = self.begin_write()?;
        let (current, dirty) = self.current_for(&obj)?;
        let info = current.info();
        if !status::has_status(info) {
            return Err(StoreError::Invalid { message: format!("{} have no status", info.qualified_plural()) });
        }
        check_preconditions(&current, &obj)?;
        let next = status::with_status(&current, status::status_of(&obj))?;
        if next == *current {
            if persist && dirty {
                self.persist_before_change(&key_of(&current))?;
                self.persist_entry(&key_of(&current))?;
            }
            return Ok(current);
        }
        self.commit_put(&mut w, next, persist, false)
    }

    /// Flushes memory-only changes, refuses further writes and ends every watcher.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        let flushed = self.flush();
        let _w = lock(&self.shared.writer);
        self.shared.shut_down.store(true, Ordering::Release);
        lock(&self.shared.state).hub.close();
        flushed
    }

    pub fn get(&self, resource: &ResourceInfo, namespace: &str, name: &str) -> Option<Arc<Object>> {
        let ns = if resource.namespaced { namespace } else { "" };
        let key: Key = (resource.plural, ns.to_string(), name.to_string());
        lock(&self.shared.state).index.get(&key).map(|e| e.obj.clone())
    }

    /// Every object the filter selects, and the resourceVersion the list is consistent at.
    pub fn list(&self, filter: &Filter) -> (Vec<Arc<Object>>, u64) {
        let st = lock(&self.shared.state);
        (st.index.select(filter, |_| true), st.rv)
    }

    /// The objects the filter selects for which `keep` holds.
    fn list_where(&self, filter: &Filter, keep: impl Fn(&Object) -> bool) -> Vec<Arc<Object>> {
        lock(&self.shared.state).index.select(filter, keep)
    }

    /// Deletes an object (see `DeleteOptions`); returns the object as it was removed or as
    /// it now stands marked for deletion.
    pub fn delete(
        &self,
        resource: &'static ResourceInfo,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Arc<Object>, StoreError> {
        let mut w = self.begin_write()?;
        let ns = if resource.namespaced { namespace } else { "" };
        let key: Key = (resource.plural, ns.to_string(), name.to_string());
        let Some((current, _)) = self.entry(&key) else {
            return Err(StoreError::NotFound { resource, name: name.to_string() });
        };
        let meta = current.metadata();
        if let Some(uid) = options.precondition_uid.as_deref().filter(|u| *u != meta.uid) {
            return Err(conflict(
                &current,
                format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta.uid),
            ));
        }
        if let Some(rv) = options.precondition_resource_version.as_deref().filter(|v| *v != meta.resource_version) {
            return Err(conflict(
                &current,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta.resource_version
                ),
            ));
        }
        let graceful = self.shared.graceful_pods.load(Ordering::Acquire);
        let plan = deletion::plan(&current, options, graceful, std::time::SystemTime::now());
        if options.dry_run {
            return Ok(match plan {
                DeletePlan::Mark(next) => Arc::new(*next),
                DeletePlan::Remove | DeletePlan::Unchanged => current,
            });
        }
        if options.propagation == Propagation::Orphan {
            self.orphan_dependents(&mut w, &meta.uid)?;
        }
        match plan {
            DeletePlan::Remove => self.commit_remove(&mut w, &key),
            DeletePlan::Mark(next) => self.commit_put(&mut w, *next, true, false),
            DeletePlan::Unchanged => Ok(current),
        }
    }

    /// Subscribes to changes after `from` (None: from now) of the objects `filter` selects
    /// (a [`Filter`], or a [`WatchFilter`] of several): other changes never reach, nor wake,
    /// the watcher. A `from` older than the kept window is `Expired` (the API answers 410
    /// Gone). `Some(0)` means "any version", as in Kubernetes: an ADDED for every selected
    /// object first, then changes.
    pub fn watch(&self, filter: impl Into<WatchFilter>, from: Option<u64>) -> Result<Watcher, StoreError> {
        let filter = filter.into();
        let mut st = lock(&self.shared.state);
        let State { index, rv, hub } = &mut *st;
        let current: Box<dyn Iterator<Item = Arc<Object>>> =
            if from == Some(0) { Box::new(index.all()) } else { Box::new(std::iter::empty()) };
        hub.subscribe(filter, from, *rv, current)
    }

    /// The oldest resourceVersion a watch may start from now.
    pub fn oldest_watchable_version(&self) -> u64 {
        lock(&self.shared.state).hub.window_start()
    }

    // ---- the write path: every caller holds `writer` ----

    fn begin_write(&self) -> Result<MutexGuard<'_, VersionCeiling>, StoreError> {
        let w = lock(&self.shared.writer);
        if self.is_shut_down() {
            return Err(StoreError::Io {
                context: "writing to the store".into(),
                error: std::io::Error::other("the store has shut down"),
            });
        }
        Ok(w)
    }

    fn entry(&self, key: &Key) -> Option<(Arc<Object>, bool)> {
        lock(&self.shared.state).index.get(key).map(|e| (e.obj.clone(), e.is_dirty()))
    }

    /// The stored version of the object `obj` names, and whether it is newer than its file.
    fn current_for(&self, obj: &Object) -> Result<(Arc<Object>, bool), StoreError> {
        let info = obj.info();
        let m = obj.metadata();
        let ns = if info.namespaced { m.namespace.as_str() } else { "" };
        let key: Key = (info.plural, ns.to_string(), m.name.clone());
        self.entry(&key).ok_or_else(|| StoreError::NotFound { resource: info, name: m.name.clone() })
    }

    /// The next resourceVersion, durably leased before it is handed out.
    fn next_rv(&self, ceiling: &mut VersionCeiling) -> Result<u64, StoreError> {
        let rv = lock(&self.shared.state).rv + 1;
        ceiling.reserve(rv).map_err(io_error("persisting the resourceVersion"))?;
        Ok(rv)
    }

    /// Gives `obj` the next version, writes it (when `persist` and not memory-only), then
    /// indexes and publishes it.
    fn commit_put(
        &self,
        w: &mut VersionCeiling,
        mut obj: Object,
        persist: bool,
        added: bool,
    ) -> Result<Arc<Object>, StoreError> {
        let rv = self.next_rv(w)?;
        obj.metadata_mut().resource_version = rv.to_string();
        let memory_only = is_memory_only(&obj);
        if persist && !memory_only {
            self.persist_before_change(&key_of(&obj))?;
            self.write_file(&obj)?;
        }
        let key = key_of(&obj);
        let obj = Arc::new(obj);
        let mut st = lock(&self.shared.state);
        // Newer than its file since the first memory-only change the file has not seen.
        let dirty_since = (!persist && !memory_only)
            .then(|| st.index.get(&key).and_then(|e| e.dirty_since).unwrap_or_else(Instant::now));
        st.index.insert(key, Entry { obj: obj.clone(), dirty_since });
        st.rv = rv;
        let event = if added { WatchEvent::Added(obj.clone()) } else { WatchEvent::Modified(obj.clone()) };
        st.hub.publish(rv, event);
        Ok(obj)
    }

    /// Removes `key` from disk and memory; the DELETED event carries a new version.
    fn commit_remove(&self, w: &mut VersionCeiling, key: &Key) -> Result<Arc<Object>, StoreError> {
        let Some((current, _)) = self.entry(key) else {
            unreachable!("commit_remove is called for indexed objects under the writer lock")
        };
        let rv = self.next_rv(w)?;
        if !is_memory_only(&current) {
            self.persist_before_change(key)?;
            let (plural, ns, name) = key;
            self.shared.layout.remove_object(plural, ns, name).map_err(io_error(format!(
                "removing {} {}",
                current.info().kind,
                current.key()
            )))?;
        }
        let mut gone = (*current).clone();
        gone.metadata_mut().resource_version = rv.to_string();
        let gone = Arc::new(gone);
        let mut st = lock(&self.shared.state);
        st.index.remove(key);
        st.rv = rv;
        st.hub.publish(rv, WatchEvent::Deleted(gone.clone()));
        Ok(gone)
    }

    /// Drops the ownerReferences to `uid` from every dependent (orphan propagation).
    fn orphan_dependents(&self, w: &mut VersionCeiling, uid: &str) -> Result<(), StoreError> {
        let dependents = lock(&self.shared.state).index.dependents_of(uid);
        for dep in dependents {
            let mut next = (*dep).clone();
            next.metadata_mut().owner_references.retain(|r| r.uid != uid);
            self.commit_put(w, next, true, false)?;
        }
        Ok(())
    }
}
