//! Behaviour of the store as its callers see it, on a real folder.

use super::*;
use coracle_config::apps::Deployment;
use coracle_config::core::{Event, Namespace, Pod, PodStatus};
use coracle_config::meta::OwnerReference;
use coracle_config::Resource;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

const SOON: Duration = Duration::from_millis(200);

fn pod(name: &str) -> Object {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.into()
}

fn deployment(name: &str, replicas: i32) -> Object {
    let mut d = Deployment::default();
    d.metadata.name = name.into();
    d.metadata.namespace = "default".into();
    d.spec.replicas = Some(replicas);
    d.into()
}

fn event(name: &str) -> Object {
    let mut e = Event::default();
    e.metadata.name = name.into();
    e.metadata.namespace = "default".into();
    e.reason = "Started".into();
    e.into()
}

fn owned_by(mut obj: Object, owner: &Object) -> Object {
    obj.metadata_mut().owner_references.push(OwnerReference {
        api_version: owner.info().api_version(),
        kind: owner.info().kind.into(),
        name: owner.metadata().name.clone(),
        uid: owner.metadata().uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    obj
}

fn with_phase(obj: &Object, phase: &str) -> Object {
    let mut p: Pod = obj.clone().try_into().unwrap();
    p.status = Some(PodStatus { phase: Some(phase.into()), ..Default::default() });
    p.into()
}

fn phase(obj: &Object) -> Option<String> {
    let p: Pod = obj.clone().try_into().unwrap();
    p.status.and_then(|s| s.phase)
}

fn file(dir: &Path, plural: &str, ns: &str, name: &str) -> PathBuf {
    dir.join("objects").join(plural).join(ns).join(format!("{name}.json"))
}

fn drain(w: &Watcher) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    while let Some((rv, ev)) = w.next_timeout(SOON) {
        out.push((rv, ev.type_name().to_string(), ev.object().metadata().name.clone()));
    }
    out
}

fn no_delete() -> DeleteOptions {
    DeleteOptions::default()
}

#[test]
fn create_get_list_update_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let created = store.create(deployment("web", 1)).unwrap();
    let m = created.metadata();
    assert_eq!(m.generation, 1);
    assert_eq!(m.uid.len(), 36);
    assert!(m.creation_timestamp.is_some());
    assert_eq!(m.resource_version, store.resource_version().to_string());
    assert_eq!(created.to_json()["apiVersion"], "apps/v1");
    assert!(file(dir.path(), "deployments", "default", "web").exists());

    let err = store.create(deployment("web", 1)).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(err.to_string(), "deployments.apps \"web\" already exists");

    store.create(pod("a")).unwrap();
    assert_eq!(store.get(&Deployment::INFO, "default", "web").unwrap(), created);
    let (pods, rv) = store.list(&Filter { resource: Some(&Pod::INFO), namespace: Some("default".into()) });
    assert_eq!((pods.len(), rv), (1, store.resource_version()));
    assert_eq!(store.list(&Filter::default()).0.len(), 2);
    assert!(store.list(&Filter { resource: None, namespace: Some("other".into()) }).0.is_empty());

    let updated = store.update(deployment("web", 3)).unwrap();
    assert_eq!(updated.metadata().uid, created.metadata().uid);
    assert_eq!(updated.metadata().creation_timestamp, created.metadata().creation_timestamp);
    assert!(updated.metadata().resource_version.parse::<u64>().unwrap() > m.resource_version.parse().unwrap());

    store.delete(&Deployment::INFO, "default", "web", &no_delete()).unwrap();
    assert!(store.get(&Deployment::INFO, "default", "web").is_none());
    assert!(!file(dir.path(), "deployments", "default", "web").exists());
    let err = store.delete(&Deployment::INFO, "default", "web", &no_delete()).unwrap_err();
    assert_eq!(err.to_string(), "deployments.apps \"web\" not found");
    assert!(matches!(store.update(deployment("web", 1)), Err(StoreError::NotFound { .. })));
}

