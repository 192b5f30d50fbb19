//! The RollingUpdate strategy: grow the new set while total pods stay within
//! replicas + maxSurge, shrink old sets (unhealthy pods first) while available pods stay
//! at or above replicas − maxUnavailable.

use super::super::runner::SyncResult;
use super::status::is_complete;
use super::sync::{available_of, creation_order, replicas_of, Rollout};
use super::{history, progress};
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::IntOrString;
use coracle_store::StoreError;

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

pub fn is_rolling(d: &Deployment) -> bool {
    !is_recreate(d)
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) as counts; both zero makes
/// maxUnavailable 1 (`ResolveFenceposts`).
pub fn fenceposts(d: &Deployment) -> Result<(i32, i32), StoreError> {
    let replicas = d.spec.replicas.unwrap_or(1);
    let ru = d.spec.strategy.as_ref().and_then(|s| s.rolling_update.clone()).unwrap_or_default();
    let default = IntOrString::from("25%");
    let resolve = |field: &str, v: Option<IntOrString>, up: bool| {
        v.unwrap_or_else(|| default.clone()).scaled_value(replicas, up).map_err(|e| StoreError::Invalid {
            message: format!("deployment {}: spec.strategy.rollingUpdate.{field}: {e}", d.metadata.name),
        })
    };
    let surge = resolve("maxSurge", ru.max_surge, true)?;
    let unavailable = resolve("maxUnavailable", ru.max_unavailable, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Pods allowed above `replicas` during a rollout; 0 for Recreate.
pub fn max_surge(d: &Deployment) -> Result<i32, StoreError> {
    if !is_rolling(d) {
        return Ok(0);
    }
    Ok(fenceposts(d)?.0)
}

/// Pods allowed to be unavailable during a rollout, at most `replicas`; 0 for Recreate.
pub fn max_unavailable(d: &Deployment) -> Result<i32, StoreError> {
    let replicas = d.spec.replicas.unwrap_or(1);
    if !is_rolling(d) || replicas == 0 {
        return Ok(0);
    }
    Ok(fenceposts(d)?.1.min(replicas))
}

/// The size the new set may grow to now (`NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> Result<i32, StoreError> {
    let replicas = d.spec.replicas.unwrap_or(1);
    if !is_rolling(d) {
        return Ok(replicas);
    }
    let current = replicas_of(new_rs);
    if current >= replicas {
        return Ok(replicas);
    }
    let total: i32 = all.iter().map(|rs| replicas_of(rs)).sum();
    let max_total = replicas + max_surge(d)?;
    if total >= max_total {
        return Ok(current);
    }
    Ok(current + (max_total - total).min(replicas - current))
}

pub(super) fn rollout(r: &mut Rollout) -> SyncResult {
    r.sync_revision(true)?;
    if reconcile_new(r)? || reconcile_old(r)? {
        return progress::sync_rollout_status(r);
    }
    if let Some(status) = r.d.status.clone() {
        if is_complete(&r.d, &status) {
            history::cleanup(r)?;
        }
    }
    progress::sync_rollout_status(r)
}

/// Grows (or trims) the new set; true when it was scaled.
fn reconcile_new(r: &mut Rollout) -> Result<bool, StoreError> {
    let Some(new_rs) = r.new_rs().cloned() else {
        return Ok(false);
    };
    let replicas = r.replicas();
    let current = replicas_of(&new_rs);
    if current == replicas {
        return Ok(false);
    }
    let target = if current > replicas { replicas } else { new_rs_new_replicas(&r.d, &r.all_sets(), &new_rs)? };
    r.scale_and_record(&new_rs.metadata.name, target)
}

/// Shrinks old sets as far as availability allows; true when any was scaled.
fn reconcile_old(r: &mut Rollout) -> Result<bool, StoreError> {
    let old_total: i32 = r.old_sets().iter().map(|rs| replicas_of(rs)).sum();
    if old_total == 0 {
        return Ok(false);
    }
    let all_total: i32 = r.all_sets().iter().map(|rs| replicas_of(rs)).sum();
    let min_available = r.replicas() - max_unavailable(&r.d)?;
    let new_unavailable = r.new_rs().map(|rs| replicas_of(rs) - available_of(rs)).unwrap_or(0);
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(false);
    }
    let cleaned = cleanup_unhealthy(r, max_scaled_down)?;
    let scaled = scale_down_old(r)?;
    Ok(cleaned + scaled > 0)
}

fn old_by_age(r: &Rollout) -> Vec<ReplicaSet> {
    let mut old: Vec<ReplicaSet> = r.old_sets().into_iter().filter(|rs| replicas_of(rs) > 0).cloned().collect();
    old.sort_by_key(creation_order);
    old
}

/// Removes old sets' unavailable replicas first: they serve nothing.
fn cleanup_unhealthy(r: &mut Rollout, max_cleanup: i32) -> Result<i32, StoreError> {
    let mut total = 0;
    for rs in old_by_age(r) {
        if total >= max_cleanup {
            break;
        }
        let unhealthy = replicas_of(&rs) - available_of(&rs);
        if unhealthy <= 0 {
            continue;
        }
        let count = (max_cleanup - total).min(unhealthy);
        r.scale_and_record(&rs.metadata.name, replicas_of(&rs) - count)?;
        total += count;
    }
    Ok(total)
}

/// Scales old sets down, oldest first, by as many available pods as exceed the minimum.
fn scale_down_old(r: &mut Rollout) -> Result<i32, StoreError> {
    let min_available = r.replicas() - max_unavailable(&r.d)?;
    let available: i32 = r.all_sets().iter().map(|rs| available_of(rs)).sum();
    if available <= min_available {
        return Ok(0);
    }
    let allowed = available - min_available;
    let mut total = 0;
    for rs in old_by_age(r) {
        if total >= allowed {
            break;
        }
        let count = replicas_of(&rs).min(allowed - total);
        r.scale_and_record(&rs.metadata.name, replicas_of(&rs) - count)?;
        total += count;
    }
    Ok(total)
}
