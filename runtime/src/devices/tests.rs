//! The whitelist against the kernel: a process in a cgroup given the default rules opens
//! /dev/null but not a block or char device node it made itself, through cgroup v1's devices
//! controller and through a device program on a cgroup2 directory (on a hybrid host, the
//! controller-less cgroup2 tree still runs device programs).

use super::*;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Our own directory in the hierarchy mounted at `mount` whose /proc/self/cgroup line has
/// `controllers` (`devices`, or "" for cgroup2).
fn own_dir(mount: &str, controllers: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, c, path) = (parts.next()?, parts.next()?, parts.next()?);
        (c == controllers || c.split(',').any(|x| x == controllers && !x.is_empty())).then_some(path)
    })?;
    let dir = PathBuf::from(format!("{mount}{}", path.trim_end_matches('/')));
    dir.is_dir().then_some(dir)
}

/// Runs `script` in a shell that first moves itself into `cgroup`, and returns its output.
fn run_in(cgroup: &Path, script: &str) -> String {
    let procs = std::fs::OpenOptions::new().write(true).open(cgroup.join("cgroup.procs")).unwrap();
    let fd = procs.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    // SAFETY: between fork and exec the child only write(2)s to a descriptor opened before.
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    drop(procs);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What the battery prints: /dev/null opens, nodes of a loop device and of /dev/kmsg made
/// here are refused.
fn battery(nodes: &Path) -> String {
    let blk = nodes.join("blk");
    let chr = nodes.join("kmsg");
    for (node, kind, dev) in
        [(&blk, nix::sys::stat::SFlag::S_IFBLK, (7, 0)), (&chr, nix::sys::stat::SFlag::S_IFCHR, (1, 11))]
    {
        let _ = std::fs::remove_file(node);
        nix::sys::stat::mknod(
            node,
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(dev.0, dev.1),
        )
        .unwrap();
    }
    format!(
        "head -c 0 /dev/null && echo null-ok; head -c 1 {} >/dev/null || echo blk-refused; head -c 0 {} || echo kmsg-refused",
        blk.display(),
        chr.display()
    )
}

fn check(out: &str) {
    assert!(out.contains("null-ok"), "{out}");
    assert!(out.contains("blk-refused") && out.contains("kmsg-refused"), "{out}");
    assert_eq!(out.matches("Operation not permitted").count(), 2, "both refused by the whitelist: {out}");
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn v1_devices_cgroup_allows_only_the_whitelist() {
    if !is_root() {
        eprintln!("skipping v1_devices_cgroup_allows_only_the_whitelist: needs root");
        return;
    }
    let Some(own) = own_dir("/sys/fs/cgroup/devices", "devices") else {
        eprintln!("skipping v1_devices_cgroup_allows_only_the_whitelist: no v1 devices hierarchy");
        return;
    };
    let dir = own.join(format!("coracle-devtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(dir.clone());
    assert_eq!(enforcer(&dir), Some(Enforcer::V1));
    enforce(&DeviceRule::runc_defaults(), &[&dir]).unwrap();
    let list = std::fs::read_to_string(dir.join("devices.list")).unwrap();
    assert!(list.contains("c 1:3 rwm") && list.contains("b *:* m") && !list.contains("a *:*"), "{list}");
    let nodes = tempfile::tempdir().unwrap();
    check(&run_in(&dir, &battery(nodes.path())));
}

#[test]
fn a_cgroup2_device_program_allows_only_the_whitelist() {
    if !is_root() {
        eprintln!("skipping a_cgroup2_device_program_allows_only_the_whitelist: needs root");
        return;
    }
    let own = own_dir("/sys/fs/cgroup/unified", "").or_else(|| own_dir("/sys/fs/cgroup", ""));
    let Some(own) = own.filter(|d| d.join("cgroup.controllers").exists()) else {
        eprintln!("skipping a_cgroup2_device_program_allows_only_the_whitelist: no cgroup2 tree");
        return;
    };
    let dir = own.join(format!("coracle-devtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Cleanup(dir.clone());
    assert_eq!(enforcer(&dir), Some(Enforcer::V2));
    enforce(&DeviceRule::runc_defaults(), &[&dir]).unwrap();
    // Attaching again replaces the program instead of stacking a second one.
    enforce(&DeviceRule::runc_defaults(), &[&dir]).unwrap();
    let nodes = tempfile::tempdir().unwrap();
    check(&run_in(&dir, &battery(nodes.path())));
    // The everything-rule needs no program; a fresh cgroup with it opens the loop node.
    let open = own.join(format!("coracle-devtest-open-{}", std::process::id()));
    std::fs::create_dir_all(&open).unwrap();
    let _cleanup_open = Cleanup(open.clone());
    enforce(&DeviceRule::everything(), &[&open]).unwrap();
    let out = run_in(&open, &battery(nodes.path()));
    assert_eq!(out.matches("Operation not permitted").count(), 0, "{out}");
}

#[test]
fn rules_no_cgroup_can_enforce_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = enforce(&DeviceRule::runc_defaults(), &[dir.path()]).unwrap_err();
    assert!(err.starts_with("cannot enforce the device whitelist"), "{err}");
    enforce(&DeviceRule::everything(), &[dir.path()]).unwrap();
    let none: [&Path; 0] = [];
    assert!(enforce(&DeviceRule::runc_defaults(), &none).is_err());
}
