//! Each pod's /etc/hosts: the kubelet's file plus a line per Service with a ClusterIP
//! (`name name.ns name.ns.svc.cluster.local`; the bare name only for the pod's own
//! namespace), kept current by a refresher thread as Services come and go. Coracle has no
//! cluster DNS; these lines are how pods find services by name.

use crate::SandboxPaths;
use coracle_config::core::{Pod, Service};
use coracle_config::object::Resource;
use coracle_runtime::sandbox::hosts_file;
use coracle_store::{Store, WatchEnd, WatchFilter};
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The cluster domain Kubernetes uses by default.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// A full pass even when no event asked for one (a pod's sandbox may appear between events).
const RESYNC: Duration = Duration::from_secs(10);

/// The service lines for a pod in `namespace`, sorted by namespace and name.
pub fn service_lines(services: &[Service], namespace: &str) -> String {
    let mut entries: Vec<(&str, &str, &str)> = services
        .iter()
        .filter_map(|s| {
            let ip = s.spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "None")?;
            Some((s.metadata.namespace.as_str(), s.metadata.name.as_str(), ip))
        })
        .collect();
    entries.sort();
    let mut text = String::new();
    for (ns, name, ip) in entries {
        let short = if ns == namespace { format!("{name} ") } else { String::new() };
        text.push_str(&format!("{ip}\t{short}{name}.{ns} {name}.{ns}.svc.{CLUSTER_DOMAIN}\n"));
    }
    text
}

/// The whole /etc/hosts of `pod`. `host_hosts` is the host's own file, the base for pods on
/// the host network.
pub fn hosts_content(pod: &Pod, services: &[Service], host_hosts: &str) -> String {
    let host_network = pod.spec.host_network == Some(true);
    let mut text = if host_network {
        host_hosts.to_string()
    } else {
        let hostname = pod.spec.hostname.clone().unwrap_or_else(|| pod.metadata.name.clone());
        let ip: Option<IpAddr> = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok());
        hosts_file(&hostname, ip)
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let lines = service_lines(services, &pod.metadata.namespace);
    if !lines.is_empty() {
        text.push_str("# Services (written by coracled).\n");
        text.push_str(&lines);
    }
    text
}

/// Brings every running pod's hosts file up to date; returns how many were rewritten.
pub fn refresh_all(store: &Store, paths: &dyn SandboxPaths) -> usize {
    let services: Vec<Service> = store.list_as::<Service>(None, None).iter().map(|s| Service::clone(s)).collect();
    let pods = store.list_as::<Pod>(None, None);
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut written = 0;
    for pod in &pods {
        let Some(path) = paths.hosts_path(pod).filter(|p| p.exists()) else { continue };
        match coracle_runtime::sandbox::rewrite_in_place(&path, &hosts_content(pod, &services, &host_hosts)) {
            Ok(true) => written += 1,
            Ok(false) => {}
            Err(e) => log::warn!(
                "hosts: updating {} for pod {}/{}: {e}",
                path.display(),
                pod.metadata.namespace,
                pod.metadata.name
            ),
        }
    }
    written
}

/// Starts the refresher thread; it ends when the store shuts down.
pub fn spawn_hosts_refresher(store: Store, paths: Arc<dyn SandboxPaths>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("hosts-refresher".into())
        .spawn(move || loop {
            // Hosts files name Services and pods; nothing else changes them.
            let watcher = match store.watch(WatchFilter::kinds(&[&Service::INFO, &Pod::INFO]), None) {
                Ok(w) => w,
                Err(e) => {
                    if store.is_shut_down() {
                        return;
                    }
                    log::warn!("hosts: cannot watch the store: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            refresh_all(&store, paths.as_ref());
            loop {
                if watcher.next_timeout(RESYNC).is_none() {
                    match watcher.ended() {
                        Some(WatchEnd::ShutDown) => return,
                        Some(WatchEnd::TooSlow) => break,
                        None => {
                            refresh_all(&store, paths.as_ref());
                            continue;
                        }
                    }
                }
                // One refresh for the whole burst.
                while watcher.next_timeout(Duration::ZERO).is_some() {}
                refresh_all(&store, paths.as_ref());
            }
        })
        .expect("spawning the hosts-refresher thread")
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::PodStatus;
    use coracle_config::object::Object;
    use std::path::PathBuf;

    fn svc(ns: &str, name: &str, ip: &str) -> Service {
        let mut s = Service::default();
        s.metadata.namespace = ns.into();
        s.metadata.name = name.into();
        s.spec.cluster_ip = Some(ip.into());
        s
    }

    fn pod(ns: &str, name: &str, ip: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = ns.into();
        p.metadata.name = name.into();
        p.metadata.uid = format!("uid-{name}");
        p.status = Some(PodStatus { pod_ip: ip.map(String::from), ..Default::default() });
        p
    }

    #[test]
    fn own_namespace_gets_short_names_others_qualified_headless_none() {
        let services = [svc("default", "web", "10.96.0.2"), svc("db", "pg", "10.96.0.3"), svc("default", "h", "None")];
        let text = hosts_content(&pod("default", "client", Some("10.88.0.5")), &services, "");
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), "{text}");
        assert!(text.contains("10.88.0.5\tclient\n"), "{text}");
        assert!(text.contains("10.96.0.3\tpg.db pg.db.svc.cluster.local\n"), "{text}");
        assert!(text.ends_with("10.96.0.2\tweb web.default web.default.svc.cluster.local\n"), "{text}");
        assert!(!text.contains("\th"), "{text}");
    }

    #[test]
    fn host_network_pods_keep_the_hosts_own_file() {
        let mut p = pod("default", "agent", None);
        p.spec.host_network = Some(true);
        let text = hosts_content(&p, &[svc("default", "web", "10.96.0.2")], "127.0.0.1 localhost\n192.0.2.2 board");
        assert!(text.starts_with("127.0.0.1 localhost\n192.0.2.2 board\n# Services"), "{text}");
    }

    struct InDir(PathBuf);
    impl SandboxPaths for InDir {
        fn hosts_path(&self, pod: &Pod) -> Option<PathBuf> {
            Some(self.0.join(&pod.metadata.uid))
        }
        fn netns_path(&self, _pod_uid: &str) -> Option<PathBuf> {
            None
        }
    }

    #[test]
    fn refresh_rewrites_in_place_only_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let files = dir.path().join("hosts");
        std::fs::create_dir(&files).unwrap();
        store.create(Object::Pod(pod("default", "a", Some("10.88.0.9")))).unwrap();
        let stored = store.list_as::<Pod>(None, None)[0].clone();
        let path = files.join(&stored.metadata.uid);
        std::fs::write(&path, "old\n").unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let paths = InDir(files.clone());
        store.create(Object::Service(svc("default", "web", "10.96.0.2"))).unwrap();
        assert_eq!(refresh_all(&store, &paths), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("10.96.0.2\tweb web.default web.default.svc.cluster.local\n"), "{text}");
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()), ino);
        assert_eq!(refresh_all(&store, &paths), 0, "an unchanged file is not written again");
    }
}
