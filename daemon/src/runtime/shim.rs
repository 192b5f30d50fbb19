//! The per-container shim: coracled re-executed with a private argv marker (like runc init plus
//! conmon). It reads its request from fd 0, detaches from the daemon, clones the container's
//! init into new pid/mount/uts namespaces, places it in its cgroups, reports success or the
//! start error back, then relays the container's output into the CRI log and records its exit.

use super::cri_log::{CriLog, LineSplitter, Stream};
use super::init::{container_init, FailedStage, InitPipes};
use super::spec::ContainerSpec;
use super::state::{self, ExitRecord, StateRecord};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::SystemTime;

/// argv[1] that turns a coracled process into a container shim.
pub const SHIM_ARG: &str = "__coracle_shim";

/// Stack for the cloned init until it execs; it only makes syscalls and short strings.
const INIT_STACK: usize = 256 * 1024;

/// What the daemon sends the shim.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShimRequest {
    /// The runtime's run directory (records go to `<run_dir>/containers/<id>/`).
    pub run_dir: PathBuf,
    /// The container to run.
    pub spec: ContainerSpec,
}

/// What the shim answers once the container has exec'd or failed to.
#[derive(Debug, Serialize, Deserialize)]
pub enum ShimReport {
    /// The container's init exec'd.
    Started { pid: i32, pid_start_time: u64, shim_pid: i32 },
    /// The container never ran; `reason` is `StartError` or `RunContainerError`.
    Failed { reason: String, message: String },
}

/// Runs the shim when this process was started as one; returns its exit code.
pub fn dispatch() -> Option<i32> {
    if std::env::args_os().nth(1).is_some_and(|a| a == SHIM_ARG) {
        return Some(run());
    }
    None
}

/// The shim's main: fd 0 is a socket to the daemon carrying the request, then the report.
pub fn run() -> i32 {
    let channel = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            eprintln!("coracle shim: fd 0 is not usable: {e}");
            return 2;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = (&channel).read_to_end(&mut bytes) {
        eprintln!("coracle shim: read request: {e}");
        return 2;
    }
    let request: ShimRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            send(
                &channel,
                &ShimReport::Failed { reason: "RunContainerError".into(), message: format!("shim request: {e}") },
            );
            return 2;
        }
    };
    // Fork once more so the daemon reaps its direct child at once and the shim, reparented to
    // init in a session of its own, outlives a daemon restart or SIGKILL.
    // SAFETY: fork in the single-threaded shim (the test harness's waiting main thread holds no locks).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            send(
                &channel,
                &ShimReport::Failed { reason: "RunContainerError".into(), message: format!("fork shim: {e}") },
            );
            return 2;
        }
    }
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    supervise(&request, channel)
}

fn send(channel: &UnixStream, report: &ShimReport) {
    if let Ok(bytes) = serde_json::to_vec(report) {
        let _ = (&*channel).write_all(&bytes);
    }
}

fn now() -> String {
    coracle_config::time::rfc3339(SystemTime::now())
}

fn write_exit(dir: &std::path::Path, record: &ExitRecord) {
    if let Ok(bytes) = serde_json::to_vec(record) {
        if let Err(e) = state::write_atomic(&dir.join(state::EXIT_FILE), &bytes) {
            eprintln!("coracle shim: write exit record in {}: {e}", dir.display());
        }
    }
}

fn fail(dir: &std::path::Path, channel: &UnixStream, reason: &str, message: String) -> i32 {
    write_exit(
        dir,
        &ExitRecord {
            exit_code: 128,
            signal: None,
            finished_at: now(),
            started_at: String::new(),
            reason: Some(reason.into()),
            message: Some(message.clone()),
        },
    );
    send(channel, &ShimReport::Failed { reason: reason.into(), message });
    1
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("create pipe: {e}"))
}

