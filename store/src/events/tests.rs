//! The recorder against a real store.

use super::*;
use crate::Filter;
use coracle_config::apps::Deployment;
use coracle_config::Resource;

fn stored_events(store: &Store) -> Vec<Event> {
    let filter = Filter { resource: Some(&Event::INFO), namespace: None };
    store.list(&filter).0.iter().filter_map(|o| Event::try_from((**o).clone()).ok()).collect()
}

fn deployment(store: &Store) -> Arc<Object> {
    let mut d = Deployment::default();
    d.metadata.name = "web".into();
    d.metadata.namespace = "default".into();
    store.create(d.into()).unwrap()
}

#[test]
fn repeats_are_one_event_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = deployment(&store);
    let recorder = Recorder::new(store.clone(), "deployment-controller", "board");
    for _ in 0..3 {
        recorder.record(&d, EventType::Normal, "ScalingReplicaSet", "Scaled up replica set web-abc to 1 from 0");
    }
    recorder.record(&d, EventType::Warning, "FailedCreate", "Error creating: boom");
    recorder.flush();
    let mut events = stored_events(&store);
    events.sort_by(|a, b| a.reason.cmp(&b.reason));
    assert_eq!(events.len(), 2, "{events:?}");
    let (failed, scaling) = (&events[0], &events[1]);
    assert_eq!((failed.reason.as_str(), failed.type_.as_str(), failed.count), ("FailedCreate", "Warning", Some(1)));
    assert_eq!(scaling.count, Some(3));
    assert_eq!(scaling.involved_object.kind, "Deployment");
    assert_eq!(scaling.involved_object.uid, d.metadata().uid);
    assert_eq!(scaling.source.component, "deployment-controller");
    assert!(scaling.metadata.name.starts_with("web."), "{}", scaling.metadata.name);
    assert!(scaling.first_timestamp.is_some() && scaling.last_timestamp.is_some());
}

#[test]
fn an_event_evicted_from_the_store_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = deployment(&store);
    let recorder = Recorder::new(store.clone(), "test", "board");
    recorder.record(&d, EventType::Normal, "Tick", "tock");
    let name = stored_events(&store)[0].metadata.name.clone();
    store.delete(&Event::INFO, "default", &name, &Default::default()).unwrap();
    recorder.record(&d, EventType::Normal, "Tick", "tock");
    recorder.flush();
    let events = stored_events(&store);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, Some(2));
}
