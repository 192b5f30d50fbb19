//! A ReplicaSet's status from the pods it owns: replicas, fullyLabeledReplicas,
//! readyReplicas, availableReplicas, observedGeneration.

use super::super::pod_state::{is_available, time_to_available};
use coracle_config::apps::{ReplicaSet, ReplicaSetStatus};
use coracle_config::core::Pod;
use coracle_config::object::Object;
use coracle_store::{Store, StoreError};
use std::borrow::Borrow;
use std::time::{Duration, SystemTime};

/// Kubernetes omits zero counts from the wire form.
fn non_zero(n: usize) -> Option<i32> {
    (n > 0).then_some(n as i32)
}

/// The status `pods` (the active pods the set owns) add up to.
pub fn calculate<P: Borrow<Pod>>(rs: &ReplicaSet, pods: &[P], now: SystemTime) -> ReplicaSetStatus {
    let each = || pods.iter().map(<P as Borrow<Pod>>::borrow);
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    let template_labels = &rs.spec.template.metadata.labels;
    let fully_labeled =
        each().filter(|p| template_labels.iter().all(|(k, v)| p.metadata.labels.get(k) == Some(v))).count();
    let previous = rs.status.clone().unwrap_or_default();
    ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: non_zero(fully_labeled),
        ready_replicas: non_zero(each().filter(|p| p.is_ready()).count()),
        available_replicas: non_zero(each().filter(|p| is_available(p, min_ready, now)).count()),
        observed_generation: Some(rs.metadata.generation),
        conditions: previous.conditions,
    }
}

/// When the next Ready pod becomes available, so the count can move then.
pub fn next_availability<P: Borrow<Pod>>(rs: &ReplicaSet, pods: &[P], now: SystemTime) -> Option<Duration> {
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    pods.iter()
        .filter_map(|p| time_to_available(<P as Borrow<Pod>>::borrow(p), min_ready, now))
        .filter(|d| !d.is_zero())
        .min()
}

/// Writes the status when it changed. Every field is a count or the observed
/// generation, so any change is worth persisting.
pub fn write(store: &Store, rs: &ReplicaSet, status: ReplicaSetStatus) -> Result<(), StoreError> {
    if rs.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = rs.clone();
    next.status = Some(status);
    store.update_status(Object::ReplicaSet(next), true).map(drop)
}