#[test]
fn cluster_scoped_objects_ignore_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut ns = Namespace::default();
    ns.metadata.name = "team".into();
    ns.metadata.namespace = "default".into();
    let created = store.create(ns.into()).unwrap();
    assert_eq!(created.metadata().namespace, "");
    assert!(file(dir.path(), "namespaces", "_", "team").exists());
    assert!(store.get(&Namespace::INFO, "whatever", "team").is_some());
}

#[test]
fn secrets_are_kept_readable_by_the_daemon_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut secret = coracle_config::core::Secret::default();
    secret.metadata.name = "db".into();
    secret.metadata.namespace = "default".into();
    secret.data.insert("password".into(), coracle_config::base64::Base64Bytes(b"pw".to_vec()));
    store.create(secret.clone().into()).unwrap();
    let mode =
        |plural: &str, name: &str| fs::metadata(file(dir.path(), plural, "default", name)).unwrap().mode() & 0o777;
    assert_eq!(mode("secrets", "db"), 0o600);
    secret.data.clear();
    store.update(secret.into()).unwrap();
    assert_eq!(mode("secrets", "db"), 0o600, "still after an update");
    let mut cm = coracle_config::core::ConfigMap::default();
    cm.metadata.name = "cfg".into();
    cm.metadata.namespace = "default".into();
    store.create(cm.into()).unwrap();
    assert_eq!(mode("configmaps", "cfg") & 0o600, 0o600);
    assert_ne!(mode("configmaps", "cfg"), 0o600, "other kinds keep the umask's mode");
}

#[test]
fn generate_name_appends_five_characters() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut p = pod("");
    p.metadata_mut().generate_name = "web-".into();
    let a = store.create(p.clone()).unwrap();
    let b = store.create(p).unwrap();
    assert_eq!(a.metadata().name.len(), 9);
    assert!(a.metadata().name.starts_with("web-"));
    assert_ne!(a.metadata().name, b.metadata().name);
    let err = store.create(pod("")).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(matches!(store.create(pod("../escape")), Err(StoreError::Invalid { .. })));
}

#[test]
fn stale_resource_version_and_failed_preconditions_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let v1 = store.create(deployment("web", 1)).unwrap();
    store.update(deployment("web", 2)).unwrap();
    let err = store.update((*v1).clone()).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert!(err.to_string().contains("the object has been modified"), "{err}");

    let mut wrong_uid = deployment("web", 5);
    wrong_uid.metadata_mut().uid = "not-the-uid".into();
    assert!(matches!(store.update(wrong_uid), Err(StoreError::Conflict { .. })));

    let stale =
        DeleteOptions { precondition_resource_version: Some(v1.metadata().resource_version.clone()), ..no_delete() };
    assert!(matches!(store.delete(&Deployment::INFO, "default", "web", &stale), Err(StoreError::Conflict { .. })));
    let other = DeleteOptions { precondition_uid: Some("x".into()), ..no_delete() };
    assert!(matches!(store.delete(&Deployment::INFO, "default", "web", &other), Err(StoreError::Conflict { .. })));
    let right = DeleteOptions { precondition_uid: Some(v1.metadata().uid.clone()), ..no_delete() };
    store.delete(&Deployment::INFO, "default", "web", &right).unwrap();
}

#[test]
fn generation_bumps_on_spec_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create(pod("p")).unwrap();
    store.create(deployment("web", 1)).unwrap();
    let mut labelled = deployment("web", 1);
    labelled.metadata_mut().labels.insert("tier".into(), "front".into());
    assert_eq!(store.update(labelled.clone()).unwrap().metadata().generation, 1);
    if let Object::Deployment(d) = &mut labelled {
        d.spec.replicas = Some(4);
    }
    assert_eq!(store.update(labelled).unwrap().metadata().generation, 2);
    let current = store.get(&Pod::INFO, "default", "p").unwrap();
    let after = store.update_status(with_phase(&current, "Running"), true).unwrap();
    assert_eq!(after.metadata().generation, 1);
    assert_eq!(phase(&after).as_deref(), Some("Running"));
}

