//! Makes every address of the service CIDR local to the host (`ip route replace local CIDR
//! dev lo`), so the proxy can bind any ClusterIP and pods routed through the host reach it.

use super::cidr::Ipv4Cidr;
use super::NetError;
use std::net::IpAddr;
use std::process::Command;

/// Installs (or re-installs) the local route for the service block; idempotent.
pub fn install(cidr: Ipv4Cidr) -> Result<(), NetError> {
    let cidr = cidr.to_string();
    let out = Command::new("ip")
        .args(["route", "replace", "local", &cidr, "dev", "lo", "table", "local"])
        .output()
        .map_err(|source| NetError::Spawn { command: format!("`ip route replace local {cidr} dev lo`"), source })?;
    if !out.status.success() {
        return Err(NetError::CommandFailed(format!(
            "`ip route replace local {cidr} dev lo` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Whether `ip` is a local address of this host now (a bind to it succeeds).
pub fn is_local(ip: IpAddr) -> bool {
    std::net::TcpListener::bind((ip, 0)).is_ok()
}

/// The host's primary address: the source of its route to the outside (a UDP connect sends
/// nothing), else loopback. Shown as a LoadBalancer's EXTERNAL-IP.
pub fn node_address() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_of_the_block_becomes_bindable() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping every_address_of_the_block_becomes_bindable: needs root");
            return;
        }
        let cidr: Ipv4Cidr = "10.96.0.0/16".parse().unwrap();
        install(cidr).unwrap();
        install(cidr).unwrap();
        assert!(is_local("10.96.3.9".parse().unwrap()));
        assert!(!node_address().is_unspecified());
    }
}
