//! The Deployment controller with the ReplicaSet controller against a real store; the
//! test steps the world (controllers reconcile until quiet) and plays the kubelet.

use super::*;
use crate::replicaset::ReplicaSetController;
use crate::runner::Reconciler;
use crate::test_support::{deployment, World};
use coracle_config::apps::{DeploymentStrategy, ReplicaSet, RollingUpdateDeployment};
use coracle_config::core::Pod;
use coracle_config::IntOrString;
use std::time::Duration;

struct Sim {
    w: World,
    rsc: ReplicaSetController,
    dc: DeploymentController,
}

impl Sim {
    fn new() -> Sim {
        let w = World::new();
        let rsc = ReplicaSetController::new(w.store.clone(), w.recorder.clone(), w.clock.clone());
        let dc = DeploymentController::new(w.store.clone(), w.recorder.clone(), w.clock.clone());
        Sim { w, rsc, dc }
    }

    /// One deployment pass over every deployment; returns the largest requeue asked for.
    fn deployments_once(&mut self) -> Option<Duration> {
        let mut requeue = None;
        for key in self.dc.all_keys(&self.w.store) {
            requeue = requeue.max(self.dc.reconcile(&key).unwrap());
        }
        requeue
    }

    /// Both controllers until nothing more is written.
    fn settle(&mut self) -> Option<Duration> {
        for _ in 0..100 {
            let before = self.w.store.resource_version();
            let requeue = self.deployments_once();
            for key in self.rsc.all_keys(&self.w.store) {
                self.rsc.reconcile(&key).unwrap();
            }
            if self.w.store.resource_version() == before {
                return requeue;
            }
        }
        panic!("the controllers did not settle");
    }

    fn set(&self, name: &str, change: impl FnOnce(&mut Deployment)) {
        let mut d = self.w.deployment(name);
        change(&mut d);
        self.w.store.update(d.into()).unwrap();
    }

    fn sets(&self) -> Vec<ReplicaSet> {
        let mut sets = self.w.replica_sets();
        sets.sort_by_key(history::revision);
        sets
    }

    fn condition(&self, name: &str, type_: &str) -> (String, String) {
        let d = self.w.deployment(name);
        let c = status::get_condition(d.status.as_ref().unwrap(), type_).unwrap().clone();
        (c.status, c.reason)
    }
}

fn image_of(pod: &Pod) -> &str {
    &pod.spec.containers[0].image
}

fn rolling(d: &mut Deployment, surge: i32, unavailable: i32) {
    d.spec.strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(surge)),
            max_unavailable: Some(IntOrString::Int(unavailable)),
        }),
    });
}

fn set_image(d: &mut Deployment, image: &str) {
    d.spec.template.spec.containers[0].image = image.into();
}

