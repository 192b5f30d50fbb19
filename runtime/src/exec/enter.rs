//! The builtin runtime's exec: a child of the daemon enters a running container the way the
//! container's own init did (see `init`) and execs the command there. Between fork and exec
//! it joins the container's cgroups, takes its OOM score, setns(2)s into the init's ipc, uts,
//! net, pid and mount namespaces (mount last: it also makes the container's root the child's
//! root), takes the container's groups, user, capabilities and no_new_privs, and changes to
//! its working directory. Joining a pid namespace only applies to the caller's children, so
//! the child forks once more and the grandchild execs the command: it sees the container's
//! processes and /proc, its limits apply, and a pod kill reaches it. The command is looked up
//! in the container's PATH inside the container's root (execvp after the mount namespace).

use super::capture::{self, Collected};
use super::{merged_env, start_error, ExecError, ExecIo, ExecOutput, ExecRequest};
use crate::capabilities::{self, CapSet};
use crate::cgroups;
use crate::placement;
use crate::seccomp::compile as seccomp;
use crate::spec::ContainerSpec;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Namespaces joined, in order; `mnt` last because it swaps the root.
/// The cgroup namespace first (its root is the container's cgroup, joined just before), the
/// mount namespace last (it changes the root the others' paths were opened from).
const NAMESPACES: [&str; 6] = ["cgroup", "ipc", "uts", "net", "pid", "mnt"];

/// The steps between fork and exec, in order; a failing one reports its number.
const STEPS: [&str; 7] = [
    "join the container's cgroups",
    "set the container's OOM score",
    "enter the container's namespaces",
    "take on the container's user and capabilities",
    "change to the container's working directory",
    "enter the container's pid namespace",
    "install the container's seccomp filter",
];

/// Everything the child needs, prepared before the fork: after it only async-signal-safe
/// calls on these values are allowed (the daemon has many threads).
struct Prepared {
    cgroups: cgroups::Entry,
    oom_score_adj: Option<Vec<u8>>,
    namespaces: Vec<File>,
    caps: CapSet,
    last_cap: u32,
    groups: Vec<libc::gid_t>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    no_new_privileges: bool,
    /// The container's seccomp filters (none when it runs unconfined).
    seccomp: Vec<seccompiler::BpfProgram>,
    cwd: CString,
    /// Where a failing step writes its number (close-on-exec: silent when the exec works).
    report: OwnedFd,
}

impl Prepared {
    fn prepare(pid: i32, spec: &ContainerSpec, report: OwnedFd) -> Result<Prepared, ExecError> {
        let mut namespaces = Vec::with_capacity(NAMESPACES.len());
        for ns in NAMESPACES {
            let path = format!("/proc/{pid}/ns/{ns}");
            match File::open(&path) {
                Ok(f) => namespaces.push(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ExecError::NotRunning { id: spec.id.clone() })
                }
                Err(e) => return Err(ExecError::Runtime(format!("exec in container {}: open {path}: {e}", spec.id))),
            }
        }
        let runtime = |e: String| ExecError::Runtime(format!("exec in container {}: {e}", spec.id));
        let cgroups = cgroups::Entry::open(&spec.cgroup_dirs).map_err(|e| runtime(e.to_string()))?;
        let oom_score_adj = match spec.oom_score_adj {
            Some(score) => Some(placement::achievable_oom_score_adj(score).map_err(runtime)?.to_string().into_bytes()),
            None => None,
        };
        let last_cap = capabilities::last_cap();
        let caps = capabilities::effective_set(&spec.capabilities, last_cap).map_err(runtime)?;
        let seccomp = crate::init::seccomp_filters(spec).map_err(runtime)?;
        let cwd = CString::new(spec.cwd.as_os_str().as_bytes())
            .map_err(|_| runtime(format!("cwd {:?} contains a NUL byte", spec.cwd)))?;
        Ok(Prepared {
            cgroups,
            oom_score_adj,
            namespaces,
            caps,
            last_cap,
            groups: spec.user.additional_gids.clone(),
            uid: spec.user.uid,
            gid: spec.user.gid,
            no_new_privileges: spec.no_new_privileges,
            seccomp,
            cwd,
            report,
        })
    }

    /// Runs in the forked child: every step in order, or the number of the one that failed.
    fn enter(&self) -> Result<(), (u8, io::Error)> {
        self.cgroups.join_current().map_err(|e| (0, e))?;
        if let Some(score) = &self.oom_score_adj {
            write_file(c"/proc/self/oom_score_adj", score).map_err(|e| (1, e))?;
        }
        for ns in &self.namespaces {
            // SAFETY: setns(2) on a namespace descriptor opened before the fork.
            check(unsafe { libc::setns(ns.as_raw_fd(), 0) }).map_err(|e| (2, e))?;
        }
        // As the container's init does: without no_new_privs the filter needs CAP_SYS_ADMIN,
        // so it goes on before the identity change; with it, after.
        if !self.no_new_privileges {
            seccomp::install_in_child(&self.seccomp).map_err(|e| (6, e))?;
        }
        self.take_identity().map_err(|e| (3, e))?;
        if self.no_new_privileges {
            seccomp::install_in_child(&self.seccomp).map_err(|e| (6, e))?;
        }
        // SAFETY: chdir(2) on a NUL-terminated path prepared before the fork.
        check(unsafe { libc::chdir(self.cwd.as_ptr()) }).map_err(|e| (4, e))?;
        // After the identity change, which would clear the parent-death signal.
        // SAFETY: this runs in the freshly forked, single-threaded child.
        unsafe { enter_pid_namespace() }.map_err(|e| (5, e))
    }

    /// The container's identity, in the init's order: bounding set, groups, ids, capabilities.
    fn take_identity(&self) -> io::Result<()> {
        capabilities::limit_bounding_set_in_child(self.caps, self.last_cap)?;
        // Keep the permitted set across setuid so capset can still grant the container's set.
        // SAFETY: prctl(PR_SET_KEEPCAPS) only reads its integer argument.
        check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
        // SAFETY: setgroups(2) reads `len` gids from a vector prepared before the fork.
        check(unsafe { libc::setgroups(self.groups.len(), self.groups.as_ptr()) })?;
        // SAFETY: setgid(2)/setuid(2) take plain integers.
        check(unsafe { libc::setgid(self.gid) })?;
        // SAFETY: as above.
        check(unsafe { libc::setuid(self.uid) })?;
        capabilities::set_process_caps_in_child(self.caps)?;
        // SAFETY: as above.
        check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) })?;
        if self.no_new_privileges {
            // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) only reads its integer argument.
            check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
        }
        Ok(())
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// open(2) + write(2) of a control file, without allocating.
fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: open(2) of a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: write(2) reads `bytes` (live for the call) into the descriptor just opened.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    let result = if written == bytes.len() as isize { Ok(()) } else { Err(io::Error::last_os_error()) };
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    result
}

