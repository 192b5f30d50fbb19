//! A pod's sandbox: its network namespace (or the host's) through the runtime, plus the
//! hook where pod networking (CNI) plugs in.

use super::events::Reason;
use super::layout;
use coracle_config::core::{Pod, Service};
use coracle_config::settings::NetworkMode;
use coracle_net::{NetError, PodNetwork};
use coracle_runtime::cgroups::CgroupError;
use coracle_runtime::sandbox::SandboxError;
use coracle_runtime::{ContainerRuntime, RuntimeError, Sandbox, SandboxNetwork, SandboxSpec};
use std::net::IpAddr;

/// Why a pod's sandbox (its directory, cgroup, namespaces and network) could not be made
/// ready or removed, by step.
#[derive(Debug)]
pub enum PodSandboxError {
    /// The pod's directory under the data dir could not be created.
    PodDir { path: std::path::PathBuf, source: std::io::Error },
    /// The pod's cgroup could not be created.
    PodCgroup(CgroupError),
    /// The runtime could not create the namespaces and files.
    Create(RuntimeError),
    /// The pod network (CNI) could not wire the namespace.
    Network(NetError),
    /// The pod's /etc/hosts could not be rewritten with its address.
    Hosts(SandboxError),
    /// The pod network could not release what it took.
    Teardown(NetError),
    /// The runtime could not remove the sandbox.
    Remove { id: String, source: RuntimeError },
}

impl std::fmt::Display for PodSandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodSandboxError::PodDir { path, source } => write!(f, "creating {}: {source}", path.display()),
            PodSandboxError::PodCgroup(e) => write!(f, "creating the pod cgroup: {e}"),
            PodSandboxError::Create(e) => write!(f, "creating the pod sandbox: {e}"),
            PodSandboxError::Network(e) => write!(f, "setting up the pod network: {e}"),
            PodSandboxError::Hosts(e) => e.fmt(f),
            PodSandboxError::Teardown(e) => write!(f, "tearing down the pod network: {e}"),
            PodSandboxError::Remove { id, source } => write!(f, "removing sandbox {id}: {source}"),
        }
    }
}

impl PodSandboxError {
    /// The reason of the Warning event the pod gets for this failure (the kubelet's).
    pub fn event_reason(&self) -> Reason {
        match self {
            PodSandboxError::Teardown(_) | PodSandboxError::Remove { .. } => Reason::FailedKillPod,
            _ => Reason::FailedCreatePodSandBox,
        }
    }
}

impl std::error::Error for PodSandboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PodSandboxError::PodDir { source, .. } => Some(source),
            PodSandboxError::PodCgroup(e) => Some(e),
            PodSandboxError::Create(e) | PodSandboxError::Remove { source: e, .. } => Some(e),
            PodSandboxError::Network(e) | PodSandboxError::Teardown(e) => Some(e),
            PodSandboxError::Hosts(e) => e.source(),
        }
    }
}

/// The pod's hostname: `spec.hostname`, else its name (truncated to 63, as Kubernetes does).
pub fn hostname(pod: &Pod) -> String {
    let name = pod.spec.hostname.clone().unwrap_or_else(|| pod.metadata.name.clone());
    name.chars().take(63).collect::<String>().trim_end_matches(['-', '.']).to_string()
}

/// A ready sandbox and the pod's IP on it.
#[derive(Clone, Debug)]
pub struct PodSandbox {
    /// What the runtime created.
    pub sandbox: Sandbox,
    /// The pod's IP (the host's on the host network), when known.
    pub ip: Option<IpAddr>,
}

/// The pod's sysctls as the sandbox sets them: dotted names (validation took only the safe set).
fn sysctls(pod: &Pod) -> Vec<(String, String)> {
    let listed = pod.spec.security_context.as_ref().and_then(|sc| sc.sysctls.as_deref()).unwrap_or_default();
    listed.iter().map(|s| (coracle_config::validation::sysctl_name(&s.name), s.value.clone())).collect()
}