#[test]
fn creates_a_replica_set_named_by_template_hash_with_revision_one() {
    let mut s = Sim::new();
    let d = s.w.create(deployment("web", 3, "nginx:1.25"));
    s.settle();
    let sets = s.sets();
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = pod_template_hash(&s.w.deployment("web").spec.template, None);
    assert_eq!(rs.metadata.name, format!("web-{hash}"));
    assert_eq!(rs.metadata.labels[POD_TEMPLATE_HASH], hash);
    assert_eq!(rs.spec.selector.match_labels[POD_TEMPLATE_HASH], hash);
    assert_eq!(rs.spec.template.metadata.labels[POD_TEMPLATE_HASH], hash);
    assert_eq!(rs.metadata.annotations[REVISION], "1");
    assert_eq!(rs.metadata.annotations[DESIRED_REPLICAS], "3");
    assert_eq!(rs.metadata.annotations[MAX_REPLICAS], "4", "25% of 3 rounds up to 1");
    let owner = rs.metadata.controller_ref().unwrap();
    assert_eq!((owner.uid.as_str(), owner.block_owner_deletion), (d.metadata().uid.as_str(), Some(true)));
    assert_eq!(s.w.deployment("web").metadata.annotations[REVISION], "1");
    let pods = s.w.pods();
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p.metadata.labels[POD_TEMPLATE_HASH] == hash && p.metadata.name.starts_with(&rs.metadata.name)));
    // Created, then progressing as its pods appeared.
    assert_eq!(s.condition("web", "Progressing"), ("True".into(), "ReplicaSetUpdated".into()));
    // maxUnavailable 25% of 3 rounds down to 0: nothing is available yet.
    assert_eq!(s.condition("web", "Available"), ("False".into(), "MinimumReplicasUnavailable".into()));

    s.w.mark_all_ready();
    s.settle();
    let st = s.w.deployment("web").status.unwrap();
    assert_eq!(
        (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!((st.unavailable_replicas, st.observed_generation), (None, Some(1)));
    assert_eq!(s.condition("web", "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
    assert_eq!(s.condition("web", "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
    let events = s.w.events();
    assert!(events.iter().any(
        |e| e.reason == "ScalingReplicaSet" && e.message == format!("Scaled up replica set web-{hash} from 0 to 3")
    ));

    // Quiet once done: a further pass writes nothing.
    let rv = s.w.store.resource_version();
    s.settle();
    assert_eq!(s.w.store.resource_version(), rv);
}

#[test]
fn rolling_update_with_surge_one_never_exceeds_six_or_drops_below_five_ready() {
    let mut s = Sim::new();
    let mut d = deployment("web", 5, "nginx:1.25");
    rolling(&mut d, 1, 0);
    s.w.create(d);
    s.settle();
    s.w.mark_all_ready();
    s.settle();
    s.set("web", |d| set_image(d, "nginx:1.26"));
    let mut steps = 0;
    loop {
        s.settle();
        let pods = s.w.pods();
        let ready = pods.iter().filter(|p| p.is_ready()).count();
        assert!(pods.len() <= 6, "step {steps}: {} pods", pods.len());
        assert!(ready >= 5, "step {steps}: {ready} ready");
        let st = s.w.deployment("web").status.unwrap();
        if status::is_complete(&s.w.deployment("web"), &st) {
            break;
        }
        // The kubelet brings up one new pod per step.
        if let Some(p) = pods.iter().find(|p| !p.is_ready()) {
            s.w.mark_ready(p);
        }
        steps += 1;
        assert!(steps < 20, "the rollout did not finish");
    }
    let pods = s.w.pods();
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| image_of(p) == "nginx:1.26"));
    let sets = s.sets();
    assert_eq!(sets.len(), 2);
    assert_eq!((sets[0].spec.replicas, sets[1].spec.replicas), (Some(0), Some(5)));
    assert_eq!(sets[1].metadata.annotations[REVISION], "2");
    assert_eq!(s.w.deployment("web").metadata.annotations[REVISION], "2");
    assert_eq!(s.condition("web", "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
}

#[test]
fn recreate_removes_every_old_pod_before_creating_new_ones() {
    let mut s = Sim::new();
    let mut d = deployment("web", 3, "nginx:1.25");
    d.spec.strategy = Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None });
    s.w.create(d);
    s.settle();
    s.w.mark_all_ready();
    s.settle();
    s.set("web", |d| set_image(d, "nginx:1.26"));
    // The first deployment pass only scales the old set down; no new set while old pods live.
    s.deployments_once();
    assert_eq!(s.sets().len(), 1);
    assert_eq!(s.sets()[0].spec.replicas, Some(0));
    s.deployments_once();
    assert_eq!(s.sets().len(), 1, "old pods still exist");
    s.settle();
    let pods = s.w.pods();
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| image_of(p) == "nginx:1.26"));
}

#[test]
fn a_paused_deployment_scales_but_does_not_roll_out() {
    let mut s = Sim::new();
    s.w.create(deployment("web", 2, "nginx:1.25"));
    s.settle();
    s.set("web", |d| {
        d.spec.paused = Some(true);
        set_image(d, "nginx:1.26");
    });
    s.settle();
    assert_eq!(s.sets().len(), 1);
    assert_eq!(s.condition("web", "Progressing"), ("Unknown".into(), "DeploymentPaused".into()));
    s.set("web", |d| d.spec.replicas = Some(4));
    s.settle();
    assert_eq!(s.sets()[0].spec.replicas, Some(4));
    assert!(s.w.pods().iter().all(|p| image_of(p) == "nginx:1.25"));
    s.set("web", |d| d.spec.paused = None);
    s.settle();
    assert_eq!(s.sets().len(), 2);
    assert!(s.w.pods().iter().any(|p| image_of(p) == "nginx:1.26"));
}

#[test]
fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let mut s = Sim::new();
    let mut d = deployment("web", 2, "nginx:1.25");
    d.spec.progress_deadline_seconds = Some(30);
    s.w.create(d);
    s.settle();
    s.w.mark_all_ready();
    s.settle();
    s.set("web", |d| set_image(d, "nginx:broken"));
    let requeue = s.settle().expect("a deadline to wake up for");
    assert!(requeue <= Duration::from_secs(31), "{requeue:?}");
    assert_eq!(s.condition("web", "Progressing"), ("True".into(), "ReplicaSetUpdated".into()));
    s.w.time.advance(Duration::from_secs(31));
    s.settle();
    assert_eq!(s.condition("web", "Progressing"), ("False".into(), "ProgressDeadlineExceeded".into()));
    let d = s.w.deployment("web");
    let c = status::get_condition(d.status.as_ref().unwrap(), "Progressing").unwrap();
    assert!(c.message.ends_with("has timed out progressing."), "{}", c.message);
}

