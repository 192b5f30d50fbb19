//! The Progressing condition: NewReplicaSetCreated / FoundNewReplicaSet /
//! ReplicaSetUpdated while pods move, NewReplicaSetAvailable when done,
//! ProgressDeadlineExceeded when nothing moved for `progressDeadlineSeconds`, and
//! DeploymentPaused / DeploymentResumed.

use super::super::runner::SyncResult;
use super::status::{self, condition, get_condition, remove_condition, set_condition, PROGRESSING};
use super::sync::Rollout;
use coracle_config::apps::{Deployment, DeploymentStatus};
use coracle_store::StoreError;
use std::time::{Duration, SystemTime};

const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const PAUSED: &str = "DeploymentPaused";

/// A deadline is set and is not "never" (MaxInt32).
pub fn has_deadline(d: &Deployment) -> bool {
    d.spec.progress_deadline_seconds.is_some_and(|s| s != i32::MAX)
}

fn deadline(d: &Deployment) -> Duration {
    Duration::from_secs(d.spec.progress_deadline_seconds.unwrap_or(600).max(0) as u64)
}

/// Pods moved since the last status: more updated, ready or available, or fewer old.
fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// When the Progressing condition's deadline passes (None: no deadline running).
fn deadline_at(d: &Deployment, status: &DeploymentStatus) -> Option<SystemTime> {
    if !has_deadline(d) {
        return None;
    }
    let c = get_condition(status, PROGRESSING)?;
    if c.reason == NEW_RS_AVAILABLE || c.reason == TIMED_OUT {
        return None;
    }
    let from = c.last_update_time.as_deref().and_then(coracle_config::time::parse)?;
    Some(from + deadline(d))
}

fn is_timed_out(d: &Deployment, status: &DeploymentStatus, now: SystemTime) -> bool {
    match get_condition(status, PROGRESSING) {
        Some(c) if c.reason == TIMED_OUT => true,
        _ => deadline_at(d, status).is_some_and(|at| at < now),
    }
}

/// Notes a pause or resume in the Progressing condition (`checkPausedConditions`).
pub(super) fn check_paused_conditions(r: &mut Rollout) -> Result<(), StoreError> {
    if !has_deadline(&r.d) {
        return Ok(());
    }
    let mut status = r.d.status.clone().unwrap_or_default();
    let current = get_condition(&status, PROGRESSING);
    if current.is_some_and(|c| c.reason == TIMED_OUT) {
        return Ok(());
    }
    let paused_noted = current.is_some_and(|c| c.reason == PAUSED);
    let paused = r.d.spec.paused == Some(true);
    let cond = if paused && !paused_noted {
        condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), r.now)
    } else if !paused && paused_noted {
        condition(PROGRESSING, "Unknown", "DeploymentResumed", "Deployment is resumed".into(), r.now)
    } else {
        return Ok(());
    };
    set_condition(&mut status, cond);
    r.write_status(status)
}

/// Writes counts and conditions after a rollout step, and asks to be woken at the
/// progress deadline (`syncRolloutStatus` + `requeueStuckDeployment`).
pub(super) fn sync_rollout_status(r: &mut Rollout) -> SyncResult {
    let now = r.now;
    let mut new = status::calculate(&r.d, &r.all_sets(), r.new_rs(), now);
    if !has_deadline(&r.d) {
        remove_condition(&mut new, PROGRESSING);
    }
    let current = r.d.status.as_ref().and_then(|s| get_condition(s, PROGRESSING)).cloned();
    let complete_noted =
        new.replicas == new.updated_replicas && current.as_ref().is_some_and(|c| c.reason == NEW_RS_AVAILABLE);
    let name = r.new_rs().map(|rs| rs.metadata.name.clone());
    let subject = match &name {
        Some(n) => format!("ReplicaSet {n:?}"),
        None => format!("Deployment {:?}", r.d.metadata.name),
    };
    if has_deadline(&r.d) && !complete_noted {
        if status::is_complete(&r.d, &new) {
            let message = format!("{subject} has successfully progressed.");
            set_condition(&mut new, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now));
        } else if is_progressing(&r.d, &new) {
            let mut cond =
                condition(PROGRESSING, "True", "ReplicaSetUpdated", format!("{subject} is progressing."), now);
            if let Some(c) = current.as_ref().filter(|c| c.status == "True") {
                cond.last_transition_time.clone_from(&c.last_transition_time);
            }
            // Replaced, not merged: progress moves lastUpdateTime, which restarts the deadline.
            remove_condition(&mut new, PROGRESSING);
            set_condition(&mut new, cond);
        } else if is_timed_out(&r.d, &new, now) {
            let message = format!("{subject} has timed out progressing.");
            set_condition(&mut new, condition(PROGRESSING, "False", TIMED_OUT, message, now));
        }
    }
    r.write_status(new.clone())?;
    // Wake up when the deadline would pass, plus a second for timestamps' whole seconds.
    Ok(deadline_at(&r.d, &new).map(|at| at.duration_since(now).unwrap_or_default() + Duration::from_secs(1)))
}
