//! The reactor: one thread, one epoll set, every connection that is between requests. It
//! accepts, reads heads without blocking, enforces the header and idle timeouts and the
//! connection cap, answers malformed heads, and queues complete ones for the workers.

use super::conn::{Conn, Slot, Socket};
use super::exchange::{head_bytes, Request};
use super::head::{self, HeadError, MAX_HEAD};
use super::{Home, Job, Limits, Listener, Returned};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: u64 = 0;
/// Listener tokens are 1..=n; connections count up from here.
const FIRST_CONN: u64 = 1 << 16;
/// How often timeouts are looked for (and the longest epoll wait).
const TICK: Duration = Duration::from_millis(500);
/// `Retry-After` on a 429, in seconds (kube-apiserver's max-in-flight answer).
const RETRY_AFTER: &str = "1";
/// How long, and how many bytes, a connection closed after an answer is drained for, so
/// the client reads the answer before the close (with unread input, a reset) reaches it.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// A connection between requests.
struct Waiting {
    conn: Conn,
    buf: Vec<u8>,
    /// When the connection went idle, or when the current head's first byte came.
    since: Instant,
    token: Option<Arc<String>>,
    /// Answered and half-closed: what comes in is discarded until the client closes too,
    /// `LINGER` passes or `LINGER_BYTES` came (counted in `drained`).
    closing: bool,
    drained: usize,
    /// How much of `buf` was looked at for the head's end: a head sent a byte at a time is
    /// scanned once, not re-parsed whole at every byte.
    scanned: usize,
}

pub(super) struct Reactor {
    epoll: Epoll,
    listeners: Vec<(Listener, Option<Arc<String>>)>,
    limits: Limits,
    waker: UnixStream,
    home: Home,
    returned: Receiver<Returned>,
    jobs: Sender<Job>,
    stopping: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    queued: Arc<AtomicUsize>,
    waiting: HashMap<u64, Waiting>,
    next: u64,
}

