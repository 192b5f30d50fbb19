//! What a DELETE does to one object: remove it now, or keep it marked for deletion
//! (finalizers pending, a pod terminating gracefully, foreground propagation).

use coracle_config::object::Object;
use coracle_config::time::{span, MAX_SPAN_SECONDS};
use std::time::SystemTime;

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
    /// `dryRun=All`: answer what the delete would do, change nothing.
    pub dry_run: bool,
}

/// The finalizer that holds an owner back until its dependents are gone.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// A pod's grace period when neither the request nor the pod spec names one.
pub const DEFAULT_POD_GRACE_SECONDS: i64 = 30;

/// The outcome of a DELETE for one object.
#[derive(Debug, PartialEq)]
pub(crate) enum DeletePlan {
    /// Gone now.
    Remove,
    /// Stays, as this new version marked for deletion.
    Mark(Box<Object>),
    /// Already marked as the request asks.
    Unchanged,
}

/// True once nothing holds a marked object back: no finalizers and no grace period left.
/// Such an object is removed by the write that brings it to this state.
pub(crate) fn ready_to_remove(obj: &Object) -> bool {
    let m = obj.metadata();
    m.deletion_timestamp.is_some() && m.finalizers.is_empty() && m.deletion_grace_period_seconds.unwrap_or(0) == 0
}

