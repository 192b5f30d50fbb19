//! Helper threads that make sockets inside pods' network namespaces. A socket keeps the
//! namespace it was created in, and `setns` moves only the calling thread, so a socket for
//! a loopback-only pod needs a thread that has joined the pod's namespace. A proxy worker
//! must not be that thread (it would leave the host's namespace) nor wait for one to be
//! spawned and joined, so a fixed pool of helpers takes such jobs from a queue: a helper
//! joins the job's namespace, runs it (a `socket(2)`, or the `ip` calls and binds of a
//! listener), and returns to the host's namespace, so that no helper keeps a pod's
//! namespace alive. A worker awaits the result as a future; a thread that may block (the
//! sync thread, the API's port-forward) waits for it with [`Pending::wait`].

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

/// Helper threads the proxy runs: one can run a listener's `ip` calls while the other keeps
/// serving connections' sockets.
pub const HELPERS: usize = 2;

/// A helper's stack: a job is a few syscalls or one `ip` child.
const STACK: usize = 256 * 1024;

/// A job as a helper runs it: told whether joining the namespace worked.
type Run = Box<dyn FnOnce(io::Result<()>) + Send>;

struct Job {
    netns: PathBuf,
    run: Run,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// No job is taken any more: the pool is stopping, or every helper is gone.
    closed: bool,
    /// Helpers still running.
    alive: usize,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool of namespace helpers; dropping it fails the jobs still queued and waits for
/// the helpers to finish the ones they run.
pub struct NetnsPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl NetnsPool {
    /// Starts `helpers` (at least one) threads, returning to the calling thread's network
    /// namespace after each job.
    pub fn start(helpers: usize) -> io::Result<NetnsPool> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| io::Error::new(e.kind(), format!("opening this thread's network namespace: {e}")))?;
        let shared = Arc::new(Shared::default());
        let mut pool = NetnsPool { shared: shared.clone(), threads: Vec::new() };
        for i in 0..helpers.max(1) {
            let home = home.try_clone()?;
            let shared = shared.clone();
            shared.lock().alive += 1;
            let spawned = std::thread::Builder::new()
                .name(format!("proxy-netns-{i}"))
                .stack_size(STACK)
                .spawn(move || helper(&shared, &home));
            match spawned {
                Ok(thread) => pool.threads.push(thread),
                Err(e) => {
                    pool.shared.lock().alive -= 1;
                    return Err(e);
                }
            }
        }
        Ok(pool)
    }

    /// Runs `job` on a helper inside the network namespace at `netns`.
    pub fn run<T: Send + 'static>(
        &self,
        netns: &Path,
        job: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> Pending<T> {
        let slot = Arc::new(Slot::default());
        let done = Completer(Some(slot.clone()));
        let what = netns.display().to_string();
        let run: Run = Box::new(move |joined| {
            let result = joined
                .map_err(|e| io::Error::new(e.kind(), format!("joining network namespace {what}: {e}")))
                .and_then(|()| job());
            done.complete(result);
        });
        let mut queue = self.shared.lock();
        if queue.closed {
            // Dropping the job fails it.
            drop(run);
        } else {
            queue.jobs.push_back(Job { netns: netns.to_path_buf(), run });
            self.shared.ready.notify_one();
        }
        Pending(slot)
    }

    /// A non-blocking, close-on-exec socket made inside the namespace at `netns`.
    pub fn socket(&self, netns: &Path, family: AddressFamily, ty: SockType) -> Pending<OwnedFd> {
        self.run(netns, move || {
            socket(family, ty, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None).map_err(io::Error::from)
        })
    }
}

impl Drop for NetnsPool {
    fn drop(&mut self) {
        let queued = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            std::mem::take(&mut queue.jobs)
        };
        // Failed outside the lock: a job's completion wakes its waiter.
        drop(queued);
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Counts a helper out when it ends (a failed return home, a panicking job, or the pool's
/// stop); the last one out fails whatever is still queued, so no waiter waits forever.
struct Alive<'a>(&'a Shared);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        let orphans = {
            let mut queue = self.0.lock();
            queue.alive -= 1;
            if queue.alive > 0 {
                return;
            }
            queue.closed = true;
            std::mem::take(&mut queue.jobs)
        };
        drop(orphans);
    }
}

fn helper(shared: &Shared, home: &File) {
    let _alive = Alive(shared);
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        let joined = File::open(&job.netns).and_then(|ns| setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from));
        let entered = joined.is_ok();
        (job.run)(joined);
        if entered {
            if let Err(e) = setns(home, CloneFlags::CLONE_NEWNET) {
                // Its next job would start from a pod's namespace: this helper ends.
                log::error!("proxy: a netns helper cannot return to the host's network namespace: {e}");
                return;
            }
        }
    }
}

/// Where a job's result goes, and who waits for it.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    done: Condvar,
}

