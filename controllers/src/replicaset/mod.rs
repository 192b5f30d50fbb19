//! The ReplicaSet controller: keeps `spec.replicas` active pods matching the selector,
//! adopting orphans that match and releasing pods that stop matching, and reports what it
//! sees in the status.

mod pod_ranking;
mod status;
mod sync;

#[cfg(test)]
mod tests;

pub use pod_ranking::deletion_order;

use super::clock::Clock;
use super::runner::{self, ObjectKey, Reconciler, SyncResult};
use coracle_config::apps::ReplicaSet;
use coracle_config::core::Pod;
use coracle_config::object::{Object, Resource};
use coracle_store::events::Recorder;
use coracle_store::{Store, WatchEvent, WatchFilter};

/// At most this many pods are created or deleted in one pass (Kubernetes' burstReplicas).
pub const BURST_REPLICAS: usize = 500;

/// Reconciles ReplicaSets against their pods.
pub struct ReplicaSetController {
    store: Store,
    recorder: Recorder,
    clock: Clock,
}

impl ReplicaSetController {
    /// A controller writing through `store` and recording events with `recorder`.
    pub fn new(store: Store, recorder: Recorder, clock: Clock) -> ReplicaSetController {
        ReplicaSetController { store, recorder: recorder.for_component("replicaset-controller"), clock }
    }
}

impl Reconciler for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn watches(&self) -> WatchFilter {
        WatchFilter::kinds(&[&ReplicaSet::INFO, &Pod::INFO])
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
        runner::keys_of::<ReplicaSet>(store)
    }

    fn keys_for(&self, store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        let obj = event.object();
        let m = obj.metadata();
        match &**obj {
            Object::ReplicaSet(_) => vec![ObjectKey::new(&m.namespace, &m.name)],
            Object::Pod(_) => match m.controller_ref() {
                Some(r) if r.kind == "ReplicaSet" => vec![ObjectKey::new(&m.namespace, &r.name)],
                Some(_) => Vec::new(),
                // An orphan may be adopted by any ReplicaSet whose selector matches it.
                None if !matches!(event, WatchEvent::Deleted(_)) => store
                    .list_as::<ReplicaSet>(Some(&m.namespace), None)
                    .iter()
                    .filter(|rs| !rs.spec.selector.is_empty() && rs.spec.selector.matches(&m.labels))
                    .map(|rs| ObjectKey::new(&rs.metadata.namespace, &rs.metadata.name))
                    .collect(),
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        sync::sync(self, key)
    }
}