#[test]
fn update_keeps_status_and_status_update_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = store.create(pod("p")).unwrap();
    store.update_status(with_phase(&p, "Running"), true).unwrap();
    let mut relabelled = pod("p");
    relabelled.metadata_mut().labels.insert("a".into(), "b".into());
    let after = store.update(with_phase(&relabelled, "Failed")).unwrap();
    assert_eq!(phase(&after).as_deref(), Some("Running"));
    let mut sneaky = with_phase(&after, "Succeeded");
    sneaky.metadata_mut().labels.clear();
    let after = store.update_status(sneaky, true).unwrap();
    assert_eq!(after.metadata().labels.get("a").map(String::as_str), Some("b"));
    assert_eq!(phase(&after).as_deref(), Some("Succeeded"));
    assert!(matches!(store.update_status(event("e"), true), Err(StoreError::NotFound { .. })));
}

#[test]
fn an_update_that_changes_nothing_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let p = store.create(pod("p")).unwrap();
    let path = file(dir.path(), "pods", "default", "p");
    let before = fs::metadata(&path).unwrap();
    let w = store.watch(Filter::default(), None).unwrap();
    let rv = store.resource_version();
    let same = store.update(pod("p")).unwrap();
    assert!(Arc::ptr_eq(&same, &p));
    store.update_status((*p).clone(), true).unwrap();
    let after = fs::metadata(&path).unwrap();
    assert_eq!((after.ino(), after.mtime(), after.mtime_nsec()), (before.ino(), before.mtime(), before.mtime_nsec()));
    assert_eq!(store.resource_version(), rv);
    assert!(drain(&w).is_empty());
}

#[test]
fn memory_only_status_reaches_disk_at_flush_and_versions_stay_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "pods", "default", "p");
    let store = Store::open(dir.path()).unwrap();
    let p = store.create(pod("p")).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    let w = store.watch(Filter::default(), None).unwrap();
    let running = store.update_status(with_phase(&p, "Running"), false).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "a memory-only update wrote the file");
    assert_eq!(drain(&w), [(store.resource_version(), "MODIFIED".into(), "p".into())]);
    let seen = store.resource_version();
    // Lost without a flush: the file still holds the first version.
    drop((store, w));
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(phase(&store.get(&Pod::INFO, "default", "p").unwrap()), None);
    assert!(store.resource_version() >= seen);
    let again = store.update_status(with_phase(&running, "Running").clone_with_rv(""), false).unwrap();
    assert!(again.metadata().resource_version.parse::<u64>().unwrap() > seen);
    store.shutdown().unwrap();
    assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(phase(&store.get(&Pod::INFO, "default", "p").unwrap()).as_deref(), Some("Running"));
}

#[test]
fn checkpoints_write_status_that_has_waited_long_enough_and_keep_its_first_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "pods", "default", "p");
    let store = Store::open(dir.path()).unwrap();
    let p = store.create(pod("p")).unwrap();
    let inode = || fs::metadata(&path).unwrap().ino();
    let first = inode();
    let pending = store.update_status(with_phase(&p, "Pending"), false).unwrap();
    // Not waited an hour: nothing is written.
    assert_eq!(store.flush_older_than(Duration::from_secs(3600)).unwrap(), 0);
    assert_eq!(inode(), first);
    // Changes that keep coming do not postpone the write: the first one's age counts.
    std::thread::sleep(Duration::from_millis(60));
    store.update_status(with_phase(&pending, "Running"), false).unwrap();
    assert_eq!(store.flush_older_than(Duration::from_millis(50)).unwrap(), 1);
    let written = inode();
    assert_ne!(written, first, "the checkpoint rewrote the file");
    assert_eq!(store.flush_older_than(Duration::ZERO).unwrap(), 0, "written once, clean since");
    assert_eq!(inode(), written);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(phase(&store.get(&Pod::INFO, "default", "p").unwrap()).as_deref(), Some("Running"));
}

