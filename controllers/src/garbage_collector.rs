//! The garbage collector: removes objects whose owners are gone (background propagation),
//! deletes the dependents of owners deleted in the foreground and then releases those
//! owners, and drops ownerReferences that point nowhere while another owner remains.
//!
//! Level-triggered: each pass reads one consistent list of the store and acts on what it
//! sees, so a pass can be repeated or interrupted at any point. It runs on the controllers'
//! runner with a single key (the whole store), queued when a watched change may matter
//! and at every resync.

use super::runner::{self, ControllerContext, ObjectKey, Reconciler, SyncResult};
use coracle_config::core::Event;
use coracle_config::object::{Object, Resource, ALL};
use coracle_store::{
    DeleteOptions, Filter, Propagation, Store, StoreError, WatchEvent, WatchFilter, FOREGROUND_FINALIZER,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A full pass even when no event asked for one.
const RESYNC: Duration = Duration::from_secs(30);
/// How soon a pass that could not finish (a conflict, an I/O error) is retried.
const RETRY: Duration = Duration::from_secs(1);

/// The collector's one key: a pass covers the whole store.
fn pass() -> ObjectKey {
    ObjectKey::new("", "store")
}

/// The garbage collector as a reconciler of the whole store.
pub struct GarbageCollector {
    store: Store,
}

impl GarbageCollector {
    pub fn new(store: Store) -> GarbageCollector {
        GarbageCollector { store }
    }
}

impl Reconciler for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    /// Every kind but Events: they own nothing, and their turnover (the oldest goes for
    /// each new one) would start a pass each. An Event that names an owner is still seen
    /// by every pass, which lists the whole store.
    fn watches(&self) -> WatchFilter {
        WatchFilter::any(ALL.iter().filter(|i| i.kind != Event::INFO.kind).map(|&i| Filter::kind(i)))
    }

    fn all_keys(&self, _store: &Store) -> Vec<ObjectKey> {
        vec![pass()]
    }

    fn keys_for(&self, _store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        if may_need_collection(event) {
            vec![pass()]
        } else {
            Vec::new()
        }
    }

    fn reconcile(&mut self, _key: &ObjectKey) -> SyncResult {
        Ok((!collect(&self.store)).then_some(RETRY))
    }
}

/// Starts the collector on the controllers' runner; it returns once the store shuts down.
pub fn spawn_garbage_collector(ctx: &ControllerContext) -> JoinHandle<()> {
    runner::spawn(ctx, GarbageCollector::new(ctx.store.clone()), RESYNC)
}

/// True for changes a pass could act on: an owner gone, an object with owners, an object
/// being deleted.
fn may_need_collection(event: &WatchEvent) -> bool {
    let m = event.object().metadata();
    matches!(event, WatchEvent::Deleted(_)) || !m.owner_references.is_empty() || m.deletion_timestamp.is_some()
}

fn deleting_in_foreground(obj: &Object) -> bool {
    let m = obj.metadata();
    m.deletion_timestamp.is_some() && m.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER)
}

/// One pass over a consistent list of the store. Returns false when something could not
/// be done and the pass should be retried soon.
pub fn collect(store: &Store) -> bool {
    let (objects, _) = store.list(&Filter::default());
    let by_uid: HashMap<&str, &Arc<Object>> = objects.iter().map(|o| (o.metadata().uid.as_str(), o)).collect();
    let mut owners_with_dependents: HashSet<&str> = HashSet::new();
    let mut finished = true;
    for obj in &objects {
        let m = obj.metadata();
        if m.owner_references.is_empty() {
            continue;
        }
        let live: Vec<&Arc<Object>> =
            m.owner_references.iter().filter_map(|r| by_uid.get(r.uid.as_str()).copied()).collect();
        owners_with_dependents.extend(m.owner_references.iter().map(|r| r.uid.as_str()));
        let result = if live.is_empty() {
            // Every owner is gone: the object goes too (unless already on its way out).
            if m.deletion_timestamp.is_some() {
                Ok(())
            } else {
                log::info!("garbage collector: deleting {} {}: its owners are gone", obj.info().kind, obj.key());
                delete(store, obj, Propagation::Background)
            }
        } else if live.len() < m.owner_references.len() {
            drop_dangling_references(store, obj, &by_uid)
        } else if m.deletion_timestamp.is_none() && live.iter().any(|o| deleting_in_foreground(o)) {
            log::info!(
                "garbage collector: deleting {} {}: its owner is deleted in the foreground",
                obj.info().kind,
                obj.key()
            );
            delete(store, obj, Propagation::Foreground)
        } else {
            Ok(())
        };
        finished &= settle(obj, result);
    }
    for obj in objects.iter().filter(|o| deleting_in_foreground(o)) {
        if !owners_with_dependents.contains(obj.metadata().uid.as_str()) {
            finished &= settle(obj, release_foreground_owner(store, obj));
        }
    }
    finished
}

