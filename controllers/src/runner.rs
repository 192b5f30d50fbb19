//! The reconcile loop every controller runs on its own thread: a store watch, filtered to
//! the kinds the controller maps to its keys, feeds a de-duplicating queue of object keys;
//! keys also come due from a periodic resync and from the requeue-after a reconcile asks
//! for (minReadySeconds, progress deadlines, stabilization windows). The loop ends when the
//! store shuts down.

use coracle_config::object::Resource;
use coracle_store::{Store, StoreError, WatchEnd, WatchEvent, WatchFilter};
use coracle_watchdog::{Heartbeat, Watchdog};
use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Names one object of a controller's primary resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> ObjectKey {
        ObjectKey { namespace: namespace.to_string(), name: name.to_string() }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What a reconcile pass returns: when to look again even if nothing changes.
pub type SyncResult = Result<Option<Duration>, StoreError>;

/// One controller: which objects it owns and how it brings one of them to its desired state.
pub trait Reconciler: Send + 'static {
    /// The thread, heartbeat and log name.
    fn name(&self) -> &'static str;
    /// The changes `keys_for` may map to keys: its own kind and the kinds it maps back to
    /// it. The store delivers nothing else to the loop, so no other write wakes it.
    fn watches(&self) -> WatchFilter;
    /// Every key there is, queued when the loop starts and at each resync (usually
    /// [`keys_of`] the primary kind).
    fn all_keys(&self, store: &Store) -> Vec<ObjectKey>;
    /// The keys a change concerns (the object itself, its owner, the owners that may adopt it).
    fn keys_for(&self, store: &Store, event: &WatchEvent) -> Vec<ObjectKey>;
    /// Reads the world for `key` and writes the difference; idempotent.
    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult;
}

/// The key of every stored `T`: a controller's `all_keys` for its primary kind.
pub fn keys_of<T: Resource>(store: &Store) -> Vec<ObjectKey> {
    let objects = store.list_as::<T>(None, None);
    objects.iter().map(|o| ObjectKey::new(&o.metadata().namespace, &o.metadata().name)).collect()
}

/// Retry delay after a conflict: someone else wrote first, the next pass reads their write.
const CONFLICT_RETRY: Duration = Duration::from_millis(50);
/// First retry delay after another failure; doubles per consecutive failure.
const ERROR_RETRY: Duration = Duration::from_millis(500);
const MAX_ERROR_RETRY: Duration = Duration::from_secs(60);
/// How soon a failed watch is retried.
const WATCH_RETRY: Duration = Duration::from_secs(1);

/// What the daemon hands every controller loop it starts, wired in its `main`.
#[derive(Clone)]
pub struct ControllerContext {
    /// The store the loops read, watch and write.
    pub store: Store,
    /// Each loop beats a heartbeat of its own (named after the controller) on it, so a
    /// wedged controller stops systemd's pings. None: no heartbeats.
    pub watchdog: Option<Watchdog>,
}

impl ControllerContext {
    /// Loops over `store` that beat `watchdog`'s heartbeats when given one.
    pub fn new(store: Store, watchdog: Option<Watchdog>) -> ControllerContext {
        ControllerContext { store, watchdog }
    }
}

/// A loop's heartbeat and how often it must beat (it wakes for it even when idle).
type LoopHeartbeat = Option<(Heartbeat, Duration)>;

/// Keys and when each is due; a key queued twice is reconciled once, at the earlier time.
#[derive(Default)]
pub struct WorkQueue {
    due: HashMap<ObjectKey, Instant>,
    failures: HashMap<ObjectKey, u32>,
}

impl WorkQueue {
    /// Queues `key` for `at`, unless it is already due sooner.
    pub fn add(&mut self, key: ObjectKey, at: Instant) {
        self.due.entry(key).and_modify(|t| *t = (*t).min(at)).or_insert(at);
    }

    /// Removes and returns the keys due by `now`, in key order.
    pub fn pop_due(&mut self, now: Instant) -> Vec<ObjectKey> {
        let mut ready: Vec<ObjectKey> = self.due.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        ready.sort();
        for k in &ready {
            self.due.remove(k);
        }
        ready
    }

