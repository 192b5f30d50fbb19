//! The STATUS, READY and RESTARTS a pod shows in `kubectl get pods`, computed as kubectl's
//! `printPod` does.

use coracle_config::core::{ContainerState, Pod};
use coracle_config::time;
use std::time::SystemTime;

/// The pod's STATUS column: an init or container waiting/terminated reason, `Terminating`
/// once deletion started, else the phase (or `status.reason`, e.g. `Evicted`).
pub fn pod_status(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let mut reason = status.phase.clone().unwrap_or_default();
    if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let init_total = pod.spec.init_containers.len();
    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().enumerate() {
        match &c.state {
            ContainerState { terminated: Some(t), .. } if t.exit_code == 0 => continue,
            ContainerState { terminated: Some(t), .. } => {
                reason = if !t.reason.is_empty() {
                    format!("Init:{}", t.reason)
                } else if let Some(signal) = t.signal.filter(|s| *s != 0) {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", t.exit_code)
                };
            }
            ContainerState { waiting: Some(w), .. } if !w.reason.is_empty() && w.reason != "PodInitializing" => {
                reason = format!("Init:{}", w.reason);
            }
            _ => reason = format!("Init:{i}/{init_total}"),
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in status.container_statuses.iter().rev() {
            match &c.state {
                ContainerState { waiting: Some(w), .. } if !w.reason.is_empty() => reason = w.reason.clone(),
                ContainerState { terminated: Some(t), .. } if !t.reason.is_empty() => reason = t.reason.clone(),
                ContainerState { terminated: Some(t), .. } => {
                    reason = match t.signal.filter(|s| *s != 0) {
                        Some(signal) => format!("Signal:{signal}"),
                        None => format!("ExitCode:{}", t.exit_code),
                    }
                }
                ContainerState { running: Some(_), .. } if c.ready => has_running = true,
                _ => {}
            }
        }
        if reason == "Completed" && has_running {
            reason = if pod.is_ready() { "Running".into() } else { "NotReady".into() };
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = if status.reason.as_deref() == Some("NodeLost") { "Unknown".into() } else { "Terminating".into() };
    }
    reason
}

/// `ready/total` containers.
pub fn pod_ready(pod: &Pod) -> String {
    let statuses = pod.status.as_ref().map(|s| s.container_statuses.as_slice()).unwrap_or_default();
    let ready = statuses.iter().filter(|c| c.ready && c.state.running.is_some()).count();
    format!("{ready}/{}", pod.spec.containers.len())
}

/// Restart count, with `(5m ago)` for the most recent restart as kubectl 1.22+ prints it.
pub fn pod_restarts(pod: &Pod, now: SystemTime) -> String {
    let Some(status) = pod.status.as_ref() else { return "0".into() };
    let initializing = status
        .init_container_statuses
        .iter()
        .any(|c| !matches!(&c.state, ContainerState { terminated: Some(t), .. } if t.exit_code == 0));
    let counted = if initializing { &status.init_container_statuses } else { &status.container_statuses };
    let restarts: i32 = counted.iter().map(|c| c.restart_count).sum();
    let last = counted
        .iter()
        .filter_map(|c| c.last_state.terminated.as_ref()?.finished_at.as_deref())
        .max_by_key(|t| time::unix_seconds(t).unwrap_or(0));
    match last {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", time::age(t, now)),
        _ => restarts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn status_follows_kubectl_precedence() {
        let crash = pod(serde_json::json!({
            "spec": {"containers": [{"name": "a", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "a", "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T00:00:00Z"}}}]}
        }));
        assert_eq!(pod_status(&crash), "CrashLoopBackOff");
        assert_eq!(pod_ready(&crash), "0/1");
        let now = time::parse("2024-01-01T00:05:00Z").unwrap();
        assert_eq!(pod_restarts(&crash, now), "4 (5m ago)");

        let done = pod(serde_json::json!({
            "spec": {"containers": [{"name": "a", "image": "x"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a",
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        }));
        assert_eq!(pod_status(&done), "Completed");

        let killed = pod(serde_json::json!({
            "spec": {"containers": [{"name": "a", "image": "x"}]},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "a",
                "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}
        }));
        assert_eq!(pod_status(&killed), "Signal:9");
    }

    #[test]
    fn init_containers_and_deletion_override_the_phase() {
        let init = pod(serde_json::json!({
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "state": {"running": {}}}]}
        }));
        assert_eq!(pod_status(&init), "Init:1/2");
        let failed_init = pod(serde_json::json!({
            "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 3}}}]}
        }));
        assert_eq!(pod_status(&failed_init), "Init:ExitCode:3");
        let terminating = pod(serde_json::json!({
            "metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running"}
        }));
        assert_eq!(pod_status(&terminating), "Terminating");
        assert_eq!(pod_status(&pod(serde_json::json!({"status": {"phase": "Pending"}}))), "Pending");
    }
}
