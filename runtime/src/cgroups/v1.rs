//! cgroup v1: one directory per mounted hierarchy, each controller with its own files.

use super::files;
use super::{CgroupError, Hierarchy, Limits, Stats};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A cgroup's directory in one v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dir {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

impl Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup at `rel` (already validated, may be empty) under each hierarchy's own dir.
pub(crate) fn dirs(hierarchies: &[Hierarchy], rel: &Path) -> Vec<Dir> {
    hierarchies.iter().map(|h| Dir { controllers: h.controllers.clone(), path: h.own.join(rel) }).collect()
}

/// Refuses a limit whose controller is not mounted, before anything is created.
pub(crate) fn check_controllers(dirs: &[Dir], limits: &Limits) -> Result<(), CgroupError> {
    let wanted = [
        ("memory", limits.memory_bytes.is_some()),
        ("cpu", limits.cpu_quota_us().is_some() || limits.cpu_request_millis.is_some()),
        ("pids", limits.pids_max.is_some()),
    ];
    for (controller, needed) in wanted {
        if needed && !dirs.iter().any(|d| d.has(controller)) {
            let path = dirs.first().map(|d| d.path.clone()).unwrap_or_default();
            return Err(CgroupError::ControllerMissing { controller, path });
        }
    }
    Ok(())
}

/// Creates the directories from the daemon's own cgroup down to `rel` in one hierarchy.
/// cpuset children start with no CPUs or memory nodes, so each gets its parent's.
pub(crate) fn create(hierarchy: &Hierarchy, rel: &Path) -> Result<(), CgroupError> {
    let mut dir = hierarchy.own.clone();
    for component in rel.components() {
        let parent = dir.clone();
        dir.push(component);
        files::ensure_dir(&dir)?;
        if hierarchy.has("cpuset") {
            inherit_cpuset(&parent, &dir)?;
        }
    }
    Ok(())
}

fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = dir.join(file);
        if files::read(&mine)?.is_empty() {
            files::write(&mine, &files::read(&parent.join(file))?)?;
        }
    }
    Ok(())
}

/// Writes every limit into the hierarchy that enforces it; `None` writes "unlimited".
pub(crate) fn apply(dirs: &[Dir], limits: &Limits) -> Result<(), CgroupError> {
    for dir in dirs {
        if dir.has("memory") {
            let bytes = limits.memory_bytes.map_or("-1".to_string(), |b| b.to_string());
            files::write(&dir.path.join("memory.limit_in_bytes"), &bytes)?;
        }
        if dir.has("cpu") {
            files::write(&dir.path.join("cpu.cfs_period_us"), &super::limits::CPU_PERIOD_US.to_string())?;
            let quota = limits.cpu_quota_us().map_or("-1".to_string(), |q| q.to_string());
            files::write(&dir.path.join("cpu.cfs_quota_us"), &quota)?;
            let shares = limits.cpu_shares().unwrap_or(1024);
            files::write(&dir.path.join("cpu.shares"), &shares.to_string())?;
        }
        if dir.has("pids") {
            let max = limits.pids_max.map_or("max".to_string(), |m| m.to_string());
            files::write(&dir.path.join("pids.max"), &max)?;
        }
    }
    Ok(())
}

/// CPU time, working-set memory, OOM kills and task count; a controller that is not
/// mounted reads as zero.
pub(crate) fn stats(dirs: &[Dir]) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    for dir in dirs {
        if dir.has("cpuacct") {
            let path = dir.path.join("cpuacct.usage");
            stats.cpu_usage_nanos = files::parse_u64(&path, &files::read(&path)?)?;
        }
        if dir.has("memory") {
            let path = dir.path.join("memory.usage_in_bytes");
            let usage = files::parse_u64(&path, &files::read(&path)?)?;
            let stat = files::read(&dir.path.join("memory.stat"))?;
            let inactive = files::keyed(&stat, "total_inactive_file").or(files::keyed(&stat, "inactive_file"));
            stats.memory_bytes = usage.saturating_sub(inactive.unwrap_or(0));
            // v1 counts an OOM kill only in the cgroup whose limit was hit: add up the subtree.
            for cgroup in files::subtree(&dir.path)? {
                let oom = files::read_opt(&cgroup.join("memory.oom_control"))?.unwrap_or_default();
                stats.oom_kills += files::keyed(&oom, "oom_kill").unwrap_or(0);
            }
        }
        if dir.has("pids") {
            let path = dir.path.join("pids.current");
            stats.pids = files::parse_u64(&path, &files::read(&path)?)?;
        }
    }
    Ok(stats)
}

/// The freezer directory, if the freezer hierarchy is mounted.
pub(crate) fn freezer(dirs: &[Dir]) -> Option<&Path> {
    dirs.iter().find(|d| d.has("freezer")).map(|d| d.path.as_path())
}

/// Freezes (or thaws) the subtree. Returns whether the kernel reports it frozen in time;
/// a task stuck in the kernel can keep it FREEZING, and the caller kills regardless.
pub(crate) fn freeze(dir: &Path, frozen: bool) -> Result<bool, CgroupError> {
    let state = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        files::write(&state, want)?;
        if files::read(&state)? == want {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
