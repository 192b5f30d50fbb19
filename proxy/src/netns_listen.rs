//! Listeners inside a loopback-only pod's network namespace. Such a pod has nothing but
//! `lo`, so it cannot reach the host's ClusterIP listeners; instead the proxy opens a second
//! listener for each ClusterIP:port *in the pod's namespace*, with that ClusterIP made a
//! local address there (`ip route replace local IP/32 dev lo table local`). A socket keeps
//! the namespace it was created in, so only its creation happens on a [`NetnsPool`] helper
//! that joined the namespace; accepting and proxying then run on the proxy's workers as usual.
//!
//! The host's listeners are bound here too ([`bind`]): a TCP address gets one socket per
//! worker, bound with `SO_REUSEPORT`, so the kernel spreads new connections over the
//! workers and no two threads wait on one accept queue.

use super::netns_pool::NetnsPool;
use super::plan::Protocol;
use nix::sys::socket::{self as sock, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;

/// A bound socket, TCP listening or UDP.
pub enum Bound {
    /// A listening TCP socket.
    Tcp(TcpListener),
    /// A bound UDP socket.
    Udp(UdpSocket),
}

/// Pending connections a TCP listener queues (std's 128 drops SYNs under bursts of new
/// connections).
const BACKLOG: i32 = 1024;

/// Binds `addr` (`proto`) in the calling thread's namespace, non-blocking: `shards` TCP
/// listeners sharing the address through `SO_REUSEPORT` (one: an exclusive bind), or one
/// UDP socket.
pub fn bind(addr: SocketAddr, proto: Protocol, shards: usize) -> io::Result<Vec<Bound>> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("binding {addr}: {e}"));
    match proto {
        Protocol::Udp => {
            let s = UdpSocket::bind(addr).map_err(context)?;
            s.set_nonblocking(true).map_err(context)?;
            Ok(vec![Bound::Udp(s)])
        }
        Protocol::Tcp => (0..shards.max(1))
            .map(|_| tcp_listener(addr, shards > 1).map(|fd| Bound::Tcp(TcpListener::from(fd))).map_err(context))
            .collect(),
    }
}

fn tcp_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = sock::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    // As std's bind: a restarted daemon rebinds past its old connections' TIME_WAIT.
    sock::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        sock::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    // Accepted connections inherit it: requests are small messages, and this saves a
    // setsockopt per connection.
    sock::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    sock::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrStorage::from(addr))?;
    // Not nix's `Backlog`: it refuses anything above the libc crate's SOMAXCONN, which is 128
    // for musl (our static builds) though the kernel takes more and caps it at
    // net.core.somaxconn itself.
    // SAFETY: listen(2) on a socket this function owns; no memory is passed.
    if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&fd), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Binds `addr` (`proto`, `shards` as [`bind`]) inside the namespace at `netns`, making
/// `addr`'s IP local there first; idempotent for the namespace's routes. Blocks until a
/// helper of `helpers` has done it (called from the sync thread, never a worker).
pub fn bind_in(
    helpers: &NetnsPool,
    netns: &Path,
    addr: SocketAddr,
    proto: Protocol,
    shards: usize,
) -> io::Result<Vec<Bound>> {
    let place = netns.display().to_string();
    helpers
        .run(netns, move || {
            // Children inherit the helper's namespace, so `ip` acts inside the pod's.
            ip(&["link", "set", "lo", "up"])?;
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            ip(&["route", "replace", "local", &format!("{}/{prefix}", addr.ip()), "dev", "lo", "table", "local"])?;
            bind(addr, proto, shards).map_err(|e| io::Error::new(e.kind(), format!("{e} in {place}")))
        })
        .wait()
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running `ip {}`: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::{setns, CloneFlags};
    use std::io::Read;
    use std::path::PathBuf;

    /// A process in a fresh network namespace, killed on drop.
    struct Netns(std::process::Child);

    impl Netns {
        fn new() -> Netns {
            Netns(Command::new("unshare").args(["--net", "sleep", "60"]).spawn().expect("unshare"))
        }

        fn path(&self) -> PathBuf {
            PathBuf::from(format!("/proc/{}/ns/net", self.0.id()))
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_cluster_ip_becomes_reachable_inside_the_namespace_only() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping a_cluster_ip_becomes_reachable_inside_the_namespace_only: needs root");
            return;
        }
        let ns = Netns::new();
        // unshare needs a moment to have moved into its namespace.
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..200 {
            if std::fs::read_link(ns.path()).is_ok_and(|l| l != mine) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let addr: SocketAddr = "10.96.201.9:8080".parse().unwrap();
        let helpers = NetnsPool::start(1).unwrap();
        let mut bound = bind_in(&helpers, &ns.path(), addr, Protocol::Tcp, 1).unwrap();
        let Some(Bound::Tcp(listener)) = bound.pop() else { panic!("one tcp listener") };
        listener.set_nonblocking(false).unwrap();
        // Again (a resync): the route is replaced, not refused.
        drop(bind_in(&helpers, &ns.path(), "10.96.201.9:8081".parse().unwrap(), Protocol::Udp, 1).unwrap());
        let path = ns.path();
        let client = std::thread::spawn(move || {
            setns(std::fs::File::open(path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        });
        let (mut conn, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut conn, b"from the host side").unwrap();
        drop(conn);
        assert_eq!(client.join().unwrap(), "from the host side");
    }

    #[test]
    fn a_tcp_address_gets_one_listener_per_shard_and_stays_exclusive_with_one() {
        let shards = bind("127.0.0.1:0".parse().unwrap(), Protocol::Tcp, 1).unwrap();
        let Bound::Tcp(l) = &shards[0] else { panic!("tcp") };
        let taken = l.local_addr().unwrap();
        // Accepted connections inherit TCP_NODELAY from the listener (the proxy relies on it).
        let _client = std::net::TcpStream::connect(taken).unwrap();
        let (accepted, _) = l.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
        let e = bind(taken, Protocol::Tcp, 1).err().expect("a second exclusive bind fails");
        assert!(e.to_string().contains(&taken.to_string()), "{e}");
        // Find a free port, then share it between two shards.
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let two = bind(free, Protocol::Tcp, 2).unwrap();
        assert_eq!(two.len(), 2);
        for b in &two {
            let Bound::Tcp(l) = b else { panic!("tcp") };
            assert_eq!(l.local_addr().unwrap(), free);
        }
        // Connections reach one of the shards.
        std::net::TcpStream::connect(free).unwrap();
    }
}
