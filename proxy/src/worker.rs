//! The proxy's worker threads: each runs a single-threaded executor over its own reactor,
//! so a connection's wake-ups, reads and writes all happen on the thread that accepted it.
//! Other threads hand work over as jobs (closures that spawn the task on the worker) through
//! a queue and an eventfd.

use super::reactor::Reactor;
use async_task::{Runnable, Task};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::Instant;

/// The epoll token of a worker's eventfd.
const NOTIFY: u64 = 0;
/// How many connections more than the least-loaded worker a worker carries before it hands
/// new ones over: enough slack that short connections rarely cross threads.
const IMBALANCE: usize = 2;
/// Tasks run between two looks at the sockets, so busy connections cannot starve the rest.
const BUDGET: usize = 128;

/// Work sent to a worker from another thread.
type Job = Box<dyn FnOnce() + Send>;

/// The part of a worker other threads (and wakers) reach.
struct Shared {
    id: u64,
    runnables: Mutex<VecDeque<Runnable>>,
    jobs: Mutex<Vec<Job>>,
    eventfd: EventFd,
    /// Set while the worker is blocked (or about to block) in `epoll_wait`.
    sleeping: AtomicBool,
    /// Connections this worker serves ([`spawn_balanced`]).
    load: AtomicUsize,
    /// Every worker of the pool, this one included (weak: the pool owns them).
    peers: OnceLock<Vec<Weak<Shared>>>,
    /// Set (under the `jobs` lock) once the worker has ended: later jobs are dropped at once
    /// instead of waiting in a queue nobody reads, so a [`RemoteTask`] dropped after the
    /// worker (at shutdown, one per listener) does not wait out its timeout.
    ended: AtomicBool,
}

thread_local! {
    /// The id of the executor running on this thread (0: none).
    static RUNNING: Cell<u64> = const { Cell::new(0) };
    /// Tasks other threads can cancel, by id.
    static CANCELLABLE: RefCell<HashMap<u64, Task<()>>> = RefCell::new(HashMap::new());
    static LOCAL: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Shared {
    fn new() -> io::Result<Arc<Shared>> {
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| io::Error::other(format!("creating a worker's eventfd: {e}")))?;
        Ok(Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            runnables: Mutex::new(VecDeque::new()),
            jobs: Mutex::new(Vec::new()),
            eventfd,
            sleeping: AtomicBool::new(false),
            load: AtomicUsize::new(0),
            peers: OnceLock::new(),
            ended: AtomicBool::new(false),
        }))
    }

    /// Interrupts the worker's wait when called from another thread while it sleeps; on its
    /// own thread the loop runs the queue before it waits again.
    fn notify(&self) {
        // Pairs with the fence in `run` before its last look at the queues (Dekker-style):
        // either the worker sees the new item or this sees it sleeping.
        std::sync::atomic::fence(Ordering::SeqCst);
        if RUNNING.with(Cell::get) != self.id && self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.eventfd.write(1);
        }
    }

    fn schedule(self: &Arc<Self>, runnable: Runnable) {
        self.runnables.lock().unwrap_or_else(|p| p.into_inner()).push_back(runnable);
        self.notify();
    }

    /// Queues `job` for the worker; after the worker ended, drops it instead (whatever it
    /// owns, such as a channel a caller waits on, is dropped with it).
    fn push_job(&self, job: Job) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if self.ended.load(Ordering::Acquire) {
            drop(jobs);
            drop(job);
            return;
        }
        jobs.push(job);
        drop(jobs);
        self.notify();
    }
}

/// Spawns `fut` on the calling worker thread, detached: it runs until it ends or the
/// worker stops.
pub fn spawn_local(fut: impl Future<Output = ()> + 'static) {
    let shared = LOCAL.with(|l| l.borrow().clone()).expect("spawn_local outside a proxy worker thread");
    let (runnable, task) = async_task::spawn_local(fut, move |r| shared.schedule(r));
    task.detach();
    runnable.schedule();
}

/// Counts one connection in a worker's load while it lives.
struct Counted(Arc<Shared>);

impl Counted {
    fn new(worker: Arc<Shared>) -> Counted {
        worker.load.fetch_add(1, Ordering::Relaxed);
        Counted(worker)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.load.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Spawns a connection's task, made by `make` where it will run: on the calling worker, or
/// on the least-loaded one when the caller carries more than [`IMBALANCE`] connections
/// above it (`SO_REUSEPORT`'s hash spreads connections only roughly evenly, and the busier
/// worker's queue is everyone's tail latency). Outside a pool it runs here.
pub fn spawn_balanced<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let here = LOCAL.with(|l| l.borrow().clone()).expect("spawn_balanced outside a proxy worker thread");
    let lighter = here.peers.get().and_then(|peers| {
        let (lightest, load) = peers
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| {
                let load = p.load.load(Ordering::Relaxed);
                (p, load)
            })
            .min_by_key(|(_, load)| *load)?;
        (here.load.load(Ordering::Relaxed) > load + IMBALANCE).then_some(lightest)
    });
    let target = lighter.unwrap_or_else(|| here.clone());
    let counted = Counted::new(target.clone());
    let job = move || {
        let fut = make();
        spawn_local(async move {
            let _counted = counted;
            fut.await
        })
    };
    if Arc::ptr_eq(&target, &here) {
        job();
    } else {
        target.push_job(Box::new(job));
    }
}

