//! The container's filesystem view, built inside its new mount namespace: rootfs, /proc, /dev,
//! /sys, volumes, pivot_root, then runc's masked and read-only paths.

use super::secure_join::secure_join;
use super::spec::{ContainerSpec, MountKind, MountSpec};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::path::{Path, PathBuf};

/// runc's default masked paths: hidden behind /dev/null (files) or an empty read-only tmpfs (dirs).
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// runc's default read-only paths.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Character devices every container gets: (name, major, minor).
const DEVICES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC).union(MsFlags::MS_NODEV);

fn do_mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(source, target, fstype, flags, data).map_err(|e| {
        format!(
            "mount {} on {} ({}): {e}",
            source.map(|s| s.display().to_string()).unwrap_or_default(),
            target.display(),
            fstype.unwrap_or("bind")
        )
    })
}

fn mkdir_p(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("create directory {}: {e}", path.display()))
}

/// Mounts the image layers (or their flattened copy) at `root` and everything a container
/// expects beneath it; the caller pivots into `root` afterwards.
pub fn prepare_root(spec: &ContainerSpec, root: &Path) -> Result<(), String> {
    // Nothing we mount may propagate back to the host (and its mounts need not reach us).
    do_mount(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    mkdir_p(root)?;
    mount_rootfs(spec, root)?;
    let proc_dir = root.join("proc");
    mkdir_p(&proc_dir)?;
    do_mount(Some(Path::new("proc")), &proc_dir, Some("proc"), NOSUID_NOEXEC_NODEV, None)?;
    mount_dev(&root.join("dev"))?;
    mount_sys(&root.join("sys"), spec.confinement.privileged)?;
    crate::cgroupfs::mount_cgroupfs(&root.join("sys/fs/cgroup"), spec.confinement.privileged)?;
    for m in &spec.mounts {
        mount_volume(root, m)?;
    }
    let cwd = secure_join(root, &spec.cwd)?;
    if !cwd.exists() {
        mkdir_p(&cwd)?;
        // A created working directory belongs to the container's user, as runc makes it.
        let _ = std::os::unix::fs::chown(&cwd, Some(spec.user.uid), Some(spec.user.gid));
    }
    Ok(())
}

/// Mounts the container's image layers under its writable layer at `root` (overlay, or a
/// flattened copy bound in place where overlayfs is missing).
pub fn mount_rootfs(spec: &ContainerSpec, root: &Path) -> Result<(), String> {
    let rootfs = &spec.rootfs;
    mkdir_p(&rootfs.upper_dir)?;
    if rootfs.layers.is_empty() {
        // A plain directory used as the root, writable in place.
        return do_mount(Some(&rootfs.upper_dir), root, None, MsFlags::MS_BIND | MsFlags::MS_REC, None);
    }
    mkdir_p(&rootfs.work_dir)?;
    let (base, options) = overlay_options(&rootfs.layers, &rootfs.upper_dir, &rootfs.work_dir);
    // The kernel reads mount options from a single page.
    if options.len() >= 4096 {
        return Err(format!(
            "overlay options for {} layers are {} bytes, over the kernel's 4096-byte page",
            rootfs.layers.len(),
            options.len()
        ));
    }
    match mount_overlay_from(&base, root, &options) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENODEV) => {
            // No overlayfs: the writable layer becomes a full copy of the image, made once.
            let marker = rootfs.work_dir.join(".coracle-flattened");
            if !marker.exists() {
                crate::image::flatten(&rootfs.layers, &rootfs.upper_dir).map_err(|e| e.to_string())?;
                std::fs::write(&marker, b"").map_err(|e| format!("write {}: {e}", marker.display()))?;
            }
            do_mount(Some(&rootfs.upper_dir), root, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
        }
        Err(e) => Err(format!("mount overlay rootfs on {} ({options}): {e}", root.display())),
    }
}

/// The directory every one of `dirs` lies under (`/` at worst).
fn common_parent<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for dir in dirs {
        let parent = dir.parent().unwrap_or(Path::new("/"));
        common = Some(match common {
            None => parent.to_path_buf(),
            // An ancestor of every parent, never a directory itself (its relative path would be empty).
            Some(c) => c.ancestors().find(|a| parent.starts_with(a)).unwrap_or(Path::new("/")).to_path_buf(),
        });
    }
    common.unwrap_or_else(|| PathBuf::from("/"))
}

/// Overlay's options naming the layers relative to their common parent (returned first), as
/// containerd does (`compactLowerdirOption`): the options stay short, and the container's
/// mountinfo, which shows them as given, names no host directory.
pub fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> (PathBuf, String) {
    let all = layers.iter().map(PathBuf::as_path).chain([upper, work]);
    let base = common_parent(all);
    let rel = |p: &Path| p.strip_prefix(&base).unwrap_or(p).display().to_string();
    let lower: Vec<String> = layers.iter().rev().map(|l| rel(l)).collect();
    let options = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), rel(upper), rel(work));
    (base, options)
}

/// Mounts overlay at `target` (absolute) with `options` relative to `base`: the kernel resolves
/// the options' paths from the caller's working directory, so this process changes into
/// `base` for the call and back (the container's init and the shim are single-threaded here).
fn mount_overlay_from(base: &Path, target: &Path, options: &str) -> nix::Result<()> {
    // Resolved before the change of directory, which would move a relative target.
    let target = std::path::absolute(target).map_err(|_| nix::errno::Errno::EINVAL)?;
    let back = std::fs::File::open(".").ok();
    nix::unistd::chdir(base)?;
    let mounted = mount(Some("overlay"), &target, Some("overlay"), MsFlags::empty(), Some(options));
    let returned = match &back {
        Some(dir) => nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(dir)),
        None => nix::unistd::chdir("/"),
    };
    mounted.and(returned)
}

