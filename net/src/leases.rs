//! host-local's lease files: `DIR/<ip>` holding `<container id>\r\n<ifname>` (older
//! versions: the id alone). Read to find leases of pods that no longer exist.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

/// The container id a lease file names (its first line).
fn owner_of(text: &str) -> Option<&str> {
    text.lines().next().map(str::trim).filter(|id| !id.is_empty())
}

/// Every container id holding a lease in `dir` (host-local's per-network folder).
pub fn lease_owners(dir: &Path) -> BTreeSet<String> {
    leases(dir).into_iter().map(|(_, owner)| owner).collect()
}

/// `(address, owner)` of every lease in `dir`; bookkeeping files (`lock`,
/// `last_reserved_ip.0`) are not leases.
pub fn leases(dir: &Path) -> Vec<(IpAddr, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(ip) = e.file_name().to_str().and_then(|n| n.parse::<IpAddr>().ok()) else { continue };
        if let Some(owner) = std::fs::read_to_string(e.path()).ok().as_deref().and_then(owner_of) {
            out.push((ip, owner.to_string()));
        }
    }
    out.sort();
    out
}

/// Deletes the lease files `container_id` holds (when its plugin DEL cannot run).
pub fn remove_leases_of(dir: &Path, container_id: &str) {
    for (ip, owner) in leases(dir) {
        if owner == container_id {
            let path = dir.join(ip.to_string());
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("net: removing lease {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_read_by_owner_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("10.88.0.2"), "pod-a\r\neth0").unwrap();
        std::fs::write(dir.path().join("10.88.0.3"), "pod-b").unwrap();
        std::fs::write(dir.path().join("last_reserved_ip.0"), "10.88.0.3").unwrap();
        std::fs::write(dir.path().join("lock"), "").unwrap();
        assert_eq!(lease_owners(dir.path()).into_iter().collect::<Vec<_>>(), ["pod-a", "pod-b"]);
        remove_leases_of(dir.path(), "pod-a");
        assert_eq!(leases(dir.path()), [("10.88.0.3".parse().unwrap(), "pod-b".to_string())]);
    }
}
