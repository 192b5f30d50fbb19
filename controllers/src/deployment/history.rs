//! Revisions: the `deployment.kubernetes.io/revision` annotation on sets and deployment,
//! the annotations a deployment passes to its sets, and trimming old sets beyond
//! `revisionHistoryLimit`.

use super::sync::Rollout;
use super::{DESIRED_REPLICAS, MAX_REPLICAS, REVISION, REVISION_HISTORY};
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::object::Resource;
use coracle_store::{DeleteOptions, StoreError};

/// Deployment annotations that stay on the deployment.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// A set's revision; 0 when it has none.
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.get(REVISION).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Sets desired-replicas and max-replicas; true when either changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = &mut rs.metadata.annotations;
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if a.get(key) != Some(&value) {
            a.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

/// Copies the deployment's annotations, raises the set's revision to `new_revision`
/// (remembering the one it had), and on a set being created sets the replica annotations;
/// true when anything changed (`SetNewReplicaSetAnnotations`).
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    surge: i32,
) -> bool {
    let mut changed = false;
    for (k, v) in &d.metadata.annotations {
        if NOT_COPIED.contains(&k.as_str()) || rs.metadata.annotations.get(k) == Some(v) {
            continue;
        }
        rs.metadata.annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = revision(rs);
    if old < new_revision {
        let a = &mut rs.metadata.annotations;
        if old > 0 {
            let mut history: Vec<String> =
                a.get(REVISION_HISTORY).map(|h| h.split(',').map(str::to_string).collect()).unwrap_or_default();
            history.push(old.to_string());
            a.insert(REVISION_HISTORY.into(), history.join(","));
        }
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
    }
    if !exists {
        let replicas = d.spec.replicas.unwrap_or(1);
        changed |= set_replicas_annotations(rs, replicas, replicas + surge);
    }
    changed
}

/// Puts `revision` on the deployment; true when it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: i64) -> bool {
    let value = revision.to_string();
    if d.metadata.annotations.get(REVISION) == Some(&value) {
        return false;
    }
    d.metadata.annotations.insert(REVISION.into(), value);
    true
}

/// Deletes the oldest scaled-down sets beyond `revisionHistoryLimit` (`cleanupDeployment`).
pub fn cleanup(r: &mut Rollout) -> Result<(), StoreError> {
    let Some(limit) = r.d.spec.revision_history_limit else {
        return Ok(());
    };
    let mut cleanable: Vec<&ReplicaSet> =
        r.old_sets().into_iter().filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
    let surplus = cleanable.len() as i64 - i64::from(limit.max(0));
    if surplus <= 0 {
        return Ok(());
    }
    cleanable.sort_by_key(|rs| (revision(rs), super::sync::creation_order(rs)));
    let doomed: Vec<(String, String, String)> = cleanable
        .iter()
        .take(surplus as usize)
        .filter(|rs| {
            let st = rs.status.clone().unwrap_or_default();
            // Only sets that are scaled down and whose scale-down has been observed.
            st.replicas == 0
                && rs.spec.replicas.unwrap_or(0) == 0
                && st.observed_generation.unwrap_or(0) >= rs.metadata.generation
        })
        .map(|rs| (rs.metadata.namespace.clone(), rs.metadata.name.clone(), rs.metadata.uid.clone()))
        .collect();
    for (namespace, name, uid) in doomed {
        log::info!(
            "deployment {}: deleting old replica set {name} (revision history limit {limit})",
            r.d.metadata.name
        );
        let options = DeleteOptions { precondition_uid: Some(uid), ..Default::default() };
        match r.c.store.delete(&ReplicaSet::INFO, &namespace, &name, &options) {
            Ok(_) | Err(StoreError::NotFound { .. }) => r.sets.retain(|rs| rs.metadata.name != name),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
