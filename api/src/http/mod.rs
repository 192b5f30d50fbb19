//! The API's HTTP/1.1 server, with a bounded number of threads whatever the clients do:
//!
//! - one reactor thread (epoll) holds every connection between requests: it accepts, reads
//!   request heads without blocking, closes connections idle past the idle timeout or slow
//!   past the header timeout, and answers malformed heads (400, 431) itself;
//! - a fixed pool of workers serves complete requests (body, handler, answer), after which a
//!   kept-alive connection returns to the reactor;
//! - long-running answers (watches, followed logs, port-forwards) each take a thread of
//!   their own, under a separate cap the handler enforces with [`Streams`].
//!
//! Requests beyond what the workers and their queue take are answered 429 with
//! `Retry-After`, as kube-apiserver's max-in-flight filter does.

mod body;
mod conn;
mod exchange;
mod head;
mod reactor;

pub use conn::{client_gone, Slot, Socket};
pub use exchange::{ChunkedStream, Request, Response, Upgraded};
pub use head::{MAX_HEAD, MAX_HEADERS};

use conn::Conn;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How many threads, connections and seconds the server grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Threads serving requests.
    pub workers: usize,
    /// Complete requests that may wait for a worker; beyond them, 429.
    pub queue: usize,
    /// Long-running answers (watches, followed logs, port-forward legs) at once; beyond, 429.
    pub streams: usize,
    /// Open connections; beyond, new ones are closed at once.
    pub connections: usize,
    /// From a request's first byte to the end of its head.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// The longest a body read or an answer's write may stall.
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            workers: 4,
            queue: 64,
            streams: 100,
            connections: 1000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            io_timeout: Duration::from_secs(60),
        }
    }
}

/// The cap on long-running answers: a handler takes a slot before opening one.
#[derive(Clone)]
pub struct Streams {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Streams {
    pub fn new(max: usize) -> Streams {
        Streams { open: Arc::new(AtomicUsize::new(0)), max }
    }

    /// A slot, held for as long as the stream runs; None at the cap.
    pub fn take(&self) -> Option<Slot> {
        Slot::take(&self.open, self.max)
    }

    /// How many streams are open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// A listening socket and the bearer token its requests must carry (TCP), if any.
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// A connection handed back to the reactor after a request, with what was read past it.
struct Returned {
    conn: Conn,
    buf: Vec<u8>,
    token: Option<Arc<String>>,
    /// Answered and to be closed, but the client may still be sending (a refused body):
    /// the reactor discards its bytes for a moment first, so closing with unread input does
    /// not reset the connection before the client has read the answer.
    linger: bool,
}

/// Where a worker sends a kept-alive connection back: the reactor's queue and its waker.
#[derive(Clone)]
pub(crate) struct Home {
    queue: Sender<Returned>,
    waker: Arc<UnixStream>,
}

impl Home {
    fn give_back(&self, conn: Conn, buf: Vec<u8>, token: Option<Arc<String>>) {
        self.send(Returned { conn, buf, token, linger: false });
    }

    fn linger(&self, conn: Conn) {
        self.send(Returned { conn, buf: Vec::new(), token: None, linger: true });
    }

    fn send(&self, returned: Returned) {
        if self.queue.send(returned).is_ok() {
            wake(&self.waker);
        }
    }
}

fn wake(waker: &UnixStream) {
    use std::io::Write;
    // Non-blocking: a full pipe already holds a wake-up.
    let _ = (&*waker).write(&[1]);
}

/// A complete request head with its connection, waiting for a worker.
struct Job {
    request: Request,
    _queued: Slot,
}

/// The running server.
pub struct Server {
    stopping: Arc<AtomicBool>,
    waker: Arc<UnixStream>,
    reactor: Option<JoinHandle<()>>,
}

/// What serves each request on a worker.
pub type Handler = Arc<dyn Fn(Request) + Send + Sync>;

impl Server {
    /// Serves `listeners` with `handler` on `limits.workers` threads plus the reactor.
    pub fn start(
        listeners: Vec<(Listener, Option<Arc<String>>)>,
        limits: Limits,
        handler: Handler,
    ) -> io::Result<Server> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let waker = Arc::new(wake_tx);
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..limits.workers.max(1) {
            let (jobs, handler) = (job_rx.clone(), handler.clone());
            std::thread::Builder::new().name("api-worker".into()).spawn(move || work(&jobs, &handler))?;
        }
        let (home_tx, home_rx) = mpsc::channel();
        let home = Home { queue: home_tx, waker: waker.clone() };
        let stopping = Arc::new(AtomicBool::new(false));
        let reactor = reactor::Reactor::new(listeners, limits, wake_rx, home, home_rx, job_tx, stopping.clone())?;
        let reactor = std::thread::Builder::new().name("api-reactor".into()).spawn(move || reactor.run())?;
        Ok(Server { stopping, waker, reactor: Some(reactor) })
    }

    /// Stops accepting and closes every connection between requests; requests being served
    /// and open streams end with their own work (or the process).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        wake(&self.waker);
        if let Some(reactor) = self.reactor.take() {
            let _ = reactor.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, handler: &Handler) {
    loop {
        // The lock is held only while waiting: one worker waits, the rest queue behind it.
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(Job { request, _queued }) = job else { return };
        drop(_queued);
        handler(request);
    }
}
