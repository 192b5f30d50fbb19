//! The builtin runtime: starts each container under a coracled shim and reads its state back
//! from the run directory, so a restarted daemon re-adopts what is still running.

use super::container_runtime::{ContainerHandle, ContainerRuntime, RuntimeError, StartError};
use super::sandbox;
use super::shim::{self, ShimRequest, SHIM_ARG};
use super::spec::{ContainerSpec, Sandbox, SandboxSpec};
use super::state::{self, ContainerState};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::path::PathBuf;

/// The builtin (nix/libc) runtime rooted at a run directory (`DATA/run`).
pub struct BuiltinRuntime {
    run_dir: PathBuf,
    shim_program: PathBuf,
    shim_args: Vec<OsString>,
}

impl BuiltinRuntime {
    /// A runtime whose shims are this very executable (`/proc/self/exe __coracle_shim`).
    pub fn new(run_dir: impl Into<PathBuf>) -> BuiltinRuntime {
        BuiltinRuntime::with_shim(run_dir, "/proc/self/exe", vec![SHIM_ARG.into()])
    }

    /// A runtime whose shim is started as `program args…` (its fd 0 carries the request).
    pub fn with_shim(run_dir: impl Into<PathBuf>, program: impl Into<PathBuf>, args: Vec<OsString>) -> BuiltinRuntime {
        BuiltinRuntime { run_dir: run_dir.into(), shim_program: program.into(), shim_args: args }
    }

    /// The run directory.
    pub fn run_dir(&self) -> &std::path::Path {
        &self.run_dir
    }

    fn container_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(RuntimeError(format!("container id {id:?}: must be a non-empty file name")));
        }
        Ok(state::container_dir(&self.run_dir, id))
    }
}

impl ContainerRuntime for BuiltinRuntime {
    fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Sandbox, RuntimeError> {
        Ok(sandbox::create(&self.run_dir, spec)?)
    }

    fn sandbox(&self, id: &str) -> Option<Sandbox> {
        sandbox::load(&self.run_dir, id)
    }

    fn remove_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(sandbox::remove(&self.run_dir, id)?)
    }

    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, StartError> {
        let dir = self.container_dir(&spec.id).map_err(|e| StartError::run(e.0))?;
        if spec.args.is_empty() {
            return Err(StartError::run(format!("container {}: args: no command given", spec.id)));
        }
        if dir.exists() {
            return Err(StartError::run(format!(
                "container {}: {} already exists (remove the old container first)",
                spec.id,
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| StartError::run(format!("create {}: {e}", dir.display())))?;
        let request = ShimRequest { run_dir: self.run_dir.clone(), spec: spec.clone(), oci: None };
        shim::start_container(&self.shim_program, &self.shim_args, &request, &dir.join("shim.log"))
    }

    fn state(&self, id: &str) -> ContainerState {
        match self.container_dir(id) {
            Ok(dir) => state::read_state(&dir),
            Err(_) => ContainerState::Unknown,
        }
    }

    fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let Some(record) = state::signal_target(&self.container_dir(id)?, id, signal)? else { return Ok(()) };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(record.pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(RuntimeError(format!("signal {signal} to container {id} (pid {}): {e}", record.pid))),
        }
    }

    fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.container_dir(id)?;
        if let ContainerState::Running { pid, .. } = state::read_state(&dir) {
            return Err(RuntimeError(format!("remove container {id}: still running as pid {pid}")));
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError(format!("remove {}: {e}", dir.display()))),
        }
    }

    fn list(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.run_dir.join("containers")) else { return Vec::new() };
        let mut ids: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
        ids.sort();
        ids
    }
}
