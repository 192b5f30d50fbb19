//! What controllers read from a pod's status: active, ready, available.

use coracle_config::core::Pod;
use std::time::{Duration, SystemTime};

/// Counts toward a controller's replicas: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(pod.phase(), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod last became Ready, if it is Ready now.
pub fn ready_since(pod: &Pod) -> Option<SystemTime> {
    let c = pod.condition("Ready").filter(|c| c.status == "True")?;
    c.last_transition_time.as_deref().and_then(coracle_config::time::parse)
}

/// How long until a Ready pod counts as available: zero once it has been Ready for
/// `min_ready_seconds`; None when it is not Ready (so not on its way to available).
pub fn time_to_available(pod: &Pod, min_ready_seconds: i32, now: SystemTime) -> Option<Duration> {
    if !pod.is_ready() {
        return None;
    }
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    // Kubernetes counts a Ready pod without a transition time as not yet available.
    let since = ready_since(pod)?;
    let available_at = since + Duration::from_secs(min_ready_seconds as u64);
    Some(available_at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Ready for at least `min_ready_seconds` (Kubernetes' `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: SystemTime) -> bool {
    time_to_available(pod, min_ready_seconds, now) == Some(Duration::ZERO)
}

/// The highest restart count among the pod's containers.
pub fn max_restarts(pod: &Pod) -> i32 {
    pod.status.as_ref().and_then(|s| s.container_statuses.iter().map(|c| c.restart_count).max()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::PodStatus;
    use coracle_config::meta::Condition;

    fn ready_at(t: SystemTime) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(coracle_config::time::rfc3339(t)),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn availability_waits_min_ready_seconds_after_ready() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let p = ready_at(t0);
        assert!(is_available(&p, 0, t0));
        assert!(!is_available(&p, 10, t0 + Duration::from_secs(9)));
        assert_eq!(time_to_available(&p, 10, t0 + Duration::from_secs(4)), Some(Duration::from_secs(6)));
        assert!(is_available(&p, 10, t0 + Duration::from_secs(10)));
        assert_eq!(time_to_available(&Pod::default(), 0, t0), None);
    }

    #[test]
    fn finished_and_deleted_pods_are_not_active() {
        let mut p = ready_at(SystemTime::UNIX_EPOCH);
        assert!(is_active(&p));
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!is_active(&p));
        let mut q = Pod::default();
        q.metadata.deletion_timestamp = Some("2024-01-01T00:00:00Z".into());
        assert!(!is_active(&q));
    }
}
