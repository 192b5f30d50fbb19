//! The reconcile loop every controller runs on its own thread: a store watch feeds a
//! de-duplicating queue of object keys; keys also come due from a periodic resync and from
//! the requeue-after a reconcile asks for (minReadySeconds, progress deadlines,
//! stabilization windows). The loop ends when the store shuts down.

use coracle_config::object::ResourceInfo;
use coracle_store::{Filter, Store, StoreError, WatchEnd, WatchEvent};
use coracle_watchdog::{Heartbeat, Watchdog};
use std::collections::HashMap;
use std::sync::OnceLock;
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
    /// The thread and log name.
    fn name(&self) -> &'static str;
    /// The resource whose objects are the queue's keys (listed at start and on resync).
    fn primary(&self) -> &'static ResourceInfo;
    /// The keys a change concerns (the object itself, its owner, the owners that may adopt it).
    fn keys_for(&self, store: &Store, event: &WatchEvent) -> Vec<ObjectKey>;
    /// Reads the world for `key` and writes the difference; idempotent.
    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult;
}

/// Retry delay after a conflict: someone else wrote first, the next pass reads their write.
const CONFLICT_RETRY: Duration = Duration::from_millis(50);
/// First retry delay after another failure; doubles per consecutive failure.
const ERROR_RETRY: Duration = Duration::from_millis(500);
const MAX_ERROR_RETRY: Duration = Duration::from_secs(60);
/// How soon a failed watch is retried.
const WATCH_RETRY: Duration = Duration::from_secs(1);

/// The watchdog controller loops register with; set once by the daemon's main before it
/// starts them (controllers are started from several places, each through [`spawn`]).
static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// Makes every reconcile loop started after this call beat a heartbeat of its own (named
/// after the controller) on `watchdog`, so a wedged controller stops systemd's pings.
pub fn register_heartbeats(watchdog: Watchdog) {
    if WATCHDOG.set(watchdog).is_err() {
        log::warn!("controllers: heartbeats were already registered with a watchdog; keeping the first");
    }
}

/// A loop's heartbeat and how often it must beat (it wakes for it even when idle).
pub type LoopHeartbeat = Option<(Heartbeat, Duration)>;

/// The heartbeat for a loop named `name`, when [`register_heartbeats`] was called.
fn heartbeat(name: &str) -> LoopHeartbeat {
    WATCHDOG.get().map(|w| (w.register(name), w.beat_every()))
}

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

/// Starts `reconciler` on its own thread, resyncing every object every `resync`; it beats
/// a heartbeat when [`register_heartbeats`] was called first.
pub fn spawn<R: Reconciler>(store: Store, reconciler: R, resync: Duration) -> JoinHandle<()> {
    let beat = heartbeat(reconciler.name());
    spawn_with_heartbeat(store, reconciler, resync, beat)
}

/// [`spawn`] with the loop's heartbeat given: it beats each time round the loop, idle or not.
pub fn spawn_with_heartbeat<R: Reconciler>(
    store: Store,
    reconciler: R,
    resync: Duration,
    heartbeat: LoopHeartbeat,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(reconciler.name().to_string())
        .spawn(move || run(&store, reconciler, resync, heartbeat))
        .expect("spawning a controller thread")
}

/// Every key of the primary resource.
fn all_keys(store: &Store, info: &'static ResourceInfo) -> Vec<ObjectKey> {
    let filter = Filter { resource: Some(info), namespace: None };
    store.list(&filter).0.iter().map(|o| ObjectKey::new(&o.metadata().namespace, &o.metadata().name)).collect()
}

/// Reconciles one key and queues what it asked for.
fn reconcile_one<R: Reconciler>(store: &Store, r: &mut R, queue: &mut WorkQueue, key: &ObjectKey) {
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

fn run<R: Reconciler>(store: &Store, mut r: R, resync: Duration, heartbeat: LoopHeartbeat) {
    log::info!("{}: started", r.name());
    let beat_every = heartbeat.as_ref().map_or(Duration::MAX, |(_, every)| *every);
    let beat = || heartbeat.iter().for_each(|(h, _)| h.beat());
    while !store.is_shut_down() {
        beat();
        // Watch first, then list: a change between the two is seen twice, never missed.
        let watcher = match store.watch(Filter::default(), None) {
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
                for key in all_keys(store, r.primary()) {
                    queue.add(key, now);
                }
                next_resync = now + resync;
            }
            for key in queue.pop_due(now) {
                reconcile_one(store, &mut r, &mut queue, &key);
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

        fn primary(&self) -> &'static ResourceInfo {
            &<coracle_config::core::Pod as coracle_config::object::Resource>::INFO
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
        let beat = Some((dog.register("wedging"), dog.beat_every()));
        let controller =
            spawn_with_heartbeat(store.clone(), Wedging { release: wait }, Duration::from_secs(3600), beat);
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
}
