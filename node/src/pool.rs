//! The threads that run pod workers: a timer queue of pods and a small pool that runs each
//! pod's pass when it comes due or its object changes, instead of a sleeping thread per pod.
//!
//! A pass may block (an exec probe, a preStop hook, a grace period), so the pool grows when
//! due work finds no idle thread, up to a cap: one slow pod never delays another. One idle
//! thread waits for the next timer; the others wait in a stack and the newest is woken
//! first, so a few threads stay busy while the rest idle long enough to retire. A pod is
//! run by at most one thread at a time.
//!
//! A pass that panics is not contained here: the daemon's panic policy is abort (see
//! docs/ARCHITECTURE.md), so the process ends and the next start re-adopts every pod.

use super::pod_worker::Next;
use coracle_config::core::Pod;
use coracle_watchdog::Heartbeat;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a pod's pass runs on: the pod worker, or a recording stand-in in tests.
pub trait PodTask: Send + 'static {
    /// One pass over the newest version of the pod.
    fn sync(&mut self, pod: &Pod) -> Next;
    /// The pod vanished from the store without a graceful deletion.
    fn remove_now(&mut self, pod: &Pod);
}

/// A pod's runtime containers left from an earlier run, as `(container name, attempt, id)`.
pub type Leftovers = Vec<(String, u32, String)>;

/// Makes a pod's task on a pool thread (adoption may block) from the pod and its leftover
/// containers.
pub type TaskFactory<T> = Box<dyn Fn(&Pod, Leftovers) -> T + Send + Sync>;

/// How many threads, how big, and when idle ones leave.
#[derive(Clone, Debug)]
pub struct PoolLimits {
    /// Threads never exceed this; further due pods wait for one to come free.
    pub max_threads: usize,
    /// Threads kept even when idle.
    pub min_threads: usize,
    /// An idle thread beyond `min_threads` leaves after this long without work.
    pub retire_after: Duration,
    /// Stack of each thread: a pass is shallow.
    pub stack: usize,
    /// Longest idle wait: the heartbeat beats at least this often.
    pub beat_every: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            max_threads: 64,
            min_threads: 1,
            retire_after: Duration::from_secs(3),
            stack: 256 * 1024,
            beat_every: Duration::from_secs(1),
        }
    }
}

/// Where a pod's task is between passes.
enum TaskSlot<T> {
    /// Not made yet: made by the first pass, from these leftovers.
    New(Leftovers),
    /// Waiting for its next pass.
    Idle(T),
    /// A thread runs it now.
    Busy,
}

struct Entry<T> {
    pod: Pod,
    task: TaskSlot<T>,
    /// When the next pass is due.
    due: Instant,
    /// Set when the pod vanished: the next pass removes it.
    removed: Option<Pod>,
    /// The pod changed while a thread ran it: run again at once.
    changed: bool,
}

struct State<T> {
    pods: HashMap<String, Entry<T>>,
    /// Due times; an item whose time no longer matches its entry's `due` is stale.
    queue: BinaryHeap<Reverse<(Instant, String)>>,
    threads: usize,
    /// The idle thread waiting for the next due pod, if any, and when it means to wake.
    timer: Option<Arc<Condvar>>,
    timer_at: Option<Instant>,
    /// The other idle threads, newest last, each waiting on its own condvar.
    waiting: Vec<Arc<Condvar>>,
    stopping: bool,
    handles: Vec<JoinHandle<()>>,
}

impl<T> State<T> {
    fn schedule(&mut self, uid: &str, at: Instant) {
        if let Some(e) = self.pods.get_mut(uid) {
            e.due = at;
            self.queue.push(Reverse((at, uid.to_string())));
            // Sooner than the timer thread means to wake: it looks again.
            if let (Some(timer), Some(planned)) = (&self.timer, self.timer_at) {
                if at < planned {
                    timer.notify_one();
                }
            }
        }
    }

    /// The earliest due instant among pods not being run.
    fn next_due(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, uid))) = self.queue.peek() {
            match self.pods.get(uid) {
                Some(e) if e.due == *at && !matches!(e.task, TaskSlot::Busy) => return Some(*at),
                _ => {
                    self.queue.pop();
                }
            }
        }
        None
    }
}

/// One pass taken off the queue.
enum Job<T> {
    Sync(TaskSlot<T>, Pod),
    Remove(TaskSlot<T>, Pod),
}