#[test]
fn a_durable_change_writes_the_status_it_may_have_been_decided_on_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.create(pod("a")).unwrap();
    store.update_status(with_phase(&a, "Running"), false).unwrap();
    // A controller acting on a's status makes a durable change elsewhere; then the power goes.
    store.create(pod("b")).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(phase(&store.get(&Pod::INFO, "default", "a").unwrap()).as_deref(), Some("Running"));
    // Deletions too.
    let a = store.get(&Pod::INFO, "default", "a").unwrap();
    store.update_status(with_phase(&a, "Succeeded"), false).unwrap();
    store.delete(&Pod::INFO, "default", "b", &no_delete()).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(phase(&store.get(&Pod::INFO, "default", "a").unwrap()).as_deref(), Some("Succeeded"));
}

#[test]
fn the_checkpoint_thread_writes_status_and_ends_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "pods", "default", "p");
    let store = Store::open(dir.path()).unwrap();
    let p = store.create(pod("p")).unwrap();
    let first = fs::metadata(&path).unwrap().ino();
    let thread = crate::spawn_checkpoints(store.clone(), Duration::from_millis(10)).unwrap();
    store.update_status(with_phase(&p, "Running"), false).unwrap();
    let mut looks = 0;
    while fs::metadata(&path).unwrap().ino() == first {
        looks += 1;
        assert!(looks < 600, "no checkpoint wrote the status");
        std::thread::sleep(Duration::from_millis(50));
    }
    store.shutdown().unwrap();
    thread.join().unwrap();
}

trait WithRv {
    fn clone_with_rv(&self, rv: &str) -> Object;
}

impl WithRv for Object {
    fn clone_with_rv(&self, rv: &str) -> Object {
        let mut o = self.clone();
        o.metadata_mut().resource_version = rv.into();
        o
    }
}

#[test]
fn watch_delivers_changes_in_order_from_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let start = store.resource_version();
    store.create(pod("a")).unwrap();
    store.create(deployment("d", 1)).unwrap();
    store.update(deployment("d", 2)).unwrap();
    store.delete(&Pod::INFO, "default", "a", &no_delete()).unwrap();
    let all = drain(&store.watch(Filter::default(), Some(start)).unwrap());
    let kinds: Vec<_> = all.iter().map(|(_, t, n)| format!("{t} {n}")).collect();
    assert_eq!(kinds, ["ADDED a", "ADDED d", "MODIFIED d", "DELETED a"]);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "{all:?}");
    let pods_only = store.watch(Filter { resource: Some(&Pod::INFO), namespace: None }, Some(start)).unwrap();
    assert_eq!(drain(&pods_only).len(), 2);
    let later = drain(&store.watch(Filter::default(), Some(all[1].0)).unwrap());
    assert_eq!(later.len(), 2);
    // Some(0): the current state as ADDED events.
    let current = drain(&store.watch(Filter::default(), Some(0)).unwrap());
    assert_eq!(current.iter().map(|(_, t, n)| format!("{t} {n}")).collect::<Vec<_>>(), ["ADDED d"]);
}

/// What the watcher has been sent so far: every write publishes before it returns, so
/// whatever is not queued by now never will be.
fn sent(w: &Watcher) -> Vec<String> {
    std::iter::from_fn(|| w.next_timeout(Duration::ZERO))
        .map(|(_, e)| format!("{} {}", e.type_name(), e.object().metadata().name))
        .collect()
}

