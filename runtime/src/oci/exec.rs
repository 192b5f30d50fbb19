//! The OCI backend's exec: `runc exec`, which enters the container with its config.json's
//! process settings (user and groups, capabilities, no_new_privs, OOM score, environment,
//! working directory) and joins its namespaces and cgroups. Where the node's cgroup
//! directories share no single `cgroupsPath` (`CgroupPlacement::MoveAfterCreate`), runc joins
//! the cgroup it made for the container instead, so the exec'd process is moved into the
//! node's directories as soon as runc names its pid.

use super::super::cgroups;
use super::super::exec::capture::{self, Collected};
use super::super::exec::{ExecError, ExecIo, ExecOutput, ExecRequest};
use super::super::spec::ContainerSpec;
use super::cgroups_path::{self, CgroupPlacement};
use super::runc::{self, OciCli};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// One `runc exec`'s files in the container's bundle: the pid runc writes, and its own log.
struct ExecFiles {
    pid: PathBuf,
    log: PathBuf,
}

impl ExecFiles {
    fn new(bundle: &Path, n: u64) -> ExecFiles {
        ExecFiles { pid: bundle.join(format!("exec-{n}.pid")), log: bundle.join(format!("exec-{n}.log")) }
    }

    /// The exec'd process's host pid, once runc has started it.
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid).ok()?.trim().parse().ok().filter(|p| *p > 0)
    }
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs `request` in container `spec.id` through `runc exec`; `n` makes its files unique.
pub fn run(
    cli: &OciCli,
    bundle: &Path,
    spec: &ContainerSpec,
    request: &ExecRequest,
    n: u64,
) -> Result<ExecOutput, ExecError> {
    if request.command.is_empty() {
        return Err(ExecError::Start("exec: no command given".into()));
    }
    let ExecIo::Capture { limit } = request.io;
    let files = ExecFiles::new(bundle, n);
    let pid_file = files.pid.display().to_string();
    let mut args: Vec<&str> = vec!["exec", "--pid-file", &pid_file];
    for env in &request.env {
        args.extend(["--env", env.as_str()]);
    }
    args.push(&spec.id);
    args.extend(request.command.iter().map(String::as_str));
    let mut command = cli.command(Some(&files.log), &args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| ExecError::Runtime(format!("run {} exec {}: {e}", cli.binary.display(), spec.id)))?;
    let mut move_into = match cgroups_path::placement(&spec.cgroup_dirs) {
        CgroupPlacement::MoveAfterCreate => Some(&spec.cgroup_dirs),
        _ => None,
    };
    let mut supervise = |child: &mut Child, time_up: bool| {
        if let Some(dirs) = move_into {
            if let Some(pid) = files.pid() {
                move_into = None;
                if let Err(e) = cgroups::move_process(dirs, pid) {
                    log::warn!("runtime: exec in container {}: {e}", spec.id);
                }
            }
        }
        if time_up {
            // runc forwards no SIGKILL: the command itself is killed, then runc if it is still there.
            if let Some(pid) = files.pid() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            } else {
                let _ = child.kill();
            }
        }
    };
    let collected = capture::collect(&mut child, limit, request.timeout, &mut supervise);
    let Collected { output, timed_out } =
        collected.map_err(|e| ExecError::Runtime(format!("exec in container {}: collecting output: {e}", spec.id)))?;
    if files.pid().is_none() && !timed_out {
        // The command never started: runc's own error says why.
        let text = std::fs::read_to_string(&files.log).unwrap_or_default();
        let text = if text.trim().is_empty() { String::from_utf8_lossy(&output.stderr).into_owned() } else { text };
        let failure = runc::start_error(&runc::last_error(&text));
        return Err(match failure.reason.as_str() {
            "StartError" => ExecError::Start(failure.message),
            _ => ExecError::Runtime(format!("exec in container {}: {}", spec.id, failure.message)),
        });
    }
    match (timed_out, request.timeout) {
        (true, Some(timeout)) => Err(ExecError::TimedOut { timeout, output }),
        _ => Ok(output),
    }
}
