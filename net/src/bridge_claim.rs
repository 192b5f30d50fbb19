//! One daemon per pod bridge: a daemon in CNI mode claims its `network.bridge` and
//! `network.pod_cidr` host-wide when it wires its first pod (or re-adopts wired pods), and
//! every daemon checks at start that nobody else holds them, so a second daemon configured
//! with the same bridge (or an overlapping pod CIDR) fails at start, naming the owner,
//! instead of handing out addresses its neighbour also leases. Claiming at the first pod
//! rather than at start lets daemons that never wire a pod (API-only test daemons side by
//! side) share a configuration harmlessly.
//!
//! A claim is `LOCK_DIR/<bridge>.lock` held with `flock(2)` for the daemon's life, carrying
//! the owner's pid, bridge, pod CIDR and data directory. The kernel drops the lock however
//! the owner ends (even `kill -9`), so a leftover file never blocks the next start.

use super::cidr::Ipv4Cidr;
use super::NetError;
use coracle_config::settings::{NetworkMode, NetworkSettings};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Where claims live: tmpfs, so they vanish with the boot they belong to.
pub const LOCK_DIR: &str = "/run/lock/coracle";
/// How often, and how far apart, a claim retries past other daemons' start-up probes.
const PROBE_RETRIES: u32 = 20;
const PROBE_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// A held claim; dropping it releases the bridge.
#[derive(Debug)]
pub struct BridgeClaim {
    _lock: Flock<File>,
    /// The lock file.
    pub path: PathBuf,
}

/// What a lock file says about its owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Owner {
    pid: String,
    bridge: String,
    pod_cidr: String,
    data_dir: String,
}

impl Owner {
    fn parse(text: &str) -> Owner {
        let mut owner = Owner::default();
        for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
            let slot = match key {
                "pid" => &mut owner.pid,
                "bridge" => &mut owner.bridge,
                "pod_cidr" => &mut owner.pod_cidr,
                "data_dir" => &mut owner.data_dir,
                _ => continue,
            };
            *slot = value.to_string();
        }
        owner
    }

    fn render(&self) -> String {
        format!("pid={}\nbridge={}\npod_cidr={}\ndata_dir={}\n", self.pid, self.bridge, self.pod_cidr, self.data_dir)
    }

    /// `pid 42, data dir /var/lib/coracle`, as error messages name the other daemon.
    fn describe(&self) -> String {
        let or_unknown = |s: &str| if s.is_empty() { "unknown".to_string() } else { s.to_string() };
        format!("pid {}, data dir {}", or_unknown(&self.pid), or_unknown(&self.data_dir))
    }
}

/// Claims the bridge and pod CIDR of `settings` for this daemon (data in `data_dir`); None
/// when the daemon wires no bridge (host or loopback-only mode, or not root).
pub fn claim(settings: &NetworkSettings, data_dir: &Path) -> Result<Option<BridgeClaim>, NetError> {
    // Without root no bridge can be made, so there is nothing to share.
    if settings.mode != NetworkMode::Cni || !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let cidr: Ipv4Cidr = settings.pod_cidr.parse().map_err(|e| NetError::Setting(format!("network.pod_cidr: {e}")))?;
    claim_in(Path::new(LOCK_DIR), &settings.bridge, cidr, data_dir).map(Some)
}

/// Fails, naming the owner, when another live daemon holds the bridge or an overlapping
/// pod CIDR of `settings`; takes nothing.
pub fn check(settings: &NetworkSettings) -> Result<(), NetError> {
    if settings.mode != NetworkMode::Cni || !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let cidr: Ipv4Cidr = settings.pod_cidr.parse().map_err(|e| NetError::Setting(format!("network.pod_cidr: {e}")))?;
    check_in(Path::new(LOCK_DIR), &settings.bridge, cidr)
}