    /// When the next key comes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// Requeues after a failed pass: soon for a conflict, with growing delays otherwise.
    fn retry(&mut self, key: &ObjectKey, error: &StoreError, now: Instant) -> Duration {
        let delay = match error {
            StoreError::Conflict { .. } | StoreError::AlreadyExists { .. } => CONFLICT_RETRY,
            _ => {
                let n = self.failures.entry(key.clone()).or_insert(0);
                *n += 1;
                ERROR_RETRY.saturating_mul(1 << (*n - 1).min(7)).min(MAX_ERROR_RETRY)
            }
        };
        self.add(key.clone(), now + delay);
        delay
    }

    fn succeeded(&mut self, key: &ObjectKey) {
        self.failures.remove(key);
    }
}

/// Starts `reconciler` on its own thread, resyncing every key every `resync`; its loop
/// beats a heartbeat on the context's watchdog, if any, each time round, idle or not.
pub fn spawn<R: Reconciler>(ctx: &ControllerContext, reconciler: R, resync: Duration) -> JoinHandle<()> {
    let heartbeat: LoopHeartbeat = ctx.watchdog.as_ref().map(|w| (w.register(reconciler.name()), w.beat_every()));
    let store = ctx.store.clone();
    // One loop for every controller, not one copy of it per type.
    let mut reconciler: Box<dyn Reconciler> = Box::new(reconciler);
    std::thread::Builder::new()
        .name(reconciler.name().to_string())
        .spawn(move || run(&store, reconciler.as_mut(), resync, heartbeat))
        .expect("spawning a controller thread")
}

/// Reconciles one key and queues what it asked for.
fn reconcile_one(store: &Store, r: &mut dyn Reconciler, queue: &mut WorkQueue, key: &ObjectKey) {
    let now = Instant::now();
    match r.reconcile(key) {
        Ok(requeue) => {
            queue.succeeded(key);
            if let Some(after) = requeue {
                queue.add(key.clone(), now + after);
            }
        }
        Err(StoreError::NotFound { .. }) => queue.succeeded(key),
        Err(e) if store.is_shut_down() => log::debug!("{}: {key}: {e} (shutting down)", r.name()),
        Err(e) => {
            let delay = queue.retry(key, &e, now);
            if matches!(e, StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) {
                log::debug!("{}: {key}: {e}; retrying in {delay:?}", r.name());
            } else {
                log::warn!("{}: syncing {key}: {e}; retrying in {delay:?}", r.name());
            }
        }
    }
}

fn run(store: &Store, r: &mut dyn Reconciler, resync: Duration, heartbeat: LoopHeartbeat) {
    log::info!("{}: started", r.name());
    let beat_every = heartbeat.as_ref().map_or(Duration::MAX, |(_, every)| *every);
    let beat = || heartbeat.iter().for_each(|(h, _)| h.beat());
    while !store.is_shut_down() {
        beat();
        // Watch first, then list: a change between the two is seen twice, never missed.
        let watcher = match store.watch(r.watches(), None) {
            Ok(w) => w,
            Err(e) => {
                log::warn!("{}: cannot watch the store: {e}", r.name());
                std::thread::sleep(WATCH_RETRY);
                continue;
            }
        };
        let mut queue = WorkQueue::default();
        let mut next_resync = Instant::now();
        loop {
            beat();
            let now = Instant::now();
            if now >= next_resync {
                for key in r.all_keys(store) {
                    queue.add(key, now);
                }
                next_resync = now + resync;
            }
            for key in queue.pop_due(now) {
                reconcile_one(store, r, &mut queue, &key);
            }
            let wake = queue.next_due().map_or(next_resync, |t| t.min(next_resync));
            let wait = wake.saturating_duration_since(Instant::now()).min(beat_every);
            let Some((_, event)) = watcher.next_timeout(wait) else {
                match watcher.ended() {
                    Some(WatchEnd::ShutDown) => {
                        log::info!("{}: stopped", r.name());
                        return;
                    }
                    Some(WatchEnd::TooSlow) => break,
                    None => continue,
                }
            };
            // Take the whole burst before reconciling: one pass per key, not per event.
            let mut next = Some(event);
            while let Some(event) = next {
                for key in r.keys_for(store, &event) {
                    queue.add(key, Instant::now());
                }
                next = watcher.next_timeout(Duration::ZERO).map(|(_, e)| e);
            }
        }
    }
    log::info!("{}: stopped", r.name());
}

