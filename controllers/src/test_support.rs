//! A world for controller tests: a real store in a temporary folder, a hand-moved clock,
//! and the kubelet's part played by the test (marking pods Running and Ready).

use super::clock::{Clock, ManualTime};
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::core::{Container, Event, Pod, PodStatus, PodTemplateSpec};
use coracle_config::meta::{Condition, LabelSelector};
use coracle_config::object::{Object, Resource};
use coracle_store::events::Recorder;
use coracle_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct World {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub recorder: Recorder,
    pub clock: Clock,
    pub time: ManualTime,
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector { match_labels: labels(pairs), ..Default::default() }
}

pub fn template(app: &str, image: &str) -> PodTemplateSpec {
    let mut t = PodTemplateSpec::default();
    t.metadata.labels = labels(&[("app", app)]);
    t.spec.containers = vec![Container { name: "c".into(), image: image.into(), ..Default::default() }];
    t
}

/// A defaulted deployment, as the API would store it.
pub fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    let mut d = Deployment::default();
    d.metadata.name = name.into();
    d.metadata.namespace = "default".into();
    d.spec.replicas = Some(replicas);
    d.spec.selector = selector(&[("app", name)]);
    d.spec.template = template(name, image);
    let mut obj = Object::Deployment(d);
    coracle_config::defaults::apply(&mut obj);
    obj.try_into().unwrap()
}

pub fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    let mut rs = ReplicaSet::default();
    rs.metadata.name = name.into();
    rs.metadata.namespace = "default".into();
    rs.spec.replicas = Some(replicas);
    rs.spec.selector = selector(&[("app", name)]);
    rs.spec.template = template(name, "busybox:1.36");
    let mut obj = Object::ReplicaSet(rs);
    coracle_config::defaults::apply(&mut obj);
    obj.try_into().unwrap()
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let recorder = Recorder::new(store.clone(), "test", "board");
        let (clock, time) = Clock::manual();
        World { dir, store, recorder, clock, time }
    }

    pub fn create(&self, obj: impl Into<Object>) -> Arc<Object> {
        self.store.create(obj.into()).unwrap()
    }

    fn list<T: Resource>(&self) -> Vec<T> {
        self.store.list_as::<T>(Some("default"), None).iter().map(|o| T::clone(o)).collect()
    }

    pub fn pods(&self) -> Vec<Pod> {
        self.list()
    }

    pub fn replica_sets(&self) -> Vec<ReplicaSet> {
        self.list()
    }

    pub fn deployment(&self, name: &str) -> Deployment {
        Deployment::clone(&self.store.get_as::<Deployment>("default", name).unwrap())
    }

    pub fn replica_set(&self, name: &str) -> ReplicaSet {
        ReplicaSet::clone(&self.store.get_as::<ReplicaSet>("default", name).unwrap())
    }

    pub fn events(&self) -> Vec<Event> {
        self.recorder.flush();
        self.list()
    }

    /// Plays the kubelet: the pod runs and is Ready from the clock's now.
    pub fn mark_ready(&self, pod: &Pod) {
        mark_ready(&self.store, pod, self.clock.now());
    }

    /// Marks every pod that is not Ready yet.
    pub fn mark_all_ready(&self) -> usize {
        let pending: Vec<Pod> = self.pods().into_iter().filter(|p| !p.is_ready()).collect();
        for p in &pending {
            self.mark_ready(p);
        }
        pending.len()
    }
}

/// Plays the kubelet: `pod` runs and is Ready from `now`.
pub fn mark_ready(store: &Store, pod: &Pod, now: std::time::SystemTime) {
    let mut p = pod.clone();
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        start_time: Some(coracle_config::time::rfc3339(now)),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(coracle_config::time::rfc3339(now)),
            ..Default::default()
        }],
        ..Default::default()
    });
    p.metadata.resource_version.clear();
    match store.update_status(p.into(), true) {
        Ok(_) | Err(coracle_store::StoreError::NotFound { .. }) => {}
        Err(e) => panic!("marking {} ready: {e}", pod.metadata.name),
    }
}
