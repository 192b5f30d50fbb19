//! The container runtimes: pod sandboxes own the network and IPC namespaces their containers
//! share; each container runs under its own shim in new pid, mount and uts namespaces on an
//! overlay root, cloned by the builtin runtime or created by an external OCI runtime (runc).
//! See DESIGN.md's runtime section.

pub mod builtin;
pub mod capabilities;
pub mod cgroupfs;
pub mod cgroups;
pub mod container_runtime;
pub mod cri_log;
pub mod devices;
pub mod exec;
pub mod image;
pub mod init;
pub mod launcher;
pub mod mounts;
pub mod oci;
pub mod placement;
pub mod run_dir;
pub mod sandbox;
pub mod seccomp;
pub mod secure_join;
pub mod shim;
pub mod spec;
pub mod state;
pub mod users;

#[cfg(test)]
mod backend_tests;

pub use builtin::BuiltinRuntime;
pub use container_runtime::{ContainerHandle, ContainerRuntime, RuntimeError, StartError};
pub use exec::{ExecError, ExecIo, ExecOutput, ExecRequest};
pub use oci::OciRuntime;
pub use spec::*;
pub use state::ContainerState;

use coracle_config::settings::{DaemonSettings, RuntimeKind};
use std::path::PathBuf;
use std::sync::Arc;

/// The runtime the daemon settings choose (`runtime.kind`), rooted at their `run_dir`.
pub fn from_settings(settings: &DaemonSettings) -> Arc<dyn ContainerRuntime> {
    match settings.runtime.kind {
        RuntimeKind::Builtin => Arc::new(BuiltinRuntime::new(&settings.run_dir)),
        RuntimeKind::Oci => {
            let name = &settings.runtime.oci_binary;
            let binary = oci::find_binary(name).unwrap_or_else(|| {
                log::error!("runtime.oci_binary {name:?}: not found in PATH; every container start will fail");
                PathBuf::from(name)
            });
            log::info!("runtime: OCI via {}", binary.display());
            Arc::new(OciRuntime::new(&settings.run_dir, binary))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_pick_the_backend_and_its_run_dir() {
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("containers/u_app_0")).unwrap();
        let mut settings = DaemonSettings { run_dir: run.path().to_path_buf(), ..DaemonSettings::default() };
        for kind in [RuntimeKind::Builtin, RuntimeKind::Oci] {
            settings.runtime.kind = kind;
            let runtime = from_settings(&settings);
            assert_eq!(runtime.list(), vec!["u_app_0".to_string()], "{kind:?}");
            assert_eq!(runtime.state("u_app_0"), ContainerState::Unknown, "{kind:?}");
        }
    }
}
