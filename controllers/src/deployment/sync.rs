//! One pass for one deployment: claim its ReplicaSets, find (or create) the set for the
//! current template and sync revisions, then scale, pause, or hand over to a strategy.

use super::super::ownership::{adopt, claim, controller_ref, release, Claim};
use super::super::runner::{ObjectKey, SyncResult};
use super::hash::pod_template_hash;
use super::rollback::{equal_ignore_hash, find_new_replica_set};
use super::rolling::{max_surge, new_rs_new_replicas};
use super::status::{self, condition, get_condition, meaningful_change, set_condition, PROGRESSING};
use super::{
    history, progress, recreate, rolling, DeploymentController, DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH,
};
use coracle_config::apps::{Deployment, DeploymentStatus, ReplicaSet};
use coracle_config::object::Object;
use coracle_store::events::EventType;
use coracle_store::StoreError;
use std::time::SystemTime;

/// Sort key for "oldest first": creation second, then revision, then name.
pub(super) fn creation_order(rs: &ReplicaSet) -> (u64, i64, String) {
    let created = rs.metadata.creation_timestamp.as_deref().and_then(coracle_config::time::unix_seconds).unwrap_or(0);
    (created, history::revision(rs), rs.metadata.name.clone())
}

pub(super) fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

pub(super) fn available_of(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// The state of one pass: the deployment and its sets as last written.
pub(super) struct Rollout<'a> {
    pub c: &'a DeploymentController,
    pub now: SystemTime,
    pub d: Deployment,
    pub sets: Vec<ReplicaSet>,
    /// The name of the set running the current template, once known.
    pub new_name: Option<String>,
}

