//! A deployment's status from its ReplicaSets, its conditions, and whether a change is
//! worth a write to flash.

use super::rolling::max_unavailable;
use coracle_config::apps::{Deployment, DeploymentStatus, ReplicaSet};
use coracle_config::meta::Condition;
use coracle_config::time::rfc3339;
use std::time::SystemTime;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";

fn non_zero(n: i32) -> Option<i32> {
    (n > 0).then_some(n)
}

/// A condition stamped `now`.
pub fn condition(type_: &str, status: &str, reason: &str, message: String, now: SystemTime) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_update_time: Some(rfc3339(now)),
        last_transition_time: Some(rfc3339(now)),
        ..Default::default()
    }
}

pub fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// Sets a condition unless one with the same status and reason is there; the transition
/// time moves only when the status does.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: Condition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time.clone_from(&current.last_transition_time);
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.push(cond);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    status.conditions.retain(|c| c.type_ != type_);
}

/// Counts summed over the deployment's sets, plus the Available condition.
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: SystemTime,
) -> DeploymentStatus {
    let st = |rs: &&ReplicaSet| rs.status.clone().unwrap_or_default();
    let available: i32 = all.iter().map(|rs| st(rs).available_replicas.unwrap_or(0)).sum();
    let actual: i32 = all.iter().map(|rs| st(rs).replicas).sum();
    let ready: i32 = all.iter().map(|rs| st(rs).ready_replicas.unwrap_or(0)).sum();
    let wanted: i32 = all.iter().map(|rs| rs.spec.replicas.unwrap_or(0)).sum();
    let previous = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: Some(d.metadata.generation),
        replicas: non_zero(actual),
        updated_replicas: non_zero(new_rs.map(|rs| st(&rs).replicas).unwrap_or(0)),
        ready_replicas: non_zero(ready),
        available_replicas: non_zero(available),
        unavailable_replicas: non_zero(wanted - available),
        conditions: previous.conditions,
        collision_count: previous.collision_count,
    };
    let replicas = d.spec.replicas.unwrap_or(1);
    let min_available = replicas - max_unavailable(d).unwrap_or(0);
    let cond = if available >= min_available {
        condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), now)
    } else {
        condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, cond);
    status
}

/// The status without the timestamps that move on their own.
fn without_timestamps(status: &DeploymentStatus) -> DeploymentStatus {
    let mut s = status.clone();
    for c in &mut s.conditions {
        c.last_update_time = None;
        c.last_transition_time = None;
    }
    s.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    s
}

/// True when counts, generation or a condition's status/reason/message changed: worth
/// persisting. A change of timestamps alone stays in memory.
pub fn meaningful_change(old: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    old.map(without_timestamps) != Some(without_timestamps(new))
}

/// `DeploymentComplete`: every replica updated and available, and the spec observed.
pub fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = d.spec.replicas.unwrap_or(1);
    status.updated_replicas.unwrap_or(0) == replicas
        && status.replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) == replicas
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation
}
