//! cgroup v2: one unified tree. Controllers reach a cgroup only when every ancestor up to
//! the daemon's own cgroup enables them in `cgroup.subtree_control`, and a cgroup that
//! does so may hold no processes itself ("no internal processes").

use super::files;
use super::{CgroupError, Limits, Stats};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Controllers the daemon hands down to its pods, when the kernel offers them.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
/// The leaf the daemon moves itself into, so its own cgroup may enable controllers.
pub(crate) const DAEMON_LEAF: &str = "daemon";

/// The unified mount and the daemon's own cgroup directory in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tree {
    pub mount: PathBuf,
    pub own: PathBuf,
}

impl Tree {
    /// The controllers offered to the daemon's own cgroup that pods should get.
    fn wanted(&self) -> Result<Vec<&'static str>, CgroupError> {
        let offered = files::read(&self.own.join("cgroup.controllers"))?;
        Ok(CONTROLLERS.into_iter().filter(|c| offered.split_whitespace().any(|o| o == *c)).collect())
    }

    /// Creates the directories from the daemon's own cgroup down to `rel`, enabling the
    /// pod controllers in every ancestor of the leaf. Returns the leaf directory.
    pub(crate) fn create(&self, rel: &Path, limits: &Limits) -> Result<PathBuf, CgroupError> {
        let wanted = self.wanted()?;
        let needs = [
            ("memory", limits.memory_bytes.is_some()),
            ("cpu", limits.cpu_quota_us().is_some() || limits.cpu_request_millis.is_some()),
            ("pids", limits.pids_max.is_some()),
        ];
        if let Some((controller, _)) = needs.iter().find(|(c, needed)| *needed && !wanted.contains(c)) {
            return Err(CgroupError::ControllerMissing { controller, path: self.own.join("cgroup.controllers") });
        }
        self.delegate(&wanted)?;
        let components: Vec<_> = rel.components().collect();
        let mut dir = self.own.clone();
        for (i, component) in components.iter().enumerate() {
            dir.push(component);
            files::ensure_dir(&dir)?;
            if i + 1 < components.len() {
                enable(&dir, &wanted)?;
            }
        }
        Ok(dir)
    }

    /// Makes the daemon's own cgroup able to hand controllers down: move the processes
    /// living in it into a leaf, then enable the controllers. The root cgroup is exempt
    /// from the no-internal-processes rule and stays as it is.
    fn delegate(&self, wanted: &[&str]) -> Result<(), CgroupError> {
        let enabled = enabled(&self.own)?;
        if wanted.iter().all(|c| enabled.iter().any(|e| e == c)) {
            return Ok(());
        }
        if self.own != self.mount {
            let pids = files::read_pids(&self.own.join("cgroup.procs"))?;
            if !pids.is_empty() {
                let leaf = self.own.join(DAEMON_LEAF);
                files::ensure_dir(&leaf)?;
                for pid in pids {
                    match files::append(&leaf.join("cgroup.procs"), &pid.to_string()) {
                        Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::ESRCH) => {}
                        other => other?,
                    }
                }
            }
        }
        enable(&self.own, wanted)
    }
}

/// Whether `dir` looks like a daemon's own cgroup set up earlier: it enables controllers
/// for its children, or already holds the daemon's `subpath`.
pub(crate) fn delegates(dir: &Path, subpath: &Path) -> bool {
    dir.join(subpath).is_dir() || enabled(dir).is_ok_and(|e| !e.is_empty())
}

/// The controllers `dir` already enables for its children.
fn enabled(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let text = files::read(&dir.join("cgroup.subtree_control"))?;
    Ok(text.split_whitespace().map(|c| c.trim_start_matches('+').to_string()).collect())
}

fn enable(dir: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let enabled = enabled(dir)?;
    let missing: Vec<String> =
        wanted.iter().filter(|c| !enabled.iter().any(|e| e == *c)).map(|c| format!("+{c}")).collect();
    if missing.is_empty() {
        return Ok(());
    }
    files::write(&dir.join("cgroup.subtree_control"), &missing.join(" "))
}

/// Writes every limit into the leaf; `None` writes "max" (or the default weight).
pub(crate) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    let memory = limits.memory_bytes.map_or("max".to_string(), |b| b.to_string());
    set(dir, "memory", "memory.max", &memory, limits.memory_bytes.is_some())?;
    // With a memory limit, swap would only postpone the OOM kill the limit promises.
    let swap = if limits.memory_bytes.is_some() { "0" } else { "max" };
    set(dir, "memory", "memory.swap.max", swap, false)?;
    let quota = limits.cpu_quota_us().map_or("max".to_string(), |q| q.to_string());
    let cpu_max = format!("{quota} {}", super::limits::CPU_PERIOD_US);
    set(dir, "cpu", "cpu.max", &cpu_max, limits.cpu_quota_us().is_some())?;
    let weight = limits.cpu_weight().unwrap_or(100).to_string();
    set(dir, "cpu", "cpu.weight", &weight, limits.cpu_weight().is_some())?;
    let pids = limits.pids_max.map_or("max".to_string(), |m| m.to_string());
    set(dir, "pids", "pids.max", &pids, limits.pids_max.is_some())
}

fn set(dir: &Path, controller: &'static str, file: &str, value: &str, required: bool) -> Result<(), CgroupError> {
    let path = dir.join(file);
    if path.exists() {
        files::write(&path, value)
    } else if required {
        Err(CgroupError::ControllerMissing { controller, path })
    } else {
        Ok(())
    }
}

/// CPU time, working-set memory, OOM kills and task count; what a missing controller
/// would report reads as zero.
pub(crate) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    let keyed = |file: &str, key: &str| -> Result<u64, CgroupError> {
        Ok(files::read_opt(&dir.join(file))?.and_then(|text| files::keyed(&text, key)).unwrap_or(0))
    };
    let number = |file: &str| -> Result<u64, CgroupError> {
        let path = dir.join(file);
        files::read_opt(&path)?.map_or(Ok(0), |text| files::parse_u64(&path, &text))
    };
    let usage_usec = keyed("cpu.stat", "usage_usec")?;
    Ok(Stats {
        cpu_usage_nanos: usage_usec.saturating_mul(1000),
        memory_bytes: number("memory.current")?.saturating_sub(keyed("memory.stat", "inactive_file")?),
        oom_kills: keyed("memory.events", "oom_kill")?,
        pids: number("pids.current")?,
    })
}

/// Kills the whole subtree at once through `cgroup.kill` (Linux 5.14+). Returns false
/// when the kernel has no such file.
pub(crate) fn kill_file(dir: &Path) -> Result<bool, CgroupError> {
    let path = dir.join("cgroup.kill");
    match files::write(&path, "1") {
        Ok(()) => Ok(true),
        Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the kernel offers `cgroup.freeze` (Linux 5.2+).
pub(crate) fn can_freeze(dir: &Path) -> bool {
    dir.join("cgroup.freeze").exists()
}

/// Freezes (or thaws) the subtree and waits for `cgroup.events` to agree. Returns whether
/// it did so in time; the caller kills regardless.
pub(crate) fn freeze(dir: &Path, frozen: bool) -> Result<bool, CgroupError> {
    files::write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    let want = u64::from(frozen);
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let events = files::read_opt(&dir.join("cgroup.events"))?.unwrap_or_default();
        if files::keyed(&events, "frozen") == Some(want) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
