//! Upstream sockets: connected with a short timeout, in the host's network namespace or —
//! for loopback-only pods — in the pod's (a socket keeps the namespace it was created in,
//! so only its creation happens on a throwaway thread that has joined the namespace).

use super::endpoint_set::Backend;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};
use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Creates a non-blocking socket of `ty` for `addr`'s family inside the namespace `netns`.
fn socket_in(netns: &Path, addr: SocketAddr, ty: SockType) -> io::Result<OwnedFd> {
    let path: PathBuf = netns.to_path_buf();
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    std::thread::Builder::new()
        .name("proxy-netns".into())
        .spawn(move || -> io::Result<OwnedFd> {
            let ns = std::fs::File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("opening netns {}: {e}", path.display())))?;
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("joining netns {}: {e}", path.display())))?;
            socket(family, ty, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None).map_err(io::Error::from)
        })?
        .join()
        .map_err(|_| io::Error::other("the netns socket thread panicked"))?
}

async fn with_timeout<T>(
    timeout: Duration,
    what: String,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    smol::future::or(fut, async move {
        smol::Timer::after(timeout).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what}: timed out after {timeout:?}")))
    })
    .await
}

/// Connects to `backend` within `timeout`.
pub async fn connect_tcp(backend: &Backend, timeout: Duration) -> io::Result<Async<TcpStream>> {
    let addr = backend.addr;
    let Some(netns) = &backend.netns else {
        return with_timeout(timeout, format!("connect {addr}"), Async::<TcpStream>::connect(addr)).await;
    };
    let fd = socket_in(netns, addr, SockType::Stream)?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => return Err(io::Error::from(e)),
    }
    let stream = Async::new(TcpStream::from(fd))?;
    with_timeout(timeout, format!("connect {addr} in {}", netns.display()), async {
        stream.writable().await?;
        match stream.get_ref().take_error()? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
    .await?;
    Ok(stream)
}

/// A UDP socket connected to `backend` (in its namespace when it has one).
pub fn connect_udp(backend: &Backend) -> io::Result<Async<UdpSocket>> {
    let socket = match &backend.netns {
        Some(netns) => UdpSocket::from(socket_in(netns, backend.addr, SockType::Datagram)?),
        None => UdpSocket::bind(if backend.addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?,
    };
    socket.connect(backend.addr)?;
    Async::new(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_in_the_host_namespace_and_refusals_surface() {
        smol::block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let b = Backend { addr, netns: None, pod_uid: String::new() };
            connect_tcp(&b, Duration::from_secs(2)).await.unwrap();
            drop(listener);
            let e = connect_tcp(&b, Duration::from_secs(2)).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        });
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
        smol::block_on(connect_tcp(&b, Duration::from_secs(2))).unwrap();
        let _ = nix::mount::umount2(&ns_path, nix::mount::MntFlags::MNT_DETACH);
    }
}
