//! RuntimeDefault resolved, compiled and installed for real: a shell under it has
//! `Seccomp: 2`, runs ordinary commands, and is refused unshare, mount and reboot with EPERM.
//! Every board architecture's filters (and the compat architecture's beside them) are judged
//! on synthetic calls by a BPF interpreter: here for all four, and under qemu-user (cross/test)
//! for the filters each board's build compiles, which qemu-user cannot install.

use super::bpf::{self, Data};
use super::resolve::{Action, Context, Op};
use super::syscalls::Arch;
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
    let resolved = resolve::resolve(&default::profile(), &context(default_caps()), syscalls::NATIVE).unwrap();
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
    let admin = resolve::resolve(&default::profile(), &context(caps), syscalls::NATIVE).unwrap();
    for unlocked in ["mount", "unshare", "setns", "reboot", "perf_event_open"] {
        assert!(!rules_for(&admin, unlocked).is_empty(), "{unlocked}");
    }
    assert!(rules_for(&admin, "clone").iter().any(|r| r.args.is_empty()), "any clone");
    assert!(rules_for(&admin, "clone3").iter().all(|r| r.action == Action::Allow));
}

#[test]
fn the_filters_check_this_architecture_and_fit_the_kernels_limit() {
    let programs = Seccomp::RuntimeDefault.compile(default_caps()).unwrap();
    // Per architecture ERRNO(ENOSYS) for clone3 and the base filter; with a compat
    // architecture, the gate in front.
    let stacks = 1 + syscalls::COMPAT.len();
    let gate = usize::from(stacks > 1);
    assert_eq!(programs.len(), gate + 2 * stacks);
    let own = &programs[programs.len() - 2..];
    for p in own {
        assert_eq!(compile::checked_arch(p), syscalls::NATIVE.audit);
    }
    for p in &programs {
        assert!(p.len() < 4096, "{} instructions", p.len());
    }
    assert!(Seccomp::Unconfined.compile(default_caps()).unwrap().is_empty());
    // A deny-list profile needs no base filter.
    let deny = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#).unwrap();
    assert_eq!(Seccomp::Profile(deny).compile(default_caps()).unwrap().len(), gate + stacks);
    let allow_all = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    assert!(Seccomp::Profile(allow_all).compile(default_caps()).unwrap().is_empty());
}

const EPERM: &str = "errno 1";
/// An architecture no board runs (AUDIT_ARCH_PPC64LE).
const FOREIGN_ARCH: u32 = 0xC000_0015;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const SIGCHLD: u64 = 17;

fn call(programs: &[seccompiler::BpfProgram], arch: &Arch, name: &str, args: [u64; 6]) -> String {
    let (_, nr) = arch.lookup(name).unwrap_or_else(|| panic!("{}: no {name}", arch.scmp));
    bpf::verdict(bpf::run_all(programs, &Data { nr, arch: arch.audit, args }))
}

/// What RuntimeDefault's filters must answer on `arch`, a board's own or its compat one.
fn judge(programs: &[seccompiler::BpfProgram], arch: &Arch) {
    let a = |x: u64| [x, 0, 0, 0, 0, 0];
    let at = arch.scmp;
    assert_eq!(call(programs, arch, "read", a(0)), "allow", "{at}: read");
    assert_eq!(call(programs, arch, "execve", a(0)), "allow", "{at}: execve");
    assert_eq!(call(programs, arch, "keyctl", a(0)), EPERM, "{at}: keyctl");
    assert_eq!(call(programs, arch, "add_key", a(0)), EPERM, "{at}: add_key");
    assert_eq!(call(programs, arch, "perf_event_open", a(0)), EPERM, "{at}: perf_event_open");
    assert_eq!(call(programs, arch, "mount", a(0)), EPERM, "{at}: mount");
    assert_eq!(call(programs, arch, "unshare", a(CLONE_NEWUSER)), EPERM, "{at}: unshare(CLONE_NEWUSER)");
    assert_eq!(call(programs, arch, "clone", a(SIGCHLD)), "allow", "{at}: fork-like clone");
    assert_eq!(call(programs, arch, "clone", a(CLONE_NEWUSER | SIGCHLD)), EPERM, "{at}: clone(CLONE_NEWUSER)");
    assert_eq!(call(programs, arch, "clone3", a(0)), "errno 38", "{at}: clone3 is ENOSYS, for glibc to fall back");
    // personality(2) only with the values Docker lists.
    assert_eq!(call(programs, arch, "personality", a(0)), "allow", "{at}: personality(PER_LINUX)");
    assert_eq!(call(programs, arch, "personality", a(0x0040_0000)), EPERM, "{at}: personality(READ_IMPLIES_EXEC)");
}

