//! The TCP side: an accept loop per listening address, a task per connection that tries the
//! port's backends in order (sticky first, then round-robin) until one accepts, then relays.

use super::endpoint_set::PortState;
use super::{pump, upstream};
use smol::{Async, Executor};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Limits and timeouts of the TCP proxy.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Open connections per service port; more are closed on accept.
    pub max_connections: usize,
    /// How long one backend's connect may take before the next is tried.
    pub connect_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits { max_connections: 1024, connect_timeout: Duration::from_secs(1) }
    }
}

/// Accepts on `listener` forever, spawning a connection task on `ex` for each.
pub async fn accept_loop(
    ex: Arc<Executor<'static>>,
    listener: Async<TcpListener>,
    state: Arc<PortState>,
    limits: TcpLimits,
) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("proxy {}: accept: {e}", state.name);
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = state.try_slot(limits.max_connections) else {
            log::debug!(
                "proxy {}: {} connections open; closing the one from {peer}",
                state.name,
                limits.max_connections
            );
            continue;
        };
        let state = state.clone();
        ex.spawn(async move {
            let _slot = slot;
            serve(&state, client, peer, limits.connect_timeout).await;
        })
        .detach();
    }
}

/// Connects `client` to the first backend that accepts and relays until both sides end.
pub async fn serve(state: &PortState, client: Async<TcpStream>, peer: SocketAddr, connect_timeout: Duration) {
    let (set, order) = state.candidates(peer.ip());
    for i in order {
        let backend = &set.backends[i];
        match upstream::connect_tcp(backend, connect_timeout).await {
            Ok(up) => {
                state.remember(peer.ip(), backend.addr);
                let _ = client.get_ref().set_nodelay(true);
                let _ = up.get_ref().set_nodelay(true);
                if let Err(e) = pump::relay(&client, &up).await {
                    log::debug!("proxy {}: {peer} ⇄ {}: {e}", state.name, backend.addr);
                }
                return;
            }
            Err(e) => log::debug!("proxy {}: {} failed ({e}); trying the next endpoint", state.name, backend.addr),
        }
    }
    log::debug!("proxy {}: no endpoint accepted the connection from {peer}", state.name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::endpoint_set::{Backend, EndpointSet};
    use std::io::{Read, Write};

    /// A backend answering each connection with its name.
    fn named_backend(name: &'static str) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let _ = s.and_then(|mut s| s.write_all(name.as_bytes()));
            }
        });
        addr
    }

    fn backend(addr: SocketAddr) -> Backend {
        Backend { addr, netns: None, pod_uid: addr.port().to_string() }
    }

    fn ask(addr: SocketAddr) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn start(state: Arc<PortState>) -> SocketAddr {
        let ex = Arc::new(Executor::new());
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let runner = ex.clone();
        std::thread::spawn(move || {
            smol::block_on(runner.run(accept_loop(runner.clone(), listener, state, TcpLimits::default())))
        });
        addr
    }

    #[test]
    fn round_robin_over_backends_skipping_a_refusing_one() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let state = Arc::new(PortState::new("test".into()));
        state.replace(EndpointSet {
            backends: vec![backend(named_backend("a")), backend(dead), backend(named_backend("b"))],
        });
        let front = start(state.clone());
        let answers: Vec<String> = (0..6).map(|_| ask(front)).collect();
        assert_eq!(answers.iter().filter(|a| *a == "a").count() + answers.iter().filter(|a| *a == "b").count(), 6);
        assert!(answers.contains(&"a".to_string()) && answers.contains(&"b".to_string()), "{answers:?}");
    }

    #[test]
    fn client_ip_affinity_sticks_and_a_swap_moves_new_connections() {
        let (a, b) = (named_backend("a"), named_backend("b"));
        let state = Arc::new(PortState::new("test".into()));
        state.set_affinity(Some(Duration::from_secs(10800)));
        state.replace(EndpointSet { backends: vec![backend(a), backend(b)] });
        let front = start(state.clone());
        let first = ask(front);
        assert!((0..5).all(|_| ask(front) == first));
        let other = if first == "a" { b } else { a };
        state.replace(EndpointSet { backends: vec![backend(other)] });
        assert_ne!(ask(front), first);
    }
}