/// Logs a failed step; true when the step needs no retry.
fn settle(obj: &Object, result: Result<(), StoreError>) -> bool {
    match result {
        Ok(()) | Err(StoreError::NotFound { .. }) => true,
        Err(e @ StoreError::Conflict { .. }) => {
            log::debug!("garbage collector: {} {} changed under us: {e}", obj.info().kind, obj.key());
            false
        }
        Err(e) => {
            log::warn!("garbage collector: {} {}: {e}", obj.info().kind, obj.key());
            false
        }
    }
}

/// Deletes `obj` if it is still the version the pass saw.
fn delete(store: &Store, obj: &Object, propagation: Propagation) -> Result<(), StoreError> {
    let m = obj.metadata();
    let options = DeleteOptions {
        propagation,
        precondition_uid: Some(m.uid.clone()),
        precondition_resource_version: Some(m.resource_version.clone()),
        ..Default::default()
    };
    store.delete(obj.info(), &m.namespace, &m.name, &options).map(drop)
}

fn drop_dangling_references(
    store: &Store,
    obj: &Object,
    by_uid: &HashMap<&str, &Arc<Object>>,
) -> Result<(), StoreError> {
    let mut next = obj.clone();
    next.metadata_mut().owner_references.retain(|r| by_uid.contains_key(r.uid.as_str()));
    log::info!("garbage collector: dropping references to deleted owners from {} {}", obj.info().kind, obj.key());
    store.update(next).map(drop)
}

