//! The runtime's own spawn time: `BuiltinRuntime::start` (shim fork, clone, namespaces,
//! overlay root, pivot_root, exec) until it hands back the container's handle.

use crate::procfs;
use coracled::cgroups::{Cgroups, Limits};
use coracled::runtime::shim::SHIM_ARG;
use coracled::runtime::{
    BuiltinRuntime, CapabilityChanges, Confinement, ContainerRuntime, ContainerSpec, ContainerState, Rootfs, Sandbox,
    SandboxNetwork, SandboxSpec, UserSpec,
};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cgroup sub-path (beneath our own) the measured containers are placed in.
const CGROUP_SUBPATH: &str = "coracle-bench";
const SANDBOX_ID: &str = "bench-spawn";

/// A runtime on a temp run dir with one pod sandbox; removes both when dropped.
pub struct Rig {
    tmp: tempfile::TempDir,
    runtime: BuiltinRuntime,
    sandbox: Sandbox,
    cgroups: Cgroups,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.remove_sandbox(SANDBOX_ID) {
            eprintln!("coracle-bench: removing sandbox {SANDBOX_ID}: {e}");
        }
        if let Some(base) = self.cgroups.open("") {
            if let Err(e) = base.remove() {
                eprintln!("coracle-bench: removing cgroup {CGROUP_SUBPATH}: {e}");
            }
        }
    }
}

impl Rig {
    /// The builtin runtime with `coracled` as its shim, and the sandbox every measured container joins.
    pub fn new(coracled: &Path) -> Result<Rig, String> {
        let tmp = tempfile::Builder::new()
            .prefix("coracle-bench-spawn-")
            .tempdir_in("/var/tmp")
            .map_err(|e| format!("creating a temp dir in /var/tmp: {e}"))?;
        // Shims (and their launcher) are the real daemon binary, exactly as under coracled.
        let runtime = BuiltinRuntime::with_shim(tmp.path().join("run"), coracled, vec![SHIM_ARG.into()]);
        let cgroups = Cgroups::detect(CGROUP_SUBPATH).map_err(|e| format!("cgroups: {e}"))?;
        let sandbox = runtime
            .create_sandbox(&SandboxSpec {
                id: SANDBOX_ID.into(),
                hostname: SANDBOX_ID.into(),
                network: SandboxNetwork::New,
                resolv_conf: Some("nameserver 127.0.0.1\n".into()),
                sysctls: Vec::new(),
            })
            .map_err(|e| format!("creating sandbox {SANDBOX_ID}: {e}"))?;
        Ok(Rig { tmp, runtime, sandbox, cgroups })
    }

    /// The sandbox's pinned network and IPC namespaces (the peer's containers join them too).
    pub fn namespaces(&self) -> Result<super::runc::SandboxNamespaces<'_>, String> {
        let net = self.sandbox.netns_path.as_deref().ok_or("the bench sandbox has no network namespace")?;
        Ok(super::runc::SandboxNamespaces { net, ipc: &self.sandbox.ipcns_path })
    }

    fn spec(&self, id: &str, layer: &Path, cgroup_dirs: Vec<PathBuf>) -> ContainerSpec {
        let dir = self.tmp.path().join("containers").join(id);
        ContainerSpec {
            id: id.into(),
            sandbox: self.sandbox.clone(),
            rootfs: Rootfs {
                layers: vec![layer.to_path_buf()],
                upper_dir: dir.join("upper"),
                work_dir: dir.join("work"),
            },
            readonly_rootfs: false,
            args: vec!["sleep".into(), "86400".into()],
            env: vec![coracle_e2e::images::PATH_ENV.into()],
            cwd: "/".into(),
            user: UserSpec::default(),
            hostname: SANDBOX_ID.into(),
            mounts: self.sandbox.standard_mounts(),
            capabilities: CapabilityChanges::default(),
            no_new_privileges: false,
            confinement: Confinement::default(),
            cgroup_dirs,
            oom_score_adj: Some(1000),
            log_path: dir.join("log/0.log"),
            log_max_size: 10 * 1024 * 1024,
            log_max_files: 2,
        }
    }

    /// Kills and forgets a started container.
    fn discard(&self, id: &str) -> Result<(), String> {
        self.runtime.signal(id, Signal::SIGKILL).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.runtime.state(id), ContainerState::Running { .. }) {
            if Instant::now() > deadline {
                return Err(format!("container {id} still running 10 s after SIGKILL"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.runtime.remove(id).map_err(|e| e.to_string())
    }
}

/// Starts `runs` containers of `layer` one after another under the rig's builtin runtime and
/// returns each `start()` → handle time. Cgroup creation, which the node does before it calls
/// the runtime, is outside the timing.
pub fn measure(rig: &Rig, layer: &Path, runs: usize) -> Result<Vec<Duration>, String> {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let id = format!("spawn-{i}");
        let cgroup = rig
            .cgroups
            .create(&format!("spawn/{id}"), &Limits::default())
            .map_err(|e| format!("creating cgroup for {id}: {e}"))?;
        let spec = rig.spec(&id, layer, cgroup.dirs());
        let started = Instant::now();
        let handle = rig.runtime.start(&spec).map_err(|e| format!("starting container {id}: {e}"))?;
        samples.push(started.elapsed());
        if !procfs::exists(handle.pid as u32) {
            return Err(format!("container {id}: start() returned pid {} but no such process exists", handle.pid));
        }
        rig.discard(&id)?;
        cgroup.remove().map_err(|e| format!("removing cgroup of {id}: {e}"))?;
    }
    Ok(samples)
}
