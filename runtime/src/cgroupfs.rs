//! The container's own view of its cgroups at /sys/fs/cgroup, as runc mounts it: fresh cgroup
//! filesystems mounted inside the container's cgroup namespace, so each shows the container's
//! cgroup as its root (a JVM or Go's automaxprocs reads its limits there), read-only unless
//! the container is privileged. cgroup v2: one cgroup2 mount. v1 (and hybrid): a tmpfs holding
//! one mount per hierarchy the host mounts under /sys/fs/cgroup, with the host's options.

use nix::mount::{mount, MsFlags};
use std::path::{Path, PathBuf};

const HOST_CGROUP: &str = "/sys/fs/cgroup";

/// A cgroup filesystem the host mounts under /sys/fs/cgroup.
#[derive(Debug, PartialEq, Eq)]
pub struct HostMount {
    /// Under /sys/fs/cgroup: empty for the mount at /sys/fs/cgroup itself, else `memory`, ….
    pub name: String,
    /// `cgroup`, `cgroup2` or `tmpfs` (v1's holder).
    pub fstype: String,
    /// The superblock's options without `rw`/`ro` (`memory`, `name=systemd`, …).
    pub options: String,
}

/// The cgroup mounts at and under /sys/fs/cgroup in `mountinfo`, in its order.
pub fn host_mounts(mountinfo: &str) -> Vec<HostMount> {
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let Some(point) = left.split(' ').nth(4) else { continue };
        let mut fields = right.split(' ');
        let (Some(fstype), Some(_source), Some(options)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let name = match point.strip_prefix(HOST_CGROUP) {
            Some("") => String::new(),
            Some(rest) => match rest.strip_prefix('/') {
                Some(n) if !n.is_empty() && !n.contains('/') => n.to_string(),
                _ => continue,
            },
            None => continue,
        };
        if !matches!(fstype, "cgroup" | "cgroup2" | "tmpfs") {
            continue;
        }
        let options: Vec<&str> = options.split(',').filter(|o| *o != "rw" && *o != "ro").collect();
        // A later mount on the same point hides the earlier one.
        found.retain(|m: &HostMount| m.name != name);
        found.push(HostMount { name, fstype: fstype.to_string(), options: options.join(",") });
    }
    found
}

fn mount_at(fstype: &str, target: &Path, flags: MsFlags, data: &str) -> Result<(), String> {
    let data = (!data.is_empty()).then_some(data);
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(|e| format!("mount {fstype} ({}) on {}: {e}", data.unwrap_or(""), target.display()))
}

fn mkdir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("create directory {}: {e}", path.display()))
}

/// Mounts the container's cgroup filesystems at `target` (the rootfs's sys/fs/cgroup); call
/// inside the container's cgroup and mount namespaces, before pivot_root. Nothing is mounted
/// where the host mounts no cgroup filesystem at /sys/fs/cgroup.
pub fn mount_cgroupfs(target: &Path, privileged: bool) -> Result<(), String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("read mountinfo: {e}"))?;
    let host = host_mounts(&mountinfo);
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let flags = if privileged { base } else { base | MsFlags::MS_RDONLY };
    match host.iter().find(|m| m.name.is_empty()) {
        None => Ok(()),
        // cgroup2's options (nsdelegate, …) are the host's to set, from the root namespace.
        Some(top) if top.fstype == "cgroup2" => {
            mkdir(target)?;
            mount_at("cgroup2", target, flags, "")
        }
        Some(_) => {
            mkdir(target)?;
            mount_at("tmpfs", target, base, "mode=755")?;
            for m in host.iter().filter(|m| !m.name.is_empty() && m.fstype != "tmpfs") {
                let dir: PathBuf = target.join(&m.name);
                mkdir(&dir)?;
                // A v1 hierarchy is found again by its controllers and name.
                let options = if m.fstype == "cgroup2" { "" } else { m.options.as_str() };
                mount_at(&m.fstype, &dir, flags, options)?;
            }
            // The host's symlinks (cpu → cpu,cpuacct) come along, as runc makes them.
            if let Ok(entries) = std::fs::read_dir(HOST_CGROUP) {
                for entry in entries.flatten() {
                    if let Ok(link) = std::fs::read_link(entry.path()) {
                        let _ = std::os::unix::fs::symlink(link, target.join(entry.file_name()));
                    }
                }
            }
            if privileged {
                return Ok(());
            }
            mount(None::<&str>, target, None::<&str>, MsFlags::MS_REMOUNT | flags, Some("mode=755"))
                .map_err(|e| format!("remount {} read-only: {e}", target.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mounts_are_read_from_mountinfo() {
        let hybrid = "23 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n\
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n\
            50 35 0:60 / /sys/fs/cgroup/memory/x/y rw - tmpfs tmpfs rw\n\
            51 1 0:61 / /sys/fs/cgroupx rw - cgroup cgroup rw,pids\n";
        let got = host_mounts(hybrid);
        let got: Vec<(&str, &str, &str)> =
            got.iter().map(|m| (m.name.as_str(), m.fstype.as_str(), m.options.as_str())).collect();
        assert_eq!(
            got,
            [
                ("", "tmpfs", "mode=755"),
                ("cpu,cpuacct", "cgroup", "cpu,cpuacct"),
                ("memory", "cgroup", "memory"),
                ("systemd", "cgroup", "xattr,name=systemd"),
                ("unified", "cgroup2", "nsdelegate"),
            ]
        );
        let v2 = "31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(
            host_mounts(v2),
            [HostMount {
                name: String::new(),
                fstype: "cgroup2".into(),
                options: "nsdelegate,memory_recursiveprot".into()
            }]
        );
        assert!(host_mounts("").is_empty());
    }
}