#[test]
fn rollback_reuses_the_old_replica_set_and_gives_it_the_next_revision() {
    let mut s = Sim::new();
    s.w.create(deployment("web", 2, "nginx:1.25"));
    s.settle();
    s.w.mark_all_ready();
    s.settle();
    s.set("web", |d| set_image(d, "nginx:1.26"));
    for _ in 0..10 {
        s.settle();
        s.w.mark_all_ready();
    }
    s.settle();
    let first = s.sets().remove(0);
    assert_eq!(first.metadata.annotations[REVISION], "1");
    // What `kubectl rollout undo` sends: the old template without its hash label.
    let mut template = first.spec.template.clone();
    template.metadata.labels.remove(POD_TEMPLATE_HASH);
    s.set("web", |d| d.spec.template = template);
    s.settle();
    let sets = s.sets();
    assert_eq!(sets.len(), 2, "no new set for a template that already has one");
    let back = sets.iter().find(|rs| rs.metadata.name == first.metadata.name).unwrap();
    assert_eq!(back.metadata.annotations[REVISION], "3");
    assert_eq!(back.metadata.annotations[REVISION_HISTORY], "1");
    assert_eq!(s.w.deployment("web").metadata.annotations[REVISION], "3");
    assert!(s.w.pods().iter().any(|p| image_of(p) == "nginx:1.25"));
}

#[test]
fn a_template_annotation_change_is_a_new_rollout() {
    let mut s = Sim::new();
    s.w.create(deployment("web", 1, "nginx:1.25"));
    s.settle();
    s.set("web", |d| {
        d.spec
            .template
            .metadata
            .annotations
            .insert("kubectl.kubernetes.io/restartedAt".into(), "2024-05-01T12:00:00Z".into());
    });
    s.settle();
    assert_eq!(s.sets().len(), 2);
}

#[test]
fn old_sets_beyond_the_history_limit_are_deleted() {
    let mut s = Sim::new();
    let mut d = deployment("web", 1, "app:1");
    d.spec.revision_history_limit = Some(1);
    s.w.create(d);
    for image in ["app:2", "app:3", "app:4"] {
        s.settle();
        s.w.mark_all_ready();
        s.settle();
        s.set("web", |d| set_image(d, image));
        for _ in 0..5 {
            s.settle();
            s.w.mark_all_ready();
        }
    }
    s.settle();
    let revisions: Vec<i64> = s.sets().iter().map(history::revision).collect();
    assert_eq!(revisions, [3, 4]);
}

#[test]
fn scaling_spreads_over_sets_in_proportion() {
    let mut s = Sim::new();
    let mut d = deployment("web", 10, "app:1");
    rolling(&mut d, 3, 2);
    s.w.create(d);
    s.settle();
    s.w.mark_all_ready();
    s.settle();
    // Start a rollout that cannot finish: new pods never become ready.
    s.set("web", |d| set_image(d, "app:2"));
    s.settle();
    let before: i32 = s.sets().iter().map(|rs| rs.spec.replicas.unwrap()).sum();
    assert_eq!(before, 13);
    s.set("web", |d| d.spec.replicas = Some(20));
    s.settle();
    let sets = s.sets();
    let sizes: Vec<i32> = sets.iter().map(|rs| rs.spec.replicas.unwrap()).collect();
    assert_eq!(sizes.iter().sum::<i32>(), 23, "{sizes:?}");
    assert!(sizes[0] > sizes[1], "the bigger old set takes more: {sizes:?}");
    assert!(sets.iter().all(|rs| rs.metadata.annotations[DESIRED_REPLICAS] == "20"));
}