#[test]
fn a_watch_is_sent_only_the_kinds_and_namespaces_it_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let start = store.resource_version();
    let kinds = store.watch(WatchFilter::kinds(&[&Pod::INFO, &Deployment::INFO]), None).unwrap();
    let team_pods =
        store.watch(WatchFilter::any([Filter { resource: Some(&Pod::INFO), namespace: Some("team".into()) }]), None);
    let team_pods = team_pods.unwrap();
    let nothing = store.watch(WatchFilter::any([]), None).unwrap();
    store.create(event("e")).unwrap();
    store.create(deployment("d", 1)).unwrap();
    store.create(pod("a")).unwrap();
    let mut b = pod("b");
    b.metadata_mut().namespace = "team".into();
    store.create(b).unwrap();
    store.update_status(with_phase(&pod("a"), "Running"), false).unwrap();
    store.delete(&Event::INFO, "default", "e", &no_delete()).unwrap();
    assert_eq!(sent(&kinds), ["ADDED d", "ADDED a", "ADDED b", "MODIFIED a"]);
    assert_eq!(sent(&team_pods), ["ADDED b"]);
    assert!(sent(&nothing).is_empty());
    // A watch from a version replays the window through the same filter.
    let events = store.watch(WatchFilter::kinds(&[&Event::INFO]), Some(start)).unwrap();
    assert_eq!(sent(&events), ["ADDED e", "DELETED e"]);
    let current = store.watch(WatchFilter::kinds(&[&Deployment::INFO, &Pod::INFO]), Some(0)).unwrap();
    assert_eq!(sent(&current), ["ADDED d", "ADDED a", "ADDED b"]);
}

#[test]
fn watch_from_before_the_window_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let start = store.resource_version();
    store.create(pod("a")).unwrap();
    for i in 0..watch::HISTORY + 10 {
        store.update_status(with_phase(&pod("a"), &format!("phase-{i}")), false).unwrap();
    }
    let err = store.watch(Filter::default(), Some(start)).err().expect("expired");
    assert!(matches!(err, StoreError::Expired { requested, .. } if requested == start), "{err}");
    assert!(err.to_string().starts_with("too old resource version"));
    let oldest = store.oldest_watchable_version();
    assert_eq!(drain(&store.watch(Filter::default(), Some(oldest)).unwrap()).len(), watch::HISTORY);
}

#[test]
fn a_slow_watcher_is_cut_off_without_blocking_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let w = store.watch(Filter::default(), None).unwrap();
    store.create(pod("a")).unwrap();
    for i in 0..watch::WATCHER_BUFFER + 5 {
        store.update_status(with_phase(&pod("a"), &format!("p{i}")), false).unwrap();
    }
    assert_eq!(w.ended(), Some(WatchEnd::TooSlow));
    assert_eq!(drain(&w).len(), watch::WATCHER_BUFFER);
}

#[test]
fn shutdown_ends_watchers_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let w = store.watch(Filter::default(), None).unwrap();
    let other = store.clone();
    let waiter = std::thread::spawn(move || (w.next(), w.ended()));
    other.shutdown().unwrap();
    assert_eq!(waiter.join().unwrap(), (None, Some(WatchEnd::ShutDown)));
    assert!(store.is_shut_down());
    assert!(matches!(store.create(pod("late")), Err(StoreError::Io { .. })));
    assert_eq!(store.watch(Filter::default(), None).unwrap().ended(), Some(WatchEnd::ShutDown));
}

#[test]
fn a_second_store_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).err().expect("locked");
    assert!(err.to_string().contains("another coracled"), "{err}");
    drop(store);
    Store::open(dir.path()).unwrap();
}

#[test]
fn restart_keeps_every_object_and_never_reuses_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let keep = store.create(deployment("keep", 2)).unwrap();
    store.create(pod("gone")).unwrap();
    store.delete(&Pod::INFO, "default", "gone", &no_delete()).unwrap();
    let last = store.resource_version();
    let before = store.list(&Filter::default()).0;
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.list(&Filter::default()).0, before);
    assert_eq!(store.get(&Deployment::INFO, "default", "keep").unwrap(), keep);
    assert!(store.resource_version() >= last);
    let next = store.create(pod("new")).unwrap();
    assert!(next.metadata().resource_version.parse::<u64>().unwrap() > last);
}

#[test]
fn torn_temp_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create(pod("a")).unwrap();
    drop(store);
    let torn = dir.path().join("objects/pods/default/.b.json.tmp");
    fs::write(&torn, b"{\"kind\":\"Pod\",\"meta").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(!torn.exists());
    assert_eq!(store.list(&Filter::default()).0.len(), 1);
}

