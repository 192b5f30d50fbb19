//! The Deployment controller: one ReplicaSet per pod template, rolled out by the
//! RollingUpdate or Recreate strategy, with revisions, rollback, pause, history cleanup
//! and the Available/Progressing conditions as Kubernetes reports them.

mod hash;
mod history;
mod progress;
mod recreate;
mod rollback;
mod rolling;
mod status;
mod sync;

#[cfg(test)]
mod tests;

pub use hash::pod_template_hash;
pub use rollback::equal_ignore_hash;

use super::clock::Clock;
use super::runner::{self, ObjectKey, Reconciler, SyncResult};
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::core::Pod;
use coracle_config::object::{Object, Resource};
use coracle_store::events::Recorder;
use coracle_store::{Store, WatchEvent, WatchFilter};

/// The revision a set (and its deployment) carries.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The revisions a set had before a rollback brought it back.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The deployment's replicas when the set was last sized.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// replicas + maxSurge when the set was last sized.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label tying a set, its selector and its pods to one template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Reconciles Deployments against their ReplicaSets.
pub struct DeploymentController {
    store: Store,
    recorder: Recorder,
    clock: Clock,
}

impl DeploymentController {
    /// A controller writing through `store` and recording events with `recorder`.
    pub fn new(store: Store, recorder: Recorder, clock: Clock) -> DeploymentController {
        DeploymentController { store, recorder: recorder.for_component("deployment-controller"), clock }
    }

    /// The deployments whose selector matches an orphan's labels.
    fn adopters(
        &self,
        store: &Store,
        namespace: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Vec<ObjectKey> {
        store
            .list_as::<Deployment>(Some(namespace), None)
            .iter()
            .filter(|d| !d.spec.selector.is_empty() && d.spec.selector.matches(labels))
            .map(|d| ObjectKey::new(namespace, &d.metadata.name))
            .collect()
    }
}

impl Reconciler for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    fn watches(&self) -> WatchFilter {
        WatchFilter::kinds(&[&Deployment::INFO, &ReplicaSet::INFO, &Pod::INFO])
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
        runner::keys_of::<Deployment>(store)
    }

    fn keys_for(&self, store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        let obj = event.object();
        let m = obj.metadata();
        match &**obj {
            Object::Deployment(_) => vec![ObjectKey::new(&m.namespace, &m.name)],
            Object::ReplicaSet(_) => match m.controller_ref() {
                Some(r) if r.kind == "Deployment" => vec![ObjectKey::new(&m.namespace, &r.name)],
                Some(_) => Vec::new(),
                None if !matches!(event, WatchEvent::Deleted(_)) => self.adopters(store, &m.namespace, &m.labels),
                None => Vec::new(),
            },
            // Recreate waits for old pods to be gone; only their deletion matters here.
            Object::Pod(_) if matches!(event, WatchEvent::Deleted(_)) => {
                let Some(rs_ref) = m.controller_ref().filter(|r| r.kind == "ReplicaSet") else {
                    return Vec::new();
                };
                let rs = store.get_as::<ReplicaSet>(&m.namespace, &rs_ref.name);
                rs.and_then(|rs| {
                    let r = rs.metadata.controller_ref()?;
                    (r.kind == "Deployment").then(|| ObjectKey::new(&m.namespace, &r.name))
                })
                .into_iter()
                .collect()
            }
            _ => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        sync::sync_deployment(self, key)
    }
}
