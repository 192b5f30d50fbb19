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
use super::runner::{ObjectKey, Reconciler, SyncResult};
use coracle_config::apps::ReplicaSet;
use coracle_config::object::{Object, Resource, ResourceInfo};
use coracle_store::events::Recorder;
use coracle_store::{Filter, Store, WatchEvent};

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

    fn primary(&self) -> &'static ResourceInfo {
        // The registry's 'static copy (a constant's address is not stable).
        coracle_config::object::ALL.iter().copied().find(|i| i.kind == ReplicaSet::INFO.kind).expect("registered")
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
                None if !matches!(event, WatchEvent::Deleted(_)) => {
                    let filter = Filter { resource: Some(self.primary()), namespace: Some(m.namespace.clone()) };
                    store
                        .list(&filter)
                        .0
                        .iter()
                        .filter_map(|o| match &**o {
                            Object::ReplicaSet(rs)
                                if !rs.spec.selector.is_empty() && rs.spec.selector.matches(&m.labels) =>
                            {
                                Some(ObjectKey::new(&rs.metadata.namespace, &rs.metadata.name))
                            }
                            _ => None,
                        })
                        .collect()
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        sync::sync(self, key)
    }
}
