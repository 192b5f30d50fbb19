//! The UDP side: one socket per listening address; each client gets a session — a socket
//! connected to the backend chosen for it — whose replies go back through the listening
//! socket, until the session has been idle for the timeout.

use super::endpoint_set::PortState;
use super::upstream;
use smol::{Async, Executor};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a session lives without traffic.
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// Sessions per listening address; new clients beyond it are dropped.
const MAX_SESSIONS: usize = 1024;
const DATAGRAM: usize = 65536;

struct Session {
    upstream: Arc<Async<UdpSocket>>,
    last: Arc<Mutex<Instant>>,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

/// Serves datagrams on `socket` forever.
pub async fn serve(ex: Arc<Executor<'static>>, socket: Async<UdpSocket>, state: Arc<PortState>) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::new(Mutex::new(HashMap::new()));
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                log::debug!("proxy {}: recv: {e}", state.name);
                continue;
            }
        };
        let existing = {
            let map = sessions.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&client).map(|s| (s.upstream.clone(), s.last.clone()))
        };
        let (up, last) = match existing {
            Some(x) => x,
            None => match open_session(&ex, &socket, &sessions, &state, client) {
                Some(x) => x,
                None => continue,
            },
        };
        *last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if let Err(e) = up.send(&buf[..n]).await {
            log::debug!("proxy {}: {client} → upstream: {e}", state.name);
        }
    }
}

type SessionEnds = (Arc<Async<UdpSocket>>, Arc<Mutex<Instant>>);

fn open_session(
    ex: &Executor<'static>,
    socket: &Arc<Async<UdpSocket>>,
    sessions: &Sessions,
    state: &Arc<PortState>,
    client: SocketAddr,
) -> Option<SessionEnds> {
    if sessions.lock().unwrap_or_else(|p| p.into_inner()).len() >= MAX_SESSIONS {
        log::debug!("proxy {}: {MAX_SESSIONS} UDP sessions open; dropping a datagram from {client}", state.name);
        return None;
    }
    let (set, order) = state.candidates(client.ip());
    let (backend, up) = order.iter().find_map(|&i| {
        let b = &set.backends[i];
        match upstream::connect_udp(b) {
            Ok(up) => Some((b.addr, up)),
            Err(e) => {
                log::debug!("proxy {}: UDP socket to {}: {e}", state.name, b.addr);
                None
            }
        }
    })?;
    state.remember(client.ip(), backend);
    let up = Arc::new(up);
    let last = Arc::new(Mutex::new(Instant::now()));
    sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(client, Session { upstream: up.clone(), last: last.clone() });
    let (socket, sessions, reply_up, reply_last, name) =
        (socket.clone(), sessions.clone(), up.clone(), last.clone(), state.name.clone());
    ex.spawn(async move {
        let mut buf = vec![0u8; DATAGRAM];
        loop {
            let idle_for = reply_last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
            let Some(left) = SESSION_IDLE.checked_sub(idle_for) else { break };
            let got = smol::future::or(async { Some(reply_up.recv(&mut buf).await) }, async {
                smol::Timer::after(left).await;
                None
            })
            .await;
            match got {
                Some(Ok(n)) => {
                    *reply_last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                    let _ = socket.send_to(&buf[..n], client).await;
                }
                // ICMP unreachable from the backend, reported on the connected socket.
                Some(Err(e)) => log::debug!("proxy {name}: upstream → {client}: {e}"),
                None => {}
            }
        }
        sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
    })
    .detach();
    Some((up, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::endpoint_set::{Backend, EndpointSet};

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
        let ex = Arc::new(Executor::new());
        let listen = Async::<UdpSocket>::bind(([127, 0, 0, 1], 0)).unwrap();
        let front = listen.get_ref().local_addr().unwrap();
        let runner = ex.clone();
        std::thread::spawn(move || smol::block_on(runner.run(serve(runner.clone(), listen, state))));
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