/// `check` with the lock directory given. Probes take a shared lock for an instant: they
/// never block each other, and a claim retries past them.
pub fn check_in(lock_dir: &Path, bridge: &str, pod_cidr: Ipv4Cidr) -> Result<(), NetError> {
    if !lock_dir.exists() {
        return Ok(());
    }
    check_overlaps(lock_dir, bridge, pod_cidr)?;
    let path = lock_dir.join(format!("{bridge}.lock"));
    let Ok(file) = File::open(&path) else { return Ok(()) };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Ok(()),
        Err((mut file, Errno::EWOULDBLOCK)) => Err(owned_by_another(bridge, &read_owner(&mut file), &path)),
        Err((_, source)) => Err(NetError::Lock { path, source }),
    }
}

fn owned_by_another(bridge: &str, owner: &Owner, path: &Path) -> NetError {
    NetError::BridgeTaken(format!(
        "network.bridge {bridge:?} is owned by another coracled ({}, pod CIDR {}; lock {}): \
         give this daemon its own network.bridge and network.pod_cidr, or stop the other one",
        owner.describe(),
        if owner.pod_cidr.is_empty() { "unknown" } else { &owner.pod_cidr },
        path.display()
    ))
}

/// `claim` with the lock directory given.
pub fn claim_in(lock_dir: &Path, bridge: &str, pod_cidr: Ipv4Cidr, data_dir: &Path) -> Result<BridgeClaim, NetError> {
    if bridge.is_empty() || bridge.contains('/') || bridge == "." || bridge == ".." {
        return Err(NetError::Setting(format!("network.bridge {bridge:?}: not a valid interface name")));
    }
    std::fs::create_dir_all(lock_dir).map_err(NetError::io("creating", lock_dir))?;
    check_overlaps(lock_dir, bridge, pod_cidr)?;
    let path = lock_dir.join(format!("{bridge}.lock"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(NetError::io("opening", &path))?;
    let mut lock =
        lock_exclusive(file, &path).map_err(|mut file| owned_by_another(bridge, &read_owner(&mut file), &path))?;
    let me = Owner {
        pid: std::process::id().to_string(),
        bridge: bridge.to_string(),
        pod_cidr: pod_cidr.to_string(),
        data_dir: data_dir.display().to_string(),
    };
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| lock.write_all(me.render().as_bytes()))
        .map_err(NetError::io("writing", &path))?;
    Ok(BridgeClaim { _lock: lock, path })
}

/// The exclusive lock, retried for a moment: another daemon's start-up probe holds a shared
/// lock for an instant, an owner for its whole life. Err: the file, still owned.
fn lock_exclusive(file: File, path: &Path) -> Result<Flock<File>, File> {
    let mut file = file;
    for _ in 0..PROBE_RETRIES {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            Err((f, e)) => {
                log::warn!("locking {}: {e}", path.display());
                return Err(f);
            }
        }
        std::thread::sleep(PROBE_PAUSE);
    }
    Err(file)
}

/// The owner as its lock file names it; an owner that has just locked may not have written
/// yet, so an empty file is read once more.
fn read_owner(file: &mut File) -> Owner {
    let mut text = String::new();
    for _ in 0..2 {
        text.clear();
        let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
        if !text.is_empty() {
            break;
        }
        std::thread::sleep(PROBE_PAUSE);
    }
    Owner::parse(&text)
}

