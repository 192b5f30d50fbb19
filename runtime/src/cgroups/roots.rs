//! Finding the daemon's own cgroups: which hierarchies are mounted where, and where in
//! each of them the daemon itself lives. Read once at start from /proc/self.

use super::CgroupError;
use std::fs;
use std::path::{Path, PathBuf};

/// The daemon's own cgroup directories, from which `Cgroups` is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// cgroup v1 controllers, one directory per mounted hierarchy. `unified` is our own
    /// directory in a controller-less cgroup2 mount beside them (hybrid): resources still go
    /// through v1, but an OCI runtime mirrors its cgroups there, so removal must reach it.
    V1 { hierarchies: Vec<Hierarchy>, unified: Option<PathBuf> },
    /// Pure cgroup v2: the unified mount point and the daemon's own cgroup directory in it.
    V2 { mount: PathBuf, own: PathBuf },
}

/// One mounted cgroup v1 hierarchy and the daemon's own cgroup directory in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// The controllers bound to this hierarchy, as /proc/self/cgroup names them
    /// (`memory`, `cpu`, `name=systemd`, or several for a co-mounted `cpu,cpuacct`).
    pub controllers: Vec<String>,
    /// The daemon's own cgroup directory in this hierarchy.
    pub own: PathBuf,
}

impl Hierarchy {
    /// Whether `controller` is bound to this hierarchy.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

impl Roots {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Roots, CgroupError> {
        let mountinfo = Path::new("/proc/self/mountinfo");
        let cgroup = Path::new("/proc/self/cgroup");
        let mountinfo = fs::read_to_string(mountinfo).map_err(|e| CgroupError::io("read", mountinfo, e))?;
        let self_cgroup = fs::read_to_string(cgroup).map_err(|e| CgroupError::io("read", cgroup, e))?;
        Roots::parse(&mountinfo, &self_cgroup)
    }

    /// Works out the roots from the text of /proc/self/mountinfo and /proc/self/cgroup.
    /// v1 controllers win when any are mounted: a cgroup2 mount beside them (hybrid) has
    /// no controllers to give.
    pub fn parse(mountinfo: &str, self_cgroup: &str) -> Result<Roots, CgroupError> {
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        let mut hierarchies = Vec::new();
        let mut unified = None;
        for line in self_cgroup.lines().filter(|l| !l.trim().is_empty()) {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(CgroupError::Layout(format!("malformed /proc/self/cgroup line {line:?}")));
            };
            let path = path.trim_end_matches(" (deleted)");
            if controllers.is_empty() {
                if let Some(mount) = mounts.iter().find(|m| m.fstype == "cgroup2") {
                    unified = Some((mount.point.clone(), mount.dir_for(path)?));
                }
                continue;
            }
            let controllers: Vec<String> = controllers.split(',').map(str::to_string).collect();
            let mount = mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && controllers.iter().all(|c| m.options.iter().any(|o| o == c)));
            // A hierarchy listed but not mounted in our mount namespace cannot be used.
            if let Some(mount) = mount {
                hierarchies.push(Hierarchy { controllers, own: mount.dir_for(path)? });
            }
        }
        let has_resources = hierarchies.iter().any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match unified {
            _ if has_resources => Ok(Roots::V1 { hierarchies, unified: unified.map(|(_, own)| own) }),
            Some((mount, own)) => Ok(Roots::V2 { mount, own }),
            None => Err(CgroupError::Layout(
                "no cgroup v1 controller and no cgroup2 mount found in /proc/self/mountinfo".to_string(),
            )),
        }
    }
}

/// The parts of one /proc/self/mountinfo line that matter for cgroups.
struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    options: Vec<String>,
}

