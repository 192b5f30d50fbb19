//! One daemon per board resource: the data directory, the run directory and the cgroup
//! subpath are each claimed with `flock(2)` on a lock file for the daemon's life, so a second
//! daemon configured with the same one refuses to start, naming the owner, before it reads a
//! stored object or looks at a container, instead of "cleaning up after" the first daemon's
//! pods. The bridge and pod CIDR have their own claim (`coracle_net::bridge_claim`), taken
//! when the first pod is wired.
//!
//! A lock file carries its owner's pid and data directory for the message; the kernel drops
//! the lock however the owner ends (even `kill -9`), so a leftover file blocks nothing.

use coracle_config::settings::DaemonSettings;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data and run directories.
pub const LOCK_FILE: &str = "coracled.lock";

/// The held claims; dropping them lets the resources go.
#[derive(Debug)]
pub struct Claims {
    _held: Vec<Flock<File>>,
}

/// Why a claim failed.
#[derive(Debug)]
pub enum ClaimError {
    /// Another live daemon holds the resource; the message names it and the setting.
    Taken(String),
    /// The lock file could not be made or read.
    Io { path: PathBuf, source: std::io::Error },
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::Taken(message) => f.write_str(message),
            ClaimError::Io { path, source } => write!(f, "claiming {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ClaimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClaimError::Taken(_) => None,
            ClaimError::Io { source, .. } => Some(source),
        }
    }
}

/// One resource to claim: the setting that names it, its value, and its lock file.
struct Resource {
    setting: &'static str,
    value: String,
    lock: PathBuf,
}

/// Claims the data directory (which must exist), the run directory and, as root, the cgroup
/// subpath of `settings`; `lock_dir` holds the cgroup subpath's lock (host-wide: the
/// cgroup tree is the board's). A run directory that cannot be made is left unclaimed: the
/// node does not start without it, so nothing is shared.
pub fn claim(settings: &DaemonSettings, lock_dir: &Path) -> Result<Claims, ClaimError> {
    let data_dir = &settings.data_dir;
    let mut resources =
        vec![Resource { setting: "data_dir", value: data_dir.display().to_string(), lock: data_dir.join(LOCK_FILE) }];
    match std::fs::create_dir_all(&settings.run_dir) {
        Ok(()) => resources.push(Resource {
            setting: "run_dir",
            value: settings.run_dir.display().to_string(),
            lock: settings.run_dir.join(LOCK_FILE),
        }),
        Err(e) => log::warn!("run_dir {} left unclaimed: {e}", settings.run_dir.display()),
    }
    if nix::unistd::geteuid().is_root() {
        std::fs::create_dir_all(lock_dir).map_err(|source| ClaimError::Io { path: lock_dir.into(), source })?;
        resources.push(Resource {
            setting: "cgroup_subpath",
            value: settings.cgroup_subpath.clone(),
            lock: lock_dir.join(cgroup_lock_name(&settings.cgroup_subpath)),
        });
    }
    let held = resources.iter().map(|r| take(r, data_dir)).collect::<Result<Vec<_>, _>>()?;
    Ok(Claims { _held: held })
}

/// `cgroup-<subpath>.lock`, the subpath's slashes and percent signs escaped so that every
/// subpath has a file of its own, with the slashes around it ignored as the cgroup code does.
fn cgroup_lock_name(subpath: &str) -> String {
    let escaped = subpath.trim_matches('/').replace('%', "%25").replace('/', "%2F");
    format!("cgroup-{escaped}.lock")
}

fn take(resource: &Resource, data_dir: &Path) -> Result<Flock<File>, ClaimError> {
    let path = &resource.lock;
    let io = |source| ClaimError::Io { path: path.clone(), source };
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            return Err(ClaimError::Taken(format!(
            "{} {:?} is in use by another coracled ({}; lock {}): give this daemon its own {}, or stop the other one",
            resource.setting,
            resource.value,
            describe_owner(&mut file),
            path.display(),
            resource.setting
        )))
        }
        Err((_, errno)) => return Err(io(errno.into())),
    };
    let me = format!("pid={}\ndata_dir={}\n", std::process::id(), data_dir.display());
    lock.set_len(0).and_then(|()| lock.rewind()).and_then(|()| lock.write_all(me.as_bytes())).map_err(io)?;
    Ok(lock)
}

/// `pid 42, data dir /var/lib/coracle`, from the owner's lock file; an owner that has just
/// locked may not have written yet, so an empty file is read once more.
fn describe_owner(file: &mut File) -> String {
    let mut text = String::new();
    for _ in 0..2 {
        text.clear();
        let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
        if !text.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .filter(|v| !v.is_empty())
            .unwrap_or("unknown")
            .to_string()
    };
    format!("pid {}, data dir {}", field("pid"), field("data_dir"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(root: &Path, data: &str, run: &str, subpath: &str) -> DaemonSettings {
        let s = DaemonSettings {
            data_dir: root.join(data),
            run_dir: root.join(run),
            cgroup_subpath: subpath.into(),
            ..Default::default()
        };
        std::fs::create_dir_all(&s.data_dir).unwrap();
        s
    }

    #[test]
    fn each_resource_is_held_once_and_the_error_names_the_owner() {
        let root = tempfile::tempdir().unwrap();
        let locks = root.path().join("locks");
        let first = claim(&settings(root.path(), "d1", "r1", "cg-1"), &locks).unwrap();
        let pid = std::process::id();
        let owner = format!("pid {pid}, data dir {}", root.path().join("d1").display());
        let same_data = claim(&settings(root.path(), "d1", "r2", "cg-2"), &locks).unwrap_err().to_string();
        assert!(
            same_data.starts_with(&format!(
                "data_dir {:?} is in use by another coracled ({owner}; lock ",
                root.path().join("d1").display().to_string()
            )),
            "{same_data}"
        );
        let same_run = claim(&settings(root.path(), "d2", "r1", "cg-2"), &locks).unwrap_err().to_string();
        assert!(same_run.starts_with("run_dir ") && same_run.contains(&owner), "{same_run}");
        if nix::unistd::geteuid().is_root() {
            let same_cgroup = claim(&settings(root.path(), "d2", "r2", "/cg-1/"), &locks).unwrap_err().to_string();
            assert!(
                same_cgroup.starts_with("cgroup_subpath \"/cg-1/\" is in use") && same_cgroup.contains(&owner),
                "{same_cgroup}"
            );
        }
        // A refused daemon holds nothing: the next one with its own resources starts.
        let second = claim(&settings(root.path(), "d2", "r2", "cg-2"), &locks).unwrap();
        drop(first);
        // Let go with its owner (however it ended): the next daemon takes them.
        drop(claim(&settings(root.path(), "d1", "r1", "cg-1"), &locks).unwrap());
        drop(second);
    }

    #[test]
    fn cgroup_subpaths_get_distinct_lock_files() {
        assert_eq!(cgroup_lock_name("coracle"), "cgroup-coracle.lock");
        assert_eq!(cgroup_lock_name("/a/b/"), cgroup_lock_name("a/b"));
        assert_ne!(cgroup_lock_name("a/b"), cgroup_lock_name("a%2Fb"));
        assert_ne!(cgroup_lock_name("a/b"), cgroup_lock_name("a-b"));
    }
}
