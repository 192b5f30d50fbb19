//! Listeners inside a loopback-only pod's network namespace. Such a pod has nothing but
//! `lo`, so it cannot reach the host's ClusterIP listeners; instead the proxy opens a second
//! listener for each ClusterIP:port *in the pod's namespace*, with that ClusterIP made a
//! local address there (`ip route replace local IP/32 dev lo table local`). A socket keeps
//! the namespace it was created in, so only its creation happens on a throwaway thread that
//! joined the namespace; accepting and proxying then run on the proxy's executor as usual.

use super::plan::Protocol;
use nix::sched::{setns, CloneFlags};
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A bound socket, TCP listening or UDP.
pub enum Bound {
    /// A listening TCP socket.
    Tcp(TcpListener),
    /// A bound UDP socket.
    Udp(UdpSocket),
}

/// Binds `addr` (`proto`) inside the namespace at `netns`, making `addr`'s IP local there
/// first; idempotent for the namespace's routes.
pub fn bind_in(netns: &Path, addr: SocketAddr, proto: Protocol) -> io::Result<Bound> {
    let path: PathBuf = netns.to_path_buf();
    std::thread::Builder::new()
        .name("proxy-netns-listen".into())
        .spawn(move || -> io::Result<Bound> {
            let ns = std::fs::File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("opening netns {}: {e}", path.display())))?;
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("joining netns {}: {e}", path.display())))?;
            // Children inherit this thread's namespace, so `ip` acts inside the pod's.
            ip(&["link", "set", "lo", "up"])?;
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            ip(&["route", "replace", "local", &format!("{}/{prefix}", addr.ip()), "dev", "lo", "table", "local"])?;
            let context = |e: io::Error| io::Error::new(e.kind(), format!("binding {addr} in {}: {e}", path.display()));
            Ok(match proto {
                Protocol::Tcp => Bound::Tcp(TcpListener::bind(addr).map_err(context)?),
                Protocol::Udp => Bound::Udp(UdpSocket::bind(addr).map_err(context)?),
            })
        })?
        .join()
        .map_err(|_| io::Error::other("the netns listener thread panicked"))?
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
    use std::io::Read;

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
        let Bound::Tcp(listener) = bind_in(&ns.path(), addr, Protocol::Tcp).unwrap() else { panic!("tcp") };
        // Again (a resync): the route is replaced, not refused.
        drop(bind_in(&ns.path(), "10.96.201.9:8081".parse().unwrap(), Protocol::Udp).unwrap());
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
}