/// A Kubernetes `Status` answer from the HTTP layer itself; the connection closes after it.
fn status_bytes(code: u16, reason: &str, message: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if code == 429 {
        status["details"] = serde_json::json!({"retryAfterSeconds": 1});
    }
    let body = status.to_string().into_bytes();
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Content-Length".into(), body.len().to_string()),
        ("Connection".into(), "close".into()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut bytes = head_bytes(code, &headers);
    bytes.extend_from_slice(&body);
    bytes
}

/// The 429 kube-apiserver answers beyond its in-flight limit, as a `Status`.
pub fn too_many_requests() -> Vec<u8> {
    status_bytes(429, "TooManyRequests", "Too many requests, please try again later.", &[("Retry-After", RETRY_AFTER)])
}

impl Reactor {
    pub(super) fn new(
        listeners: Vec<(Listener, Option<Arc<String>>)>,
        limits: Limits,
        waker: UnixStream,
        home: Home,
        returned: Receiver<Returned>,
        jobs: Sender<Job>,
        stopping: Arc<AtomicBool>,
    ) -> io::Result<Reactor> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(&waker, EpollEvent::new(EpollFlags::EPOLLIN, WAKER))?;
        for (i, (listener, _)) in listeners.iter().enumerate() {
            let event = EpollEvent::new(EpollFlags::EPOLLIN, i as u64 + 1);
            match listener {
                Listener::Tcp(l) => {
                    l.set_nonblocking(true)?;
                    epoll.add(l, event)?;
                }
                Listener::Unix(l) => {
                    l.set_nonblocking(true)?;
                    epoll.add(l, event)?;
                }
            }
        }
        Ok(Reactor {
            epoll,
            listeners,
            limits,
            waker,
            home,
            returned,
            jobs,
            stopping,
            connections: Arc::new(AtomicUsize::new(0)),
            queued: Arc::new(AtomicUsize::new(0)),
            waiting: HashMap::new(),
            next: FIRST_CONN,
        })
    }

    pub(super) fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut last_sweep = Instant::now();
        loop {
            let ready = match self.epoll.wait(&mut events, TICK.as_millis() as u16) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    log::error!("API: epoll_wait: {e}");
                    std::thread::sleep(TICK);
                    0
                }
            };
            for event in &events[..ready] {
                match event.data() {
                    WAKER => {
                        let mut sink = [0u8; 64];
                        while matches!((&self.waker).read(&mut sink), Ok(n) if n > 0) {}
                        if self.stopping.load(Ordering::SeqCst) {
                            return;
                        }
                        while let Ok(back) = self.returned.try_recv() {
                            if back.linger {
                                self.linger(back.conn);
                            } else {
                                self.adopt(back.conn, back.buf, back.token);
                            }
                        }
                    }
                    token if token < FIRST_CONN => self.accept(token as usize - 1),
                    token => self.read(token),
                }
            }
            if last_sweep.elapsed() >= TICK {
                last_sweep = Instant::now();
                self.sweep();
            }
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let (listener, token) = &self.listeners[index];
            let accepted = match listener {
                // No Nagle delay: a watch event or an answer's last segment leaves at once.
                Listener::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Socket::Tcp(s)
                }),
                Listener::Unix(l) => l.accept().map(|(s, _)| Socket::Unix(s)),
            };
            let socket = match accepted {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the backlog waits for the next tick.
                    log::warn!("API: accepting a connection: {e}");
                    return;
                }
            };
            let token = token.clone();
            match Slot::take(&self.connections, self.limits.connections) {
                Some(slot) => self.adopt(Conn::new(socket, slot), Vec::new(), token),
                None => {
                    log::warn!(
                        "API: {} connections open, the most allowed: closing a new one",
                        self.limits.connections
                    );
                    drop(socket);
                }
            }
        }
    }

    /// Takes a connection between requests into the epoll set; a head already read ahead is
    /// served at once.
    fn adopt(&mut self, conn: Conn, buf: Vec<u8>, token: Option<Arc<String>>) {
        if let Err(e) = conn.set_nonblocking(true) {
            log::debug!("API: a connection: {e}");
            return;
        }
        if let Some(id) =
            self.watch(Waiting { conn, buf, since: Instant::now(), token, closing: false, drained: 0, scanned: 0 })
        {
            self.try_dispatch(id);
        }
    }

    fn watch(&mut self, waiting: Waiting) -> Option<u64> {
        let id = self.next;
        self.next += 1;
        let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, id);
        if let Err(e) = self.epoll.add(waiting.conn.as_fd(), event) {
            log::warn!("API: watching a connection: {e}");
            return None;
        }
        self.waiting.insert(id, waiting);
        Some(id)
    }

    /// Closes a half-closed, answered connection once the client has had time to read.
    fn linger(&mut self, conn: Conn) {
        if conn.set_nonblocking(true).is_ok() {
            self.watch(Waiting {
                conn,
                buf: Vec::new(),
                since: Instant::now(),
                token: None,
                closing: true,
                drained: 0,
                scanned: 0,
            });
        }
    }

    /// Writes a short answer to a non-blocking connection as far as its socket buffer takes
    /// it, and closes it after a linger: the reactor never waits on a client.
    fn answer_and_close(&mut self, mut conn: Conn, bytes: &[u8]) {
        let _ = conn.write(bytes);
        let _ = conn.socket.shutdown(std::net::Shutdown::Write);
        self.linger(conn);
    }

    /// Reads what the client sent; dispatches a complete head.
    fn read(&mut self, id: u64) {
        let Some(waiting) = self.waiting.get_mut(&id) else { return };
        let mut chunk = [0u8; 16 * 1024];
        if waiting.closing {
            loop {
                match waiting.conn.read(&mut chunk) {
                    Ok(n) if n > 0 && waiting.drained < LINGER_BYTES => waiting.drained += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => return self.close(id),
                }
            }
        }
        let mut ended = false;
        loop {
            match waiting.conn.read(&mut chunk) {
                Ok(0) => {
                    // A client may send its request and close its sending side: answer
                    // what came, if it is a whole head.
                    ended = true;
                    break;
                }
                Ok(n) => {
                    if waiting.buf.is_empty() {
                        // The header timeout runs from a request's first byte.
                        waiting.since = Instant::now();
                    }
                    waiting.buf.extend_from_slice(&chunk[..n]);
                    if waiting.buf.len() > MAX_HEAD {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(id),
            }
        }
        self.try_dispatch(id);
        if ended {
            self.close(id);
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(w) = self.waiting.remove(&id) {
            let _ = self.epoll.delete(w.conn.as_fd());
        }
    }

    fn take(&mut self, id: u64) -> Option<Waiting> {
        let w = self.waiting.remove(&id)?;
        let _ = self.epoll.delete(w.conn.as_fd());
        Some(w)
    }

    fn try_dispatch(&mut self, id: u64) {
        let Some(waiting) = self.waiting.get_mut(&id) else { return };
        // A head ends at an empty line: parse only once one may have come (or the bytes
        // outgrew any head), so the cost stays linear in what the client sends.
        let from = waiting.scanned.saturating_sub(2);
        let ended = waiting.buf[from..].windows(2).any(|w| w == b"\n\n" || w == b"\n\r");
        waiting.scanned = waiting.buf.len();
        if !ended && waiting.buf.len() <= MAX_HEAD {
            return;
        }
        match head::parse(&waiting.buf) {
            Ok(None) => {}
            Ok(Some((head, length))) => {
                let Some(w) = self.take(id) else { return };
                let Some(queued) = Slot::take(&self.queued, self.limits.queue) else {
                    log::warn!("API: {} requests wait for a worker: answering 429", self.limits.queue);
                    return self.answer_and_close(w.conn, &too_many_requests());
                };
                let ready = w.conn.set_nonblocking(false).and_then(|()| w.conn.set_timeouts(self.limits.io_timeout));
                if let Err(e) = ready {
                    log::debug!("API: a connection: {e}");
                    return;
                }
                match Request::new(head, w.conn, w.buf, length, w.token, self.home.clone()) {
                    Ok(request) => {
                        let _ = self.jobs.send(Job { request, _queued: queued });
                    }
                    Err((conn, message)) => {
                        let _ = conn.set_nonblocking(true);
                        self.answer_and_close(conn, &status_bytes(400, "BadRequest", &message, &[]));
                    }
                }
            }
            Err(error) => {
                let Some(w) = self.take(id) else { return };
                let bytes = match error {
                    HeadError::TooLarge(m) => status_bytes(431, "RequestHeaderFieldsTooLarge", &m, &[]),
                    HeadError::Malformed(m) => status_bytes(400, "BadRequest", &m, &[]),
                };
                self.answer_and_close(w.conn, &bytes);
            }
        }
    }

    /// Closes connections idle past the idle timeout and heads slower than the header timeout.
    fn sweep(&mut self) {
        let now = Instant::now();
        let (idle, header) = (self.limits.idle_timeout, self.limits.header_timeout);
        let expired: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                let limit = match (w.closing, w.buf.is_empty()) {
                    (true, _) => LINGER,
                    (false, true) => idle,
                    (false, false) => header,
                };
                now.duration_since(w.since) > limit
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(w) = self.take(id) else { continue };
            if !w.closing && !w.buf.is_empty() {
                let message = format!("the request head did not arrive within {}s", header.as_secs());
                self.answer_and_close(w.conn, &status_bytes(408, "Timeout", &message, &[]));
            }
        }
    }
}
