//! Upstream sockets: connected with a short timeout, in the host's network namespace or —
//! for loopback-only pods — in the pod's (a socket keeps the namespace it was created in,
//! so only its creation happens on a [`NetnsPool`] helper that joined the namespace).

use super::endpoint_set::Backend;
use super::netns_pool::NetnsPool;
use super::reactor::{self, Direction, Io};
use nix::sys::socket::{connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

fn family(addr: SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A non-blocking socket of `ty` for `backend`, made in its namespace by a helper of
/// `netns` when it has one (awaited, so the calling worker serves its other connections
/// meanwhile), here otherwise. Without helpers only the host's namespace is reachable.
async fn socket_for(backend: &Backend, ty: SockType, netns: Option<&NetnsPool>) -> io::Result<OwnedFd> {
    let made = match (&backend.netns, netns) {
        (Some(ns), Some(helpers)) => helpers.socket(ns, family(backend.addr), ty).await,
        (Some(ns), None) => Err(io::Error::other(format!("no helper can make a socket in {}", ns.display()))),
        (None, _) => socket(family(backend.addr), ty, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
            .map_err(io::Error::from),
    };
    made.map_err(|e| io::Error::new(e.kind(), format!("creating a socket to {}: {e}", describe(backend))))
}

/// Where `backend` is, for messages.
fn describe(backend: &Backend) -> String {
    match &backend.netns {
        Some(ns) => format!("connect {} in {}", backend.addr, ns.display()),
        None => format!("connect {}", backend.addr),
    }
}

/// The receive buffer of an upstream socket (the kernel doubles it for its bookkeeping and
/// caps it at `net.core.rmem_max`). Backends are pods on this node, microseconds away, so
/// this covers their bandwidth-delay product many times over. Left to autotuning, a bulk
/// response to a client slower than the pod grew each upstream queue to `tcp_rmem`'s
/// maximum (15 to 26 MB per connection seen in `bench/run proxy`): kernel memory a board
/// cannot spare, and bytes that went cold in the cache before anyone read them.
const UPSTREAM_RCVBUF: usize = 256 * 1024;

/// Makes `fd` (a TCP socket: TCP_NODELAY, as requests are small messages; a bounded
/// receive buffer) start its connect to `backend`; true when it has already completed.
fn start_connect(fd: OwnedFd, backend: &Backend) -> io::Result<(TcpStream, bool)> {
    let _ = setsockopt(&fd, sockopt::TcpNoDelay, &true);
    // Before connect, so the window scale offered in the SYN fits the buffer.
    let _ = setsockopt(&fd, sockopt::RcvBuf, &UPSTREAM_RCVBUF);
    let done = match connect(fd.as_raw_fd(), &SockaddrStorage::from(backend.addr)) {
        Ok(()) => true,
        Err(nix::errno::Errno::EINPROGRESS) => false,
        Err(e) => return Err(io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", describe(backend)))),
    };
    Ok((TcpStream::from(fd), done))
}

/// Connects to `backend` within `timeout`, on the calling proxy worker.
pub async fn connect_tcp_local(backend: &Backend, timeout: Duration, netns: &NetnsPool) -> io::Result<Io<TcpStream>> {
    let (stream, done) = start_connect(socket_for(backend, SockType::Stream, Some(netns)).await?, backend)?;
    // In progress: the first event says how the connect went.
    let stream = Io::with_readiness(stream, done)?;
    if !done {
        reactor::timeout(timeout, &describe(backend), async {
            stream.ready(Direction::Write).await;
            // A failed connect raises EPOLLERR; writable without it is connected.
            match stream.hung_up().then(|| stream.get_ref().take_error()).transpose()?.flatten() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
        .await?;
    }
    Ok(stream)
}

/// Connects to `backend` within `timeout` from a thread outside the proxy workers (the
/// API's port-forward): the same socket, waited for with smol's reactor. `netns` None:
/// the caller knows of no pod namespaces, and `backend` must be in the host's.
pub async fn connect_tcp(
    backend: &Backend,
    timeout: Duration,
    netns: Option<&NetnsPool>,
) -> io::Result<smol::Async<TcpStream>> {
    let (stream, done) = start_connect(socket_for(backend, SockType::Stream, netns).await?, backend)?;
    let stream = smol::Async::new(stream)?;
    if !done {
        let what = describe(backend);
        let wait = async {
            stream.writable().await?;
            match stream.get_ref().take_error()? {
                Some(e) => Err(e),
                None => Ok(()),
            }
        };
        smol::future::or(wait, async move {
            smol::Timer::after(timeout).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what}: timed out after {timeout:?}")))
        })
        .await?;
    }
    Ok(stream)
}

/// A UDP socket connected to `backend` (in its namespace when it has one), on the calling
/// proxy worker.
pub async fn connect_udp(backend: &Backend, netns: &NetnsPool) -> io::Result<Io<UdpSocket>> {
    let socket = UdpSocket::from(socket_for(backend, SockType::Datagram, Some(netns)).await?);
    socket.connect(backend.addr).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", describe(backend))))?;
    Io::new(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::CloneFlags;

    fn helpers() -> NetnsPool {
        NetnsPool::start(1).unwrap()
    }

    #[test]
    fn connects_in_the_host_namespace_and_refusals_surface() {
        let netns = helpers();
        crate::worker::block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let b = Backend { addr, netns: None, pod_uid: String::new() };
            connect_tcp_local(&b, Duration::from_secs(2), &netns).await.unwrap();
            drop(listener);
            let e = connect_tcp_local(&b, Duration::from_secs(2), &netns).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        })
        .unwrap();
        // The same from a plain thread, as the API's port-forward connects.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = Backend { addr: listener.local_addr().unwrap(), netns: None, pod_uid: String::new() };
        smol::block_on(connect_tcp(&b, Duration::from_secs(2), None)).unwrap();
    }

    /// Autotuning would grow the buffer of a socket that reads megabytes quickly; the bound
    /// keeps it where it was set.
    #[test]
    fn an_upstream_receive_buffer_stays_bounded_through_a_bulk_transfer() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = Backend { addr: listener.local_addr().unwrap(), netns: None, pod_uid: String::new() };
        let sender = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let chunk = vec![7u8; 1 << 20];
            for _ in 0..64 {
                s.write_all(&chunk).unwrap();
            }
        });
        let stream = smol::block_on(connect_tcp(&b, Duration::from_secs(2), None)).unwrap().into_inner().unwrap();
        stream.set_nonblocking(false).unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = (&stream).read(&mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        sender.join().unwrap();
        assert_eq!(got, 64 << 20);
        let size = nix::sys::socket::getsockopt(&stream, sockopt::RcvBuf).unwrap();
        assert!(size <= 2 * UPSTREAM_RCVBUF, "the receive buffer grew to {size} bytes");
    }

    #[test]
    fn connects_inside_another_network_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping connects_inside_another_network_namespace: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ns_path = dir.path().join("net");
        // A namespace with lo up and a listener on 127.0.0.1, made on its own thread.
        let p = ns_path.clone();
        let port = std::thread::spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
            assert!(up.success());
            std::fs::write(&p, b"").unwrap();
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &p,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap();
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            std::mem::forget(l);
            port
        })
        .join()
        .unwrap();
        let b = Backend {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            netns: Some(ns_path.clone()),
            pod_uid: "p".into(),
        };
        let netns = helpers();
        crate::worker::block_on(connect_tcp_local(&b, Duration::from_secs(2), &netns)).unwrap().unwrap();
        // From outside the workers too (the port-forward), and a UDP socket there.
        smol::block_on(connect_tcp(&b, Duration::from_secs(2), Some(&netns))).unwrap();
        let e = smol::block_on(connect_tcp(&b, Duration::from_secs(2), None)).unwrap_err();
        assert!(e.to_string().contains("no helper can make a socket in"), "{e}");
        crate::worker::block_on(connect_udp(&b, &netns)).unwrap().unwrap();
        let _ = nix::mount::umount2(&ns_path, nix::mount::MntFlags::MNT_DETACH);
    }
}
