//! The shim's side of the OCI backend: mount the bundle's root, `create` the container with the
//! shim's log pipes as its stdio, become its parent (child subreaper), then `start` it. The shim
//! then supervises it exactly as it does a container it cloned itself.

use super::super::cgroups;
use super::super::container_runtime::StartError;
use super::super::devices;
use super::super::mounts;
use super::super::shim;
use super::super::spec::ContainerSpec;
use super::bundle::ROOTFS;
use super::runc::{self, OciCli};
use nix::mount::{umount2, MntFlags};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// File in the bundle where runc writes the container's pid.
const PID_FILE: &str = "init.pid";
/// runc's own JSON log in the bundle (its error messages; never the container's output).
pub const RUNTIME_LOG: &str = "runtime.log";

/// What the shim needs to have an OCI runtime run a prepared bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciLaunch {
    /// The runtime binary (`/usr/sbin/runc`).
    pub binary: PathBuf,
    /// The runtime's `--root` state directory.
    pub state_root: PathBuf,
    /// The bundle directory holding config.json; its `rootfs` is mounted by the shim.
    pub bundle: PathBuf,
    /// Move the process into the spec's cgroup_dirs between create and start (no cgroupsPath fit).
    pub move_into_cgroups: bool,
}

impl OciLaunch {
    fn cli(&self) -> OciCli {
        OciCli { binary: self.binary.clone(), state_root: self.state_root.clone() }
    }
}

/// Mounts the root, creates and starts the container; returns its init's pid (our child now).
pub fn create_and_start(
    spec: &ContainerSpec,
    launch: &OciLaunch,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Pid, StartError> {
    // runc create exits once the container exists; its init must then become our child, so
    // that we can wait for it and see its real exit status (not runc's digest of it).
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only reads its integer argument.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(StartError::run(format!("become child subreaper: {}", std::io::Error::last_os_error())));
    }
    let root = launch.bundle.join(ROOTFS);
    std::fs::create_dir_all(&root).map_err(|e| StartError::run(format!("create {}: {e}", root.display())))?;
    mounts::mount_rootfs(spec, &root).map_err(|e| StartError::run(format!("container {}: {e}", spec.id)))?;
    create_then_start(spec, launch, stdout, stderr).inspect_err(|_| {
        if let Err(e) = unmount_rootfs(&launch.bundle) {
            eprintln!("coracle shim: {e}");
        }
    })
}

fn create_then_start(
    spec: &ContainerSpec,
    launch: &OciLaunch,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Pid, StartError> {
    let cli = launch.cli();
    let log = launch.bundle.join(RUNTIME_LOG);
    let pid_file = launch.bundle.join(PID_FILE);
    let (bundle, pid_path) = (launch.bundle.display().to_string(), pid_file.display().to_string());
    let args = ["create", "--bundle", bundle.as_str(), "--pid-file", pid_path.as_str(), spec.id.as_str()];
    // The command owns our copies of the pipes' write ends: it must be gone before we relay, or
    // the pipes never reach EOF.
    let status = {
        let mut create = cli.command(Some(&log), &args);
        create.stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr));
        create.status()
    };
    let status = status.map_err(|e| StartError::run(format!("run {} create: {e}", launch.binary.display())))?;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = cli.delete(&spec.id);
        return Err(runc::start_error(&runc::last_error(&text)));
    }
    let undo = |e: StartError, pid: Option<Pid>| {
        if let Err(d) = cli.delete(&spec.id) {
            eprintln!("coracle shim: {d}");
        }
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = shim::reap(pid);
        }
        e
    };
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
        .ok_or_else(|| undo(StartError::run(format!("{}: no container pid written", pid_file.display())), None))?;
    if launch.move_into_cgroups {
        // runc confined the devices of the cgroup it made; the node's get the same rules.
        if let Err(e) = devices::enforce(&spec.confinement.devices, &spec.cgroup_dirs) {
            return Err(undo(StartError::run(e), Some(pid)));
        }
        if let Err(e) = cgroups::move_process(&spec.cgroup_dirs, pid.as_raw()) {
            return Err(undo(StartError::run(e.to_string()), Some(pid)));
        }
    }
    cli.start(&spec.id).map_err(|e| undo(StartError::run(e), Some(pid)))?;
    Ok(pid)
}

/// Detaches the bundle's root mount; one that is not mounted (any more) is fine.
pub fn unmount_rootfs(bundle: &Path) -> Result<(), String> {
    let root = bundle.join(ROOTFS);
    match umount2(&root, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(format!("unmount {}: {e}", root.display())),
    }
}