#[test]
fn corrupt_files_are_moved_aside_not_loaded_nor_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create(pod("good")).unwrap();
    drop(store);
    let bad = file(dir.path(), "pods", "default", "bad");
    fs::write(&bad, b"{not json").unwrap();
    let misplaced = file(dir.path(), "pods", "default", "misplaced");
    fs::copy(file(dir.path(), "pods", "default", "good"), &misplaced).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let names: Vec<_> = store.list(&Filter::default()).0.iter().map(|o| o.metadata().name.clone()).collect();
    assert_eq!(names, ["good"]);
    assert!(!bad.exists() && !misplaced.exists());
    let aside: Vec<_> = fs::read_dir(dir.path().join("objects/.corrupt/pods/default"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(aside.len(), 2);
    assert!(aside.iter().any(|b| b == b"{not json"));
}

#[test]
fn events_live_in_memory_only_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create(event("first")).unwrap();
    assert!(!dir.path().join("objects/events").exists());
    for i in 1..index::EVENT_LIMIT {
        store.create(event(&format!("e{i}"))).unwrap();
    }
    let w = store.watch(Filter::default(), None).unwrap();
    store.create(event("last")).unwrap();
    let events = store.list(&Filter { resource: Some(&Event::INFO), namespace: None }).0;
    assert_eq!(events.len(), index::EVENT_LIMIT);
    assert!(store.get(&Event::INFO, "default", "first").is_none());
    let seen: Vec<_> = drain(&w).into_iter().map(|(_, t, n)| format!("{t} {n}")).collect();
    assert_eq!(seen, ["DELETED first", "ADDED last"]);
    assert!(!dir.path().join("objects/events").exists());
    drop((store, w));
    assert!(Store::open(dir.path()).unwrap().list(&Filter::default()).0.is_empty());
}

#[test]
fn graceful_pod_deletion_marks_then_removes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create(pod("fast")).unwrap();
    store.delete(&Pod::INFO, "default", "fast", &no_delete()).unwrap();
    assert!(store.get(&Pod::INFO, "default", "fast").is_none(), "without a node pods go at once");

    store.set_graceful_pod_deletion(true);
    store.create(pod("p")).unwrap();
    let w = store.watch(Filter::default(), None).unwrap();
    let marked = store.delete(&Pod::INFO, "default", "p", &no_delete()).unwrap();
    assert!(marked.metadata().deletion_timestamp.is_some());
    assert_eq!(marked.metadata().deletion_grace_period_seconds, Some(DEFAULT_POD_GRACE_SECONDS));
    assert_eq!(store.get(&Pod::INFO, "default", "p").unwrap(), marked);
    let now = DeleteOptions { grace_period_seconds: Some(0), ..no_delete() };
    store.delete(&Pod::INFO, "default", "p", &now).unwrap();
    assert!(store.get(&Pod::INFO, "default", "p").is_none());
    let types: Vec<_> = drain(&w).into_iter().map(|(_, t, _)| t).collect();
    assert_eq!(types, ["MODIFIED", "DELETED"]);
}

#[test]
fn finalizers_keep_an_object_until_an_update_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut d = deployment("web", 1);
    d.metadata_mut().finalizers.push("example.com/hold".into());
    store.create(d).unwrap();
    let marked = store.delete(&Deployment::INFO, "default", "web", &no_delete()).unwrap();
    assert!(marked.metadata().deletion_timestamp.is_some());
    let again = store.delete(&Deployment::INFO, "default", "web", &no_delete()).unwrap();
    assert_eq!(again, marked);
    let mut released = (*marked).clone();
    released.metadata_mut().finalizers.clear();
    let gone = store.update(released).unwrap();
    assert_eq!(gone.metadata().name, "web");
    assert!(store.get(&Deployment::INFO, "default", "web").is_none());
    assert!(!file(dir.path(), "deployments", "default", "web").exists());
}