/// Docker's arch map: the compat architecture each board's kernel also runs.
fn board_arches() -> [(&'static Arch, &'static str, Vec<&'static Arch>); 4] {
    [
        (&syscalls::X86_64, "amd64", vec![&syscalls::X86]),
        (&syscalls::AARCH64, "arm64", vec![&syscalls::ARM]),
        (&syscalls::ARM, "arm", vec![]),
        (&syscalls::RISCV64, "riscv64", vec![]),
    ]
}

#[test]
fn every_boards_filters_decide_as_dockers_profile() {
    for (native, go_arch, compat) in board_arches() {
        let context = Context { caps: default_caps(), arch: go_arch, kernel: (6, 1) };
        let resolved: Vec<_> = std::iter::once(native)
            .chain(compat.iter().copied())
            .map(|arch| resolve::resolve(&default::profile(), &context, arch).unwrap())
            .collect();
        let programs = compile::compile(&resolved).unwrap();
        judge(&programs, native);
        for arch in &compat {
            judge(&programs, arch);
        }
        let foreign = Data { nr: 0, arch: FOREIGN_ARCH, args: [0; 6] };
        assert_eq!(bpf::verdict(bpf::run_all(&programs, &foreign)), "kill-process", "{}: a foreign arch", native.scmp);
        if native.scmp == "SCMP_ARCH_X86_64" {
            // x32's read(2): EPERM, whatever the profile.
            let x32 = Data { nr: 0x4000_0000, arch: native.audit, args: [0; 6] };
            assert_eq!(bpf::verdict(bpf::run_all(&programs, &x32)), EPERM);
            assert_eq!(call(&programs, &syscalls::X86, "socketcall", [1, 0, 0, 0, 0, 0]), "allow", "i386's socketcall");
        }
    }
}

/// The filters this build installs (the real path: under qemu-user, a board's build with its
/// own retargeting), judged for its own architecture and its compat one.
#[test]
fn the_filters_this_build_installs_decide_as_dockers_profile() {
    let programs = Seccomp::RuntimeDefault.compile(default_caps()).unwrap();
    judge(&programs, syscalls::NATIVE);
    for arch in syscalls::COMPAT {
        judge(&programs, arch);
    }
    let foreign = Data { nr: 0, arch: FOREIGN_ARCH, args: [0; 6] };
    assert_eq!(bpf::verdict(bpf::run_all(&programs, &foreign)), "kill-process");
    // A deny-list profile: only its calls are refused, on every architecture.
    let deny = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#).unwrap();
    let programs = Seccomp::Profile(deny).compile(default_caps()).unwrap();
    for arch in std::iter::once(syscalls::NATIVE).chain(syscalls::COMPAT.iter().copied()) {
        assert_eq!(call(&programs, arch, "mkdirat", [0; 6]), "errno 13", "{}", arch.scmp);
        assert_eq!(call(&programs, arch, "keyctl", [0; 6]), "allow", "{}", arch.scmp);
    }
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

/// probe/i386.s built with binutils' i386 assembler and linker.
#[cfg(target_arch = "x86_64")]
fn i386_probe(dir: &std::path::Path) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/seccomp/probe/i386.s");
    let (object, binary) = (dir.join("i386.o"), dir.join("i386-probe"));
    let status = Command::new("as").arg("--32").arg("-o").arg(&object).arg(&source).status().expect("binutils' as");
    assert!(status.success(), "as --32 {}", source.display());
    let status =
        Command::new("ld").args(["-m", "elf_i386", "-static", "-o"]).arg(&binary).arg(&object).status().expect("ld");
    assert!(status.success(), "ld -m elf_i386");
    binary
}

/// An i386 binary on this x86_64 kernel runs under RuntimeDefault as Docker's profile lets it
/// (x86 is amd64's compat architecture there), refused what a 64-bit one is, not killed.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_32_bit_binary_runs_under_runtime_default() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping a_32_bit_binary_runs_under_runtime_default: installing a filter needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let probe = i386_probe(dir.path());
    let run = |seccomp: &Seccomp| {
        let programs = seccomp.compile(default_caps()).unwrap();
        let mut cmd = Command::new(&probe);
        // SAFETY: between fork and exec the child only makes seccomp(2) calls on programs
        // compiled before the fork.
        unsafe {
            cmd.pre_exec(move || compile::install(&programs).map_err(std::io::Error::other));
        }
        cmd.output().unwrap()
    };
    let out = run(&Seccomp::Unconfined);
    if out.status.code().is_none() && out.stdout.is_empty() {
        eprintln!("skipping a_32_bit_binary_runs_under_runtime_default: this kernel runs no i386 binaries");
        return;
    }
    assert_eq!((out.stdout.as_slice(), out.status.code()), (&b"i386\n"[..], Some(0)), "unconfined: {out:?}");
    let out = run(&Seccomp::RuntimeDefault);
    // Exit 3: keyctl and unshare(CLONE_NEWUSER) both EPERM; write and exit allowed.
    assert_eq!((out.stdout.as_slice(), out.status.code()), (&b"i386\n"[..], Some(3)), "RuntimeDefault: {out:?}");
}

