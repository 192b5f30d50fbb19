//! The Recreate strategy: every old pod gone before the new set scales up.

use super::super::runner::SyncResult;
use super::status::is_complete;
use super::sync::{replicas_of, Rollout};
use super::{history, progress};
use coracle_config::core::Pod;

pub(super) fn rollout(r: &mut Rollout) -> SyncResult {
    r.sync_revision(false)?;
    let active_old: Vec<String> =
        r.old_sets().iter().filter(|rs| replicas_of(rs) > 0).map(|rs| rs.metadata.name.clone()).collect();
    let mut scaled_down = false;
    for name in active_old {
        scaled_down |= r.scale_and_record(&name, 0)?;
    }
    if scaled_down || old_pods_running(r) {
        return progress::sync_rollout_status(r);
    }
    if r.new_rs().is_none() {
        r.sync_revision(true)?;
    }
    if let Some(name) = r.new_rs().map(|rs| rs.metadata.name.clone()) {
        let replicas = r.replicas();
        r.scale_and_record(&name, replicas)?;
    }
    if let Some(status) = r.d.status.clone() {
        if is_complete(&r.d, &status) {
            history::cleanup(r)?;
        }
    }
    progress::sync_rollout_status(r)
}

/// True while an old set still reports pods, or a pod of an old set has not finished
/// (terminating pods count: they may still hold ports and volumes).
fn old_pods_running(r: &Rollout) -> bool {
    let old = r.old_sets();
    if old.iter().any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0)) {
        return true;
    }
    let old_uids: Vec<&str> = old.iter().map(|rs| rs.metadata.uid.as_str()).collect();
    r.c.store.list_as::<Pod>(Some(&r.d.metadata.namespace), None).iter().any(|p| {
        p.metadata.controller_ref().is_some_and(|c| old_uids.contains(&c.uid.as_str()))
            && !matches!(p.phase(), "Succeeded" | "Failed")
    })
}