#[test]
fn orphan_deletion_strips_the_owner_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let owner = store.create(deployment("web", 1)).unwrap();
    store.create(owned_by(pod("a"), &owner)).unwrap();
    let orphan = DeleteOptions { propagation: Propagation::Orphan, ..no_delete() };
    store.delete(&Deployment::INFO, "default", "web", &orphan).unwrap();
    let a = store.get(&Pod::INFO, "default", "a").unwrap();
    assert!(a.metadata().owner_references.is_empty());
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.get(&Pod::INFO, "default", "a").unwrap().metadata().owner_references.is_empty());
}

#[test]
fn a_dry_run_delete_answers_what_it_would_do_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.set_graceful_pod_deletion(true);
    let owner = store.create(deployment("web", 1)).unwrap();
    let p = store.create(owned_by(pod("p"), &owner)).unwrap();
    let w = store.watch(Filter::default(), None).unwrap();
    let dry = DeleteOptions { dry_run: true, ..no_delete() };
    let marked = store.delete(&Pod::INFO, "default", "p", &dry).unwrap();
    assert!(marked.metadata().deletion_timestamp.is_some(), "the pod as it would be marked");
    assert_eq!(store.get(&Pod::INFO, "default", "p").unwrap(), p);
    let orphan = DeleteOptions { propagation: Propagation::Orphan, ..dry.clone() };
    let gone = store.delete(&Deployment::INFO, "default", "web", &orphan).unwrap();
    assert_eq!(gone, owner);
    assert!(store.get(&Deployment::INFO, "default", "web").is_some());
    assert_eq!(store.get(&Pod::INFO, "default", "p").unwrap().metadata().owner_references.len(), 1);
    assert!(drain(&w).is_empty());
    let missing = store.delete(&Pod::INFO, "default", "nope", &dry).unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }));
}

/// The child half of `acknowledged_writes_survive_sigkill`: writes until killed, printing
/// each acknowledgement after the store call returned.
#[test]
#[ignore = "runs as a child process of acknowledged_writes_survive_sigkill"]
fn crash_child() {
    use std::io::Write;
    let Ok(dir) = std::env::var("CORACLE_STORE_CRASH_DIR") else {
        return;
    };
    let iteration = std::env::var("CORACLE_STORE_CRASH_ITERATION").unwrap();
    let store = Store::open(Path::new(&dir)).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    for j in 0..12 {
        let name = format!("c{iteration}-{j}");
        let created = store.create(pod(&name)).unwrap();
        let m = created.metadata();
        writeln!(out, "ACK create {name} {} {}", m.uid, m.resource_version).unwrap();
        out.flush().unwrap();
        if j % 2 == 1 {
            let victim = format!("c{iteration}-{}", j - 1);
            let gone = store.delete(&Pod::INFO, "default", &victim, &no_delete()).unwrap();
            writeln!(out, "ACK delete {victim} - {}", gone.metadata().resource_version).unwrap();
            out.flush().unwrap();
            let mut touched = pod(&name);
            touched.metadata_mut().labels.insert("touched".into(), "yes".into());
            let t = store.update(touched).unwrap();
            writeln!(out, "ACK update {name} - {}", t.metadata().resource_version).unwrap();
            out.flush().unwrap();
        }
    }
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let pods = dir.join("objects/pods/default");
    let Ok(entries) = fs::read_dir(&pods) else { return Vec::new() };
    entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "tmp")).collect()
}