/// Wakes the root future of [`block_on`].
struct RootWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for RootWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.shared.notify();
    }
}

/// Runs `root` on the calling thread with a reactor and an executor of its own (tasks it
/// spawns with [`spawn_local`] run too) until `root` completes; the tasks left are dropped.
pub fn block_on<T>(root: impl Future<Output = T>) -> io::Result<T> {
    let shared = Shared::new()?;
    run(shared, root)
}

fn run<T>(shared: Arc<Shared>, root: impl Future<Output = T>) -> io::Result<T> {
    let reactor = Reactor::install(shared.eventfd.as_fd(), NOTIFY)?;
    RUNNING.with(|r| r.set(shared.id));
    LOCAL.with(|l| *l.borrow_mut() = Some(shared.clone()));
    let root_waker = Arc::new(RootWaker { woken: AtomicBool::new(true), shared: shared.clone() });
    let waker = Waker::from(root_waker.clone());
    let mut root = pin!(root);
    let result = loop {
        if root_waker.woken.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(out) = root.as_mut().poll(&mut Context::from_waker(&waker)) {
                break Ok(out);
            }
        }
        let jobs = std::mem::take(&mut *shared.jobs.lock().unwrap_or_else(|p| p.into_inner()));
        for job in jobs {
            job();
        }
        let mut ran = 0;
        while ran < BUDGET {
            let next = shared.runnables.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let Some(runnable) = next else { break };
            runnable.run();
            ran += 1;
        }
        // Announce the sleep before the last look at the queues, so a job pushed in between
        // writes the eventfd.
        shared.sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let busy = root_waker.woken.load(Ordering::Acquire)
            || !shared.runnables.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            || !shared.jobs.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        let timeout = if busy {
            Some(std::time::Duration::ZERO)
        } else {
            reactor.next_deadline().map(|at| at.saturating_duration_since(Instant::now()))
        };
        let notified = reactor.wait(timeout, NOTIFY);
        shared.sleeping.store(false, Ordering::Release);
        match notified {
            Ok(true) => {
                let _ = shared.eventfd.read();
            }
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    // Tasks (and their sockets) go before the reactor they are registered with. A task
    // whose last waker is dropped is scheduled once more so that its future is dropped
    // here, which may release further wakers: drain until nothing is left.
    let cancelled = CANCELLABLE.with(|c| std::mem::take(&mut *c.borrow_mut()));
    drop(cancelled);
    drop(reactor.take_wakers());
    loop {
        let next = shared.runnables.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(runnable) = next else { break };
        drop(runnable);
        drop(reactor.take_wakers());
    }
    // Jobs queued until now are dropped unrun, and so is every later one (`push_job`).
    let left = {
        let mut jobs = shared.jobs.lock().unwrap_or_else(|p| p.into_inner());
        shared.ended.store(true, Ordering::Release);
        std::mem::take(&mut *jobs)
    };
    drop(left);
    LOCAL.with(|l| l.borrow_mut().take());
    RUNNING.with(|r| r.set(0));
    drop(reactor);
    Reactor::uninstall();
    result
}

/// Completes once [`StopSignal::stop`] is called, from any thread.
#[derive(Default)]
struct StopSignal {
    stopped: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl StopSignal {
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            if self.stopped.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// A task on a worker, cancelled (its future dropped on the worker) when this is dropped.
pub struct RemoteTask {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for RemoteTask {
    /// Waits (up to a second, in case the worker is gone) until the task's future has been
    /// dropped, so that its sockets are closed when this returns: the address may be bound
    /// again right after.
    fn drop(&mut self) {
        let id = self.id;
        let cancel = move || drop(CANCELLABLE.with(|c| c.borrow_mut().remove(&id)));
        if RUNNING.with(Cell::get) == self.shared.id {
            return cancel();
        }
        let (done, dropped) = std::sync::mpsc::sync_channel::<()>(1);
        let shared = self.shared.clone();
        self.shared.push_job(Box::new(move || {
            cancel();
            // A cancelled task that was already scheduled drops its future only when its
            // runnable next runs; the queue is FIFO, so a runnable scheduled now runs after it.
            let s = shared.clone();
            let (runnable, task) = async_task::spawn_local(
                async move {
                    let _ = done.send(());
                },
                move |r| s.schedule(r),
            );
            task.detach();
            runnable.schedule();
        }));
        let _ = dropped.recv_timeout(std::time::Duration::from_secs(1));
    }
}

/// A pool of worker threads.
pub struct Workers {
    workers: Vec<(Arc<Shared>, Arc<StopSignal>)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts `count` (at least one) worker threads named `name-N`.
    pub fn start(count: usize, name: &str) -> io::Result<Workers> {
        let mut pool = Workers { workers: Vec::new(), threads: Mutex::new(Vec::new()) };
        for i in 0..count.max(1) {
            let shared = Shared::new()?;
            let stop = Arc::new(StopSignal::default());
            let (s, signal) = (shared.clone(), stop.clone());
            let thread = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                if let Err(e) = run(s, signal.wait()) {
                    log::error!("proxy worker stopped: {e}");
                }
            })?;
            pool.workers.push((shared, stop));
            pool.threads.get_mut().unwrap_or_else(|p| p.into_inner()).push(thread);
        }
        let peers: Vec<Weak<Shared>> = pool.workers.iter().map(|(s, _)| Arc::downgrade(s)).collect();
        for (shared, _) in &pool.workers {
            let _ = shared.peers.set(peers.clone());
        }
        Ok(pool)
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether the pool is empty (never: `start` makes at least one).
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Runs `make` on worker `index` (modulo the pool) and spawns the future it returns
    /// there; dropping the returned handle cancels that task.
    pub fn spawn_on<F, Fut>(&self, index: usize, make: F) -> RemoteTask
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let shared = self.workers[index % self.workers.len()].0.clone();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let s = shared.clone();
        shared.push_job(Box::new(move || {
            let (runnable, task) = async_task::spawn_local(make(), move |r| s.schedule(r));
            CANCELLABLE.with(|c| c.borrow_mut().insert(id, task));
            runnable.schedule();
        }));
        RemoteTask { id, shared }
    }

    /// Stops every worker (dropping its tasks and their sockets) and waits for them; later
    /// calls do nothing, and work handed over afterwards never runs.
    pub fn shutdown(&self) {
        for (_, stop) in &self.workers {
            stop.stop();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_from_another_thread_run_and_dropping_the_handle_cancels() {
        let pool = Workers::start(2, "test-worker").unwrap();
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let _kept = pool.spawn_on(1, move || async move {
            tx.send("ran").unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "ran");
        // A task that reports its own drop; cancelling it must drop it on the worker.
        struct OnDrop(mpsc::Sender<&'static str>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.send("dropped");
            }
        }
        let handle = pool.spawn_on(0, move || {
            // Made with the future, so dropped with it even if it never ran.
            let guard = OnDrop(tx2);
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        });
        drop(handle);
        // Dropping the handle returns once the future is gone.
        assert_eq!(rx.try_recv().unwrap(), "dropped");
        pool.shutdown();
    }

    #[test]
    fn work_handed_to_an_ended_worker_is_dropped_at_once() {
        struct OnDrop(mpsc::Sender<&'static str>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.send("dropped");
            }
        }
        let pool = Workers::start(1, "test-ended").unwrap();
        let (tx, rx) = mpsc::channel();
        let before = pool.spawn_on(0, std::future::pending::<()>);
        pool.shutdown();
        // A job queued now would never run: it is dropped, with what it owns, before
        // spawn_on returns (a listener's handle dropped after shutdown relies on this).
        let guard = OnDrop(tx);
        let after = pool.spawn_on(0, move || {
            let _guard = guard;
            std::future::pending::<()>()
        });
        assert_eq!(rx.try_recv(), Ok("dropped"));
        // Dropping handles of the ended worker waits for nobody; 100 of them (a Service's
        // listeners each) would each wait out the cancel's timeout otherwise.
        drop(before);
        drop(after);
    }

    #[test]
    fn connections_move_to_a_lighter_worker_past_the_imbalance() {
        let pool = Workers::start(2, "test-balance").unwrap();
        let (tx, rx) = mpsc::channel();
        // From worker 0, spawn more long-lived tasks than the slack allows; each reports the
        // thread it runs on.
        let _spawner = pool.spawn_on(0, move || async move {
            for _ in 0..(IMBALANCE + 4) {
                let tx = tx.clone();
                spawn_balanced(move || async move {
                    tx.send(std::thread::current().name().unwrap_or("").to_string()).unwrap();
                    std::future::pending::<()>().await;
                });
            }
        });
        let names: Vec<String> = (0..IMBALANCE + 4).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
        let on_0 = names.iter().filter(|n| *n == "test-balance-0").count();
        let on_1 = names.iter().filter(|n| *n == "test-balance-1").count();
        assert_eq!(on_0 + on_1, names.len(), "{names:?}");
        assert!(on_1 > 0 && on_0.abs_diff(on_1) <= IMBALANCE + 1, "{names:?}");
        pool.shutdown();
    }

    #[test]
    fn block_on_runs_spawned_tasks_and_timers() {
        use super::super::reactor::sleep;
        let out = block_on(async {
            let got = std::rc::Rc::new(Cell::new(None));
            let set = got.clone();
            spawn_local(async move {
                sleep(Duration::from_millis(20)).await;
                set.set(Some(7));
            });
            // Bounded by count, not by time: each round is another timer.
            for _ in 0..5000 {
                if got.get().is_some() {
                    break;
                }
                sleep(Duration::from_millis(1)).await;
            }
            got.get()
        })
        .unwrap();
        assert_eq!(out, Some(7));
    }
}
