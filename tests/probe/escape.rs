//! The escape battery's moves that busybox has no applet for, one per argument, each printed
//! as `MOVE: ok` or `MOVE: ERRNO`. Built by tests/e2e/escape.rs with bare rustc as a static
//! binary (it runs inside busybox pods), so it uses only std and the C library's wrappers.
//!
//!   escape keyctl | perf | userns-mount | setns | reboot | ptrace PID
//!          mount proc|tmpfs|cgroup2 | open PATH | write PATH VALUE | mkdir PATH | cgroup-mkdir

use std::ffi::CString;
use std::io::Write;
use std::os::raw::{c_char, c_int, c_long, c_ulong, c_void};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn unshare(flags: c_int) -> c_int;
    fn setns(fd: c_int, nstype: c_int) -> c_int;
    fn reboot(cmd: c_int) -> c_int;
    fn ptrace(request: c_int, pid: c_int, addr: *mut c_void, data: *mut c_void) -> c_long;
    fn mount(source: *const c_char, target: *const c_char, fstype: *const c_char, flags: c_ulong, data: *const c_void) -> c_int;
}

#[cfg(target_arch = "x86_64")]
const SYS_KEYCTL: c_long = 250;
#[cfg(target_arch = "x86_64")]
const SYS_PERF_EVENT_OPEN: c_long = 298;
#[cfg(target_arch = "aarch64")]
const SYS_KEYCTL: c_long = 219;
#[cfg(target_arch = "aarch64")]
const SYS_PERF_EVENT_OPEN: c_long = 241;

const CLONE_NEWNS: c_int = 0x0002_0000;
const CLONE_NEWUSER: c_int = 0x1000_0000;
const KEYCTL_GET_KEYRING_ID: c_long = 0;
const KEY_SPEC_SESSION_KEYRING: c_long = -3;
const LINUX_REBOOT_CMD_CAD_OFF: c_int = 0;
const PTRACE_ATTACH: c_int = 16;

fn errno_name(e: &std::io::Error) -> String {
    let name = match e.raw_os_error().unwrap_or(0) {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        6 => "ENXIO",
        13 => "EACCES",
        19 => "ENODEV",
        22 => "EINVAL",
        30 => "EROFS",
        38 => "ENOSYS",
        n => return format!("errno {n}"),
    };
    name.to_string()
}

/// A raw call's result: errno is read at once, before anything else can change it.
fn checked(rc: i64) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn report(what: &str, result: std::io::Result<()>) {
    let text = match result {
        Ok(()) => "ok".to_string(),
        Err(e) => errno_name(&e),
    };
    println!("{what}: {text}");
    let _ = std::io::stdout().flush();
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn mount_fs(fstype: &str) -> std::io::Result<()> {
    let target = cstr("/mnt");
    let _ = std::fs::create_dir_all("/mnt");
    let (source, kind) = (cstr("none"), cstr(fstype));
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call and no data.
    checked(i64::from(unsafe { mount(source.as_ptr(), target.as_ptr(), kind.as_ptr(), 0, std::ptr::null()) }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        // SAFETY (all below): raw syscalls with integer arguments or pointers to live locals.
        "keyctl" => report("keyctl", checked(unsafe { syscall(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) })),
        "perf" => {
            // perf_event_attr: type PERF_TYPE_SOFTWARE (1), size 128, config CPU_CLOCK (0),
            // exclude_kernel and exclude_hv (bits 5 and 6 of the flags word at offset 40).
            let mut attr = [0u8; 128];
            attr[0..4].copy_from_slice(&1u32.to_ne_bytes());
            attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
            attr[40..48].copy_from_slice(&((1u64 << 5) | (1u64 << 6)).to_ne_bytes());
            report("perf", checked(unsafe { syscall(SYS_PERF_EVENT_OPEN, attr.as_ptr(), 0, -1, -1, 0) }))
        }
        "userns-mount" => {
            let unshared = checked(i64::from(unsafe { unshare(CLONE_NEWUSER | CLONE_NEWNS) }));
            let ok = unshared.is_ok();
            report("userns-unshare", unshared);
            if ok {
                report("userns-mount", mount_fs("tmpfs"));
            }
        }
        "setns" => {
            let ns = std::fs::File::open("/proc/self/ns/mnt").expect("open /proc/self/ns/mnt");
            use std::os::fd::AsRawFd;
            report("setns", checked(i64::from(unsafe { setns(ns.as_raw_fd(), 0) })))
        }
        "reboot" => report("reboot", checked(i64::from(unsafe { reboot(LINUX_REBOOT_CMD_CAD_OFF) }))),
        "ptrace" => {
            let pid: c_int = arg(1).parse().expect("ptrace PID");
            report("ptrace", checked(unsafe { ptrace(PTRACE_ATTACH, pid, std::ptr::null_mut(), std::ptr::null_mut()) }))
        }
        "mount" => report(&format!("mount-{}", arg(1)), mount_fs(&arg(1))),
        "open" => {
            report(&format!("open {}", arg(1)), std::fs::File::open(arg(1)).map(drop))
        }
        "write" => {
            let written =
                std::fs::OpenOptions::new().write(true).open(arg(1)).and_then(|mut f| f.write_all(arg(2).as_bytes()));
            report(&format!("write {}", arg(1)), written)
        }
        "cgroup-mkdir" => {
            // A new cgroup in every cgroup filesystem mounted in here (mountinfo's fifth field
            // is the mount point, the field after " - " the type).
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let points: Vec<&str> = mountinfo
                .lines()
                .filter(|l| l.split_once(" - ").is_some_and(|(_, r)| r.starts_with("cgroup ") || r.starts_with("cgroup2 ")))
                .filter_map(|l| l.split(' ').nth(4))
                .collect();
            if points.is_empty() {
                println!("cgroup-mkdir: no cgroup filesystem mounted");
            }
            for point in points {
                let made = std::fs::create_dir(format!("{point}/escape"));
                if made.is_ok() {
                    // A privileged pod may: leave nothing behind in the host's tree.
                    let _ = std::fs::remove_dir(format!("{point}/escape"));
                }
                report(&format!("cgroup-mkdir {point}"), made);
            }
        }
        "mkdir" => report(&format!("mkdir {}", arg(1)), std::fs::create_dir(arg(1))),
        other => {
            eprintln!("escape: unknown move {other:?}");
            std::process::exit(2);
        }
    }
}
