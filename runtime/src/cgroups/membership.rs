//! Putting processes into cgroups: the one place outside this module's own bookkeeping that
//! writes membership files (`tasks`, `cgroup.procs`). A container's init and an exec'd command
//! move themselves in ([`join_current`], [`Entry`]); an OCI runtime's process is moved by pid
//! ([`move_process`]).

use super::{files, CgroupError};
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The way into a set of cgroup directories (one per hierarchy), opened ahead of a fork so
/// that the child can move itself in with nothing but write(2).
///
/// On a v1 hierarchy the file is `tasks` and `0` moves the calling thread only: that lets the
/// kernel (5.16+) skip the global threadgroup lock whose first writer waits a whole RCU grace
/// period, 5–15 ms per start when every hierarchy's `cgroup.procs` was written. A
/// single-threaded process moves whole. A v2 directory has no `tasks`; `cgroup.procs` takes
/// `0` too.
#[derive(Debug)]
pub struct Entry {
    files: Vec<File>,
}

impl Entry {
    /// Opens the membership file of each directory; a missing directory is an error naming it.
    pub fn open(dirs: &[impl AsRef<Path>]) -> Result<Entry, CgroupError> {
        let mut opened = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let dir = dir.as_ref();
            let file = match open_for_write(&dir.join("tasks")) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let procs = dir.join("cgroup.procs");
                    open_for_write(&procs).map_err(|source| CgroupError::Join { path: procs, source })?
                }
                other => other.map_err(|source| CgroupError::Join { path: dir.join("tasks"), source })?,
            };
            opened.push(file);
        }
        Ok(Entry { files: opened })
    }

    /// Moves the calling process (single-threaded, e.g. between fork and exec) into every
    /// directory. Async-signal-safe: only write(2) on descriptors opened before, no allocation.
    pub fn join_current(&self) -> io::Result<()> {
        for file in &self.files {
            // SAFETY: write(2) reads one byte from a static buffer into an open descriptor.
            if unsafe { libc::write(file.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

fn open_for_write(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).open(path)
}

/// Moves the calling (single-threaded) process into each cgroup directory; errors name the file.
pub fn join_current(dirs: &[impl AsRef<Path>]) -> Result<(), CgroupError> {
    let entry = Entry::open(dirs)?;
    entry.join_current().map_err(|source| CgroupError::Join { path: first_file(dirs), source })
}

/// Moves process `pid` (all its threads) into each cgroup directory.
pub fn move_process(dirs: &[impl AsRef<Path>], pid: i32) -> Result<(), CgroupError> {
    for dir in dirs {
        let procs = dir.as_ref().join("cgroup.procs");
        files::append(&procs, &pid.to_string()).map_err(|e| match e {
            CgroupError::Io { source, .. } | CgroupError::Write { source, .. } => {
                CgroupError::Join { path: procs.clone(), source }
            }
            other => other,
        })?;
    }
    Ok(())
}

/// The membership file a failed join most likely concerns (the first directory's).
fn first_file(dirs: &[impl AsRef<Path>]) -> PathBuf {
    dirs.first().map(|d| d.as_ref().join("cgroup.procs")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_hierarchies_get_the_thread_and_v2_the_process() {
        let (v1, v2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(v1.path().join("tasks"), "").unwrap();
        std::fs::write(v2.path().join("cgroup.procs"), "").unwrap();
        join_current(&[v1.path(), v2.path()]).unwrap();
        assert_eq!(std::fs::read_to_string(v1.path().join("tasks")).unwrap(), "0");
        assert!(!v1.path().join("cgroup.procs").exists(), "v1 must not take the threadgroup lock");
        assert_eq!(std::fs::read_to_string(v2.path().join("cgroup.procs")).unwrap(), "0");
    }

    #[test]
    fn a_missing_cgroup_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = join_current(&[&gone]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("join cgroup {}", gone.join("cgroup.procs").display())), "{err}");
        let err = move_process(&[&gone], 1).unwrap_err().to_string();
        assert!(err.starts_with(&format!("join cgroup {}", gone.join("cgroup.procs").display())), "{err}");
    }

    #[test]
    fn a_process_is_moved_by_pid_into_cgroup_procs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), "").unwrap();
        move_process(&[dir.path()], 4242).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("cgroup.procs")).unwrap(), "4242\n");
    }
}
