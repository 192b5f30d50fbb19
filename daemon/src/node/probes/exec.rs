//! The exec probe: runs a command inside a running container's namespaces.
//!
//! The runtime has no exec of its own, so the child joins the container's cgroups, then the
//! container init's ipc, uts, net, pid and mount namespaces with setns(2) between fork and
//! exec (mount last: it also makes the container's root the child's root). Joining a pid
//! namespace only applies to the caller's children, so the child forks once more and the
//! grandchild execs the command: it sees the container's processes and /proc, limits
//! apply, and a pod kill reaches it.

use super::Outcome;
use crate::runtime::UserSpec;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Namespaces joined, in order; `mnt` last because it swaps the root.
const NAMESPACES: [&str; 5] = ["ipc", "uts", "net", "pid", "mnt"];

/// Where and as whom an exec runs.
pub struct ExecTarget<'a> {
    /// Host pid of the container's init.
    pub pid: i32,
    /// The container's PATH, for a command given without a slash.
    pub path_env: &'a str,
    /// The container's environment.
    pub env: &'a [String],
    /// The container's user.
    pub user: &'a UserSpec,
    /// cgroup.procs files the command joins.
    pub cgroup_procs: Vec<PathBuf>,
}

/// Makes the joined pid namespace the command's own: setns(2) on a pid namespace applies
/// only to children, so the caller forks; the child goes on to exec inside the namespace
/// while the parent stays behind as a waiter that exits with the child's status. Runs
/// between fork and exec (async-signal-safe calls only).
///
/// # Safety
/// Must be called in a freshly forked, single-threaded child.
unsafe fn enter_pid_namespace() -> std::io::Result<()> {
    // SAFETY: the caller runs in a forked single-threaded child; fork, prctl, waitpid,
    // syscall(close_range) and _exit are async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => Err(std::io::Error::last_os_error()),
            0 => {
                // The command dies with its waiter, which a probe timeout kills.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
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

/// Resolves `program` against the container's PATH, looking through /proc/PID/root.
fn resolve_program(pid: i32, program: &str, path_env: &str) -> Option<String> {
    if program.contains('/') {
        return Some(program.to_string());
    }
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    path_env.split(':').filter(|d| d.starts_with('/')).find_map(|dir| {
        let inside = Path::new(dir).join(program);
        let host = root.join(inside.strip_prefix("/").ok()?);
        host.is_file().then(|| inside.display().to_string())
    })
}

/// Runs `command` in the container; success is exit status 0 within `timeout`.
pub fn run(command: &[String], target: &ExecTarget, timeout: Duration) -> Outcome {
    let Some(program) = command.first() else { return Outcome::Failure("exec probe: command is empty".into()) };
    let Some(resolved) = resolve_program(target.pid, program, target.path_env) else {
        return Outcome::Failure(format!("exec {program:?}: executable file not found in $PATH"));
    };
    let mut files = Vec::new();
    for ns in NAMESPACES {
        let path = format!("/proc/{}/ns/{ns}", target.pid);
        match File::open(&path) {
            Ok(f) => files.push(f),
            Err(e) => return Outcome::Failure(format!("exec probe: open {path}: {e}")),
        }
    }
    let fds: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
    // Opened before the fork: the child joins the cgroups itself (writing "0" moves the
    // writer), so the command is inside them from its first instruction.
    let mut procs_files = Vec::new();
    for procs in &target.cgroup_procs {
        match std::fs::OpenOptions::new().write(true).open(procs) {
            Ok(f) => procs_files.push(f),
            Err(e) => return Outcome::Failure(format!("exec probe: open {}: {e}", procs.display())),
        }
    }
    let procs_fds: Vec<RawFd> = procs_files.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new(&resolved);
    cmd.args(&command[1..])
        .env_clear()
        .envs(target.env.iter().filter_map(|e| e.split_once('=')))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (uid, gid) = (target.user.uid, target.user.gid);
    let groups: Vec<libc::gid_t> = target.user.additional_gids.clone();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls (write, setns, fork, waitpid, prctl, close_range, chdir, set*id, _exit) on
    // values prepared before the fork; it allocates nothing. The identity changes come
    // after setns, which needs the privileges they drop.
    unsafe {
        cmd.pre_exec(move || {
            let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
            for fd in &procs_fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for fd in &fds {
                check(libc::setns(*fd, 0))?;
            }
            check(libc::chdir(c"/".as_ptr()))?;
            check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            check(libc::setgid(gid))?;
            check(libc::setuid(uid))?;
            // After the identity change, which would clear the parent-death signal.
            enter_pid_namespace()
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failure(format!("exec {resolved:?} in container: {e}")),
    };
    drop(files);
    drop(procs_files);
    // A preStop hook's budget is what is left of a grace period, which may be read from an
    // object: bounded, as `Instant` addition panics on overflow.
    let deadline = Instant::now() + timeout.min(coracle_config::time::MAX_SPAN);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().map(|o| o.stdout).unwrap_or_default();
                return if status.success() {
                    Outcome::Success
                } else {
                    let text = String::from_utf8_lossy(&out);
                    let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| format!("{status}"));
                    Outcome::Failure(format!("command {command:?} exited with {code}: {}", text.trim()))
                };
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Failure(format!("command {command:?} timed out after {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Outcome::Failure(format!("waiting for {command:?}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_through_the_containers_root() {
        let me = std::process::id() as i32;
        // Our own root is the host's: /bin/sh exists on any Debian.
        assert_eq!(resolve_program(me, "sh", "/nope:/bin").as_deref(), Some("/bin/sh"));
        assert_eq!(resolve_program(me, "/x/y", "/bin").as_deref(), Some("/x/y"));
        assert_eq!(resolve_program(me, "no-such-program-here", "/bin"), None);
    }

    #[test]
    fn exec_into_own_namespaces_reports_exit_status() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping exec_into_own_namespaces_reports_exit_status: needs root (setns)");
            return;
        }
        let me = std::process::id() as i32;
        let user = UserSpec::default();
        let target = ExecTarget { pid: me, path_env: "/bin:/usr/bin", env: &[], user: &user, cgroup_procs: vec![] };
        let cmd = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(run(&cmd(&["true"]), &target, Duration::from_secs(5)), Outcome::Success);
        assert!(matches!(run(&cmd(&["false"]), &target, Duration::from_secs(5)), Outcome::Failure(_)));
        let slow = run(&cmd(&["sleep", "5"]), &target, Duration::from_millis(200));
        assert!(matches!(slow, Outcome::Failure(m) if m.contains("timed out")));
        let code = run(&cmd(&["sh", "-c", "exit 7"]), &target, Duration::from_secs(5));
        assert!(matches!(&code, Outcome::Failure(m) if m.contains("exited with 7")), "{code:?}");
    }

    #[test]
    fn exec_runs_inside_the_targets_pid_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping exec_runs_inside_the_targets_pid_namespace: needs root (namespaces)");
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
        let user = UserSpec::default();
        let target = ExecTarget { pid, path_env: "/bin:/usr/bin", env: &[], user: &user, cgroup_procs: vec![] };
        let script = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let inside = run(&script("test $$ -lt 100 && test -d /proc/$$"), &target, Duration::from_secs(5));
        let _ = holder.kill();
        let _ = holder.wait();
        assert_eq!(inside, Outcome::Success);
    }
}