fn mount_dev(dev: &Path) -> Result<(), String> {
    mkdir_p(dev)?;
    do_mount(
        Some(Path::new("tmpfs")),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let node = dev.join(name);
        let made = mknod(&node, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor));
        if made.is_err() {
            // Without CAP_MKNOD (user namespaces) the host's node is bound instead.
            std::fs::write(&node, b"").map_err(|e| format!("create {}: {e}", node.display()))?;
            do_mount(Some(&Path::new("/dev").join(name)), &node, None, MsFlags::MS_BIND, None)?;
        } else {
            // mknod honours the umask; the nodes must be world-usable.
            let _ = nix::sys::stat::fchmodat(
                None,
                &node,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            );
        }
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).map_err(|e| format!("symlink /dev/{link}: {e}"))?;
    }
    let pts = dev.join("pts");
    mkdir_p(&pts)?;
    do_mount(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    mkdir_p(&shm)?;
    do_mount(Some(Path::new("shm")), &shm, Some("tmpfs"), NOSUID_NOEXEC_NODEV, Some("mode=1777,size=65536k"))?;
    let mqueue = dev.join("mqueue");
    mkdir_p(&mqueue)?;
    do_mount(Some(Path::new("mqueue")), &mqueue, Some("mqueue"), NOSUID_NOEXEC_NODEV, None)
}

/// sysfs, read-only unless the container is privileged.
fn mount_sys(sys: &Path, privileged: bool) -> Result<(), String> {
    mkdir_p(sys)?;
    let flags = if privileged { NOSUID_NOEXEC_NODEV } else { NOSUID_NOEXEC_NODEV | MsFlags::MS_RDONLY };
    if mount(Some("sysfs"), sys, Some("sysfs"), flags, None::<&str>).is_ok() {
        return Ok(());
    }
    // sysfs refuses a fresh mount when the netns is not ours (host network): bind the host's.
    do_mount(Some(Path::new("/sys")), sys, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    do_mount(None, sys, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags, None)
}

fn mount_volume(root: &Path, m: &MountSpec) -> Result<(), String> {
    let target = secure_join(root, &m.destination)?;
    let source_is_dir = match m.kind {
        MountKind::Bind => std::fs::metadata(&m.source)
            .map_err(|e| format!("mount source {} for {}: {e}", m.source.display(), m.destination.display()))?
            .is_dir(),
        MountKind::Tmpfs { .. } => true,
    };
    if source_is_dir {
        mkdir_p(&target)?;
    } else if !target.exists() {
        if let Some(parent) = target.parent() {
            mkdir_p(parent)?;
        }
        std::fs::write(&target, b"").map_err(|e| format!("create mount point {}: {e}", target.display()))?;
    }
    match &m.kind {
        MountKind::Bind => {
            do_mount(Some(&m.source), &target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            if m.read_only {
                do_mount(None, &target, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None)?;
            }
            Ok(())
        }
        MountKind::Tmpfs { size_bytes } => {
            let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            if m.read_only {
                flags |= MsFlags::MS_RDONLY;
            }
            let data = if *size_bytes > 0 { format!("mode=1777,size={size_bytes}") } else { "mode=1777".into() };
            do_mount(Some(Path::new("tmpfs")), &target, Some("tmpfs"), flags, Some(data.as_str()))
        }
    }
}

/// Makes `root` the process's `/` and detaches the old root entirely.
pub fn pivot_into(root: &Path) -> Result<(), String> {
    nix::unistd::chdir(root).map_err(|e| format!("chdir {}: {e}", root.display()))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then removes it.
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root {}: {e}", root.display()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Applies runc's masked and read-only paths (call after pivot_root).
pub fn protect_kernel_paths() -> Result<(), String> {
    for path in MASKED_PATHS.iter().map(PathBuf::from) {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                do_mount(Some(Path::new("tmpfs")), &path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"))?
            }
            Ok(_) => do_mount(Some(Path::new("/dev/null")), &path, None, MsFlags::MS_BIND, None)?,
            Err(_) => continue,
        }
    }
    for path in READONLY_PATHS.iter().map(PathBuf::from) {
        if !path.exists() {
            continue;
        }
        do_mount(Some(&path), &path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        do_mount(
            None,
            &path,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | NOSUID_NOEXEC_NODEV,
            None,
        )?;
    }
    Ok(())
}

/// Remounts `/` read-only (`readOnlyRootFilesystem`), leaving the mounts beneath it as they are.
pub fn make_root_readonly() -> Result<(), String> {
    do_mount(None, Path::new("/"), None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_name_layers_relative_to_their_common_parent() {
        let layers: Vec<PathBuf> = ["/data/store/layers/aa/fs", "/data/store/layers/bb/fs"].map(PathBuf::from).into();
        let (base, options) =
            overlay_options(&layers, Path::new("/data/containers/c1/upper"), Path::new("/data/containers/c1/work"));
        assert_eq!(base, Path::new("/data"));
        // Top layer first, as overlay's lowerdir lists them.
        assert_eq!(
            options,
            "lowerdir=store/layers/bb/fs:store/layers/aa/fs,upperdir=containers/c1/upper,workdir=containers/c1/work"
        );
        let (base, options) = overlay_options(&layers[..1], Path::new("/u/upper"), Path::new("/u/work"));
        assert_eq!(
            (base.as_path(), options.as_str()),
            (Path::new("/"), "lowerdir=data/store/layers/aa/fs,upperdir=u/upper,workdir=u/work")
        );
        assert_eq!(common_parent([Path::new("/a/b/c")]), Path::new("/a/b"));
        assert_eq!(common_parent([Path::new("/a/b/c"), Path::new("/a/b")]), Path::new("/a"));
    }
}