/// Another live claim on a different bridge whose pod CIDR overlaps ours is a conflict too:
/// both bridges would route the same addresses.
fn check_overlaps(lock_dir: &Path, bridge: &str, pod_cidr: Ipv4Cidr) -> Result<(), NetError> {
    let entries = std::fs::read_dir(lock_dir).map_err(NetError::io("reading", lock_dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(other) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".lock")) else {
            continue;
        };
        if other == bridge {
            continue;
        }
        let Ok(file) = File::open(&path) else { continue };
        // A lock we can take has no living owner.
        let mut file = match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(_released_on_drop) => continue,
            Err((file, _)) => file,
        };
        let owner = read_owner(&mut file);
        let Ok(theirs) = owner.pod_cidr.parse::<Ipv4Cidr>() else { continue };
        if theirs.contains(pod_cidr.network()) || pod_cidr.contains(theirs.network()) {
            return Err(NetError::BridgeTaken(format!(
                "network.pod_cidr {pod_cidr} overlaps {theirs} of bridge {other:?}, owned by another coracled ({}): \
                 give this daemon its own network.pod_cidr",
                owner.describe()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn a_second_claim_on_the_same_bridge_names_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim_in(dir.path(), "cora0", cidr("10.1.0.0/16"), Path::new("/data/one")).unwrap();
        let err = claim_in(dir.path(), "cora0", cidr("10.2.0.0/16"), Path::new("/data/two")).unwrap_err().to_string();
        let pid = std::process::id();
        assert!(
            err.starts_with(&format!(
                "network.bridge \"cora0\" is owned by another coracled (pid {pid}, data dir /data/one, pod CIDR 10.1.0.0/16"
            )),
            "{err}"
        );
        drop(first);
        // Released with its owner: the next daemon takes it.
        claim_in(dir.path(), "cora0", cidr("10.2.0.0/16"), Path::new("/data/two")).unwrap();
    }

    #[test]
    fn probes_see_owners_and_never_each_other() {
        let dir = tempfile::tempdir().unwrap();
        check_in(dir.path(), "cora0", cidr("10.1.0.0/16")).unwrap();
        let claim = claim_in(dir.path(), "cora0", cidr("10.1.0.0/16"), Path::new("/data/one")).unwrap();
        let err = check_in(dir.path(), "cora0", cidr("10.9.0.0/16")).unwrap_err().to_string();
        assert!(err.contains("is owned by another coracled") && err.contains("data dir /data/one"), "{err}");
        let err = check_in(dir.path(), "cora1", cidr("10.1.2.0/24")).unwrap_err().to_string();
        assert!(err.contains("overlaps 10.1.0.0/16"), "{err}");
        drop(claim);
        // A probe holding its shared lock does not make a claim fail.
        let probe =
            Flock::lock(File::open(dir.path().join("cora0.lock")).unwrap(), FlockArg::LockSharedNonblock).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(PROBE_PAUSE * 3);
            drop(probe);
        });
        claim_in(dir.path(), "cora0", cidr("10.1.0.0/16"), Path::new("/data/two")).unwrap();
        release.join().unwrap();
    }

    #[test]
    fn overlapping_pod_cidrs_on_other_bridges_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let _a = claim_in(dir.path(), "cora0", cidr("10.88.0.0/16"), Path::new("/a")).unwrap();
        let err = claim_in(dir.path(), "cora1", cidr("10.88.4.0/24"), Path::new("/b")).unwrap_err().to_string();
        assert!(err.contains("10.88.4.0/24 overlaps 10.88.0.0/16 of bridge \"cora0\""), "{err}");
        let _c = claim_in(dir.path(), "cora1", cidr("10.89.0.0/16"), Path::new("/c")).unwrap();
    }

    #[test]
    fn files_left_by_dead_owners_block_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cora0.lock"), "pid=1\nbridge=cora0\npod_cidr=10.88.0.0/16\ndata_dir=/x\n")
            .unwrap();
        claim_in(dir.path(), "cora1", cidr("10.88.0.0/16"), Path::new("/y")).unwrap();
        claim_in(dir.path(), "cora0", cidr("10.88.0.0/16"), Path::new("/z")).unwrap();
    }

    #[test]
    fn only_cni_mode_claims_and_names_are_checked() {
        let settings = NetworkSettings { mode: NetworkMode::None, ..Default::default() };
        assert!(claim(&settings, Path::new("/d")).unwrap().is_none());
        check(&settings).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(claim_in(dir.path(), "../x", cidr("10.0.0.0/8"), Path::new("/d")).is_err());
    }
}
