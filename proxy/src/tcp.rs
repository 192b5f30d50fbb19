//! The TCP side: an accept loop per listening address, a task per connection that tries the
//! port's backends in order (sticky first, then round-robin) until one accepts, then relays.

use super::endpoint_set::PortState;
use super::netns_pool::NetnsPool;
use super::reactor::{self, Direction, Io};
use super::{pump, upstream, worker};
use nix::sys::socket::{SockaddrLike, SockaddrStorage};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// Accepts on `listener` forever, serving each connection in a task on the calling worker
/// (or a lighter one); sockets into pods' namespaces come from `netns`.
pub async fn accept_loop(listener: Io<TcpListener>, state: Arc<PortState>, limits: TcpLimits, netns: Arc<NetnsPool>) {
    loop {
        let (client, peer) = match listener.with(Direction::Read, accept_nonblocking).await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("proxy {}: accept: {e}", state.name);
                reactor::sleep(Duration::from_millis(100)).await;
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
        let (state, netns) = (state.clone(), netns.clone());
        worker::spawn_balanced(move || async move {
            let _slot = slot;
            match Io::new(client) {
                Ok(client) => serve(&state, client, peer, limits.connect_timeout, &netns).await,
                Err(e) => log::warn!("proxy {}: registering the connection from {peer}: {e}", state.name),
            }
        });
    }
}

/// Accepts a connection already non-blocking (`accept4`), saving the `ioctl` std's accept
/// would need after it. TCP_NODELAY comes from the listener (Linux copies it to accepted
/// sockets; see `netns_listen::bind`).
fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let mut storage = std::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: accept4(2) writes at most `len` bytes of address into `storage`, which is
    // that large, and stores the length it wrote in `len`; the listener's fd is open for
    // the duration of the call.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            storage.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: the kernel filled `len` bytes of `storage` with the peer's address.
    let addr = unsafe { SockaddrStorage::from_raw(storage.as_ptr().cast(), Some(len)) };
    let peer = addr
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4((*v4).into()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
        })
        .ok_or_else(|| io::Error::other("accept returned a peer address that is not IPv4 or IPv6"))?;
    Ok((stream, peer))
}

/// Connects `client` to the first backend that accepts and relays until both sides end.
pub async fn serve(
    state: &PortState,
    client: Io<TcpStream>,
    peer: SocketAddr,
    connect_timeout: Duration,
    netns: &NetnsPool,
) {
    let (set, order) = state.candidates(peer.ip());
    for i in order {
        let backend = &set.backends[i];
        match upstream::connect_tcp_local(backend, connect_timeout, netns).await {
            Ok(up) => {
                state.remember(peer.ip(), backend.addr);
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
pub(crate) mod tests {
    use super::*;
    use crate::endpoint_set::{Backend, EndpointSet};
    use std::io::{Read, Write};

    /// A backend answering each connection with its name.
    pub(crate) fn named_backend(name: &'static str) -> SocketAddr {
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let netns = Arc::new(NetnsPool::start(1).unwrap());
            worker::block_on(async move {
                accept_loop(Io::new(listener).unwrap(), state, TcpLimits::default(), netns).await
            })
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
