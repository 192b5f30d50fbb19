//! The ReplicaSet controller against a real store, the test playing the kubelet.

use super::*;
use crate::runner::Reconciler;
use crate::test_support::{replica_set, World};
use coracle_config::core::Pod;
use std::time::Duration;

fn controller(w: &World) -> ReplicaSetController {
    ReplicaSetController::new(w.store.clone(), w.recorder.clone(), w.clock.clone())
}

fn sync(c: &mut ReplicaSetController, name: &str) -> Option<Duration> {
    c.reconcile(&ObjectKey::new("default", name)).unwrap()
}

fn scale(w: &World, name: &str, replicas: i32) {
    let mut rs = w.replica_set(name);
    rs.spec.replicas = Some(replicas);
    w.store.update(rs.into()).unwrap();
}

#[test]
fn creates_the_replicas_with_owner_and_generated_names() {
    let w = World::new();
    let mut c = controller(&w);
    let rs = w.create(replica_set("web", 3));
    sync(&mut c, "web");
    let pods = w.pods();
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert!(
            p.metadata.name.starts_with("web-") && p.metadata.name.len() == "web-".len() + 5,
            "{}",
            p.metadata.name
        );
        let owner = p.metadata.controller_ref().unwrap();
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("ReplicaSet", rs.metadata().uid.as_str()));
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert_eq!(p.metadata.labels["app"], "web");
        assert_eq!(p.spec.restart_policy.as_deref(), Some("Always"));
    }
    let status = w.replica_set("web").status.unwrap();
    assert_eq!((status.replicas, status.fully_labeled_replicas, status.ready_replicas), (3, Some(3), None));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(w.events().iter().filter(|e| e.reason == "SuccessfulCreate").count(), 3);

    // Steady state writes nothing.
    let rv = w.store.resource_version();
    sync(&mut c, "web");
    assert_eq!(w.store.resource_version(), rv);
}

#[test]
fn scales_down_not_ready_pods_first_and_counts_readiness() {
    let w = World::new();
    let mut c = controller(&w);
    w.create(replica_set("web", 4));
    sync(&mut c, "web");
    let mut pods = w.pods();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    w.mark_ready(&pods[0]);
    w.mark_ready(&pods[2]);
    sync(&mut c, "web");
    let status = w.replica_set("web").status.unwrap();
    assert_eq!((status.ready_replicas, status.available_replicas), (Some(2), Some(2)));

    scale(&w, "web", 2);
    sync(&mut c, "web");
    let mut left: Vec<String> = w.pods().into_iter().map(|p| p.metadata.name).collect();
    left.sort();
    assert_eq!(left, [pods[0].metadata.name.clone(), pods[2].metadata.name.clone()]);
    let status = w.replica_set("web").status.unwrap();
    assert_eq!((status.replicas, status.observed_generation), (2, Some(2)));
    assert_eq!(w.events().iter().filter(|e| e.reason == "SuccessfulDelete").count(), 2);
}

#[test]
fn adopts_matching_orphans_and_releases_pods_that_stop_matching() {
    let w = World::new();
    let mut c = controller(&w);
    let mut orphan = Pod::default();
    orphan.metadata.name = "stray".into();
    orphan.metadata.namespace = "default".into();
    orphan.metadata.labels = crate::test_support::labels(&[("app", "web")]);
    w.create(orphan);
    let rs = w.create(replica_set("web", 2));
    sync(&mut c, "web");
    let pods = w.pods();
    assert_eq!(pods.len(), 2, "the orphan counts as one of the two");
    let stray = pods.iter().find(|p| p.metadata.name == "stray").unwrap();
    assert_eq!(stray.metadata.controller_ref().unwrap().uid, rs.metadata().uid);

    // Relabel the adopted pod: it is released and replaced.
    let mut relabeled = stray.clone();
    relabeled.metadata.labels.insert("app".into(), "other".into());
    relabeled.metadata.resource_version.clear();
    w.store.update(relabeled.into()).unwrap();
    sync(&mut c, "web");
    let pods = w.pods();
    assert_eq!(pods.len(), 3);
    let stray = pods.iter().find(|p| p.metadata.name == "stray").unwrap();
    assert!(stray.metadata.owner_references.is_empty());
    assert_eq!(w.replica_set("web").status.unwrap().replicas, 2);
}

#[test]
fn pods_become_available_after_min_ready_seconds() {
    let w = World::new();
    let mut c = controller(&w);
    let mut rs = replica_set("web", 1);
    rs.spec.min_ready_seconds = Some(10);
    w.create(rs);
    sync(&mut c, "web");
    w.mark_all_ready();
    let requeue = sync(&mut c, "web");
    assert_eq!(requeue, Some(Duration::from_secs(10)));
    let status = w.replica_set("web").status.unwrap();
    assert_eq!((status.ready_replicas, status.available_replicas), (Some(1), None));
    w.time.advance(Duration::from_secs(10));
    assert_eq!(sync(&mut c, "web"), None);
    assert_eq!(w.replica_set("web").status.unwrap().available_replicas, Some(1));
}

#[test]
fn pod_events_map_to_their_owner_and_to_sets_that_may_adopt() {
    let w = World::new();
    let mut c = controller(&w);
    w.create(replica_set("web", 1));
    sync(&mut c, "web");
    let pod = w.pods().remove(0);
    let event = coracle_store::WatchEvent::Modified(std::sync::Arc::new(pod.clone().into()));
    assert_eq!(c.keys_for(&w.store, &event), [ObjectKey::new("default", "web")]);
    let mut orphan = pod;
    orphan.metadata.owner_references.clear();
    let event = coracle_store::WatchEvent::Added(std::sync::Arc::new(orphan.into()));
    assert_eq!(c.keys_for(&w.store, &event), [ObjectKey::new("default", "web")]);
}