#[test]
fn the_oci_form_carries_the_same_rules() {
    let resolved = Seccomp::RuntimeDefault.resolve(default_caps()).unwrap().unwrap();
    let v = oci::linux_seccomp(&resolved);
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["defaultErrnoRet"], 1);
    let arches: Vec<&str> =
        std::iter::once(syscalls::NATIVE).chain(syscalls::COMPAT.iter().copied()).map(|a| a.scmp).collect();
    assert_eq!(v["architectures"], serde_json::json!(arches));
    let entries = v["syscalls"].as_array().unwrap();
    assert!(entries[0]["names"].as_array().unwrap().contains(&serde_json::json!("read")));
    let clone = entries.iter().find(|e| e["names"] == serde_json::json!(["clone"])).unwrap();
    assert_eq!(
        clone["args"][0],
        serde_json::json!({"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"})
    );
    let clone3 = entries.iter().find(|e| e["names"] == serde_json::json!(["clone3"])).unwrap();
    assert_eq!((clone3["action"].as_str(), clone3["errnoRet"].as_u64()), (Some("SCMP_ACT_ERRNO"), Some(38)));
    // Every call of every architecture, each unconditional one once.
    let names_of = |e: &serde_json::Value| -> Vec<String> {
        e["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
    };
    let mut names: Vec<String> = entries.iter().flat_map(names_of).collect();
    let mut expected: Vec<String> = resolved.iter().flat_map(|r| &r.rules).map(|r| r.syscall.to_string()).collect();
    names.sort();
    names.dedup();
    expected.sort();
    expected.dedup();
    assert_eq!(names, expected);
    let mut plain: Vec<String> = entries.iter().filter(|e| e.get("args").is_none()).flat_map(names_of).collect();
    let listed = plain.len();
    plain.sort();
    plain.dedup();
    assert_eq!(plain.len(), listed);
    // Only the 32-bit tables (the board's own or its compat one) have _llseek; only i386's
    // has socketcall.
    assert_eq!(names.iter().any(|n| n == "_llseek"), !cfg!(target_arch = "riscv64"));
    assert_eq!(names.iter().any(|n| n == "socketcall"), cfg!(target_arch = "x86_64"));
}
