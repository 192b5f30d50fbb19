//! RuntimeDefault resolved, compiled and installed for real: a shell under it has
//! `Seccomp: 2`, runs ordinary commands, and is refused unshare, mount and reboot with EPERM.

use super::resolve::{Action, Context, Op};
use super::*;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Docker's default capabilities, as the container's init would have them.
fn default_caps() -> Vec<String> {
    crate::capabilities::DEFAULT.iter().map(|c| format!("CAP_{c}")).collect()
}

fn context(caps: Vec<String>) -> Context {
    Context { caps, arch: syscalls::GO_ARCH, kernel: (6, 1) }
}

fn rules_for<'a>(resolved: &'a resolve::Resolved, name: &str) -> Vec<&'a resolve::Rule> {
    resolved.rules.iter().filter(|r| r.syscall == name).collect()
}

#[test]
fn runtime_default_follows_dockers_default_profile() {
    let resolved = resolve::resolve(&default::profile(), &context(default_caps())).unwrap();
    assert_eq!(resolved.default_action, Action::Errno(1));
    for allowed in ["read", "openat", "execve", "mknodat", "chroot", "ptrace", "setuid", "capset", "seccomp"] {
        let rules = rules_for(&resolved, allowed);
        assert!(rules.iter().any(|r| r.action == Action::Allow && r.args.is_empty()), "{allowed}: {rules:?}");
    }
    for refused in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "perf_event_open",
        "bpf",
        "reboot",
        "init_module",
        "kexec_load",
        "clock_settime",
        "open_by_handle_at",
    ] {
        assert!(rules_for(&resolved, refused).is_empty(), "{refused} must fall to the default");
    }
    let clone = rules_for(&resolved, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].args[0].op, Op::MaskedEq { mask: 0x7E02_0000 });
    assert_eq!(rules_for(&resolved, "clone3")[0].action, Action::Errno(38));
    let socket = rules_for(&resolved, "socket");
    assert!(socket.iter().all(|r| r.args.len() == 1));
    assert!(!socket.iter().any(|r| r.args[0].op == Op::Eq && r.args[0].value == 40), "no AF_VSOCK");
    // CAP_SYS_ADMIN and CAP_SYS_BOOT unlock what they do in Docker.
    let mut caps = default_caps();
    caps.extend(["CAP_SYS_ADMIN".to_string(), "CAP_SYS_BOOT".to_string()]);
    let admin = resolve::resolve(&default::profile(), &context(caps)).unwrap();
    for unlocked in ["mount", "unshare", "setns", "reboot", "perf_event_open"] {
        assert!(!rules_for(&admin, unlocked).is_empty(), "{unlocked}");
    }
    assert!(rules_for(&admin, "clone").iter().any(|r| r.args.is_empty()), "any clone");
    assert!(rules_for(&admin, "clone3").iter().all(|r| r.action == Action::Allow));
}

#[test]
fn the_filters_check_this_architecture_and_fit_the_kernels_limit() {
    let programs = Seccomp::RuntimeDefault.compile(default_caps()).unwrap();
    assert_eq!(programs.len(), 2, "ERRNO(ENOSYS) for clone3, then the base filter");
    for p in &programs {
        assert_eq!(compile::checked_arch(p), compile::NATIVE_AUDIT_ARCH);
        assert!(p.len() < 4096, "{} instructions", p.len());
    }
    assert!(Seccomp::Unconfined.compile(default_caps()).unwrap().is_empty());
    // A deny-list profile needs no base filter.
    let deny = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#).unwrap();
    assert_eq!(Seccomp::Profile(deny).compile(default_caps()).unwrap().len(), 1);
}

/// Runs `script` under `seccomp`'s filters for the default capabilities; stdout + stderr.
fn run_under(seccomp: &Seccomp, script: &str) -> String {
    let programs = seccomp.compile(default_caps()).unwrap();
    let mut cmd = Command::new("/bin/busybox");
    cmd.args(["sh", "-c", script]);
    // SAFETY: between fork and exec the child only makes seccomp(2) calls on programs
    // compiled before the fork; nothing is allocated on success.
    unsafe {
        cmd.pre_exec(move || compile::install(&programs).map_err(std::io::Error::other));
    }
    let out = cmd.output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_process_under_runtime_default_is_refused_what_docker_refuses() {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/bin/busybox").exists() {
        eprintln!("skipping a_process_under_runtime_default_is_refused_what_docker_refuses: needs root and busybox");
        return;
    }
    // Root, so the refusals below are seccomp's and not missing privileges.
    let script = "grep Seccomp: /proc/self/status; echo ok | cat; \
                  busybox unshare -m true 2>&1 || echo unshare-refused; \
                  mkdir -p /tmp/coracle-seccomp-test && busybox mount -t tmpfs none /tmp/coracle-seccomp-test 2>&1 || echo mount-refused; \
                  busybox sh -c 'exit 3'; echo child-$?";
    let out = run_under(&Seccomp::RuntimeDefault, script);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("ok\n"), "{out}");
    assert!(out.contains("unshare-refused") && out.contains("mount-refused"), "{out}");
    // EPERM, as busybox words it for each.
    assert!(out.contains("unshare(0x20000): Operation not permitted"), "{out}");
    assert!(out.contains("mount: permission denied"), "{out}");
    assert!(out.contains("child-3"), "fork and wait work: {out}");
    let _ = std::fs::remove_dir("/tmp/coracle-seccomp-test");
    let out = run_under(&Seccomp::Unconfined, "grep Seccomp: /proc/self/status");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    let deny_mkdir = Profile::parse(
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let out = run_under(&Seccomp::Profile(deny_mkdir), "mkdir /tmp/coracle-seccomp-x 2>&1; echo done");
    assert!(out.contains("Permission denied") && out.contains("done"), "errnoRet 13 is EACCES: {out}");
}

#[test]
fn the_oci_form_carries_the_same_rules() {
    let resolved = resolve::resolve(&default::profile(), &context(default_caps())).unwrap();
    let v = oci::linux_seccomp(&resolved);
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["defaultErrnoRet"], 1);
    assert_eq!(v["architectures"], serde_json::json!([syscalls::SCMP_ARCH]));
    let entries = v["syscalls"].as_array().unwrap();
    assert!(entries[0]["names"].as_array().unwrap().contains(&serde_json::json!("read")));
    let clone = entries.iter().find(|e| e["names"] == serde_json::json!(["clone"])).unwrap();
    assert_eq!(
        clone["args"][0],
        serde_json::json!({"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"})
    );
    let clone3 = entries.iter().find(|e| e["names"] == serde_json::json!(["clone3"])).unwrap();
    assert_eq!((clone3["action"].as_str(), clone3["errnoRet"].as_u64()), (Some("SCMP_ACT_ERRNO"), Some(38)));
    let names: usize = entries.iter().map(|e| e["names"].as_array().unwrap().len()).sum();
    assert_eq!(names, resolved.rules.len(), "every rule once");
}
