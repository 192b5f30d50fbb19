//! Which ReplicaSet is the deployment's "new" one: the oldest whose template equals the
//! deployment's, ignoring `pod-template-hash`. This is also how `rollout undo` works:
//! kubectl writes an old ReplicaSet's template back into the deployment, that set matches
//! again and becomes the new one, and `history` gives it revision max+1 — no set is created.

use super::POD_TEMPLATE_HASH;
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::core::PodTemplateSpec;

/// Templates equal once both lose their `pod-template-hash` label.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        t.metadata.labels.remove(POD_TEMPLATE_HASH);
        t
    };
    strip(a) == strip(b)
}

/// The name of the set running the deployment's current template, if any.
pub fn find_new_replica_set<'a>(d: &Deployment, sets: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut matching: Vec<&ReplicaSet> =
        sets.iter().filter(|rs| equal_ignore_hash(&rs.spec.template, &d.spec.template)).collect();
    // Should two ever match, the oldest wins every time (kubernetes#40415).
    matching.sort_by_key(|rs| super::sync::creation_order(rs));
    matching.first().copied()
}
