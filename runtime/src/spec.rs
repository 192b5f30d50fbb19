//! The runtime's own plain spec types: what to run, independent of Kubernetes objects.

use super::devices::DeviceRule;
use super::seccomp::Seccomp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a pod sandbox should be: the namespaces its containers share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Unique id; names the directory RUN_DIR/sandboxes/<id>.
    pub id: String,
    /// The pod's hostname, written into the sandbox's /etc/hosts.
    pub hostname: String,
    /// Whether the pod gets its own network namespace.
    pub network: SandboxNetwork,
    /// Contents of the pod's /etc/resolv.conf; `None` copies the host's.
    pub resolv_conf: Option<String>,
    /// The pod's namespaced sysctls (dotted name, value), set in its new network and IPC
    /// namespaces when they are made; refused with the host network.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
}

/// The network a sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxNetwork {
    /// A fresh network namespace with only loopback up (CNI adds the rest).
    New,
    /// The host's network namespace (`hostNetwork: true`).
    Host,
}

/// A created sandbox: pinned namespaces and per-pod files that containers join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The sandbox id.
    pub id: String,
    /// Bind-mounted network namespace (for CNI and setns); `None` on the host network.
    pub netns_path: Option<PathBuf>,
    /// Bind-mounted IPC namespace.
    pub ipcns_path: PathBuf,
    /// The pod's /etc/hosts, bind-mounted into each container.
    pub hosts_path: PathBuf,
    /// The pod's /etc/resolv.conf, bind-mounted into each container.
    pub resolv_conf_path: PathBuf,
}

impl Sandbox {
    /// The /etc/hosts and /etc/resolv.conf binds every container of the pod gets.
    pub fn standard_mounts(&self) -> Vec<MountSpec> {
        vec![
            MountSpec::bind(self.hosts_path.clone(), "/etc/hosts", false),
            MountSpec::bind(self.resolv_conf_path.clone(), "/etc/resolv.conf", false),
        ]
    }
}

/// The container's root filesystem: image layers under a per-container writable layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rootfs {
    /// Unpacked image layers, bottom → top (overlay-ready directories).
    pub layers: Vec<PathBuf>,
    /// The container's writable layer (also the flattened root when overlay is missing).
    pub upper_dir: PathBuf,
    /// Overlay's work directory, on the same filesystem as `upper_dir`.
    pub work_dir: PathBuf,
}

/// The identity the container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
}

/// How a mount is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Recursive bind of a host path (emptyDir, hostPath, hosts, resolv.conf).
    Bind,
    /// A fresh tmpfs (`emptyDir.medium: Memory`); `size_bytes` 0 means the kernel default.
    Tmpfs { size_bytes: u64 },
}

/// One mount into the container's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Host path for binds; ignored for tmpfs.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// Bind or tmpfs.
    pub kind: MountKind,
    /// Mount read-only.
    pub read_only: bool,
}

impl MountSpec {
    /// A recursive bind of `source` at `destination`.
    pub fn bind(source: impl Into<PathBuf>, destination: impl Into<PathBuf>, read_only: bool) -> MountSpec {
        MountSpec { source: source.into(), destination: destination.into(), kind: MountKind::Bind, read_only }
    }
}

/// Capability changes relative to Docker's default set, by Kubernetes name (`NET_ADMIN`, `ALL`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityChanges {
    /// Capabilities added to the default set.
    pub add: Vec<String>,
    /// Capabilities removed from the default set (`ALL` removes every one not added).
    pub drop: Vec<String>,
}

/// What a container may reach beyond its namespaces: device nodes, system calls, the
/// kernel's files. The default is the confined one; `privileged: true` lifts all three.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// The devices it may create and open (runc's whitelist by default); room for the
    /// devices a pod may grant.
    pub devices: Vec<DeviceRule>,
    /// Its seccomp profile (`RuntimeDefault` unless the pod says otherwise).
    pub seccomp: Seccomp,
    /// `privileged: true`: /proc without masked or read-only paths, /sys writable.
    pub privileged: bool,
}

impl Default for Confinement {
    fn default() -> Self {
        Confinement { devices: DeviceRule::runc_defaults(), seccomp: Seccomp::RuntimeDefault, privileged: false }
    }
}

impl Confinement {
    /// Everything open: all devices, no seccomp, the kernel's files as the host has them.
    pub fn privileged() -> Confinement {
        Confinement { devices: DeviceRule::everything(), seccomp: Seccomp::Unconfined, privileged: true }
    }
}

/// Everything the runtime needs to start one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Unique id; names RUN_DIR/containers/<id>.
    pub id: String,
    /// The pod sandbox whose network and IPC namespaces the container joins.
    pub sandbox: Sandbox,
    /// Image layers and the writable layer.
    pub rootfs: Rootfs,
    /// Mount the root read-only (`readOnlyRootFilesystem`).
    pub readonly_rootfs: bool,
    /// argv; `args[0]` is looked up in the container's PATH when it has no `/`.
    pub args: Vec<String>,
    /// Environment as `NAME=value`.
    pub env: Vec<String>,
    /// Working directory inside the container (created when missing).
    pub cwd: PathBuf,
    /// User and groups to run as.
    pub user: UserSpec,
    /// The container's hostname (the pod name).
    pub hostname: String,
    /// Volume and per-pod file mounts, applied in order.
    pub mounts: Vec<MountSpec>,
    /// Capability add/drop relative to Docker's defaults.
    pub capabilities: CapabilityChanges,
    /// Set PR_SET_NO_NEW_PRIVS (`allowPrivilegeEscalation: false`).
    pub no_new_privileges: bool,
    /// Devices, seccomp and kernel files.
    #[serde(default)]
    pub confinement: Confinement,
    /// cgroup directories (one per hierarchy) the process joins before it execs.
    pub cgroup_dirs: Vec<PathBuf>,
    /// `oom_score_adj` of the container's processes (kubelet's QoS policy); `None` inherits the daemon's.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// The CRI log file (`…/0.log`).
    pub log_path: PathBuf,
    /// Rotate the log when it would grow beyond this many bytes (0 = never).
    pub log_max_size: u64,
    /// How many log files to keep, the live one included (at least 1).
    pub log_max_files: u32,
}

#[cfg(test)]
impl ContainerSpec {
    /// A container with every field set to something a test can assert on.
    pub(crate) fn example() -> ContainerSpec {
        let sandbox = Sandbox {
            id: "pod".into(),
            netns_path: Some("/run/c/sandboxes/pod/net".into()),
            ipcns_path: "/run/c/sandboxes/pod/ipc".into(),
            hosts_path: "/run/c/sandboxes/pod/hosts".into(),
            resolv_conf_path: "/run/c/sandboxes/pod/resolv.conf".into(),
        };
        ContainerSpec {
            id: "c1".into(),
            mounts: sandbox.standard_mounts(),
            sandbox,
            rootfs: Rootfs { layers: vec![], upper_dir: "/u".into(), work_dir: "/w".into() },
            readonly_rootfs: true,
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/work".into(),
            user: UserSpec { uid: 1000, gid: 1000, additional_gids: vec![5] },
            hostname: "web-0".into(),
            capabilities: CapabilityChanges { add: vec!["NET_ADMIN".into()], drop: vec!["ALL".into()] },
            no_new_privileges: true,
            confinement: Confinement::default(),
            cgroup_dirs: vec![],
            oom_score_adj: Some(1000),
            log_path: "/l/0.log".into(),
            log_max_size: 0,
            log_max_files: 1,
        }
    }
}