/// Creates (or finds) the pod's sandbox and wires its network; repeatable. `mode` is the
/// daemon's `network.mode` (`host` puts every pod on the host network); `services` feed
/// the service lines of the pod's /etc/hosts.
pub fn ensure(
    runtime: &dyn ContainerRuntime,
    network: &dyn PodNetwork,
    pod: &Pod,
    host_ip: Option<IpAddr>,
    mode: NetworkMode,
    services: &[Service],
) -> Result<PodSandbox, PodSandboxError> {
    let host = coracle_net::uses_host_network(mode, pod);
    let spec = SandboxSpec {
        id: layout::sandbox_id(&pod.metadata.uid),
        hostname: hostname(pod),
        network: if host { SandboxNetwork::Host } else { SandboxNetwork::New },
        resolv_conf: None,
        sysctls: sysctls(pod),
    };
    let began = std::time::Instant::now();
    let sandbox = runtime.create_sandbox(&spec).map_err(PodSandboxError::Create)?;
    let created = began.elapsed();
    let ip = match &sandbox.netns_path {
        Some(netns) => network.setup(pod, netns).map_err(PodSandboxError::Network)?,
        None => host_ip,
    };
    log::debug!(
        "node: pod {}: namespaces in {created:?}, network in {:?}",
        pod.metadata.name,
        began.elapsed().saturating_sub(created)
    );
    if let (Some(ip), false) = (ip, host) {
        write_hosts_in_place(&sandbox, pod, ip, services)?;
    }
    Ok(PodSandbox { sandbox, ip })
}

/// Rewrites the pod's /etc/hosts with its own address and the Services' lines, in place:
/// after a daemon restart running containers still have the file bind-mounted, and a bind
/// follows the inode (a rename would leave them the old file).
fn write_hosts_in_place(sandbox: &Sandbox, pod: &Pod, ip: IpAddr, services: &[Service]) -> Result<(), PodSandboxError> {
    let mut with_ip = pod.clone();
    with_ip.spec.hostname = Some(hostname(pod));
    with_ip.status.get_or_insert_with(Default::default).pod_ip = Some(ip.to_string());
    let content = coracle_net::services::hosts::hosts_content(&with_ip, services, "");
    coracle_runtime::sandbox::write_in_place(&sandbox.hosts_path, &content).map_err(PodSandboxError::Hosts)
}

/// Tears the pod's network down and removes its sandbox; a missing sandbox is fine.
pub fn remove(runtime: &dyn ContainerRuntime, network: &dyn PodNetwork, pod: &Pod) -> Result<(), PodSandboxError> {
    let id = layout::sandbox_id(&pod.metadata.uid);
    if let Some(netns) = runtime.sandbox(&id).and_then(|s| s.netns_path) {
        network.teardown(pod, &netns).map_err(PodSandboxError::Teardown)?;
    }
    runtime.remove_sandbox(&id).map_err(|source| PodSandboxError::Remove { id: id.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_the_pod_name_unless_set() {
        let mut pod = Pod::default();
        pod.metadata.name = "web-0".into();
        assert_eq!(hostname(&pod), "web-0");
        pod.spec.hostname = Some("box".into());
        assert_eq!(hostname(&pod), "box");
        pod.spec.hostname = Some(format!("{}-x", "a".repeat(62)));
        assert_eq!(hostname(&pod), "a".repeat(62));
    }

    #[test]
    fn hosts_are_rewritten_in_place_with_the_pod_ip_and_services() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "# an older, longer file that must not leave a tail behind\n".repeat(20)).unwrap();
        let inode = std::fs::metadata(&hosts).unwrap().ino();
        let sandbox = Sandbox {
            id: "u1".into(),
            netns_path: None,
            ipcns_path: dir.path().join("ipc"),
            hosts_path: hosts.clone(),
            resolv_conf_path: dir.path().join("resolv.conf"),
        };
        let mut pod = Pod::default();
        pod.metadata.name = "web".into();
        pod.metadata.namespace = "default".into();
        let mut svc = Service::default();
        svc.metadata.name = "db".into();
        svc.metadata.namespace = "default".into();
        svc.spec.cluster_ip = Some("10.96.0.9".into());
        write_hosts_in_place(&sandbox, &pod, "10.88.0.4".parse().unwrap(), &[svc]).unwrap();
        let text = std::fs::read_to_string(&hosts).unwrap();
        assert_eq!(std::fs::metadata(&hosts).unwrap().ino(), inode, "same inode: binds see the new content");
        assert!(text.contains("10.88.0.4\tweb\n"), "{text}");
        assert!(text.contains("10.96.0.9\tdb db.default db.default.svc.cluster.local"), "{text}");
        assert!(!text.contains("older"), "{text}");
    }
}
