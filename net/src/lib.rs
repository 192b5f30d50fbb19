//! Pod networking: every pod its own network namespace, wired by CNI (bridge `coracle0`,
//! host-local IPAM, masquerade), or the host's namespace, or loopback only.
//!
//! How Services are reached (see also `proxy`): the whole service CIDR is a *local* route
//! on the host (`ip route replace local 10.96.0.0/16 dev lo`, Linux's "AnyIP"), so any
//! ClusterIP is an address of the host without adding addresses one by one, and the proxy
//! binds `ClusterIP:port` directly. Pods on the CNI bridge reach it through their default
//! route (the bridge's address is their gateway, so a packet to a ClusterIP arrives at the
//! host and is delivered locally); the host reaches it directly. No iptables DNAT, no
//! kernel load balancer: one mechanism for every mode. In loopback-only mode a pod's
//! address is 127.0.0.1 *inside its own namespace*; the proxy opens upstream sockets in
//! that namespace (found through [`SandboxPaths`]).
//!
//! Loopback-only pods reaching Services: such a pod has no route to the host at all, so the
//! proxy brings the Service to the pod instead. For every running loopback-only pod it
//! opens each ClusterIP:port listener a second time *inside the pod's namespace* (the
//! ClusterIP made local there with a `/32` local route on that namespace's `lo`), and serves
//! it from its workers like any other listener (`proxy::netns_listen`). Chosen over a
//! per-pod forwarder process or veth pairs because it needs no extra process, no address
//! plan and no iptables, works identically with or without CNI plugins, and goes away by
//! itself with the namespace when the pod does. Host-network pods use the host's local
//! route directly. Cost: one socket per (loopback-only pod × service port), fine at the
//! scale of one board.

pub mod bridge_claim;
pub mod cidr;
pub mod cni;
pub mod cni_exec;
pub mod error;
pub mod leases;
pub mod loopback;
pub mod masquerade;
pub mod service_route;
pub mod services;

use coracle_config::core::Pod;
use coracle_config::settings::{NetworkMode, NetworkSettings};
pub use error::NetError;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Wires a pod's network namespace to the outside world; implemented here for CNI and
/// loopback-only. Both calls must be idempotent: they are repeated after a daemon restart.
pub trait PodNetwork: Send + Sync {
    /// Connects the namespace at `netns`; returns the pod's IP when it has one beyond loopback.
    fn setup(&self, pod: &Pod, netns: &Path) -> Result<Option<IpAddr>, NetError>;
    /// Releases what `setup` took (addresses, veths); the namespace itself is the runtime's.
    fn teardown(&self, pod: &Pod, netns: &Path) -> Result<(), NetError>;
}

/// The default: the runtime's fresh namespace already has loopback up, and nothing more.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopbackOnly;

impl PodNetwork for LoopbackOnly {
    fn setup(&self, _pod: &Pod, _netns: &Path) -> Result<Option<IpAddr>, NetError> {
        Ok(None)
    }

    fn teardown(&self, _pod: &Pod, _netns: &Path) -> Result<(), NetError> {
        Ok(())
    }
}

/// Where a pod's sandbox files live on the host: the proxy and the hosts refresher find
/// pods' namespaces and /etc/hosts through it.
pub trait SandboxPaths: Send + Sync {
    /// The pod's /etc/hosts on the host, bind-mounted into its containers.
    fn hosts_path(&self, pod: &Pod) -> Option<PathBuf>;
    /// The pinned network namespace of the pod with this uid (None on the host network).
    fn netns_path(&self, pod_uid: &str) -> Option<PathBuf>;
}

/// The runtime's layout: `RUN_DIR/sandboxes/<pod uid>/{hosts,net}` (the node names each
/// sandbox after its pod's uid).
#[derive(Clone, Debug)]
pub struct SandboxDirs {
    /// The daemon's run directory.
    pub run_dir: PathBuf,
}

impl SandboxPaths for SandboxDirs {
    fn hosts_path(&self, pod: &Pod) -> Option<PathBuf> {
        (!pod.metadata.uid.is_empty())
            .then(|| coracle_runtime::sandbox::sandbox_dir(&self.run_dir, &pod.metadata.uid).join("hosts"))
    }

    fn netns_path(&self, pod_uid: &str) -> Option<PathBuf> {
        let path = coracle_runtime::sandbox::sandbox_dir(&self.run_dir, pod_uid).join("net");
        (!pod_uid.is_empty() && path.exists()).then_some(path)
    }
}

/// Whether `pod` runs in the host's namespace: `hostNetwork: true`, or every pod when the
/// daemon's network mode is `host`.
pub fn uses_host_network(mode: NetworkMode, pod: &Pod) -> bool {
    mode == NetworkMode::Host || pod.spec.host_network == Some(true)
}

/// The network the settings ask for. CNI falls back to loopback-only, with a warning, when
/// its plugins are missing. `live_pods` names the pod uids whose addresses must be kept
/// (pods still running from before a daemon restart); every other lease is released.
pub fn from_settings(
    settings: &NetworkSettings,
    data_dir: &Path,
    live_pods: &dyn Fn(&str) -> bool,
) -> Result<Arc<dyn PodNetwork>, NetError> {
    match settings.mode {
        NetworkMode::Host | NetworkMode::None => Ok(Arc::new(loopback::LoopbackOnly)),
        NetworkMode::Cni => match cni::CniNetwork::new(settings, &data_dir.join("net")) {
            Ok(net) => {
                let released = net.collect_garbage(live_pods);
                if released > 0 {
                    log::info!("net: released {released} addresses of pods that no longer exist");
                }
                // Re-adopted pods sit on the bridge already: it is ours from now on.
                if net.has_attachments() {
                    net.ensure_claimed()?;
                }
                Ok(Arc::new(net))
            }
            Err(cni::CniError::PluginsMissing(which)) => {
                log::warn!("net: CNI plugins not found ({which}); pods get a loopback-only network namespace");
                Ok(Arc::new(loopback::LoopbackOnly))
            }
            Err(e) => Err(NetError::Cni(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mode_puts_every_pod_on_the_host_network() {
        let mut pod = Pod::default();
        assert!(!uses_host_network(NetworkMode::Cni, &pod));
        assert!(uses_host_network(NetworkMode::Host, &pod));
        pod.spec.host_network = Some(true);
        assert!(uses_host_network(NetworkMode::None, &pod));
    }

    #[test]
    fn sandbox_paths_follow_the_runtime_layout() {
        let dirs = SandboxDirs { run_dir: "/run/coracle".into() };
        let mut pod = Pod::default();
        pod.metadata.uid = "u1".into();
        assert_eq!(dirs.hosts_path(&pod), Some(PathBuf::from("/run/coracle/sandboxes/u1/hosts")));
        assert_eq!(dirs.netns_path("u1"), None, "no pinned namespace on disk");
    }
}
