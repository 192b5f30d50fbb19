//! Where runc should put a container's cgroup so it lands in the directories the node made.
//!
//! The node creates one directory per hierarchy beneath the daemon's own cgroup. runc takes one
//! `cgroupsPath` for all hierarchies: absolute paths are read below each mount point, relative
//! ones below runc's (= the shim's = the daemon's) own cgroup in each hierarchy. On a hybrid
//! machine our own cgroup differs between hierarchies, so either form may fit, or neither.

use std::path::{Path, PathBuf};

/// How the container reaches its cgroup directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPlacement {
    /// No directories were asked for: runc creates `<id>` beneath our own cgroup.
    RuntimeDefault,
    /// Give runc this `cgroupsPath`; it resolves to exactly the node's directories.
    Path(String),
    /// No single path fits: runc creates `<id>`, the shim moves the process into the node's
    /// directories between `create` and `start`.
    MoveAfterCreate,
}

struct CgroupMount {
    point: PathBuf,
    root: PathBuf,
    controllers: Vec<String>,
    unified: bool,
}

fn parse_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let (fstype, _source, options) = (right.next()?, right.next()?, right.next().unwrap_or(""));
            let unified = match fstype {
                "cgroup" => false,
                "cgroup2" => true,
                _ => return None,
            };
            Some(CgroupMount {
                point: PathBuf::from(fields.get(4)?),
                root: PathBuf::from(fields.get(3)?),
                controllers: options.split(',').map(str::to_string).collect(),
                unified,
            })
        })
        .collect()
}

/// Our own cgroup directory in the hierarchy mounted at `mount`, from /proc/self/cgroup.
fn own_dir(mount: &CgroupMount, self_cgroup: &str) -> Option<PathBuf> {
    let path = self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if mount.unified {
            controllers.is_empty()
        } else {
            !controllers.is_empty() && controllers.split(',').all(|c| mount.controllers.iter().any(|o| o == c))
        };
        matches.then_some(path)
    })?;
    let below_root = Path::new(path).strip_prefix(&mount.root).ok()?;
    Some(mount.point.join(below_root))
}

/// The placement for `dirs`, judged from this process's mounts and cgroups.
pub fn placement(dirs: &[PathBuf]) -> CgroupPlacement {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    placement_from(dirs, &mountinfo, &self_cgroup)
}

/// The placement for `dirs` given the text of /proc/self/mountinfo and /proc/self/cgroup.
pub fn placement_from(dirs: &[PathBuf], mountinfo: &str, self_cgroup: &str) -> CgroupPlacement {
    if dirs.is_empty() {
        return CgroupPlacement::RuntimeDefault;
    }
    let mounts = parse_mounts(mountinfo);
    let mut below_mount = Vec::new();
    let mut below_own = Vec::new();
    for dir in dirs {
        let Some(mount) = mounts.iter().filter(|m| dir.starts_with(&m.point)).max_by_key(|m| m.point.as_os_str().len())
        else {
            return CgroupPlacement::MoveAfterCreate;
        };
        below_mount.push(dir.strip_prefix(&mount.point).ok().map(Path::to_path_buf));
        below_own.push(own_dir(mount, self_cgroup).and_then(|own| dir.strip_prefix(own).ok().map(Path::to_path_buf)));
    }
    let shared = |paths: &[Option<PathBuf>]| -> Option<PathBuf> {
        let first = paths.first()?.clone()?;
        let non_empty = !first.as_os_str().is_empty();
        (non_empty && paths.iter().all(|p| p.as_ref() == Some(&first))).then_some(first)
    };
    if let Some(path) = shared(&below_mount) {
        return CgroupPlacement::Path(format!("/{}", path.display()));
    }
    if let Some(path) = shared(&below_own) {
        return CgroupPlacement::Path(path.display().to_string());
    }
    CgroupPlacement::MoveAfterCreate
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
";
    const SELF_CGROUP: &str = "8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

    fn dirs(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn one_path_below_every_mount_is_absolute() {
        let d = dirs(&["/sys/fs/cgroup/memory/process_api/abc/t", "/sys/fs/cgroup/cpu/process_api/abc/t"]);
        assert_eq!(placement_from(&d, MOUNTINFO, SELF_CGROUP), CgroupPlacement::Path("/process_api/abc/t".into()));
    }

    #[test]
    fn one_path_below_our_own_cgroups_is_relative() {
        let d = dirs(&[
            "/sys/fs/cgroup/memory/process_api/abc/coracle/pods/u/c",
            "/sys/fs/cgroup/cpu/coracle/pods/u/c",
            "/sys/fs/cgroup/pids/coracle/pods/u/c",
        ]);
        assert_eq!(placement_from(&d, MOUNTINFO, SELF_CGROUP), CgroupPlacement::Path("coracle/pods/u/c".into()));
    }

    #[test]
    fn paths_that_fit_no_single_cgroups_path_are_moved_into() {
        let d = dirs(&["/sys/fs/cgroup/memory/process_api/abc/a", "/sys/fs/cgroup/cpu/b"]);
        assert_eq!(placement_from(&d, MOUNTINFO, SELF_CGROUP), CgroupPlacement::MoveAfterCreate);
        assert_eq!(placement_from(&dirs(&["/tmp/x"]), MOUNTINFO, SELF_CGROUP), CgroupPlacement::MoveAfterCreate);
        assert_eq!(placement_from(&[], MOUNTINFO, SELF_CGROUP), CgroupPlacement::RuntimeDefault);
    }
}
