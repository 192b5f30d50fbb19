//! A worker thread's event source: its own epoll instance, each socket registered once,
//! edge-triggered, for both directions, and the thread's timers.
//!
//! Why not async-io's shared reactor: it arms every wait one-shot (an `epoll_ctl` per wait),
//! runs on whichever thread holds its lock and wakes tasks across threads (a futex per
//! request). Here a socket's readiness is remembered, so I/O is tried first and a task waits
//! only after the kernel said `EAGAIN`; an edge then marks it ready again. Everything lives
//! on one thread, so no lock is taken on the hot path.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Events fetched per `epoll_wait`.
const EVENTS: usize = 256;

/// Which way a socket is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Reading, accepting, or receiving.
    Read = 0,
    /// Writing, sending, or finishing a connect.
    Write = 1,
}

/// The readiness of one registered socket, per direction.
struct Source {
    ready: [Cell<bool>; 2],
    wakers: [Cell<Option<Waker>>; 2],
    /// The peer closed (or the socket failed): no further edge will come, so readiness is
    /// only ever cleared by an operation that failed with `EAGAIN`.
    hung_up: Cell<bool>,
}

/// One thread's epoll instance, registered sockets and timers.
pub struct Reactor {
    epoll: Epoll,
    sources: RefCell<HashMap<u64, Rc<Source>>>,
    next_token: Cell<u64>,
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    events: RefCell<Vec<EpollEvent>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

impl Reactor {
    /// A reactor for the calling thread; `notify` (an eventfd or similar) is watched
    /// level-triggered under `notify_token` so other threads can interrupt a wait.
    pub fn install(notify: BorrowedFd<'_>, notify_token: u64) -> io::Result<Rc<Reactor>> {
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| io_error("creating an epoll instance", e))?;
        epoll
            .add(notify, EpollEvent::new(EpollFlags::EPOLLIN, notify_token))
            .map_err(|e| io_error("watching the worker's eventfd", e))?;
        let reactor = Rc::new(Reactor {
            epoll,
            sources: RefCell::new(HashMap::new()),
            // Tokens below this are the caller's (the notify token).
            next_token: Cell::new(1),
            timers: RefCell::new(BTreeMap::new()),
            events: RefCell::new(vec![EpollEvent::empty(); EVENTS]),
        });
        CURRENT.with(|c| *c.borrow_mut() = Some(reactor.clone()));
        Ok(reactor)
    }

    /// Removes the calling thread's reactor (its sockets must be gone first).
    pub fn uninstall() {
        CURRENT.with(|c| c.borrow_mut().take());
    }

    /// The calling thread's reactor; proxy I/O runs only on a worker thread.
    fn current() -> Rc<Reactor> {
        CURRENT.with(|c| c.borrow().clone()).expect("proxy I/O outside a proxy worker thread")
    }

    /// When the next timer is due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow().keys().next().map(|(at, _)| *at)
    }

    /// Waits up to `timeout` (None: until something happens) for socket events, marks the
    /// sockets ready and wakes their tasks, then fires due timers. Returns whether the
    /// notify token was seen.
    pub fn wait(&self, timeout: Option<Duration>, notify_token: u64) -> io::Result<bool> {
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            // Rounded up: a timer due in 0.4 ms must not turn into a busy loop of 0 ms waits.
            Some(d) => EpollTimeout::try_from(d.as_micros().div_ceil(1000).min(i32::MAX as u128) as u32)
                .unwrap_or(EpollTimeout::MAX),
        };
        let mut events = self.events.borrow_mut();
        let n = match self.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(io_error("waiting for socket events", e)),
        };
        let mut notified = false;
        let sources = self.sources.borrow();
        for event in &events[..n] {
            if event.data() == notify_token {
                notified = true;
                continue;
            }
            let Some(source) = sources.get(&event.data()) else { continue };
            let flags = event.events();
            let broken = EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
            if flags.intersects(EpollFlags::EPOLLRDHUP | broken) {
                source.hung_up.set(true);
            }
            if flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | broken) {
                source.mark_ready(Direction::Read);
            }
            if flags.intersects(EpollFlags::EPOLLOUT | broken) {
                source.mark_ready(Direction::Write);
            }
        }
        drop(sources);
        self.fire_timers();
        Ok(notified)
    }

    /// Takes every stored waker (sockets and timers), for shutdown: the tasks they keep
    /// alive keep their sockets, and so this reactor, alive. Dropped by the caller once no
    /// borrow of the reactor is held.
    pub fn take_wakers(&self) -> Vec<Waker> {
        let mut out: Vec<Waker> = std::mem::take(&mut *self.timers.borrow_mut()).into_values().collect();
        for source in self.sources.borrow().values() {
            out.extend(source.wakers.iter().filter_map(Cell::take));
        }
        out
    }

    fn fire_timers(&self) {
        let mut timers = self.timers.borrow_mut();
        if timers.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(entry) = timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
    }

    fn register(&self, fd: BorrowedFd<'_>, ready: bool) -> io::Result<(u64, Rc<Source>)> {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        self.epoll
            .add(fd, EpollEvent::new(flags, token))
            .map_err(|e| io_error(&format!("registering fd {} with epoll", fd.as_raw_fd()), e))?;
        let source = Rc::new(Source {
            ready: [Cell::new(ready), Cell::new(ready)],
            wakers: [Cell::new(None), Cell::new(None)],
            hung_up: Cell::new(false),
        });
        self.sources.borrow_mut().insert(token, source.clone());
        Ok((token, source))
    }
}