fn supervise(request: &ShimRequest, channel: UnixStream) -> i32 {
    let spec = &request.spec;
    let dir = state::container_dir(&request.run_dir, &spec.id);
    let run_error = |message: String| fail(&dir, &channel, "RunContainerError", message);
    let mut log = match CriLog::open(&spec.log_path, spec.log_max_size, spec.log_max_files) {
        Ok(log) => log,
        Err(e) => return run_error(format!("open log {}: {e}", spec.log_path.display())),
    };
    let pipes = (|| Ok::<_, String>((pipe()?, pipe()?, pipe()?, pipe()?)))();
    let ((out_r, out_w), (err_r, err_w), (sync_r, sync_w), (fail_r, fail_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return run_error(e),
    };
    let root = dir.join("rootfs");
    let mut init_pipes =
        Some(InitPipes { sync_read: sync_r, error_write: fail_w, stdout_write: out_w, stderr_write: err_w });
    let mut stack = vec![0u8; INIT_STACK];
    let init = Box::new(|| match init_pipes.take() {
        Some(pipes) => container_init(spec, &root, pipes),
        None => 1,
    });
    let flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS;
    // SAFETY: clone(2) with a dedicated stack; the child runs `init` on it and ends in execve or _exit.
    let cloned = unsafe { nix::sched::clone(init, &mut stack, flags, Some(Signal::SIGCHLD as i32)) };
    // Our copies of the child's pipe ends must close, or the error pipe never reaches EOF.
    drop(init_pipes.take());
    drop(stack);
    let pid = match cloned {
        Ok(pid) => pid,
        Err(e) => return run_error(format!("clone container init: {e}")),
    };
    for cgroup in &spec.cgroup_dirs {
        let procs = cgroup.join("cgroup.procs");
        if let Err(e) = std::fs::write(&procs, pid.as_raw().to_string()) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = reap(pid);
            return run_error(format!("join cgroup {}: {e}", procs.display()));
        }
    }
    let pid_start_time = state::process_start_time(pid.as_raw()).unwrap_or(0);
    if let Err(e) = std::fs::File::from(sync_w).write_all(b"1") {
        let _ = reap(pid);
        return run_error(format!("release container init: {e}"));
    }
    let mut failure = Vec::new();
    let _ = std::fs::File::from(fail_r).read_to_end(&mut failure);
    if !failure.is_empty() {
        let _ = reap(pid);
        let (stage, message) = FailedStage::decode(&failure);
        let reason = if stage == FailedStage::Exec { "StartError" } else { "RunContainerError" };
        return fail(&dir, &channel, reason, message);
    }
    let started_at = now();
    let shim_pid = std::process::id() as i32;
    let record = StateRecord {
        shim_pid,
        shim_start_time: state::process_start_time(shim_pid).unwrap_or(0),
        pid: pid.as_raw(),
        pid_start_time,
        started_at: started_at.clone(),
    };
    let written = serde_json::to_vec(&record)
        .map_err(|e| e.to_string())
        .and_then(|b| state::write_atomic(&dir.join(state::STATE_FILE), &b).map_err(|e| e.to_string()));
    if let Err(e) = written {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = reap(pid);
        return run_error(format!("write {}: {e}", dir.join(state::STATE_FILE).display()));
    }
    send(&channel, &ShimReport::Started { pid: pid.as_raw(), pid_start_time, shim_pid });
    drop(channel);
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
    }
    relay_output(&mut log, out_r, err_r);
    let (exit_code, signal) = match reap(pid) {
        Ok(WaitStatus::Exited(_, code)) => (code, None),
        Ok(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
        other => {
            eprintln!("coracle shim: wait for {pid}: {other:?}");
            (255, None)
        }
    };
    write_exit(&dir, &ExitRecord { exit_code, signal, finished_at: now(), started_at, reason: None, message: None });
    0
}

fn reap(pid: Pid) -> nix::Result<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Copies the container's stdout and stderr into the CRI log until both are closed (the
/// kernel closes them when the pid namespace's init exits and takes every process with it).
fn relay_output(log: &mut CriLog, stdout: OwnedFd, stderr: OwnedFd) {
    let mut streams = [
        (Some(stdout), Stream::Stdout, LineSplitter::default()),
        (Some(stderr), Stream::Stderr, LineSplitter::default()),
    ];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut ready = [false; 2];
        {
            let mut fds: Vec<(usize, PollFd)> = streams
                .iter()
                .enumerate()
                .filter_map(|(i, (fd, _, _))| fd.as_ref().map(|fd| (i, PollFd::new(fd.as_fd(), PollFlags::POLLIN))))
                .collect();
            if fds.is_empty() {
                return;
            }
            let mut polled: Vec<PollFd> = fds.iter().map(|(_, p)| *p).collect();
            match poll(&mut polled, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    eprintln!("coracle shim: poll container output: {e}");
                    return;
                }
            }
            for ((i, _), p) in fds.iter_mut().zip(polled.iter()) {
                ready[*i] = p.revents().is_some_and(|r| !r.is_empty());
            }
        }
        for (i, (fd, stream, splitter)) in streams.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            let Some(open) = fd.as_ref() else { continue };
            let n = match nix::unistd::read(open.as_raw_fd(), &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                Err(_) => 0,
            };
            let at = SystemTime::now();
            let mut emit = |line: &[u8], partial: bool| {
                // A full disk must not block the container: the record is dropped, output keeps flowing.
                let _ = log.write_record(at, *stream, partial, line);
            };
            if n == 0 {
                splitter.finish(&mut emit);
                *fd = None;
            } else {
                splitter.push(&buf[..n], &mut emit);
            }
        }
    }
}