struct Shared<T> {
    state: Mutex<State<T>>,
    make: TaskFactory<T>,
    limits: PoolLimits,
    heartbeat: Option<Heartbeat>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The pool: pods in, passes run on its threads.
pub struct PodPool<T: PodTask> {
    shared: Arc<Shared<T>>,
}

impl<T: PodTask> PodPool<T> {
    /// An empty pool; `heartbeat` beats whenever a thread looks for work.
    pub fn new(make: TaskFactory<T>, limits: PoolLimits, heartbeat: Option<Heartbeat>) -> PodPool<T> {
        let state = State {
            pods: HashMap::new(),
            queue: BinaryHeap::new(),
            threads: 0,
            timer: None,
            timer_at: None,
            waiting: Vec::new(),
            stopping: false,
            handles: Vec::new(),
        };
        let pool = PodPool { shared: Arc::new(Shared { state: Mutex::new(state), make, limits, heartbeat }) };
        // The kept threads start now: with no pods at all they still beat the heartbeat.
        let mut state = pool.shared.lock();
        for _ in 0..pool.shared.limits.min_threads {
            start_thread(&pool.shared, &mut state);
        }
        drop(state);
        pool
    }

    /// Takes up `pod` with the runtime containers left from an earlier run; its first pass
    /// is due now.
    pub fn add(&self, pod: Pod, leftovers: Leftovers) {
        let uid = pod.metadata.uid.clone();
        let mut state = self.shared.lock();
        if state.pods.contains_key(&uid) {
            drop(state);
            return self.update(pod);
        }
        let entry = Entry { pod, task: TaskSlot::New(leftovers), due: Instant::now(), removed: None, changed: false };
        state.pods.insert(uid.clone(), entry);
        state.schedule(&uid, Instant::now());
        wake_or_start(&self.shared, &mut state);
    }

    /// A newer version of a pod: its pass runs now (a pod not taken up yet is added).
    pub fn update(&self, pod: Pod) {
        let uid = pod.metadata.uid.clone();
        let mut state = self.shared.lock();
        let Some(entry) = state.pods.get_mut(&uid) else {
            drop(state);
            return self.add(pod, Vec::new());
        };
        entry.pod = pod;
        if matches!(entry.task, TaskSlot::Busy) {
            entry.changed = true;
            return;
        }
        state.schedule(&uid, Instant::now());
        wake_or_start(&self.shared, &mut state);
    }

    /// The pod left the store without a graceful deletion: its containers go at once.
    /// `gone` may be a bare object carrying only the uid (after a lost watch).
    pub fn remove(&self, uid: &str, gone: Pod) {
        let mut state = self.shared.lock();
        let Some(entry) = state.pods.get_mut(uid) else { return };
        let gone = if gone.metadata.name.is_empty() { entry.pod.clone() } else { gone };
        entry.removed = Some(gone);
        if matches!(entry.task, TaskSlot::Busy) {
            entry.changed = true;
            return;
        }
        state.schedule(uid, Instant::now());
        wake_or_start(&self.shared, &mut state);
    }

    /// The uids of the pods the pool holds.
    pub fn uids(&self) -> Vec<String> {
        self.shared.lock().pods.keys().cloned().collect()
    }

    /// How many threads the pool has now.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Lets running passes finish, then ends every thread; pods are left as they are.
    pub fn stop(&self) {
        let handles = {
            let mut state = self.shared.lock();
            state.stopping = true;
            state.waiting.iter().chain(&state.timer).for_each(|w| w.notify_one());
            std::mem::take(&mut state.handles)
        };
        for h in handles {
            let _ = h.join();
        }
    }