#[cfg(test)]
mod tests {
    use super::*;

    use coracle_config::core::{Event, Pod, Service};
    use coracle_config::object::{Object, ALL};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{channel, Sender};
    use std::sync::Arc;

    #[test]
    fn a_key_queued_twice_runs_once_at_the_earlier_time() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        q.add(ObjectKey::new("default", "b"), t0 + Duration::from_secs(5));
        q.add(ObjectKey::new("default", "b"), t0 + Duration::from_secs(1));
        q.add(ObjectKey::new("default", "a"), t0 + Duration::from_secs(3));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        assert!(q.pop_due(t0).is_empty());
        assert_eq!(
            q.pop_due(t0 + Duration::from_secs(3)),
            [ObjectKey::new("default", "a"), ObjectKey::new("default", "b")]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn failures_back_off_and_conflicts_retry_soon() {
        let t0 = Instant::now();
        let mut q = WorkQueue::default();
        let key = ObjectKey::new("default", "a");
        let io = || StoreError::Invalid { message: "x".into() };
        assert_eq!(q.retry(&key, &io(), t0), ERROR_RETRY);
        assert_eq!(q.retry(&key, &io(), t0), ERROR_RETRY * 2);
        q.succeeded(&key);
        assert_eq!(q.retry(&key, &io(), t0), ERROR_RETRY);
        let conflict =
            StoreError::Conflict { resource: coracle_config::object::ALL[0], name: "a".into(), message: String::new() };
        assert_eq!(q.retry(&key, &conflict, t0), CONFLICT_RETRY);
    }

    /// Reconciles pods; a pod named `wedge` blocks its pass until the test lets it go.
    struct Wedging {
        release: std::sync::mpsc::Receiver<()>,
    }

    impl Reconciler for Wedging {
        fn name(&self) -> &'static str {
            "wedging"
        }

        fn watches(&self) -> WatchFilter {
            WatchFilter::kinds(&[&Pod::INFO])
        }

        fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
            keys_of::<Pod>(store)
        }

        fn keys_for(&self, _store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
            let meta = event.object().metadata();
            vec![ObjectKey::new(&meta.namespace, &meta.name)]
        }

        fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
            if key.name == "wedge" {
                let _ = self.release.recv();
            }
            Ok(None)
        }
    }

    #[test]
    fn a_wedged_controller_stops_the_watchdog_pings_while_others_beat() {
        use coracle_watchdog::notify_listener::{listen, receive};
        let dir = tempfile::tempdir().unwrap();
        let (listener, notifier) = listen(dir.path());
        let interval = Duration::from_millis(200);
        let dog = coracle_watchdog::Watchdog::new(Some(interval), Some(notifier));
        let store = Store::open(&dir.path().join("data")).unwrap();
        // Another loop that keeps beating all along: its progress must not cover for the wedge.
        let other = dog.register("other");
        let stop_other = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let beating = {
            let stop = stop_other.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    other.beat();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let (release, wait) = std::sync::mpsc::channel();
        let ctx = ControllerContext::new(store.clone(), Some(dog.clone()));
        let controller = spawn(&ctx, Wedging { release: wait }, Duration::from_secs(3600));
        let _pings = dog.spawn().unwrap();
        for _ in 0..3 {
            assert_eq!(receive(&listener, Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"), "idle loop beats");
        }
        let mut pod = coracle_config::core::Pod::default();
        pod.metadata.name = "wedge".into();
        pod.metadata.namespace = "default".into();
        store.create(coracle_config::object::Object::Pod(pod)).unwrap();
        // Wedged: at most the ping its last beat paid for, then silence.
        let mut late = 0;
        while receive(&listener, interval * 5).is_some() {
            late += 1;
            assert!(late <= 2, "pings went on while the controller was wedged");
        }
        release.send(()).unwrap();
        assert_eq!(receive(&listener, Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"), "pings resume");
        stop_other.store(true, std::sync::atomic::Ordering::Relaxed);
        beating.join().unwrap();
        store.shutdown().unwrap();
        controller.join().unwrap();
    }

    /// Counts the watch events delivered to it and reports each key it reconciles.
    struct Counting {
        watches: fn() -> WatchFilter,
        delivered: Arc<AtomicUsize>,
        reconciled: Sender<String>,
    }

    impl Reconciler for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn watches(&self) -> WatchFilter {
            (self.watches)()
        }

        fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
            keys_of::<Pod>(store)
        }

        fn keys_for(&self, _store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
            self.delivered.fetch_add(1, Ordering::SeqCst);
            let meta = event.object().metadata();
            if event.object().is::<Pod>() {
                vec![ObjectKey::new(&meta.namespace, &meta.name)]
            } else {
                Vec::new()
            }
        }

        fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
            let _ = self.reconciled.send(key.name.clone());
            Ok(None)
        }
    }

    fn named<T: coracle_config::object::Resource + Default>(name: &str) -> Object {
        let mut o = T::default();
        o.metadata_mut().name = name.into();
        o.metadata_mut().namespace = "default".into();
        o.into()
    }

    /// Starts a counting loop and waits until its watch is open (it has reconciled the
    /// pod `ready`, which it lists only after watching).
    fn counting(ctx: &ControllerContext, watches: fn() -> WatchFilter) -> (Arc<AtomicUsize>, Receiver, JoinHandle<()>) {
        let delivered = Arc::new(AtomicUsize::new(0));
        let (reconciled, rx) = channel();
        let c = Counting { watches, delivered: delivered.clone(), reconciled };
        let handle = spawn(ctx, c, Duration::from_secs(3600));
        wait_for(&rx, "ready");
        (delivered, rx, handle)
    }

    type Receiver = std::sync::mpsc::Receiver<String>;

    fn wait_for(rx: &Receiver, name: &str) {
        while rx.recv_timeout(Duration::from_secs(20)).expect("the loop reconciled nothing") != name {}
    }

    #[test]
    fn a_loop_is_not_woken_by_writes_of_kinds_it_does_not_watch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ctx = ControllerContext::new(store.clone(), None);
        store.create(named::<Pod>("ready")).unwrap();
        let (pods_seen, pods_done, pods_loop) = counting(&ctx, || WatchFilter::kinds(&[&Pod::INFO]));
        let (all_seen, all_done, all_loop) = counting(&ctx, || WatchFilter::kinds(ALL));
        let (pods_before, all_before) = (pods_seen.load(Ordering::SeqCst), all_seen.load(Ordering::SeqCst));
        // Writes of other kinds: creations, updates and deletions.
        for i in 0..20 {
            let mut svc = (*store.create(named::<Service>(&format!("s{i}"))).unwrap()).clone();
            svc.metadata_mut().labels.insert("changed".into(), "yes".into());
            store.update(svc).unwrap();
            store.create(named::<Event>(&format!("e{i}"))).unwrap();
            store.delete(&Service::INFO, "default", &format!("s{i}"), &Default::default()).unwrap();
        }
        // Then one pod: once a loop has reconciled it, every earlier change it was sent has
        // passed through keys_for (a watch delivers in resourceVersion order).
        store.create(named::<Pod>("last")).unwrap();
        wait_for(&pods_done, "last");
        wait_for(&all_done, "last");
        assert_eq!(pods_seen.load(Ordering::SeqCst) - pods_before, 1, "the pod loop woke only for the pod");
        // The same writes do reach a loop that watches every kind.
        assert_eq!(all_seen.load(Ordering::SeqCst) - all_before, 20 * 4 + 1);
        store.shutdown().unwrap();
        pods_loop.join().unwrap();
        all_loop.join().unwrap();
    }
}
