//! Upstream sockets: connected with a short timeout, in the host's network namespace or —
//! for loopback-only pods — in the pod's (a socket keeps the namespace it was created in,
//! so only its creation happens on a throwaway thread that has joined the namespace).

use super::endpoint_set::Backend;
use super::reactor::{self, Direction, Io};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Creates a non-blocking socket of `ty` for `addr`'s family, inside the namespace `netns`
/// when given.
fn socket_for(netns: Option<&Path>, addr: SocketAddr, ty: SockType) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let Some(netns) = netns else {
        return socket(family, ty, flags, None)
            .map_err(|e| io::Error::other(format!("creating a socket for {addr}: {e}")));
    };
    let path: PathBuf = netns.to_path_buf();
    std::thread::Builder::new()
        .name("proxy-netns".into())
        .spawn(move || -> io::Result<OwnedFd> {
            let ns = std::fs::File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("opening netns {}: {e}", path.display())))?;
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("joining netns {}: {e}", path.display())))?;
            socket(family, ty, flags, None).map_err(io::Error::from)
        })?
        .join()
        .map_err(|_| io::Error::other("the netns socket thread panicked"))?
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

/// A TCP socket (TCP_NODELAY: requests are small messages; a bounded receive buffer) whose
/// connect to `backend` has begun; true when it has already completed.
fn start_connect(backend: &Backend) -> io::Result<(TcpStream, bool)> {
    let fd = socket_for(backend.netns.as_deref(), backend.addr, SockType::Stream)?;
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
pub async fn connect_tcp_local(backend: &Backend, timeout: Duration) -> io::Result<Io<TcpStream>> {
    let (stream, done) = start_connect(backend)?;
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
/// API's port-forward): the same socket, waited for with smol's reactor.
pub async fn connect_tcp(backend: &Backend, timeout: Duration) -> io::Result<smol::Async<TcpStream>> {
    let (stream, done) = start_connect(backend)?;
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
pub fn connect_udp(backend: &Backend) -> io::Result<Io<UdpSocket>> {
    let socket = UdpSocket::from(socket_for(backend.netns.as_deref(), backend.addr, SockType::Datagram)?);
    socket.connect(backend.addr).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", describe(backend))))?;
    Io::new(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_in_the_host_namespace_and_refusals_surface() {
        crate::worker::block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let b = Backend { addr, netns: None, pod_uid: String::new() };
            connect_tcp_local(&b, Duration::from_secs(2)).await.unwrap();
            drop(listener);
            let e = connect_tcp_local(&b, Duration::from_secs(2)).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        })
        .unwrap();
        // The same from a plain thread, as the API's port-forward connects.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = Backend { addr: listener.local_addr().unwrap(), netns: None, pod_uid: String::new() };
        smol::block_on(connect_tcp(&b, Duration::from_secs(2))).unwrap();
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
        let stream = smol::block_on(connect_tcp(&b, Duration::from_secs(2))).unwrap().into_inner().unwrap();
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
        crate::worker::block_on(connect_tcp_local(&b, Duration::from_secs(2))).unwrap().unwrap();
        let _ = nix::mount::umount2(&ns_path, nix::mount::MntFlags::MNT_DETACH);
    }
}