    /// Starts a thread when a pod's timer came due while every thread was busy (nobody
    /// waits on the timer then); the supervisor calls this on each tick.
    pub fn tend(&self) {
        let mut state = self.shared.lock();
        if state.timer.is_none() && state.waiting.is_empty() && state.next_due().is_some_and(|at| at <= Instant::now())
        {
            start_thread(&self.shared, &mut state);
        }
    }
}

impl<T: PodTask> Drop for PodPool<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wakes the newest idle thread for work that is due now, or starts one when none waits.
fn wake_or_start<T: PodTask>(shared: &Arc<Shared<T>>, state: &mut State<T>) {
    match state.waiting.pop().or_else(|| state.timer.clone()) {
        Some(thread) => thread.notify_one(),
        None => start_thread(shared, state),
    }
}

/// One more thread, unless the pool is stopping or full.
fn start_thread<T: PodTask>(shared: &Arc<Shared<T>>, state: &mut State<T>) {
    if state.stopping || state.threads >= shared.limits.max_threads {
        return;
    }
    state.handles.retain(|h| !h.is_finished());
    let thread_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("pod-worker".into())
        .stack_size(shared.limits.stack)
        .spawn(move || run_thread(thread_shared));
    match spawned {
        Ok(handle) => {
            state.threads += 1;
            state.handles.push(handle);
        }
        Err(e) => log::warn!("node: no thread for pod workers ({e}); the running ones carry on"),
    }
}

/// Takes the earliest due pod, if one is due by `now`.
fn take_due<T>(state: &mut State<T>, now: Instant) -> Option<(String, Job<T>)> {
    let due = state.next_due()?;
    if due > now {
        return None;
    }
    let Reverse((_, uid)) = state.queue.pop()?;
    let entry = state.pods.get_mut(&uid)?;
    let task = std::mem::replace(&mut entry.task, TaskSlot::Busy);
    entry.changed = false;
    let job = match entry.removed.clone() {
        Some(gone) => Job::Remove(task, gone),
        None => Job::Sync(task, entry.pod.clone()),
    };
    Some((uid, job))
}

/// What a job left: the task to keep and when it is next due, or nothing (the pod is done).
type Outcome<T> = Option<(T, Instant)>;

fn run_job<T: PodTask>(shared: &Shared<T>, job: Job<T>) -> Outcome<T> {
    let made = |slot: TaskSlot<T>, pod: &Pod| match slot {
        TaskSlot::Idle(t) => t,
        TaskSlot::New(leftovers) => (shared.make)(pod, leftovers),
        TaskSlot::Busy => unreachable!("a busy task is never taken twice"),
    };
    match job {
        Job::Sync(slot, pod) => {
            let mut task = made(slot, &pod);
            match task.sync(&pod) {
                Next::At(at) => Some((task, at)),
                Next::Done => None,
            }
        }
        Job::Remove(slot, gone) => {
            made(slot, &gone).remove_now(&gone);
            None
        }
    }
}

fn run_thread<T: PodTask>(shared: Arc<Shared<T>>) {
    let me = Arc::new(Condvar::new());
    let mut state = shared.lock();
    let mut idle_since = Instant::now();
    loop {
        if state.stopping {
            break;
        }
        if let Some(beat) = &shared.heartbeat {
            beat.beat();
        }
        let now = Instant::now();
        if let Some((uid, job)) = take_due(&mut state, now) {
            let was_timer = state.timer.as_ref().is_some_and(|t| Arc::ptr_eq(t, &me));
            if was_timer {
                state.timer = None;
            }
            // More due already: a burst, another thread takes it. Otherwise the newest idle
            // thread takes over the timer this one was waiting on.
            if state.next_due().is_some_and(|at| at <= now) {
                wake_or_start(&shared, &mut state);
            } else if was_timer {
                if let Some(next) = state.waiting.pop() {
                    next.notify_one();
                }
            }
            drop(state);
            let outcome = run_job(&shared, job);
            state = shared.lock();
            idle_since = Instant::now();
            finish(&mut state, &uid, outcome);
            continue;
        }
        let is_timer = state.timer.as_ref().is_some_and(|t| Arc::ptr_eq(t, &me));
        if !is_timer && state.timer.is_none() {
            state.timer = Some(me.clone());
        }
        let wait = if state.timer.as_ref().is_some_and(|t| Arc::ptr_eq(t, &me)) {
            // The timer (and the heartbeat): the next due pod, at least every beat.
            let due = state.next_due().map_or(shared.limits.beat_every, |at| at.saturating_duration_since(now));
            let wait = due.min(shared.limits.beat_every);
            state.timer_at = Some(now + wait);
            wait
        } else {
            let idle = now.duration_since(idle_since);
            if idle >= shared.limits.retire_after && state.threads > shared.limits.min_threads {
                break;
            }
            // Woken by a pop it is off the stack already; after a timeout it takes itself off.
            state.waiting.push(me.clone());
            shared.limits.retire_after - idle
        };
        state = me.wait_timeout(state, wait).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        state.waiting.retain(|w| !Arc::ptr_eq(w, &me));
    }
    if state.timer.as_ref().is_some_and(|t| Arc::ptr_eq(t, &me)) {
        state.timer = None;
    }
    state.waiting.retain(|w| !Arc::ptr_eq(w, &me));
    state.threads -= 1;
}

/// Puts a task back after its pass, or lets the pod go when its task is done.
fn finish<T>(state: &mut State<T>, uid: &str, outcome: Outcome<T>) {
    let Some(entry) = state.pods.get_mut(uid) else { return };
    let Some((task, at)) = outcome else {
        state.pods.remove(uid);
        return;
    };
    entry.task = TaskSlot::Idle(task);
    let at = if entry.changed { Instant::now() } else { at };
    state.schedule(uid, at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// What the stand-in task saw, in order: `made NAME leftovers`, `sync NAME/VERSION`, `remove NAME`.
    type Log = mpsc::Sender<String>;

    /// A task that reports each call and behaves as the pod's annotations say.
    struct Recording {
        log: Log,
        /// Passes block until a message arrives here, when the pod asks for it.
        gate: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    fn version(pod: &Pod) -> &str {
        pod.metadata.resource_version.as_str()
    }

    impl PodTask for Recording {
        fn sync(&mut self, pod: &Pod) -> Next {
            let name = &pod.metadata.name;
            let _ = self.log.send(format!("sync {name}/{}", version(pod)));
            match name.as_str() {
                n if n.starts_with("blocks") => {
                    let _ = self.gate.lock().unwrap().recv();
                }
                _ => {}
            }
            if name.starts_with("done") {
                return Next::Done;
            }
            let later = if name.starts_with("soon") { Duration::from_millis(20) } else { Duration::from_secs(3600) };
            Next::At(Instant::now() + later)
        }

        fn remove_now(&mut self, pod: &Pod) {
            let _ = self.log.send(format!("remove {}", pod.metadata.name));
        }
    }

    fn pod(name: &str, version: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.uid = format!("uid-{name}");
        p.metadata.resource_version = version.into();
        p
    }

    fn pool(limits: PoolLimits) -> (PodPool<Recording>, mpsc::Receiver<String>, mpsc::Sender<()>) {
        let (log, seen) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let gate = Arc::new(Mutex::new(gate));
        let make = move |pod: &Pod, leftovers: Leftovers| {
            let _ = log.send(format!("made {} {}", pod.metadata.name, leftovers.len()));
            Recording { log: log.clone(), gate: gate.clone() }
        };
        (PodPool::new(Box::new(make), limits, None), seen, open)
    }

    /// The next call reported; a pool that never makes it fails the test instead of hanging.
    fn next(seen: &mpsc::Receiver<String>) -> String {
        seen.recv_timeout(Duration::from_secs(30)).expect("the pool made no further call")
    }

    #[test]
    fn a_pod_runs_at_once_then_when_it_asks_and_on_every_change() {
        let (pool, seen, _open) = pool(PoolLimits::default());
        pool.add(pod("soon", "1"), vec![("app".into(), 0, "id".into())]);
        assert_eq!(next(&seen), "made soon 1");
        assert_eq!(next(&seen), "sync soon/1");
        assert_eq!(next(&seen), "sync soon/1", "the timer it asked for");
        pool.add(pod("idle", "1"), Vec::new());
        assert_eq!(seen.iter().find(|c| c.contains("idle")).unwrap(), "made idle 0");
        pool.update(pod("idle", "2"));
        assert_eq!(seen.iter().find(|c| c.contains("idle")).unwrap(), "sync idle/1");
        assert_eq!(seen.iter().find(|c| c.contains("idle")).unwrap(), "sync idle/2");
        let mut uids = pool.uids();
        uids.sort();
        assert_eq!(uids, ["uid-idle", "uid-soon"]);
    }

    #[test]
    fn changes_during_a_pass_become_one_more_pass_with_the_newest_pod() {
        let (pool, seen, open) = pool(PoolLimits::default());
        pool.add(pod("blocks", "1"), Vec::new());
        assert_eq!(next(&seen), "made blocks 0");
        assert_eq!(next(&seen), "sync blocks/1");
        pool.update(pod("blocks", "2"));
        pool.update(pod("blocks", "3"));
        open.send(()).unwrap();
        assert_eq!(next(&seen), "sync blocks/3");
        open.send(()).unwrap();
        assert_eq!(seen.recv_timeout(Duration::from_millis(200)), Err(mpsc::RecvTimeoutError::Timeout));
    }

    #[test]
    fn a_blocked_pass_does_not_hold_up_other_pods_and_threads_stay_bounded() {
        let limits = PoolLimits { max_threads: 2, ..PoolLimits::default() };
        let (pool, seen, open) = pool(limits);
        pool.add(pod("blocks-a", "1"), Vec::new());
        pool.add(pod("idle", "1"), Vec::new());
        let mut calls: Vec<String> = (0..4).map(|_| next(&seen)).collect();
        calls.sort();
        assert_eq!(calls, ["made blocks-a 0", "made idle 0", "sync blocks-a/1", "sync idle/1"]);
        // Both threads are taken by blocked passes now: a third pod waits for one to free.
        pool.add(pod("blocks-b", "1"), Vec::new());
        assert_eq!(next(&seen), "made blocks-b 0");
        assert_eq!(next(&seen), "sync blocks-b/1");
        pool.add(pod("waits", "1"), Vec::new());
        assert_eq!(seen.recv_timeout(Duration::from_millis(200)), Err(mpsc::RecvTimeoutError::Timeout));
        assert_eq!(pool.threads(), 2);
        open.send(()).unwrap();
        assert_eq!(next(&seen), "made waits 0");
        assert_eq!(next(&seen), "sync waits/1");
        open.send(()).unwrap();
    }

    #[test]
    fn removal_and_done_let_the_pod_go() {
        let (pool, seen, _open) = pool(PoolLimits::default());
        pool.add(pod("idle", "1"), Vec::new());
        assert_eq!(next(&seen), "made idle 0");
        assert_eq!(next(&seen), "sync idle/1");
        // After a lost watch only the uid is known: the pod as last seen is removed.
        let mut bare = Pod::default();
        bare.metadata.uid = "uid-idle".into();
        pool.remove("uid-idle", bare);
        assert_eq!(next(&seen), "remove idle");
        pool.add(pod("done", "1"), Vec::new());
        assert_eq!(next(&seen), "made done 0");
        assert_eq!(next(&seen), "sync done/1");
        while !pool.uids().is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        pool.remove("uid-done", pod("done", "1"));
        assert_eq!(seen.recv_timeout(Duration::from_millis(200)), Err(mpsc::RecvTimeoutError::Timeout));
    }

    #[test]
    fn idle_threads_retire_down_to_the_minimum() {
        let limits = PoolLimits { retire_after: Duration::from_millis(10), ..PoolLimits::default() };
        let (pool, seen, open) = pool(limits);
        for name in ["blocks-a", "blocks-b", "blocks-c"] {
            pool.add(pod(name, "1"), Vec::new());
        }
        let mut calls: Vec<String> = (0..6).map(|_| next(&seen)).filter(|c| c.starts_with("sync")).collect();
        calls.sort();
        assert_eq!(calls, ["sync blocks-a/1", "sync blocks-b/1", "sync blocks-c/1"]);
        assert!(pool.threads() >= 3, "one thread per blocked pass");
        (0..3).for_each(|_| open.send(()).unwrap());
        while pool.threads() > 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        pool.update(pod("blocks-a", "2"));
        assert_eq!(next(&seen), "sync blocks-a/2");
        open.send(()).unwrap();
    }

    #[test]
    fn the_heartbeat_beats_without_pods_and_stops_when_every_thread_is_stuck() {
        use coracle_watchdog::notify_listener::{listen, receive as next_ping};
        let dir = tempfile::tempdir().unwrap();
        let (listener, notifier) = listen(dir.path());
        let receive = |timeout: Duration| next_ping(&listener, timeout);
        let interval = Duration::from_millis(200);
        let dog = coracle_watchdog::Watchdog::new(Some(interval), Some(notifier));
        let (log, seen) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let gate = Arc::new(Mutex::new(gate));
        let make = move |_: &Pod, _: Leftovers| Recording { log: log.clone(), gate: gate.clone() };
        let limits = PoolLimits { max_threads: 1, beat_every: dog.beat_every(), ..PoolLimits::default() };
        let pool = PodPool::new(Box::new(make), limits, Some(dog.register("pod-workers")));
        let _pings = dog.spawn().unwrap();
        for _ in 0..3 {
            assert_eq!(receive(Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"), "an idle pool beats");
        }
        pool.add(pod("blocks", "1"), Vec::new());
        assert_eq!(next(&seen), "sync blocks/1");
        let mut late = 0;
        while receive(interval * 5).is_some() {
            late += 1;
            assert!(late <= 2, "pings went on while the pool's only thread was stuck");
        }
        open.send(()).unwrap();
        assert_eq!(receive(Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"), "pings resume");
    }
}