/// Decides a DELETE of `current`. `graceful_pods`: the node is running and terminates
/// pods itself, so a pod is marked and the node removes it once its containers are gone.
pub(crate) fn plan(current: &Object, options: &DeleteOptions, graceful_pods: bool, now: SystemTime) -> DeletePlan {
    let mut next = current.clone();
    let pod_grace = match current {
        Object::Pod(p) if graceful_pods => {
            let period = options
                .grace_period_seconds
                .or(p.spec.termination_grace_period_seconds)
                .unwrap_or(DEFAULT_POD_GRACE_SECONDS);
            // Kubernetes turns a negative period into one second (the pod strategy's
            // CheckGracefulDelete), and a period no clock can count is the longest one that can.
            if period < 0 {
                1
            } else {
                period.min(MAX_SPAN_SECONDS)
            }
        }
        _ => 0,
    };
    let m = next.metadata_mut();
    if options.propagation == Propagation::Foreground && !m.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
        m.finalizers.push(FOREGROUND_FINALIZER.to_string());
    }
    if pod_grace > 0 {
        // A later delete may shorten the grace period, never lengthen it.
        let shorter = m.deletion_grace_period_seconds.is_none_or(|g| pod_grace < g);
        if m.deletion_timestamp.is_none() || shorter {
            m.deletion_timestamp = Some(coracle_config::time::rfc3339(now + span(pod_grace)));
            m.deletion_grace_period_seconds = Some(pod_grace);
        }
    } else if !m.finalizers.is_empty() {
        if m.deletion_timestamp.is_none() {
            m.deletion_timestamp = Some(coracle_config::time::rfc3339(now));
        }
        m.deletion_grace_period_seconds = Some(0);
    } else {
        return DeletePlan::Remove;
    }
    if &next == current {
        DeletePlan::Unchanged
    } else {
        DeletePlan::Mark(Box::new(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::apps::Deployment;
    use coracle_config::core::Pod;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn pod(grace: Option<i64>) -> Object {
        let mut p = Pod::default();
        p.metadata.name = "web".into();
        p.spec.termination_grace_period_seconds = grace;
        p.into()
    }

    fn marked(plan: DeletePlan) -> Object {
        match plan {
            DeletePlan::Mark(o) => *o,
            other => panic!("expected a mark, got {other:?}"),
        }
    }

    #[test]
    fn plain_objects_go_at_once() {
        let d: Object = Deployment::default().into();
        assert_eq!(plan(&d, &DeleteOptions::default(), true, at(0)), DeletePlan::Remove);
    }

    #[test]
    fn pods_go_at_once_without_a_node_or_with_grace_zero() {
        assert_eq!(plan(&pod(None), &DeleteOptions::default(), false, at(0)), DeletePlan::Remove);
        let now = DeleteOptions { grace_period_seconds: Some(0), ..Default::default() };
        assert_eq!(plan(&pod(None), &now, true, at(0)), DeletePlan::Remove);
    }

    #[test]
    fn graceful_pod_deletion_uses_request_then_spec_then_thirty_seconds() {
        let m = marked(plan(&pod(None), &DeleteOptions::default(), true, at(100)));
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(30));
        assert_eq!(m.metadata().deletion_timestamp.as_deref(), Some("1970-01-01T00:02:10Z"));
        let m = marked(plan(&pod(Some(5)), &DeleteOptions::default(), true, at(100)));
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(5));
        let opts = DeleteOptions { grace_period_seconds: Some(2), ..Default::default() };
        let m = marked(plan(&pod(Some(5)), &opts, true, at(100)));
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(2));
        // A second delete may shorten the period but not lengthen it.
        let long = DeleteOptions { grace_period_seconds: Some(60), ..Default::default() };
        assert_eq!(plan(&m, &long, true, at(101)), DeletePlan::Unchanged);
    }

    #[test]
    fn a_grace_period_no_clock_can_count_is_the_longest_one_that_can() {
        // Once an "overflow when adding duration to instant" abort under the writer lock.
        let huge = DeleteOptions { grace_period_seconds: Some(i64::MAX), ..Default::default() };
        let now = at(1_700_000_000);
        let m = marked(plan(&pod(None), &huge, true, now));
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(MAX_SPAN_SECONDS));
        // Compared as text: humantime parses no date after 2038 on 32-bit targets (armv7).
        let due = now + std::time::Duration::from_secs(MAX_SPAN_SECONDS as u64);
        assert_eq!(m.metadata().deletion_timestamp.as_deref(), Some(coracle_config::time::rfc3339(due).as_str()));
        // The same from a pod spec stored before validation bounded it.
        let m = marked(plan(&pod(Some(i64::MAX)), &DeleteOptions::default(), true, now));
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(MAX_SPAN_SECONDS));
        // A later, shorter delete still shortens it.
        let short = DeleteOptions { grace_period_seconds: Some(3), ..Default::default() };
        assert_eq!(marked(plan(&m, &short, true, now)).metadata().deletion_grace_period_seconds, Some(3));
    }

    #[test]
    fn a_negative_grace_period_is_one_second_as_in_kubernetes() {
        let opts = DeleteOptions { grace_period_seconds: Some(-1), ..Default::default() };
        let m = marked(plan(&pod(Some(20)), &opts, true, at(0)));
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(1));
        let opts = DeleteOptions { grace_period_seconds: Some(i64::MIN), ..Default::default() };
        assert_eq!(marked(plan(&pod(None), &opts, true, at(0))).metadata().deletion_grace_period_seconds, Some(1));
    }

    #[test]
    fn finalizers_hold_an_object_marked_until_they_are_gone() {
        let mut d = Deployment::default();
        d.metadata.finalizers = vec!["example.com/hold".into()];
        let d: Object = d.into();
        let m = marked(plan(&d, &DeleteOptions::default(), true, at(7)));
        assert_eq!(m.metadata().deletion_timestamp.as_deref(), Some("1970-01-01T00:00:07Z"));
        assert!(!ready_to_remove(&m));
        assert_eq!(plan(&m, &DeleteOptions::default(), true, at(9)), DeletePlan::Unchanged);
        let mut released = m.clone();
        released.metadata_mut().finalizers.clear();
        assert!(ready_to_remove(&released));
    }

    #[test]
    fn foreground_adds_its_finalizer() {
        let d: Object = Deployment::default().into();
        let opts = DeleteOptions { propagation: Propagation::Foreground, ..Default::default() };
        let m = marked(plan(&d, &opts, true, at(0)));
        assert_eq!(m.metadata().finalizers, [FOREGROUND_FINALIZER]);
        assert_eq!(m.metadata().deletion_grace_period_seconds, Some(0));
    }
}