struct SlotState<T> {
    result: Option<io::Result<T>>,
    waker: Option<Waker>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { state: Mutex::new(SlotState { result: None, waker: None }), done: Condvar::new() }
    }
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Fills a slot once; dropped unfilled (the job never ran, or panicked) it fills it with an
/// error, so a waiter always gets an answer.
struct Completer<T>(Option<Arc<Slot<T>>>);

impl<T> Completer<T> {
    fn complete(mut self, result: io::Result<T>) {
        if let Some(slot) = self.0.take() {
            fill(&slot, result);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            fill(&slot, Err(io::Error::other("the proxy's netns helpers stopped before the job ran")));
        }
    }
}

fn fill<T>(slot: &Slot<T>, result: io::Result<T>) {
    let waker = {
        let mut state = slot.lock();
        state.result = Some(result);
        state.waker.take()
    };
    slot.done.notify_all();
    if let Some(w) = waker {
        w.wake();
    }
}

/// A job's result to come: await it on a proxy worker, or [`wait`](Pending::wait) for it on
/// a thread that may block.
#[must_use = "the job runs either way; its result is only in here"]
pub struct Pending<T>(Arc<Slot<T>>);

impl<T> Pending<T> {
    /// Blocks until the job has run.
    pub fn wait(self) -> io::Result<T> {
        let mut state = self.0.lock();
        loop {
            if let Some(result) = state.result.take() {
                return result;
            }
            state = self.0.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let mut state = self.0.lock();
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn my_netns() -> PathBuf {
        std::fs::read_link("/proc/thread-self/ns/net").unwrap()
    }

    #[test]
    fn a_job_runs_inside_the_namespace_and_the_helper_goes_home() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping a_job_runs_inside_the_namespace_and_the_helper_goes_home: setns needs root");
            return;
        }
        let pool = NetnsPool::start(1).unwrap();
        // A namespace of its own, held by a child for the test's length.
        let mut child = std::process::Command::new("unshare").args(["--net", "sleep", "60"]).spawn().unwrap();
        let path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let host = my_netns();
        for _ in 0..200 {
            if std::fs::read_link(&path).is_ok_and(|l| l != host) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let pod = std::fs::read_link(&path).unwrap();
        assert_ne!(pod, host);
        let inside = pool.run(&path, || Ok(my_netns())).wait().unwrap();
        assert_eq!(inside, pod);
        // The same helper, back in the host's namespace for the next job.
        let back = pool.run(Path::new("/proc/self/ns/net"), || Ok(my_netns())).wait().unwrap();
        assert_eq!(back, host);
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_missing_namespace_fails_the_job_and_the_helper_carries_on() {
        let pool = NetnsPool::start(1).unwrap();
        let e = pool.run(Path::new("/nonexistent/ns/net"), || Ok(())).wait().unwrap_err();
        assert!(e.to_string().contains("joining network namespace /nonexistent/ns/net"), "{e}");
        let e = pool.run(Path::new("/nonexistent/ns/net"), || Ok(())).wait().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_worker_awaits_the_socket_without_blocking_its_other_tasks() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping a_worker_awaits_the_socket_without_blocking_its_other_tasks: setns needs root");
            return;
        }
        let pool = Arc::new(NetnsPool::start(1).unwrap());
        // The helper is held up by a job that waits for the worker's other task.
        let (go, gate) = std::sync::mpsc::channel::<()>();
        let held = pool.run(Path::new("/proc/self/ns/net"), move || {
            gate.recv_timeout(std::time::Duration::from_secs(30)).map_err(io::Error::other)
        });
        let p = pool.clone();
        let fd = crate::worker::block_on(async move {
            crate::worker::spawn_local(async move {
                // Runs while the root below awaits the helper.
                go.send(()).unwrap();
            });
            let fd = p.socket(Path::new("/proc/self/ns/net"), AddressFamily::Inet, SockType::Stream).await;
            held.await.expect("the other task ran while the worker awaited the helper");
            fd
        })
        .unwrap()
        .unwrap();
        let flags = nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_ne!(flags & libc::O_NONBLOCK, 0, "the socket is non-blocking");
    }

    #[test]
    fn jobs_queued_when_the_pool_stops_fail_instead_of_hanging() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping jobs_queued_when_the_pool_stops_fail_instead_of_hanging: setns needs root");
            return;
        }
        let pool = NetnsPool::start(1).unwrap();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (go, gate) = std::sync::mpsc::channel::<()>();
        let first = pool.run(Path::new("/proc/self/ns/net"), move || {
            started.send(()).map_err(io::Error::other)?;
            gate.recv().map_err(io::Error::other)
        });
        running.recv().unwrap();
        let queued = pool.run(Path::new("/proc/self/ns/net"), || Ok(()));
        let stopper = std::thread::spawn(move || drop(pool));
        // The queued job fails as the pool stops, while the first one still runs.
        let e = queued.wait().unwrap_err();
        assert!(e.to_string().contains("stopped before the job ran"), "{e}");
        go.send(()).unwrap();
        first.wait().unwrap();
        stopper.join().unwrap();
    }
}