/// Makes the joined pid namespace the command's own: setns(2) on a pid namespace applies
/// only to children, so the caller forks; the child goes on to exec inside the namespace
/// while the parent stays behind as a waiter that exits with the child's status. Runs
/// between fork and exec (async-signal-safe calls only).
///
/// # Safety
/// Must be called in a freshly forked, single-threaded child.
unsafe fn enter_pid_namespace() -> io::Result<()> {
    // SAFETY: the caller runs in a forked single-threaded child; fork, prctl, waitpid,
    // syscall(close_range) and _exit are async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // The command dies with its waiter, which a timeout kills.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            }
            command => {
                // The waiter keeps stdio (the command's pipes) and nothing else, so the
                // spawner's exec-error pipe closes when the command execs, not when it ends.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                let mut status = 0;
                while libc::waitpid(command, &mut status, 0) == -1 {
                    if *libc::__errno_location() != libc::EINTR {
                        libc::_exit(127);
                    }
                }
                let code =
                    if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
                libc::_exit(code)
            }
        }
    }
}

/// Runs `request` in the container whose init is host pid `pid` and whose spec is `spec`.
pub(crate) fn run(pid: i32, spec: &ContainerSpec, request: &ExecRequest) -> Result<ExecOutput, ExecError> {
    let Some(program) = request.command.first() else {
        return Err(ExecError::Start("exec: no command given".into()));
    };
    let ExecIo::Capture { limit } = request.io;
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ExecError::Runtime(format!("exec in container {}: pipe: {e}", spec.id)))?;
    let prepared = Prepared::prepare(pid, spec, report_write)?;
    let env = merged_env(&spec.env, &request.env);
    let mut cmd = Command::new(program);
    cmd.args(&request.command[1..])
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let report_fd: RawFd = prepared.report.as_raw_fd();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls (write, open, setns, prctl, set*id, setgroups, capset, chdir, fork, waitpid,
    // close_range, _exit) on values prepared before the fork; it allocates nothing. std then
    // execvp()s the command with the container's environment, inside the container's root.
    unsafe {
        cmd.pre_exec(move || {
            prepared.enter().map_err(|(step, e)| {
                libc::write(report_fd, [step].as_ptr().cast(), 1);
                e
            })
        });
    }
    let spawned = cmd.spawn();
    // The command (and the closure's copy of every prepared descriptor) goes now: the
    // report pipe must have no writer left here.
    drop(cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let mut step = [0u8; 1];
            let failed_step = (nix::unistd::read(report_read.as_raw_fd(), &mut step) == Ok(1)).then_some(step[0]);
            return Err(match failed_step.and_then(|s| STEPS.get(usize::from(s))) {
                Some(what) => ExecError::Runtime(format!("exec in container {}: {what}: {e}", spec.id)),
                None => start_error(program, &e),
            });
        }
    };
    let mut kill = |child: &mut std::process::Child, time_up: bool| {
        if time_up {
            // The command dies with its waiter (parent-death signal).
            let _ = child.kill();
        }
    };
    let Collected { output, timed_out } = capture::collect(&mut child, limit, request.timeout, &mut kill)
        .map_err(|e| ExecError::Runtime(format!("exec in container {}: collecting output: {e}", spec.id)))?;
    match (timed_out, request.timeout) {
        (true, Some(timeout)) => Err(ExecError::TimedOut { timeout, output }),
        _ => Ok(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::UserSpec;
    use std::time::Duration;

    /// A container spec that is the test process's own view: its namespaces, root, cwd `/`.
    fn own(id: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::example();
        spec.id = id.into();
        spec.env = vec!["PATH=/bin:/usr/bin".into()];
        spec.cwd = "/".into();
        spec.user = UserSpec::default();
        spec.capabilities = Default::default();
        spec.oom_score_adj = None;
        spec.cgroup_dirs = vec![];
        spec
    }

    fn request(command: &[&str], timeout: Duration) -> ExecRequest {
        ExecRequest::captured(command.iter().map(|s| s.to_string()).collect(), Some(timeout))
    }

    fn skip_unless_root(test: &str) -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("skipping {test}: needs root (setns)");
        }
        !root
    }

    #[test]
    fn exec_into_own_namespaces_reports_exit_status() {
        if skip_unless_root("exec_into_own_namespaces_reports_exit_status") {
            return;
        }
        let me = std::process::id() as i32;
        let spec = own("me");
        let ok = Duration::from_secs(5);
        assert_eq!(run(me, &spec, &request(&["true"], ok)).unwrap().exit_code, 0);
        assert_eq!(run(me, &spec, &request(&["false"], ok)).unwrap().exit_code, 1);
        let slow = run(me, &spec, &request(&["sleep", "5"], Duration::from_millis(200)));
        assert!(matches!(slow, Err(ExecError::TimedOut { .. })), "{slow:?}");
        let code = run(me, &spec, &request(&["sh", "-c", "echo out; echo err >&2; exit 7"], ok)).unwrap();
        assert_eq!((code.exit_code, &code.stdout[..], &code.stderr[..]), (7, &b"out\n"[..], &b"err\n"[..]));
        let missing = run(me, &spec, &request(&["no-such-program-here"], ok)).unwrap_err();
        assert_eq!(
            missing,
            ExecError::Start("exec: \"no-such-program-here\": executable file not found in $PATH".into())
        );
        let mut elsewhere = spec.clone();
        elsewhere.cwd = "/no/such/dir".into();
        let err = run(me, &elsewhere, &request(&["true"], ok)).unwrap_err();
        assert!(err.to_string().contains("change to the container's working directory"), "{err}");
    }

    #[test]
    fn exec_takes_the_containers_user_environment_and_capabilities() {
        if skip_unless_root("exec_takes_the_containers_user_environment_and_capabilities") {
            return;
        }
        let me = std::process::id() as i32;
        let mut spec = own("who");
        spec.user = UserSpec { uid: 65534, gid: 65534, additional_gids: vec![4242] };
        spec.env.push("GREETING=hi".into());
        spec.cwd = "/tmp".into();
        let mut req = request(
            &["sh", "-c", "id -u; id -g; id -G; echo $GREETING $EXTRA; pwd; grep CapEff /proc/self/status"],
            Duration::from_secs(5),
        );
        req.env = vec!["EXTRA=there".into()];
        let out = run(me, &spec, &req).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.exit_code, 0, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..5], ["65534", "65534", "65534 4242", "hi there", "/tmp"], "{text}");
        assert_eq!(lines[5], "CapEff:\t0000000000000000", "non-root gets no effective caps: {text}");
    }

    #[test]
    fn exec_runs_inside_the_targets_pid_namespace() {
        if skip_unless_root("exec_runs_inside_the_targets_pid_namespace") {
            return;
        }
        // A process in new pid and mount namespaces with its own /proc stands in for a
        // container: inside it, the command's own pid must be a small number under /proc.
        let mut holder = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount-proc", "sleep", "30"])
            .spawn()
            .expect("running unshare");
        let unshare_pid = holder.id();
        let pid = (0..200)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                let children = std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"));
                children.ok()?.split_whitespace().next()?.parse::<i32>().ok()
            })
            .expect("unshare's child");
        let script = ["sh", "-c", "test $$ -lt 100 && test -d /proc/$$"];
        let inside = run(pid, &own("pidns"), &request(&script, Duration::from_secs(5)));
        let _ = holder.kill();
        let _ = holder.wait();
        assert_eq!(inside.map(|o| o.exit_code), Ok(0));
    }

    #[test]
    fn a_vanished_container_is_not_running() {
        let err = run(i32::MAX, &own("gone"), &request(&["true"], Duration::from_secs(1))).unwrap_err();
        assert_eq!(err, ExecError::NotRunning { id: "gone".into() });
    }
}