impl Rollout<'_> {
    pub fn replicas(&self) -> i32 {
        self.d.spec.replicas.unwrap_or(1)
    }

    pub fn new_rs(&self) -> Option<&ReplicaSet> {
        let name = self.new_name.as_deref()?;
        self.sets.iter().find(|rs| rs.metadata.name == name)
    }

    /// Every set but the new one.
    pub fn old_sets(&self) -> Vec<&ReplicaSet> {
        self.sets.iter().filter(|rs| Some(rs.metadata.name.as_str()) != self.new_name.as_deref()).collect()
    }

    pub fn all_sets(&self) -> Vec<&ReplicaSet> {
        self.sets.iter().collect()
    }

    pub fn event(&self, type_: EventType, reason: &str, message: String) {
        self.c.recorder.record(&Object::Deployment(self.d.clone()), type_, reason, message);
    }

    fn replace_set(&mut self, rs: &ReplicaSet) {
        match self.sets.iter_mut().find(|s| s.metadata.name == rs.metadata.name) {
            Some(slot) => *slot = rs.clone(),
            None => self.sets.push(rs.clone()),
        }
    }

    /// Writes the deployment's metadata (the revision annotation).
    fn write_deployment(&mut self) -> Result<(), StoreError> {
        self.d = (*self.c.store.update_as(self.d.clone())?).clone();
        Ok(())
    }

    /// Writes `status` if it differs; persisted only when the difference is meaningful.
    pub fn write_status(&mut self, status: DeploymentStatus) -> Result<(), StoreError> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let persist = meaningful_change(self.d.status.as_ref(), &status);
        let mut next = self.d.clone();
        next.status = Some(status);
        self.d = (*self.c.store.update_status_as(next, persist)?).clone();
        Ok(())
    }

    /// Sets a set's size and its desired/max-replicas annotations; true when the size
    /// changed (Kubernetes' `scaleReplicaSet`).
    pub fn scale_set(&mut self, name: &str, size: i32) -> Result<bool, StoreError> {
        let Some(rs) = self.sets.iter().find(|rs| rs.metadata.name == name) else {
            return Ok(false);
        };
        let mut next = rs.clone();
        let old = replicas_of(rs);
        let max = self.replicas() + max_surge(&self.d)?;
        let annotations_changed = history::set_replicas_annotations(&mut next, self.replicas(), max);
        if old == size && !annotations_changed {
            return Ok(false);
        }
        next.spec.replicas = Some(size);
        let stored = self.c.store.update_as(next)?;
        self.replace_set(&stored);
        if old == size {
            return Ok(false);
        }
        let direction = if size > old { "up" } else { "down" };
        log::info!("deployment {}: scaling {name} {direction} to {size} from {old}", self.d.metadata.name);
        self.event(
            EventType::Normal,
            "ScalingReplicaSet",
            format!("Scaled {direction} replica set {name} to {size} from {old}"),
        );
        Ok(true)
    }

    /// Scales a set unless it already has `size` (`scaleReplicaSetAndRecordEvent`).
    pub fn scale_and_record(&mut self, name: &str, size: i32) -> Result<bool, StoreError> {
        let same = self.sets.iter().any(|rs| rs.metadata.name == name && replicas_of(rs) == size);
        if same {
            return Ok(false);
        }
        self.scale_set(name, size)
    }

    /// Finds the set for the current template (creating it when `create`), and brings
    /// revisions and the revision annotation up to date
    /// (`getAllReplicaSetsAndSyncRevision`).
    pub fn sync_revision(&mut self, create: bool) -> Result<(), StoreError> {
        let found = find_new_replica_set(&self.d, &self.sets).map(|rs| rs.metadata.name.clone());
        let max_old = self
            .sets
            .iter()
            .filter(|rs| Some(&rs.metadata.name) != found.as_ref())
            .map(history::revision)
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let surge = max_surge(&self.d)?;
        if let Some(name) = found {
            self.new_name = Some(name.clone());
            let rs = self.new_rs().expect("found among the sets").clone();
            let mut next = rs.clone();
            let mut changed = history::set_new_rs_annotations(&self.d, &mut next, new_revision, true, surge);
            if next.spec.min_ready_seconds.unwrap_or(0) != self.d.spec.min_ready_seconds.unwrap_or(0) {
                next.spec.min_ready_seconds = self.d.spec.min_ready_seconds;
                changed = true;
            }
            if changed {
                let stored = self.c.store.update_as(next)?;
                self.replace_set(&stored);
            }
            let revision = history::revision(self.new_rs().expect("still there"));
            if history::set_deployment_revision(&mut self.d, revision) {
                self.write_deployment()?;
            }
            let mut status = self.d.status.clone().unwrap_or_default();
            if progress::has_deadline(&self.d) && get_condition(&status, PROGRESSING).is_none() {
                let message = format!("Found new replica set {name:?}");
                set_condition(&mut status, condition(PROGRESSING, "True", "FoundNewReplicaSet", message, self.now));
                self.write_status(status)?;
            }
            return Ok(());
        }
        self.new_name = None;
        if create {
            self.create_new_set(new_revision, surge)?;
        }
        Ok(())
    }

    fn create_new_set(&mut self, new_revision: i64, surge: i32) -> Result<(), StoreError> {
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&self.d.spec.template, collision_count);
        let mut template = self.d.spec.template.clone();
        template.metadata.labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = self.d.spec.selector.clone();
        selector.match_labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut rs = ReplicaSet::default();
        rs.metadata.name = format!("{}-{hash}", self.d.metadata.name);
        rs.metadata.namespace = self.d.metadata.namespace.clone();
        rs.metadata.labels = template.metadata.labels.clone();
        rs.metadata.owner_references = vec![controller_ref(&Object::Deployment(self.d.clone()))];
        rs.spec.replicas = Some(0);
        rs.spec.min_ready_seconds = self.d.spec.min_ready_seconds;
        rs.spec.selector = selector;
        rs.spec.template = template;
        let mut all: Vec<&ReplicaSet> = self.sets.iter().collect();
        all.push(&rs);
        let size = new_rs_new_replicas(&self.d, &all, &rs)?;
        rs.spec.replicas = Some(size);
        history::set_new_rs_annotations(&self.d, &mut rs, new_revision, false, surge);
        let name = rs.metadata.name.clone();
        match self.c.store.create_as(rs) {
            Ok(stored) => self.replace_set(&stored),
            Err(e @ StoreError::AlreadyExists { .. }) => {
                let existing = self.c.store.get_as::<ReplicaSet>(&self.d.metadata.namespace, &name);
                let ours_and_same = existing.is_some_and(|rs| {
                    rs.metadata.controller_ref().is_some_and(|r| r.uid == self.d.metadata.uid)
                        && equal_ignore_hash(&rs.spec.template, &self.d.spec.template)
                });
                if !ours_and_same {
                    // Another set holds the name: move the hash with the collision count.
                    let mut status = self.d.status.clone().unwrap_or_default();
                    status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    log::warn!("deployment {}: hash collision on {name}", self.d.metadata.name);
                    self.write_status(status)?;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.new_name = Some(name.clone());
        if size > 0 {
            self.event(
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {size}"),
            );
        }
        if history::set_deployment_revision(&mut self.d, new_revision) {
            self.write_deployment()?;
        }
        if progress::has_deadline(&self.d) {
            let mut status = self.d.status.clone().unwrap_or_default();
            let message = format!("Created new replica set {name:?}");
            set_condition(&mut status, condition(PROGRESSING, "True", "NewReplicaSetCreated", message, self.now));
            self.write_status(status)?;
        }
        Ok(())
    }

    /// True when an active set was sized for another replica count (`isScalingEvent`).
    fn is_scaling_event(&self) -> bool {
        let replicas = self.replicas();
        self.sets.iter().filter(|rs| replicas_of(rs) > 0).any(|rs| {
            rs.metadata
                .annotations
                .get(DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .is_some_and(|n| n != replicas)
        })
    }

    /// Writes the counts and Available condition (no progress bookkeeping).
    pub fn sync_status(&mut self) -> Result<(), StoreError> {
        let status = status::calculate(&self.d, &self.all_sets(), self.new_rs(), self.now);
        self.write_status(status)
    }

    /// Resizes for a replica-count change or while paused, without rolling (`sync`).
    fn sync_scale_only(&mut self) -> SyncResult {
        self.sync_revision(false)?;
        self.scale()?;
        if self.d.spec.paused == Some(true) {
            history::cleanup(self)?;
        }
        self.sync_status()?;
        Ok(None)
    }

    /// Proportional scaling: spreads a replica-count change over the active sets, bigger
    /// sets taking more (`scale`).
    fn scale(&mut self) -> Result<(), StoreError> {
        let replicas = self.replicas();
        let active: Vec<&ReplicaSet> = self.sets.iter().filter(|rs| replicas_of(rs) > 0).collect();
        // One active set (or none): it takes the whole count.
        let only = match (active.len(), self.new_rs()) {
            (1, _) => Some(active[0].metadata.name.clone()),
            (0, Some(new)) => Some(new.metadata.name.clone()),
            (0, None) => self.sets.iter().max_by_key(|rs| creation_order(rs)).map(|rs| rs.metadata.name.clone()),
            _ => None,
        };
        if let Some(name) = only {
            self.scale_and_record(&name, replicas)?;
            return Ok(());
        }
        // The new set is fully rolled out: the old ones go.
        if let Some(new) = self.new_rs() {
            let desired = new.metadata.annotations.get(DESIRED_REPLICAS).and_then(|v| v.parse::<i32>().ok());
            if desired == Some(replicas) && replicas_of(new) == replicas && available_of(new) == replicas {
                let old: Vec<String> = self
                    .old_sets()
                    .iter()
                    .filter(|rs| replicas_of(rs) > 0)
                    .map(|rs| rs.metadata.name.clone())
                    .collect();
                for name in old {
                    self.scale_and_record(&name, 0)?;
                }
                return Ok(());
            }
        }
        if !rolling::is_rolling(&self.d) {
            return Ok(());
        }
        let surge = max_surge(&self.d)?;
        let allowed = if replicas > 0 { replicas + surge } else { 0 };
        let current: i32 = active.iter().map(|rs| replicas_of(rs)).sum();
        let to_add = allowed - current;
        let mut order: Vec<ReplicaSet> = active.into_iter().cloned().collect();
        if to_add > 0 {
            // Bigger first; among equals, newer first.
            order.sort_by(|a, b| {
                replicas_of(b).cmp(&replicas_of(a)).then_with(|| creation_order(b).cmp(&creation_order(a)))
            });
        } else {
            order.sort_by(|a, b| {
                replicas_of(b).cmp(&replicas_of(a)).then_with(|| creation_order(a).cmp(&creation_order(b)))
            });
        }
        let previous_total = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let mut added = 0;
        let mut sizes: Vec<(String, i32)> = Vec::new();
        for rs in &order {
            let proportion =
                if to_add != 0 { proportion(rs, replicas, surge, previous_total, to_add, added) } else { 0 };
            added += proportion;
            sizes.push((rs.metadata.name.clone(), replicas_of(rs) + proportion));
        }
        // Rounding leftovers go to the biggest set.
        if added != to_add {
            if let Some(first) = sizes.first_mut() {
                first.1 = (first.1 + to_add - added).max(0);
            }
        }
        for (name, size) in sizes {
            self.scale_set(&name, size)?;
        }
        Ok(())
    }
}

/// How many replicas `rs` gains or loses of `to_add` (`GetProportion`).
fn proportion(rs: &ReplicaSet, replicas: i32, surge: i32, previous_total: i32, to_add: i32, added: i32) -> i32 {
    if replicas_of(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas == 0 {
        -replicas_of(rs)
    } else {
        let target = replicas + surge;
        let annotated = rs
            .metadata
            .annotations
            .get(MAX_REPLICAS)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(previous_total)
            .max(1);
        let size = f64::from(replicas_of(rs) * target) / f64::from(annotated);
        size.round() as i32 - replicas_of(rs)
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// The sets `d` controls, after adopting orphans its selector matches and releasing
/// sets that stopped matching.
fn claim_sets(c: &DeploymentController, obj: &Object, d: &Deployment) -> Result<Vec<ReplicaSet>, StoreError> {
    let mut owned = Vec::new();
    for rs in c.store.list_as::<ReplicaSet>(Some(&d.metadata.namespace), None) {
        match claim(&d.metadata, &d.spec.selector, &rs.metadata) {
            Claim::Owned => owned.push(ReplicaSet::clone(&rs)),
            Claim::Adopt => owned.push((*adopt(&c.store, &*rs, obj)?).clone()),
            Claim::Release => drop(release(&c.store, &*rs, &d.metadata.uid)?),
            Claim::Ignore => {}
        }
    }
    Ok(owned)
}

pub(super) fn sync_deployment(c: &DeploymentController, key: &ObjectKey) -> SyncResult {
    let Some(typed) = c.store.get_as::<Deployment>(&key.namespace, &key.name) else {
        return Ok(None);
    };
    let (obj, d) = (typed.object(), &*typed);
    let mut r = Rollout { c, now: c.clock.now(), d: d.clone(), sets: Vec::new(), new_name: None };
    if d.spec.selector.is_empty() {
        // Selecting everything would claim every set in the namespace.
        r.event(
            EventType::Warning,
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        );
        let mut status = d.status.clone().unwrap_or_default();
        status.observed_generation = Some(d.metadata.generation);
        r.write_status(status)?;
        return Ok(None);
    }
    r.sets = claim_sets(c, obj, d)?;
    if d.metadata.deletion_timestamp.is_some() {
        r.sync_revision(false)?;
        r.sync_status()?;
        return Ok(None);
    }
    progress::check_paused_conditions(&mut r)?;
    if r.d.spec.paused == Some(true) || r.is_scaling_event() {
        return r.sync_scale_only();
    }
    if rolling::is_recreate(&r.d) {
        recreate::rollout(&mut r)
    } else {
        rolling::rollout(&mut r)
    }
}