impl Source {
    fn mark_ready(&self, dir: Direction) {
        self.ready[dir as usize].set(true);
        if let Some(w) = self.wakers[dir as usize].take() {
            w.wake();
        }
    }
}

fn io_error(what: &str, e: nix::errno::Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// A non-blocking socket registered with the calling worker's reactor.
pub struct Io<T: AsFd> {
    token: u64,
    source: Rc<Source>,
    reactor: Rc<Reactor>,
    inner: T,
}

impl<T: AsFd> Io<T> {
    /// Registers `inner` (already non-blocking), taken to be ready both ways: the first
    /// read or write is simply tried.
    pub fn new(inner: T) -> io::Result<Io<T>> {
        Io::with_readiness(inner, true)
    }

    /// Registers `inner`; `ready` false makes the first operation wait for an event (a
    /// connect in progress).
    pub fn with_readiness(inner: T, ready: bool) -> io::Result<Io<T>> {
        let reactor = Reactor::current();
        let (token, source) = reactor.register(inner.as_fd(), ready)?;
        Ok(Io { token, source, reactor, inner })
    }

    /// The socket.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The raw descriptor, for syscalls nix takes by fd.
    pub fn raw_fd(&self) -> RawFd {
        self.get_ref().as_fd().as_raw_fd()
    }

    /// Marks a direction as drained without a failed syscall: after a short read or write
    /// on a stream socket the kernel's buffer is known empty (or full), and the next edge
    /// will say when that changes. Not once the peer has hung up: the end of the stream may
    /// already be queued behind the bytes just read, and no edge would announce it.
    pub fn drained(&self, dir: Direction) {
        if !self.source.hung_up.get() {
            self.source.ready[dir as usize].set(false);
        }
    }

    /// Takes `dir` to be ready again without an event, for when an operation failed with
    /// `EAGAIN` for a reason other than this socket (a full pipe on the other end of a
    /// splice) and that reason is gone.
    pub fn retry(&self, dir: Direction) {
        self.source.ready[dir as usize].set(true);
    }

    /// Whether an event said the peer hung up or the socket failed.
    pub fn hung_up(&self) -> bool {
        self.source.hung_up.get()
    }

    /// Ready when `dir` may make progress (at once if no `EAGAIN` has been seen since the
    /// last event).
    pub fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<()> {
        let i = dir as usize;
        if self.source.ready[i].get() {
            return Poll::Ready(());
        }
        let waker = match self.source.wakers[i].take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.source.wakers[i].set(Some(waker));
        Poll::Pending
    }

    /// Waits until `dir` may make progress.
    pub async fn ready(&self, dir: Direction) {
        std::future::poll_fn(|cx| self.poll_ready(dir, cx)).await
    }

    /// Tries `op` when `dir` is ready; `Pending` (with the waker stored) once it fails with
    /// `WouldBlock`. For a task that drives two sockets at once.
    pub fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if self.poll_ready(dir, cx).is_pending() {
                return Poll::Pending;
            }
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.source.ready[dir as usize].set(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return Poll::Ready(other),
            }
        }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for an event in `dir`
    /// between tries.
    pub async fn with<R>(&self, dir: Direction, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        std::future::poll_fn(|cx| self.poll_io(dir, cx, &mut op)).await
    }
}

impl<T: AsFd + std::fmt::Debug> std::fmt::Debug for Io<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").field("inner", &self.inner).field("token", &self.token).finish()
    }
}

impl<T: AsFd> Drop for Io<T> {
    fn drop(&mut self) {
        // Closing the socket (right after this) takes it out of the epoll set.
        self.reactor.sources.borrow_mut().remove(&self.token);
    }
}

/// A timer on the calling worker's reactor.
pub struct Sleep {
    deadline: Instant,
    key: Option<(Instant, u64)>,
    reactor: Rc<Reactor>,
}

/// Completes after `duration`.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep { deadline: Instant::now() + duration, key: None, reactor: Reactor::current() }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(key) = self.key.take() {
                self.reactor.timers.borrow_mut().remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let id = self.reactor.next_token.get();
                self.reactor.next_token.set(id + 1);
                let key = (self.deadline, id);
                self.key = Some(key);
                key
            }
        };
        self.reactor.timers.borrow_mut().insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.reactor.timers.borrow_mut().remove(&key);
        }
    }
}

/// Runs `fut`, or fails with `TimedOut` naming `what` once `timeout` has passed.
pub async fn timeout<T>(timeout: Duration, what: &str, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(sleep(timeout));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        timer
            .as_mut()
            .poll(cx)
            .map(|()| Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what}: timed out after {timeout:?}"))))
    })
    .await
}
