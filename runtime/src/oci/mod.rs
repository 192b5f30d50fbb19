//! The OCI runtime backend: each container becomes a bundle (config.json + a root mounted by
//! its shim) run by an external runtime binary (runc; crun and youki share the command line).
//! Sandboxes, logs, exit records and re-adoption are the builtin backend's: the same shim
//! supervises the container, only the clone/init step is the runtime's, and exec is `runc exec`.

pub mod bundle;
pub mod cgroups_path;
pub mod exec;
pub mod launch;
pub mod runc;

use super::container_runtime::{ContainerHandle, ContainerRuntime, RuntimeError, StartError};
use super::exec::{ExecError, ExecOutput, ExecRequest};
use super::launcher::ShimStarter;
use super::run_dir::{remove_tree, RunDir};
use super::shim::{ShimRequest, SHIM_ARG};
use super::spec::ContainerSpec;
use super::state::{self, ContainerState};
use cgroups_path::CgroupPlacement;
use launch::OciLaunch;
use nix::sys::signal::Signal;
use runc::OciCli;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the runtime's state directory under RUN_DIR/oci (so no container may be called so).
const STATE_DIR: &str = "state";

/// Directories searched for the runtime binary after PATH (a daemon's PATH often lacks sbin).
const FALLBACK_DIRS: [&str; 4] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/// Finds an OCI runtime binary: a path as given, else a name in PATH or the usual sbin/bin dirs.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file())
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if name.contains('/') {
        return is_exec(Path::new(name)).then(|| PathBuf::from(name));
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_exec(p))
}

/// Containers run by an external OCI runtime, rooted at a run directory like the builtin one.
pub struct OciRuntime {
    run_dir: RunDir,
    cli: OciCli,
    shims: ShimStarter,
    /// Numbers each exec's files in the bundle apart from concurrent ones (a probe and a hook).
    execs: AtomicU64,
}

impl OciRuntime {
    /// A runtime using `binary`, whose shims are this very executable (`/proc/self/exe __coracle_shim`).
    pub fn new(run_dir: impl Into<PathBuf>, binary: impl Into<PathBuf>) -> OciRuntime {
        OciRuntime::with_shim(run_dir, binary, "/proc/self/exe", vec![SHIM_ARG.into()])
    }

    /// A runtime using `binary`, whose shim is started as `program args…`.
    pub fn with_shim(
        run_dir: impl Into<PathBuf>,
        binary: impl Into<PathBuf>,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
    ) -> OciRuntime {
        let run_dir = RunDir::new(run_dir).reserving(STATE_DIR);
        let cli = OciCli { binary: binary.into(), state_root: run_dir.path().join("oci").join(STATE_DIR) };
        OciRuntime { run_dir, cli, shims: ShimStarter::new(program, args), execs: AtomicU64::new(0) }
    }

    /// The bundle directory of container `id`: RUN_DIR/oci/<id>.
    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.run_dir.path().join("oci").join(id)
    }

    fn write_bundle(&self, spec: &ContainerSpec, bundle: &Path) -> Result<bool, StartError> {
        let placement = cgroups_path::placement(&spec.cgroup_dirs);
        let config = bundle::config(spec, &placement).map_err(StartError::run)?;
        // Each bundle's rootfs is the image mounted on the host, set-id files included: only
        // root may reach it, as only root may reach the image store (the run dir is 0755).
        let bundles = self.run_dir.path().join("oci");
        std::fs::create_dir_all(&bundles)
            .and_then(|()| std::fs::set_permissions(&bundles, std::os::unix::fs::PermissionsExt::from_mode(0o700)))
            .map_err(|e| StartError::run(format!("make {} private: {e}", bundles.display())))?;
        std::fs::create_dir_all(bundle).map_err(|e| StartError::run(format!("create {}: {e}", bundle.display())))?;
        let path = bundle.join("config.json");
        let bytes = serde_json::to_vec_pretty(&config)
            .map_err(|e| StartError::run(format!("encode {}: {e}", path.display())))?;
        state::write_atomic(&path, &bytes).map_err(|e| StartError::run(format!("write {}: {e}", path.display())))?;
        Ok(placement == CgroupPlacement::MoveAfterCreate)
    }
}

impl ContainerRuntime for OciRuntime {
    fn run_dir(&self) -> &RunDir {
        &self.run_dir
    }

    fn start(&self, spec: &ContainerSpec) -> Result<ContainerHandle, StartError> {
        let bundle = self.bundle_dir(&spec.id);
        let dir = self.run_dir.claim(spec, &[&bundle])?;
        let move_into_cgroups = self.write_bundle(spec, &bundle).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&bundle);
        })?;
        self.run_dir.record_spec(&dir, spec)?;
        let oci = OciLaunch {
            binary: self.cli.binary.clone(),
            state_root: self.cli.state_root.clone(),
            bundle,
            move_into_cgroups,
        };
        let request = ShimRequest { run_dir: self.run_dir.path().to_path_buf(), spec: spec.clone(), oci: Some(oci) };
        self.shims.start_container(&request, &dir.join("shim.log"))
    }

    fn signal(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        let Some(record) = state::signal_target(&self.run_dir.container_dir(id)?, id, signal)? else { return Ok(()) };
        match self.cli.kill(id, signal as i32) {
            Ok(()) => Ok(()),
            // It exited between our look and the runtime's.
            Err(_) if !state::is_same_process(record.pid, record.pid_start_time) => Ok(()),
            Err(e) => Err(RuntimeError::Container(format!("signal {signal} to container {id}: {e}"))),
        }
    }

    fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.run_dir.stopped(id)?;
        self.cli.delete(id).map_err(|e| RuntimeError::Container(format!("remove container {id}: {e}")))?;
        let bundle = self.bundle_dir(id);
        launch::unmount_rootfs(&bundle).map_err(|e| RuntimeError::Container(format!("remove container {id}: {e}")))?;
        remove_tree(&bundle)?;
        remove_tree(&dir)
    }

    fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecOutput, ExecError> {
        if !matches!(self.run_dir.state(id), ContainerState::Running { .. }) {
            return Err(ExecError::NotRunning { id: id.to_string() });
        }
        let spec = self.run_dir.recorded_spec(id).map_err(|e| ExecError::Runtime(e.to_string()))?;
        let n = self.execs.fetch_add(1, Ordering::Relaxed);
        exec::run(&self.cli, &self.bundle_dir(id), &spec, request, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_found_by_name_or_path() {
        let sh = find_binary("sh").expect("sh is in PATH or /usr/bin");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(find_binary(&sh.display().to_string()), Some(sh));
        assert_eq!(find_binary("coracle-no-such-runtime"), None);
        assert_eq!(find_binary("/nonexistent/runc"), None);
    }

    #[test]
    fn a_container_may_not_shadow_the_runtime_state_directory() {
        let runtime = OciRuntime::new("/run/coracle-test", "/usr/sbin/runc");
        let err = runtime.run_dir.container_dir("state").unwrap_err();
        assert!(err.to_string().contains("\"state\""), "{err}");
        assert_eq!(runtime.bundle_dir("u_app_0"), PathBuf::from("/run/coracle-test/oci/u_app_0"));
        assert_eq!(runtime.cli.state_root, PathBuf::from("/run/coracle-test/oci/state"));
        assert_eq!(runtime.state("../x"), ContainerState::Unknown);
    }
}
