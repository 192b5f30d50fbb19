//! The one interface the node uses to run containers, so the builtin runtime and an OCI runtime
//! (runc/crun) can sit behind it, picked once at start.

use super::exec::{ExecError, ExecOutput, ExecRequest};
use super::run_dir::RunDir;
use super::sandbox;
use super::spec::{ContainerSpec, Sandbox, SandboxSpec};
use super::state::ContainerState;
use nix::sys::signal::Signal;

/// A container that has exec'd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHandle {
    /// The container id.
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat): proves the pid is still ours.
    pub pid_start_time: u64,
    /// The supervising shim.
    pub shim_pid: i32,
}

/// Why a container did not start, as Kubernetes shows it in `state.waiting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// `StartError` (the exec failed) or `RunContainerError` (setup failed).
    pub reason: String,
    /// What failed, e.g. `exec: "/bin/nope": no such file or directory`.
    pub message: String,
}

impl StartError {
    /// A setup failure (`RunContainerError`).
    pub fn run(message: impl Into<String>) -> StartError {
        StartError { reason: "RunContainerError".into(), message: message.into() }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for StartError {}

/// Any other runtime failure.
#[derive(Debug)]
pub enum RuntimeError {
    /// A pod sandbox could not be created or removed.
    Sandbox(sandbox::SandboxError),
    /// A container could not be signalled, read back or removed; the message names it and
    /// what was being done.
    Container(String),
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeError::Sandbox(e) => e.fmt(f),
            RuntimeError::Container(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::Sandbox(e) => e.source(),
            RuntimeError::Container(_) => None,
        }
    }
}

impl From<sandbox::SandboxError> for RuntimeError {
    fn from(e: sandbox::SandboxError) -> Self {
        RuntimeError::Sandbox(e)
    }
}

/// Sandboxes and containers, level-triggered: every call may be repeated and survives a daemon restart.
/// Sandboxes, states and listings are the run directory's, the same for every backend; a
/// backend supplies how a container starts, is signalled, is exec'd into and is removed.
pub trait ContainerRuntime: Send + Sync {
    /// The run directory holding the sandboxes and the containers' records.
    fn run_dir(&self) -> &RunDir;
    /// Starts a container and returns once it has exec'd (or failed to).
    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, StartError>;
    /// Sends `signal` to the container's init; a container that already exited is fine.
    fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError>;
    /// Forgets an exited container (its run directory; the log stays).
    fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Runs a command inside running container `id`, confined exactly as the container's own
    /// process is: its namespaces, cgroups, OOM score, user and groups, capabilities and
    /// no_new_privs, working directory, and environment (the request's on top). Returns when
    /// the command has ended (or was killed at the request's timeout).
    fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecOutput, ExecError>;

    /// Creates (or returns the existing) pod sandbox.
    fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Sandbox, RuntimeError> {
        Ok(sandbox::create(self.run_dir().path(), spec)?)
    }
    /// The sandbox created earlier under `id`, if it still exists.
    fn sandbox(&self, id: &str) -> Option<Sandbox> {
        sandbox::load(self.run_dir().path(), id)
    }
    /// Removes a sandbox's namespaces and files; a missing sandbox is fine.
    fn remove_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(sandbox::remove(self.run_dir().path(), id)?)
    }
    /// The container's state, re-read from the run directory and /proc.
    fn state(&self, id: &str) -> ContainerState {
        self.run_dir().state(id)
    }
    /// Ids of every container the run directory knows, running or not.
    fn list(&self) -> Vec<String> {
        self.run_dir().list()
    }
}
