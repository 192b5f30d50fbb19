//! Which pods a ReplicaSet deletes first when it has too many, in Kubernetes' order:
//! unscheduled before scheduled, Pending before Unknown before Running, not-ready before
//! ready, more recently ready before longer ready, more restarts before fewer, newer
//! before older.

use super::super::pod_state::{max_restarts, ready_since};
use coracle_config::core::Pod;
use std::cmp::Ordering;

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.phase() {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn is_scheduled(pod: &Pod) -> bool {
    pod.spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
}

fn created(pod: &Pod) -> u64 {
    pod.metadata.creation_timestamp.as_deref().and_then(coracle_config::time::unix_seconds).unwrap_or(0)
}

/// `Less` when `a` should be deleted before `b`.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    is_scheduled(a)
        .cmp(&is_scheduled(b))
        .then_with(|| phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then_with(|| a.is_ready().cmp(&b.is_ready()))
        // Both ready: the one ready for less time goes first.
        .then_with(|| ready_since(b).cmp(&ready_since(a)))
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
        // Same second: the later generated name is no better a guess, but keeps passes stable.
        .then_with(|| b.metadata.name.cmp(&a.metadata.name))
}

/// The `n` pods to delete first.
pub fn pods_to_delete<P: std::borrow::Borrow<Pod>>(pods: &[P], n: usize) -> Vec<&Pod> {
    let mut ranked: Vec<&Pod> = pods.iter().map(<P as std::borrow::Borrow<Pod>>::borrow).collect();
    ranked.sort_by(|a, b| deletion_order(a, b));
    ranked.truncate(n);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{ContainerStatus, PodStatus};
    use coracle_config::meta::Condition;

    fn pod(name: &str, phase: &str, ready_at: Option<&str>, restarts: i32, created: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.creation_timestamp = Some(created.into());
        p.spec.node_name = Some("board".into());
        let conditions = ready_at
            .map(|t| {
                vec![Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(t.into()),
                    ..Default::default()
                }]
            })
            .unwrap_or_default();
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions,
            container_statuses: vec![ContainerStatus {
                name: "c".into(),
                restart_count: restarts,
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    fn order(pods: &[Pod]) -> Vec<&str> {
        pods_to_delete(pods, pods.len()).iter().map(|p| p.metadata.name.as_str()).collect()
    }

    #[test]
    fn deletes_in_kubernetes_order() {
        let mut unscheduled = pod("unscheduled", "Pending", None, 0, "2024-01-01T00:00:00Z");
        unscheduled.spec.node_name = None;
        let pods = vec![
            pod("ready-long", "Running", Some("2024-01-01T00:01:00Z"), 0, "2024-01-01T00:00:00Z"),
            pod("ready-recent", "Running", Some("2024-01-01T00:09:00Z"), 0, "2024-01-01T00:00:00Z"),
            pod("running-unready", "Running", None, 0, "2024-01-01T00:00:00Z"),
            pod("unknown", "Unknown", None, 0, "2024-01-01T00:00:00Z"),
            pod("pending", "Pending", None, 0, "2024-01-01T00:00:00Z"),
            unscheduled,
        ];
        assert_eq!(
            order(&pods),
            ["unscheduled", "pending", "unknown", "running-unready", "ready-recent", "ready-long"]
        );
    }

    #[test]
    fn restarts_then_age_break_ties() {
        let t = Some("2024-01-01T00:05:00Z");
        let pods = vec![
            pod("old", "Running", t, 0, "2024-01-01T00:00:00Z"),
            pod("new", "Running", t, 0, "2024-01-01T00:02:00Z"),
            pod("crashy", "Running", t, 3, "2024-01-01T00:00:00Z"),
        ];
        assert_eq!(order(&pods), ["crashy", "new", "old"]);
    }
}