/// Cheap randomness for kill timing; the test checks invariants, not a sequence.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish() % n
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    use std::collections::{HashMap, HashSet};
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    const ITERATIONS: usize = 200;
    // A write costs a few fsyncs (milliseconds); the child's dozen writes span about this.
    const KILL_WINDOW_MICROS: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut created: HashMap<String, String> = HashMap::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let mut touched: HashSet<String> = HashSet::new();
    let mut last_rv = 0u64;
    let mut torn_temp_files = 0;
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(&exe)
            .args(["--exact", "tests::crash_child", "--ignored", "--nocapture", "--test-threads=1", "-q"])
            .env("CORACLE_STORE_CRASH_DIR", dir.path())
            .env("CORACLE_STORE_CRASH_ITERATION", iteration.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill at a random moment once the child is writing, not while it starts up.
        while let Some(Ok(line)) = lines.next() {
            if line == "READY" {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(random_below(KILL_WINDOW_MICROS)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let ["ACK", op, name, uid, rv] = parts[..] else { continue };
            let rv: u64 = rv.parse().unwrap();
            assert!(rv > last_rv, "resourceVersion went backwards: {rv} after {last_rv} ({line})");
            last_rv = rv;
            match op {
                "create" => drop(created.insert(name.into(), uid.into())),
                "delete" => drop(deleted.insert(name.into())),
                _ => drop(touched.insert(name.into())),
            }
        }
        torn_temp_files += temp_files(dir.path()).len();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new(), "open left torn temp files");
        assert!(store.resource_version() >= last_rv);
        for (name, uid) in &created {
            let got = store.get(&Pod::INFO, "default", name);
            if deleted.contains(name) {
                assert!(got.is_none(), "acknowledged delete of {name} lost");
                continue;
            }
            let Some(got) = got else {
                // The child deletes c<i>-<j> right after acknowledging c<i>-<j+1>; killed
                // before acknowledging that delete, either outcome is correct.
                let (prefix, j) = name.rsplit_once('-').unwrap();
                let j: usize = j.parse().unwrap();
                let delete_started = j.is_multiple_of(2) && created.contains_key(&format!("{prefix}-{}", j + 1));
                assert!(delete_started, "acknowledged create of {name} lost (iteration {iteration})");
                continue;
            };
            assert_eq!(&got.metadata().uid, uid);
            if touched.contains(name) {
                assert_eq!(got.metadata().labels.get("touched").map(String::as_str), Some("yes"), "{name}");
            }
        }
    }
    eprintln!(
        "crash test: {} creates, {} deletes, {} updates acknowledged; {torn_temp_files} torn temp files cleaned",
        created.len(),
        deleted.len(),
        touched.len()
    );
    assert!(created.len() > ITERATIONS / 2, "children were killed before writing anything: {}", created.len());
}

#[test]
fn objects_stored_beyond_any_clock_are_repaired_at_load_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut p: Pod = pod("old").try_into().unwrap();
    p.spec.termination_grace_period_seconds = Some(30);
    let created = store.create(p.into()).unwrap();
    store.shutdown().unwrap();
    drop(store);
    // As an older daemon accepted it: a grace period of 2^63-1 seconds.
    let path = file(dir.path(), "pods", "default", "old");
    let text = fs::read_to_string(&path).unwrap();
    let text =
        text.replace("\"terminationGracePeriodSeconds\":30", "\"terminationGracePeriodSeconds\":9223372036854775807");
    assert!(text.contains("9223372036854775807"), "{text}");
    fs::write(&path, text).unwrap();

    let store = Store::open(dir.path()).unwrap();
    let loaded = store.get(&Pod::INFO, "default", "old").unwrap();
    let p: Pod = (*loaded).clone().try_into().unwrap();
    assert_eq!(p.spec.termination_grace_period_seconds, Some(coracle_config::time::MAX_SPAN_SECONDS));
    assert_eq!(loaded.metadata().resource_version, created.metadata().resource_version);
    let repairs = store.take_load_repairs();
    assert_eq!(repairs.len(), 1);
    assert!(repairs[0].1.starts_with("spec.terminationGracePeriodSeconds: 9223372036854775807"), "{}", repairs[0].1);
    assert!(store.take_load_repairs().is_empty());
    // The repair reaches disk with the flush: the next start has nothing to repair.
    store.shutdown().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.take_load_repairs().is_empty());
    assert!(!fs::read_to_string(&path).unwrap().contains("9223372036854775807"));
}