/// Removes the `foregroundDeletion` finalizer from an owner with no dependents left; the
/// store removes the owner when no other finalizer holds it.
fn release_foreground_owner(store: &Store, obj: &Object) -> Result<(), StoreError> {
    let mut next = obj.clone();
    next.metadata_mut().finalizers.retain(|f| f != FOREGROUND_FINALIZER);
    log::info!("garbage collector: {} {} has no dependents left", obj.info().kind, obj.key());
    store.update(next).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::apps::{Deployment, ReplicaSet};
    use coracle_config::core::Pod;
    use coracle_config::meta::OwnerReference;
    use coracle_config::Resource;
    use std::time::Instant;

    fn named<T: Resource + Default + Into<Object>>(name: &str) -> Object {
        let mut o = T::default();
        o.metadata_mut().name = name.into();
        o.metadata_mut().namespace = "default".into();
        o.into()
    }

    fn owned_by(mut obj: Object, owners: &[&Arc<Object>]) -> Object {
        for owner in owners {
            obj.metadata_mut().owner_references.push(OwnerReference {
                api_version: owner.info().api_version(),
                kind: owner.info().kind.into(),
                name: owner.metadata().name.clone(),
                uid: owner.metadata().uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
        }
        obj
    }

    /// Waits (up to a generous bound, polling) for the collector to reach a state.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "the garbage collector never got to: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        gc: Option<JoinHandle<()>>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let gc = Some(spawn_garbage_collector(&ControllerContext::new(store.clone(), None)));
            Fixture { _dir: dir, store, gc }
        }

        /// deployment → replicaset → two pods.
        fn chain(&self) -> (Arc<Object>, Arc<Object>) {
            let d = self.store.create(named::<Deployment>("web")).unwrap();
            let rs = self.store.create(owned_by(named::<ReplicaSet>("web-1"), &[&d])).unwrap();
            for p in ["web-1-a", "web-1-b"] {
                self.store.create(owned_by(named::<Pod>(p), &[&rs])).unwrap();
            }
            (d, rs)
        }

        fn exists(&self, info: &ResourceInfo, name: &str) -> bool {
            self.store.get(info, "default", name).is_some()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.store.shutdown().unwrap();
            self.gc.take().unwrap().join().unwrap();
        }
    }

    use coracle_config::object::ResourceInfo;

    #[test]
    fn background_deletion_removes_dependents_after_the_owner() {
        let f = Fixture::new();
        f.chain();
        f.store.delete(&Deployment::INFO, "default", "web", &DeleteOptions::default()).unwrap();
        assert!(!f.exists(&Deployment::INFO, "web"));
        eventually("remove the replica set and its pods", || f.store.list(&Filter::default()).0.is_empty());
    }

    #[test]
    fn foreground_deletion_keeps_the_owner_until_dependents_are_gone() {
        let f = Fixture::new();
        f.chain();
        let fg = DeleteOptions { propagation: Propagation::Foreground, ..Default::default() };
        let w = f.store.watch(Filter::default(), None).unwrap();
        let marked = f.store.delete(&Deployment::INFO, "default", "web", &fg).unwrap();
        assert!(deleting_in_foreground(&marked));
        eventually("remove everything", || f.store.list(&Filter::default()).0.is_empty());
        let deleted: Vec<String> = std::iter::from_fn(|| w.next_timeout(Duration::from_millis(100)))
            .filter(|(_, e)| matches!(e, WatchEvent::Deleted(_)))
            .map(|(_, e)| e.object().metadata().name.clone())
            .collect();
        // Pods before their replica set, the replica set before the deployment.
        assert_eq!(deleted.len(), 4, "{deleted:?}");
        assert_eq!(&deleted[2..], ["web-1", "web"]);
    }

    #[test]
    fn foreground_deletion_waits_for_terminating_pods() {
        let f = Fixture::new();
        f.store.set_graceful_pod_deletion(true);
        let (_, rs) = f.chain();
        let fg = DeleteOptions { propagation: Propagation::Foreground, ..Default::default() };
        f.store.delete(&ReplicaSet::INFO, "default", "web-1", &fg).unwrap();
        eventually("mark both pods terminating", || {
            let (pods, _) = f.store.list(&Filter { resource: Some(&Pod::INFO), namespace: None });
            pods.iter().all(|p| p.metadata().deletion_timestamp.is_some())
        });
        // One more pass of our own (its outcome may race the collector thread's).
        collect(&f.store);
        assert!(f.exists(&ReplicaSet::INFO, "web-1"), "owner went while its pods still terminate");
        // The node finishes the pods.
        let now = DeleteOptions { grace_period_seconds: Some(0), ..Default::default() };
        for p in ["web-1-a", "web-1-b"] {
            f.store.delete(&Pod::INFO, "default", p, &now).unwrap();
        }
        eventually("remove the replica set", || !f.exists(&ReplicaSet::INFO, "web-1"));
        assert!(f.exists(&Deployment::INFO, "web"));
        assert_eq!(rs.metadata().owner_references.len(), 1);
    }

    #[test]
    fn orphaned_dependents_stay() {
        let f = Fixture::new();
        f.chain();
        let orphan = DeleteOptions { propagation: Propagation::Orphan, ..Default::default() };
        f.store.delete(&ReplicaSet::INFO, "default", "web-1", &orphan).unwrap();
        collect(&f.store);
        let (pods, _) = f.store.list(&Filter { resource: Some(&Pod::INFO), namespace: None });
        assert_eq!(pods.len(), 2);
        assert!(pods.iter().all(|p| p.metadata().owner_references.is_empty()));
    }

    #[test]
    fn references_to_gone_owners_are_dropped_while_another_owner_lives() {
        let f = Fixture::new();
        let a = f.store.create(named::<Deployment>("a")).unwrap();
        let b = f.store.create(named::<Deployment>("b")).unwrap();
        f.store.create(owned_by(named::<Pod>("shared"), &[&a, &b])).unwrap();
        f.store.delete(&Deployment::INFO, "default", "a", &DeleteOptions::default()).unwrap();
        eventually("drop the reference to a", || {
            f.store.get(&Pod::INFO, "default", "shared").unwrap().metadata().owner_references.len() == 1
        });
        let refs = &f.store.get(&Pod::INFO, "default", "shared").unwrap().metadata().owner_references.clone();
        assert_eq!(refs[0].uid, b.metadata().uid);
    }

    #[test]
    fn dependents_whose_owner_never_existed_are_collected_by_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ghost = Arc::new(named::<Deployment>("ghost"));
        store.create(owned_by(named::<Pod>("p"), &[&ghost])).unwrap();
        assert!(collect(&store));
        assert!(store.get(&Pod::INFO, "default", "p").is_none());
    }
}
