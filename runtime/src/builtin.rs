//! The builtin runtime: starts each container under a coracled shim and reads its state back
//! from the run directory, so a restarted daemon re-adopts what is still running; execs into a
//! running container by entering it from a child of the daemon (see `exec::enter`).

use super::container_runtime::{ContainerHandle, ContainerRuntime, RuntimeError, StartError};
use super::exec::{enter, ExecError, ExecOutput, ExecRequest};
use super::launcher::ShimStarter;
use super::run_dir::{remove_tree, RunDir};
use super::shim::{ShimRequest, SHIM_ARG};
use super::spec::ContainerSpec;
use super::state::{self, ContainerState};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::path::PathBuf;

/// The builtin (nix/libc) runtime rooted at a run directory (`DATA/run`).
pub struct BuiltinRuntime {
    run_dir: RunDir,
    shims: ShimStarter,
}

impl BuiltinRuntime {
    /// A runtime whose shims are this very executable (`/proc/self/exe __coracle_shim`).
    pub fn new(run_dir: impl Into<PathBuf>) -> BuiltinRuntime {
        BuiltinRuntime::with_shim(run_dir, "/proc/self/exe", vec![SHIM_ARG.into()])
    }

    /// A runtime whose shim is started as `program args…` (its fd 0 carries the request).
    pub fn with_shim(run_dir: impl Into<PathBuf>, program: impl Into<PathBuf>, args: Vec<OsString>) -> BuiltinRuntime {
        BuiltinRuntime { run_dir: RunDir::new(run_dir), shims: ShimStarter::new(program, args) }
    }
}

impl ContainerRuntime for BuiltinRuntime {
    fn run_dir(&self) -> &RunDir {
        &self.run_dir
    }

    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, StartError> {
        let dir = self.run_dir.claim(spec, &[])?;
        self.run_dir.record_spec(&dir, spec)?;
        let request = ShimRequest { run_dir: self.run_dir.path().to_path_buf(), spec: spec.clone(), oci: None };
        self.shims.start_container(&request, &dir.join("shim.log"))
    }

    fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let Some(record) = state::signal_target(&self.run_dir.container_dir(id)?, id, signal)? else { return Ok(()) };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(record.pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => {
                Err(RuntimeError::Container(format!("signal {signal} to container {id} (pid {}): {e}", record.pid)))
            }
        }
    }

    fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        remove_tree(&self.run_dir.stopped(id)?)
    }

    fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecOutput, ExecError> {
        let ContainerState::Running { pid, .. } = self.run_dir.state(id) else {
            return Err(ExecError::NotRunning { id: id.to_string() });
        };
        let spec = self.run_dir.recorded_spec(id).map_err(|e| ExecError::Runtime(e.to_string()))?;
        enter::run(pid, &spec, request)
    }
}