impl Mount {
    fn parse(line: &str) -> Option<Mount> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let dash = fields.iter().position(|f| *f == "-")?;
        let fstype = fields.get(dash + 1)?;
        if !fstype.starts_with("cgroup") {
            return None;
        }
        Some(Mount {
            root: unescape(fields.get(3)?),
            point: PathBuf::from(unescape(fields.get(4)?)),
            fstype: fstype.to_string(),
            options: fields.get(dash + 3)?.split(',').map(str::to_string).collect(),
        })
    }

    /// The directory of cgroup `path` (as /proc/self/cgroup names it) under this mount.
    fn dir_for(&self, path: &str) -> Result<PathBuf, CgroupError> {
        let inside = if self.root == "/" { Some(path) } else { path.strip_prefix(self.root.as_str()) };
        let Some(inside) = inside.filter(|p| p.is_empty() || p.starts_with('/')) else {
            return Err(CgroupError::Layout(format!(
                "our cgroup {path:?} lies outside the mount of {:?} at {}",
                self.root,
                self.point.display()
            )));
        };
        if inside.split('/').any(|c| c == "..") {
            return Err(CgroupError::Layout(format!("our cgroup {path:?} lies outside our cgroup namespace")));
        }
        Ok(self.point.join(inside.trim_start_matches('/')))
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_SELF: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/b21\n2:cpuacct:/\n1:cpu:/\n7:blkio:/\n0::/\n";

    #[test]
    fn hybrid_uses_every_mounted_v1_hierarchy_at_our_own_path() {
        let Roots::V1 { hierarchies, unified } = Roots::parse(HYBRID_MOUNTINFO, HYBRID_SELF).unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(unified, Some(PathBuf::from("/sys/fs/cgroup/unified")), "our own dir in the cgroup2 tree");
        let memory = hierarchies.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(memory.own, PathBuf::from("/sys/fs/cgroup/memory/process_api/b21"));
        let cpu = hierarchies.iter().find(|h| h.has("cpu")).unwrap();
        assert_eq!(cpu.own, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert!(!cpu.has("cpuacct"), "cpu and cpuacct are separate hierarchies here");
        // blkio is listed in /proc/self/cgroup but not mounted: skipped.
        assert_eq!(hierarchies.len(), 5);
    }

    #[test]
    fn comounted_controllers_share_one_hierarchy() {
        let mountinfo = "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let Roots::V1 { hierarchies, unified } = Roots::parse(mountinfo, "3:cpu,cpuacct:/a\n").unwrap() else {
            panic!("expected v1")
        };
        assert_eq!(unified, None);
        assert_eq!(hierarchies[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hierarchies[0].own, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a"));
    }

    #[test]
    fn pure_v2_under_systemd_delegation() {
        let mountinfo = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let roots = Roots::parse(mountinfo, "0::/system.slice/coracled.service\n").unwrap();
        assert_eq!(
            roots,
            Roots::V2 {
                mount: PathBuf::from("/sys/fs/cgroup"),
                own: PathBuf::from("/sys/fs/cgroup/system.slice/coracled.service")
            }
        );
    }

    #[test]
    fn a_mount_of_a_subtree_maps_our_path_inside_it_and_refuses_paths_outside() {
        let mountinfo = "30 23 0:26 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let Roots::V2 { own, .. } = Roots::parse(mountinfo, "0::/kubepods/pod1\n").unwrap() else { panic!() };
        assert_eq!(own, PathBuf::from("/sys/fs/cgroup/pod1"));
        let err = Roots::parse(mountinfo, "0::/elsewhere\n").unwrap_err();
        assert!(err.to_string().contains("/elsewhere"), "{err}");
    }

    #[test]
    fn no_cgroup_fs_is_a_layout_error() {
        let err = Roots::parse("22 1 0:5 / /proc rw - proc proc rw\n", "0::/\n").unwrap_err();
        assert!(matches!(err, CgroupError::Layout(_)), "{err}");
    }

    #[test]
    fn mount_points_with_spaces_are_unescaped() {
        assert_eq!(unescape(r"/mnt/my\040cgroups"), "/mnt/my cgroups");
        assert_eq!(unescape(r"/a\b"), r"/a\b");
    }
}
