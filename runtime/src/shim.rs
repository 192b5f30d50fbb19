//! The per-container shim (like runc init plus conmon): forked by the shim launcher (see
//! `launcher`), or coracled re-executed with a private argv marker when no launcher can be had.
//! It takes its request, detaches from the daemon, clones the container's
//! init into new pid/mount/uts namespaces (the init joins its cgroups itself), reports success
//! or the start error back, then relays the container's output into the CRI log and records its exit.
//! For the OCI backend the same shim has an external runtime (runc) create and start the
//! container instead of cloning it, and supervises it the same way.

use super::container_runtime::{ContainerHandle, StartError};
use super::cri_log::{CriLog, LineSplitter, Stream};
use super::init::{container_init, FailedStage, InitPipes};
use super::launcher;
use super::oci::launch::{self as oci_launch, OciLaunch};
use super::spec::ContainerSpec;
use super::state::{self, ExitRecord, StateRecord};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    /// Start the container through an external OCI runtime instead of cloning it ourselves.
    #[serde(default)]
    pub oci: Option<OciLaunch>,
}

/// What the shim answers once the container has exec'd or failed to.
#[derive(Debug, Serialize, Deserialize)]
pub enum ShimReport {
    /// The container's init exec'd.
    Started { pid: i32, pid_start_time: u64, shim_pid: i32 },
    /// The container never ran; `reason` is `StartError` or `RunContainerError`.
    Failed { reason: String, message: String },
}

/// The container's handle from a shim's report, or why it did not start.
pub fn handle_from(id: &str, report: ShimReport) -> Result<ContainerHandle, StartError> {
    match report {
        ShimReport::Started { pid, pid_start_time, shim_pid } => {
            Ok(ContainerHandle { id: id.to_string(), pid, pid_start_time, shim_pid })
        }
        ShimReport::Failed { reason, message } => Err(StartError { reason, message }),
    }
}

/// Execs a shim as `program args…`, hands it `request` over a socket on its fd 0 and waits for
/// its report; the shim's own stdout and stderr go to `shim_log`.
pub fn spawn(
    program: &Path,
    args: &[OsString],
    request: &ShimRequest,
    shim_log: &Path,
) -> Result<ShimReport, StartError> {
    let id = &request.spec.id;
    let log =
        std::fs::File::create(shim_log).map_err(|e| StartError::run(format!("create {}: {e}", shim_log.display())))?;
    let log_err = log.try_clone().map_err(|e| StartError::run(format!("dup {}: {e}", shim_log.display())))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| StartError::run(format!("socketpair for shim: {e}")))?;
    let mut command = Command::new(program);
    // Shims outlive the daemon and must never speak to systemd in its name.
    for name in coracle_watchdog::DAEMON_ONLY_ENV {
        command.env_remove(name);
    }
    command.args(args).stdin(Stdio::from(OwnedFd::from(theirs))).stdout(log).stderr(log_err);
    let spawned = command.spawn();
    // The command holds our copy of the shim's end of the socket: close it now, or reading
    // the shim's report below never sees end-of-file.
    drop(command);
    let mut child = spawned.map_err(|e| StartError::run(format!("start shim {}: {e}", program.display())))?;
    let sent = serde_json::to_vec(request)
        .map_err(|e| e.to_string())
        .and_then(|b| (&ours).write_all(&b).map_err(|e| e.to_string()))
        .and_then(|()| ours.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string()))
        .map_err(|e| StartError::run(format!("talk to shim for {id}: {e}")));
    let report = sent.and_then(|()| read_report(&ours, id, shim_log));
    // The direct child exits as soon as it has forked the long-lived shim.
    let _ = child.wait();
    report
}

/// Reads a shim's report from the daemon's end of its channel, to end of file.
pub fn read_report(channel: &UnixStream, id: &str, shim_log: &Path) -> Result<ShimReport, StartError> {
    let mut answer = Vec::new();
    let mut reader = channel;
    reader.read_to_end(&mut answer).map_err(|e| StartError::run(format!("talk to shim for {id}: {e}")))?;
    serde_json::from_slice(&answer)
        .map_err(|_| StartError::run(format!("shim for {id} exited without reporting (see {})", shim_log.display())))
}

/// Runs the shim when this process was started as one; returns its exit code.
pub fn dispatch() -> Option<i32> {
    if std::env::args_os().nth(1).is_some_and(|a| a == SHIM_ARG) {
        return Some(run());
    }
    None
}

/// The shim's main: fd 0 is a socket to the daemon carrying the request, then the report. With
/// [`launcher::LAUNCHER_ENV`] set, this process becomes the launcher that forks shims instead.
pub fn run() -> i32 {
    if std::env::var_os(launcher::LAUNCHER_ENV).is_some() {
        return launcher::serve();
    }
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
    serve_request(&bytes, channel)
}

/// Runs the container `request` describes and supervises it to its end, reporting its start on
/// `channel`; returns the shim's exit code.
pub fn serve_request(request: &[u8], channel: UnixStream) -> i32 {
    match serde_json::from_slice::<ShimRequest>(request) {
        Ok(request) => supervise(&request, channel),
        Err(e) => {
            send(
                &channel,
                &ShimReport::Failed { reason: "RunContainerError".into(), message: format!("shim request: {e}") },
            );
            2
        }
    }
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
    let (out_r, out_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return run_error(e),
    };
    let (err_r, err_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return run_error(e),
    };
    let launched = match &request.oci {
        Some(oci) => oci_launch::create_and_start(spec, oci, out_w, err_w),
        None => clone_init(spec, &dir, out_w, err_w),
    };
    let (pid, pid_start_time) = match launched {
        Ok(pid) => (pid, state::process_start_time(pid.as_raw()).unwrap_or(0)),
        Err(e) => return fail(&dir, &channel, &e.reason, e.message),
    };
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
        if let Some(oci) = &request.oci {
            let _ = oci_launch::unmount_rootfs(&oci.bundle);
        }
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
    if let Some(oci) = &request.oci {
        // The root is only needed while the container runs; nothing of it outlives the exit.
        if let Err(e) = oci_launch::unmount_rootfs(&oci.bundle) {
            eprintln!("coracle shim: {e}");
        }
    }
    write_exit(&dir, &ExitRecord { exit_code, signal, finished_at: now(), started_at, reason: None, message: None });
    0
}

/// Clones the container's init into new namespaces and waits until it has exec'd (it joins its
/// cgroups itself, first thing); returns its pid.
fn clone_init(spec: &ContainerSpec, dir: &Path, out_w: OwnedFd, err_w: OwnedFd) -> Result<Pid, StartError> {
    let (fail_r, fail_w) = pipe().map_err(StartError::run)?;
    let root = dir.join("rootfs");
    let mut init_pipes = Some(InitPipes { error_write: fail_w, stdout_write: out_w, stderr_write: err_w });
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
    let pid = cloned.map_err(|e| StartError::run(format!("clone container init: {e}")))?;
    let mut failure = Vec::new();
    let _ = std::fs::File::from(fail_r).read_to_end(&mut failure);
    if !failure.is_empty() {
        let _ = reap(pid);
        let (stage, message) = FailedStage::decode(&failure);
        let reason = if stage == FailedStage::Exec { "StartError" } else { "RunContainerError" };
        return Err(StartError { reason: reason.into(), message });
    }
    Ok(pid)
}

/// Waits for `pid`, retrying on EINTR.
pub fn reap(pid: Pid) -> nix::Result<WaitStatus> {
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
