//! Emptying a cgroup for good: no process may survive, not even one forked mid-kill.

use super::place::Place;
use super::{v1, v2, CgroupError};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a SIGKILLed cgroup may take to empty before we give up and report who is left
/// (a task stuck in uninterruptible sleep cannot die until its I/O returns).
const EMPTY_DEADLINE: Duration = Duration::from_secs(10);

/// Sends `signal` to each pid; one that has already gone is not an error.
pub(crate) fn signal_each(pids: &[i32], signal: Signal) {
    for pid in pids {
        match kill(Pid::from_raw(*pid), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => log::warn!("cgroups: sending {signal} to pid {pid}: {e}"),
        }
    }
}

/// The processes in the cgroup (and below it) right now, across all its directories.
type Members<'a> = &'a dyn Fn() -> Result<Vec<i32>, CgroupError>;

/// SIGKILLs everything in the cgroup at `place` until `members` lists no one. v2 with `cgroup.kill` lets the
/// kernel do it atomically; otherwise freeze (so nothing forks), kill every pid, thaw,
/// and repeat until the kernel lists no process.
pub(crate) fn kill_until_empty(place: &Place, members: Members) -> Result<(), CgroupError> {
    let deadline = Instant::now() + EMPTY_DEADLINE;
    if let Place::V2(dir) = place {
        if dir.exists() && v2::kill_file(dir)? {
            return wait_empty(place, members, deadline);
        }
    }
    loop {
        let pids = members()?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(still_populated(place, pids));
        }
        let freezer = freezer(place);
        if let Some(freezer) = &freezer {
            freeze(place, freezer, true)?;
        }
        // Frozen, the set cannot grow: re-read so forks that won the race are included.
        let killed = match &freezer {
            Some(_) => members(),
            None => Ok(pids),
        };
        if let Ok(pids) = &killed {
            signal_each(pids, Signal::SIGKILL);
        }
        if let Some(freezer) = &freezer {
            freeze(place, freezer, false)?;
        }
        killed?;
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn freezer(place: &Place) -> Option<std::path::PathBuf> {
    match place {
        Place::V1(dirs) => v1::freezer(dirs).filter(|d| d.exists()).map(Path::to_path_buf),
        Place::V2(dir) => v2::can_freeze(dir).then(|| dir.clone()),
    }
}

fn freeze(place: &Place, dir: &Path, frozen: bool) -> Result<bool, CgroupError> {
    match place {
        Place::V1(_) => v1::freeze(dir, frozen),
        Place::V2(_) => v2::freeze(dir, frozen),
    }
}

fn wait_empty(place: &Place, members: Members, deadline: Instant) -> Result<(), CgroupError> {
    loop {
        let pids = members()?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(still_populated(place, pids));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn still_populated(place: &Place, pids: Vec<i32>) -> CgroupError {
    CgroupError::StillPopulated { path: place.dirs().into_iter().next().unwrap_or_default(), pids }
}
