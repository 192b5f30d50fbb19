//! The UDP side: one socket per listening address; each client gets a session — a socket
//! connected to the backend chosen for it — whose replies go back through the listening
//! socket, until the session has been idle for the timeout.

use super::endpoint_set::PortState;
use super::netns_pool::NetnsPool;
use super::reactor::{self, Direction, Io};
use super::{upstream, worker};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a session lives without traffic.
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// Sessions per listening address; new clients beyond it are dropped.
const MAX_SESSIONS: usize = 1024;
const DATAGRAM: usize = 65536;

/// One client's upstream socket and when it last carried a datagram.
struct Session {
    upstream: Rc<Io<UdpSocket>>,
    last: Rc<Cell<Instant>>,
}

type Sessions = Rc<RefCell<HashMap<SocketAddr, Session>>>;

/// Serves datagrams on `socket` forever, on the calling worker; sockets into pods'
/// namespaces come from `netns`.
pub async fn serve(socket: Io<UdpSocket>, state: Arc<PortState>, netns: Arc<NetnsPool>) {
    let socket = Rc::new(socket);
    let sessions: Sessions = Rc::new(RefCell::new(HashMap::new()));
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let (n, client) = match socket.with(Direction::Read, |s| s.recv_from(&mut buf)).await {
            Ok(x) => x,
            Err(e) => {
                log::debug!("proxy {}: recv: {e}", state.name);
                continue;
            }
        };
        let existing = sessions.borrow().get(&client).map(|s| (s.upstream.clone(), s.last.clone()));
        let (up, last) = match existing {
            Some(x) => x,
            None => match open_session(&socket, &sessions, &state, client, &netns).await {
                Some(x) => x,
                None => continue,
            },
        };
        last.set(Instant::now());
        if let Err(e) = up.with(Direction::Write, |s| s.send(&buf[..n])).await {
            log::debug!("proxy {}: {client} → upstream: {e}", state.name);
        }
    }
}

type SessionEnds = (Rc<Io<UdpSocket>>, Rc<Cell<Instant>>);

async fn open_session(
    socket: &Rc<Io<UdpSocket>>,
    sessions: &Sessions,
    state: &Arc<PortState>,
    client: SocketAddr,
    netns: &NetnsPool,
) -> Option<SessionEnds> {
    if sessions.borrow().len() >= MAX_SESSIONS {
        log::debug!("proxy {}: {MAX_SESSIONS} UDP sessions open; dropping a datagram from {client}", state.name);
        return None;
    }
    let (set, order) = state.candidates(client.ip());
    let mut connected = None;
    for &i in &order {
        let b = &set.backends[i];
        match upstream::connect_udp(b, netns).await {
            Ok(up) => {
                connected = Some((b.addr, up));
                break;
            }
            Err(e) => log::debug!("proxy {}: UDP socket to {}: {e}", state.name, b.addr),
        }
    }
    let (backend, up) = connected?;
    state.remember(client.ip(), backend);
    let session = Session { upstream: Rc::new(up), last: Rc::new(Cell::new(Instant::now())) };
    let ends = (session.upstream.clone(), session.last.clone());
    sessions.borrow_mut().insert(client, session);
    worker::spawn_local(replies(socket.clone(), sessions.clone(), ends.clone(), client, state.name.clone()));
    Some(ends)
}

/// Sends the backend's replies to `client` through the listening socket until the session
/// has been idle for [`SESSION_IDLE`], then forgets it.
async fn replies(
    socket: Rc<Io<UdpSocket>>,
    sessions: Sessions,
    (up, last): SessionEnds,
    client: SocketAddr,
    name: String,
) {
    let mut buf = vec![0u8; DATAGRAM];
    while let Some(left) = SESSION_IDLE.checked_sub(last.get().elapsed()) {
        let got = reactor::timeout(left, "an idle UDP session", up.with(Direction::Read, |s| s.recv(&mut buf))).await;
        match got {
            Ok(n) => {
                last.set(Instant::now());
                let _ = socket.with(Direction::Write, |s| s.send_to(&buf[..n], client)).await;
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            // ICMP unreachable from the backend, reported on the connected socket.
            Err(e) => log::debug!("proxy {name}: upstream → {client}: {e}"),
        }
    }
    sessions.borrow_mut().remove(&client);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint_set::{Backend, EndpointSet};

    fn echo_backend(tag: &'static [u8]) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let mut reply = tag.to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&reply, from);
            }
        });
        addr
    }

    #[test]
    fn datagrams_round_trip_and_each_client_keeps_its_backend() {
        let state = Arc::new(PortState::new("udp-test".into()));
        let backends = [echo_backend(b"a:"), echo_backend(b"b:")]
            .iter()
            .map(|a| Backend { addr: *a, netns: None, pod_uid: String::new() })
            .collect();
        state.replace(EndpointSet { backends });
        let listen = UdpSocket::bind("127.0.0.1:0").unwrap();
        listen.set_nonblocking(true).unwrap();
        let front = listen.local_addr().unwrap();
        let netns = Arc::new(NetnsPool::start(1).unwrap());
        std::thread::spawn(move || {
            worker::block_on(async move { serve(Io::new(listen).unwrap(), state, netns).await })
        });
        let mut tags = Vec::new();
        for _ in 0..2 {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut seen = Vec::new();
            for msg in [&b"x"[..], b"y"] {
                c.send_to(msg, front).unwrap();
                let mut buf = [0u8; 64];
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(buf[2..n], *msg);
                seen.push(buf[0]);
            }
            assert_eq!(seen[0], seen[1], "a client's datagrams stay with one backend");
            tags.push(seen[0]);
        }
        assert_ne!(tags[0], tags[1], "two clients are spread round-robin");
    }
}
