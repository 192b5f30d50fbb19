//! One pass for one ReplicaSet: claim pods, create or delete the difference, write status.

use super::super::ownership::{adopt, claim, controller_ref, release, Claim};
use super::super::pod_state::is_active;
use super::super::runner::{ObjectKey, SyncResult};
use super::{pod_ranking, status, ReplicaSetController, BURST_REPLICAS};
use coracle_config::apps::ReplicaSet;
use coracle_config::core::Pod;
use coracle_config::object::{Object, Resource};
use coracle_store::events::EventType;
use coracle_store::{DeleteOptions, StoreError, Typed};

pub(super) fn sync(c: &ReplicaSetController, key: &ObjectKey) -> SyncResult {
    let Some(rs) = c.store.get_as::<ReplicaSet>(&key.namespace, &key.name) else {
        return Ok(None);
    };
    let obj = rs.object();
    let mut pods = claim_pods(c, obj, &rs)?;
    if rs.metadata.deletion_timestamp.is_none() && manage_replicas(c, obj, &rs, &pods)? {
        // Count what now exists, so the status written below is already current.
        pods = claim_pods(c, obj, &rs)?;
    }
    let now = c.clock.now();
    status::write(&c.store, &rs, status::calculate(&rs, &pods, now))?;
    Ok(status::next_availability(&rs, &pods, now))
}

/// The active pods `rs` owns, after adopting matching orphans and releasing owned pods
/// that stopped matching.
fn claim_pods(c: &ReplicaSetController, obj: &Object, rs: &ReplicaSet) -> Result<Vec<Typed<Pod>>, StoreError> {
    let mut owned = Vec::new();
    for pod in c.store.list_as::<Pod>(Some(&rs.metadata.namespace), None) {
        if !is_active(&pod) {
            continue;
        }
        match claim(&rs.metadata, &rs.spec.selector, &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => owned.push(adopt(&c.store, &*pod, obj)?),
            Claim::Release => drop(release(&c.store, &*pod, &rs.metadata.uid)?),
            Claim::Ignore => {}
        }
    }
    Ok(owned)
}

/// A new pod from the set's template, named `<set>-<5 random characters>` by the store.
fn pod_from_template(obj: &Object, rs: &ReplicaSet) -> Object {
    let template = &rs.spec.template;
    let mut pod = Pod::default();
    pod.metadata.generate_name = format!("{}-", rs.metadata.name);
    pod.metadata.namespace = rs.metadata.namespace.clone();
    pod.metadata.labels = template.metadata.labels.clone();
    pod.metadata.annotations = template.metadata.annotations.clone();
    pod.metadata.owner_references = vec![controller_ref(obj)];
    pod.spec = template.spec.clone();
    let mut pod = Object::Pod(pod);
    // The API server defaults every pod it stores; these are stored without it.
    coracle_config::defaults::apply(&mut pod);
    pod
}

/// Creates or deletes pods until `pods.len()` matches `spec.replicas`; true when anything
/// was written.
fn manage_replicas(
    c: &ReplicaSetController,
    obj: &Object,
    rs: &ReplicaSet,
    pods: &[Typed<Pod>],
) -> Result<bool, StoreError> {
    let want = rs.spec.replicas.unwrap_or(1).max(0) as usize;
    let have = pods.len();
    if have < want {
        let count = (want - have).min(BURST_REPLICAS);
        log::info!("replicaset {}: creating {count} pods ({have} of {want})", obj.key());
        for _ in 0..count {
            match c.store.create(pod_from_template(obj, rs)) {
                Ok(pod) => {
                    let message = format!("Created pod: {}", pod.metadata().name);
                    c.recorder.record(obj, EventType::Normal, "SuccessfulCreate", message);
                }
                Err(e) => {
                    c.recorder.record(obj, EventType::Warning, "FailedCreate", format!("Error creating: {e}"));
                    return Err(e);
                }
            }
        }
        return Ok(true);
    }
    if have > want {
        let count = (have - want).min(BURST_REPLICAS);
        log::info!("replicaset {}: deleting {count} pods ({have} of {want})", obj.key());
        for pod in pod_ranking::pods_to_delete(pods, count) {
            let options = DeleteOptions { precondition_uid: Some(pod.metadata.uid.clone()), ..Default::default() };
            match c.store.delete(&Pod::INFO, &pod.metadata.namespace, &pod.metadata.name, &options) {
                Ok(_) | Err(StoreError::NotFound { .. }) => {
                    let message = format!("Deleted pod: {}", pod.metadata.name);
                    c.recorder.record(obj, EventType::Normal, "SuccessfulDelete", message);
                }
                Err(e) => {
                    let message = format!("Error deleting: {e}");
                    c.recorder.record(obj, EventType::Warning, "FailedDelete", message);
                    return Err(e);
                }
            }
        }
        return Ok(true);
    }
    Ok(false)
}
