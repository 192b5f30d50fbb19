//! One cgroup the daemon made: its directories, processes, limits and usage.

use super::place::Place;
use super::{files, kill, v1, v2};
use super::{CgroupError, Limits};
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Usage figures of one cgroup (and everything below it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time used since the cgroup was created, in nanoseconds.
    pub cpu_usage_nanos: u64,
    /// Working set: memory in use minus inactive page cache, as the kubelet reports it.
    pub memory_bytes: u64,
    /// How many processes the kernel's OOM killer has killed here.
    pub oom_kills: u64,
    /// How many tasks are in the cgroup now.
    pub pids: u64,
}

/// A cgroup beneath the daemon's own; cheap to clone and keep per container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    rel: String,
    pub(crate) place: Place,
    /// Hybrid only: this cgroup's path in the controller-less cgroup2 tree. The daemon never
    /// puts anything there, but an OCI runtime (runc) mirrors the cgroups it is given into it.
    pub(crate) unified: Option<PathBuf>,
}

impl Cgroup {
    pub(crate) fn new(rel: &str, place: Place, unified: Option<PathBuf>) -> Cgroup {
        Cgroup { rel: rel.to_string(), place, unified }
    }

    /// The path relative to the daemon's base, as given to `Cgroups::create`.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// One directory per hierarchy: a new process joins the cgroup by having its pid
    /// written into `cgroup.procs` in each of them.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.place.dirs()
    }

    /// Moves process `pid` into this cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.dirs() {
            files::append(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Every process in this cgroup or below it, across all hierarchies, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = BTreeSet::new();
        for dir in self.dirs().into_iter().chain(self.unified.clone()) {
            for cgroup in files::subtree(&dir)? {
                all.extend(files::read_pids(&cgroup.join("cgroup.procs"))?);
            }
        }
        Ok(all.into_iter().collect())
    }

    /// Current usage: CPU time, working-set memory, OOM kills, tasks.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.place {
            Place::V1(dirs) => v1::stats(dirs),
            Place::V2(dir) => v2::stats(dir),
        }
    }

    /// Replaces every limit; a `None` lifts the limit set before.
    pub fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        limits.validate()?;
        match &self.place {
            Place::V1(dirs) => {
                v1::check_controllers(dirs, limits)?;
                v1::apply(dirs, limits)
            }
            Place::V2(dir) => v2::apply(dir, limits),
        }
    }

    /// Sends `signal` to every process in the cgroup and below. For SIGKILL it returns
    /// only once none is left: forks racing the kill (a fork bomb) are caught by freezing
    /// first, or by `cgroup.kill` on v2.
    pub fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        if signal == Signal::SIGKILL {
            kill::kill_until_empty(&self.place, &|| self.pids())
        } else {
            kill::signal_each(&self.pids()?, signal);
            Ok(())
        }
    }

    /// Kills everything inside, then removes this cgroup and all below it in every
    /// hierarchy, including an OCI runtime's mirror in the hybrid cgroup2 tree. A cgroup
    /// that is already gone is fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.kill_all(Signal::SIGKILL)?;
        for dir in self.dirs().into_iter().chain(self.unified.clone()) {
            for cgroup in files::subtree(&dir)? {
                remove_dir(&cgroup)?;
            }
        }
        Ok(())
    }
}

/// rmdir, retrying EBUSY for a moment: the kernel releases a cgroup shortly after its
/// last task has exited.
fn remove_dir(dir: &std::path::Path) -> Result<(), CgroupError> {
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(CgroupError::io("rmdir", dir, e)),
        }
    }
}
