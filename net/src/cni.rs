//! CNI pod networking: Coracle writes its own conflist (bridge `coracle0` with gateway,
//! host-local IPAM whose leases live under DATA/net/ipam; masquerade is `masquerade`'s one
//! chain), runs the conflist's chain for each pod, and caches each ADD result for the DEL
//! and CHECK that follow.

use super::bridge_claim::{self, BridgeClaim};
use super::cidr::Ipv4Cidr;
use super::cni_exec::{self, CniCommand, CniTarget};
use super::{leases, masquerade, NetError, PodNetwork};
use coracle_config::core::Pod;
use coracle_config::settings::NetworkSettings;
use serde_json::{json, Value};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How often a failing CNI DEL is tried before teardown reports the error.
const DEL_ATTEMPTS: u32 = 4;

/// The network's name in the conflist (host-local keeps its leases in `ipam/<name>`).
pub const NETWORK_NAME: &str = "coracle";
/// The pod's interface.
pub const IFNAME: &str = "eth0";
const CNI_VERSION: &str = "1.0.0";
const CONFLIST: &str = "10-coracle.conflist";

/// Why CNI could not be set up.
#[derive(Debug)]
pub enum CniError {
    /// The plugins Coracle's conflist needs are not installed (names them).
    PluginsMissing(String),
    /// A setting or file is wrong.
    Config(String),
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CniError::PluginsMissing(m) => write!(f, "CNI plugins missing: {m}"),
            CniError::Config(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CniError {}

/// Pod networking through the standard CNI plugins.
pub struct CniNetwork {
    bin_dirs: Vec<PathBuf>,
    /// DATA/net: the conflist, `ipam/` leases and `results/` cache.
    dir: PathBuf,
    conflist: Value,
    /// Plugins run one pod at a time: they share the bridge, the lease store and iptables.
    serial: Mutex<()>,
    settings: NetworkSettings,
    /// The bridge, held from the first wired pod on (see `bridge_claim`).
    claim: Mutex<Option<BridgeClaim>>,
}

/// Coracle's default conflist for `pod_cidr` on `bridge`, with leases under `ipam_dir`.
pub fn default_conflist(bridge: &str, pod_cidr: Ipv4Cidr, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            // Masquerade is one chain for the whole pod CIDR (`masquerade`), not six
            // iptables calls per pod.
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": pod_cidr.to_string()}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": ipam_dir.display().to_string()
            }
        }]
    })
}

/// The configuration one plugin of a conflist receives: its own object plus the list's
/// name and version, and the previous plugin's result.
fn plugin_conf(list: &Value, plugin: &Value, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    if let Some(obj) = conf.as_object_mut() {
        obj.insert("cniVersion".into(), list["cniVersion"].clone());
        obj.insert("name".into(), list["name"].clone());
        if let Some(prev) = prev.filter(|p| !p.is_null()) {
            obj.insert("prevResult".into(), prev.clone());
        }
    }
    conf
}

impl CniNetwork {
    /// Checks the plugins, writes the conflist under `dir` (DATA/net) and prepares the
    /// lease and result folders.
    pub fn new(settings: &NetworkSettings, dir: &Path) -> Result<CniNetwork, CniError> {
        cni_exec::plugins_present(&settings.cni_bin_dirs, &["bridge", "host-local"])
            .map_err(CniError::PluginsMissing)?;
        let pod_cidr: Ipv4Cidr =
            settings.pod_cidr.parse().map_err(|e| CniError::Config(format!("network.pod_cidr: {e}")))?;
        for sub in ["ipam", "results"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| CniError::Config(format!("creating {}: {e}", d.display())))?;
        }
        let conflist = default_conflist(&settings.bridge, pod_cidr, &dir.join("ipam"));
        let path = dir.join(CONFLIST);
        let text = serde_json::to_string_pretty(&conflist).expect("the conflist serializes");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, &text).map_err(|e| CniError::Config(format!("writing {}: {e}", path.display())))?;
        }
        Ok(CniNetwork {
            bin_dirs: settings.cni_bin_dirs.clone(),
            dir: dir.to_path_buf(),
            conflist,
            serial: Mutex::new(()),
            settings: settings.clone(),
            claim: Mutex::new(None),
        })
    }

    /// Takes the bridge for this daemon unless it already has it.
    pub fn ensure_claimed(&self) -> Result<(), NetError> {
        let mut claim = self.claim.lock().unwrap_or_else(|p| p.into_inner());
        if claim.is_none() {
            // DATA/net → DATA: the owner is named by its data directory.
            let data_dir = self.dir.parent().unwrap_or(&self.dir);
            *claim = bridge_claim::claim(&self.settings, data_dir)?;
            if let Err(e) = masquerade::ensure(&self.settings.bridge, &self.settings.pod_cidr) {
                log::warn!(
                    "net: pods on {} reach the host and each other but not beyond it: {e}",
                    self.settings.bridge
                );
            }
        }
        Ok(())
    }

    /// Whether pods are wired from an earlier run (their cached results remain).
    pub fn has_attachments(&self) -> bool {
        std::fs::read_dir(self.dir.join("results")).is_ok_and(|mut entries| entries.next().is_some())
    }

    fn result_path(&self, uid: &str) -> PathBuf {
        self.dir.join("results").join(format!("{uid}.json"))
    }

    fn cached_result(&self, uid: &str) -> Option<Value> {
        serde_json::from_slice(&std::fs::read(self.result_path(uid)).ok()?).ok()
    }

    fn plugins(&self) -> &[Value] {
        self.conflist["plugins"].as_array().map(Vec::as_slice).unwrap_or(&[])
    }

    fn add(&self, target: &CniTarget) -> Result<Value, NetError> {
        // No loopback plugin: the sandbox brought `lo` up when it made the namespace.
        let mut prev: Option<Value> = None;
        for plugin in self.plugins() {
            let conf = plugin_conf(&self.conflist, plugin, prev.as_ref());
            prev = Some(cni_exec::invoke(&self.bin_dirs, CniCommand::Add, target, &conf).map_err(NetError::Plugin)?);
        }
        prev.ok_or(NetError::NoPlugins)
    }

    fn check(&self, target: &CniTarget, prev: &Value) -> Result<(), NetError> {
        for plugin in self.plugins() {
            let conf = plugin_conf(&self.conflist, plugin, Some(prev));
            cni_exec::invoke(&self.bin_dirs, CniCommand::Check, target, &conf).map_err(NetError::Plugin)?;
        }
        Ok(())
    }

    /// DEL in reverse order; every plugin is asked even when one fails.
    fn del(&self, target: &CniTarget, prev: Option<&Value>) -> Result<(), NetError> {
        let mut errors = Vec::new();
        for plugin in self.plugins().iter().rev() {
            let conf = plugin_conf(&self.conflist, plugin, prev);
            if let Err(e) = cni_exec::invoke(&self.bin_dirs, CniCommand::Del, target, &conf) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NetError::Plugin(errors.join("; ")))
        }
    }

    fn setup_uid(&self, uid: &str, netns: &Path) -> Result<Option<IpAddr>, NetError> {
        let _serial = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_claimed()?;
        let netns_text = netns.display().to_string();
        let target = CniTarget { container_id: uid, netns: &netns_text, ifname: IFNAME };
        // A repeated setup (daemon restart) keeps a still-valid attachment.
        if let Some(prev) = self.cached_result(uid) {
            match self.check(&target, &prev) {
                Ok(()) => return Ok(cni_exec::result_ip(&prev, IFNAME)),
                Err(e) => {
                    log::info!("net: pod {uid}: earlier attachment no longer valid ({e}); attaching again");
                    self.del(&target, Some(&prev))?;
                }
            }
        }
        let result = match self.add(&target) {
            Ok(r) => r,
            Err(e) => {
                // Release whatever part of the chain succeeded (the address above all).
                let _ = self.del(&target, None);
                return Err(e);
            }
        };
        let path = self.result_path(uid);
        std::fs::write(&path, serde_json::to_vec(&result).expect("a CNI result serializes"))
            .map_err(NetError::io("writing", &path))?;
        cni_exec::result_ip(&result, IFNAME)
            .map(Some)
            .ok_or_else(|| NetError::NoAddress { uid: uid.to_string(), result: result.to_string() })
    }

    fn teardown_uid(&self, uid: &str, netns: Option<&Path>) -> Result<(), NetError> {
        let _serial = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        let netns_text = netns.filter(|p| p.exists()).map(|p| p.display().to_string()).unwrap_or_default();
        let target = CniTarget { container_id: uid, netns: &netns_text, ifname: IFNAME };
        let prev = self.cached_result(uid);
        // DEL is idempotent and may fail transiently: the bridge plugin's iptables calls race
        // other iptables users (`CHAIN_DEL failed (Device or resource busy)`). Retry as the
        // kubelet does before giving up.
        let mut delay = std::time::Duration::from_millis(100);
        let mut attempt = 1;
        while let Err(e) = self.del(&target, prev.as_ref()) {
            if attempt == DEL_ATTEMPTS {
                return Err(e);
            }
            log::debug!("net: CNI DEL for {uid} failed (attempt {attempt}), retrying: {e}");
            std::thread::sleep(delay);
            delay *= 2;
            attempt += 1;
        }
        match std::fs::remove_file(self.result_path(uid)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetError::io("removing", self.result_path(uid))(e)),
        }
    }

    /// Releases the addresses of every container id `live` does not name (pods gone while
    /// the daemon was down, or before a power cut); returns how many were released.
    pub fn collect_garbage(&self, live: &dyn Fn(&str) -> bool) -> usize {
        let mut owners = leases::lease_owners(&self.dir.join("ipam").join(NETWORK_NAME));
        if let Ok(entries) = std::fs::read_dir(self.dir.join("results")) {
            for e in entries.flatten() {
                if let Some(uid) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                    owners.insert(uid.to_string());
                }
            }
        }
        let mut released = 0;
        for uid in owners.iter().filter(|u| !live(u)) {
            if let Err(e) = self.teardown_uid(uid, None) {
                log::warn!("net: releasing the address of gone pod {uid}: {e}; removing its lease directly");
                leases::remove_leases_of(&self.dir.join("ipam").join(NETWORK_NAME), uid);
                let _ = std::fs::remove_file(self.result_path(uid));
            }
            released += 1;
        }
        released
    }
}

impl PodNetwork for CniNetwork {
    fn setup(&self, pod: &Pod, netns: &Path) -> Result<Option<IpAddr>, NetError> {
        self.setup_uid(&pod.metadata.uid, netns)
    }

    fn teardown(&self, pod: &Pod, netns: &Path) -> Result<(), NetError> {
        self.teardown_uid(&pod.metadata.uid, Some(netns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_matches_the_documented_defaults() {
        let c = default_conflist("coracle0", "10.88.0.0/16".parse().unwrap(), Path::new("/var/lib/coracle/net/ipam"));
        let bridge = &c["plugins"][0];
        assert_eq!((bridge["type"].as_str(), bridge["bridge"].as_str()), (Some("bridge"), Some("coracle0")));
        assert_eq!((bridge["isGateway"].as_bool(), bridge["ipMasq"].as_bool()), (Some(true), Some(false)));
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.88.0.0/16");
        assert_eq!(bridge["ipam"]["dataDir"], "/var/lib/coracle/net/ipam");
        let conf = plugin_conf(&c, bridge, Some(&json!({"ips": []})));
        assert_eq!((conf["name"].as_str(), conf["cniVersion"].as_str()), (Some("coracle"), Some("1.0.0")));
        assert_eq!(conf["prevResult"], json!({"ips": []}));
    }

    #[test]
    fn missing_plugins_are_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let settings = NetworkSettings { cni_bin_dirs: vec![dir.path().to_path_buf()], ..Default::default() };
        match CniNetwork::new(&settings, dir.path()) {
            Err(CniError::PluginsMissing(m)) => assert!(m.contains("bridge"), "{m}"),
            other => panic!("expected PluginsMissing, got {:?}", other.err()),
        }
    }

    /// A pinned, empty network namespace at `path`, as the runtime's sandbox makes one.
    fn pinned_netns(path: &Path) {
        let p = path.to_path_buf();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            std::fs::write(&p, b"").unwrap();
            let ns = "/proc/thread-self/ns/net";
            nix::mount::mount(Some(ns), &p, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn pods_get_addresses_reach_the_host_and_release_them_over_many_churns() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/usr/lib/cni/bridge").exists() {
            eprintln!(
                "skipping pods_get_addresses_reach_the_host_and_release_them_over_many_churns: needs root and CNI"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let settings =
            NetworkSettings { bridge: "coratest0".into(), pod_cidr: "10.231.0.0/24".into(), ..Default::default() };
        let net = CniNetwork::new(&settings, &dir.path().join("net")).unwrap();
        let lease_dir = dir.path().join("net/ipam").join(NETWORK_NAME);
        let netns = dir.path().join("ns");
        pinned_netns(&netns);
        let mut pod = Pod::default();
        pod.metadata.uid = "pod-a".into();
        let ip = net.setup(&pod, &netns).unwrap().unwrap();
        assert!(ip.to_string().starts_with("10.231.0."), "{ip}");
        assert_eq!(net.setup(&pod, &netns).unwrap(), Some(ip), "a repeated setup keeps the address");
        // The host reaches the pod: a listener inside its namespace answers.
        let ns_file = std::fs::File::open(&netns).unwrap();
        let listener = std::thread::spawn(move || {
            nix::sched::setns(&ns_file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            std::net::TcpListener::bind("0.0.0.0:8080").unwrap()
        })
        .join()
        .unwrap();
        std::net::TcpStream::connect_timeout(&std::net::SocketAddr::new(ip, 8080), std::time::Duration::from_secs(2))
            .unwrap();
        drop(listener);
        net.teardown(&pod, &netns).unwrap();
        assert!(leases::leases(&lease_dir).is_empty());
        for i in 0..30 {
            pod.metadata.uid = format!("churn-{i}");
            net.setup(&pod, &netns).unwrap().unwrap();
            net.teardown(&pod, &netns).unwrap();
        }
        assert!(leases::leases(&lease_dir).is_empty(), "leases leaked: {:?}", leases::leases(&lease_dir));
        // A lease left by a power cut (no teardown) is collected at start.
        pod.metadata.uid = "survivor".into();
        net.setup(&pod, &netns).unwrap().unwrap();
        pod.metadata.uid = "lost".into();
        let other = dir.path().join("ns2");
        pinned_netns(&other);
        net.setup(&pod, &other).unwrap().unwrap();
        assert_eq!(net.collect_garbage(&|uid| uid == "survivor"), 1);
        assert_eq!(leases::lease_owners(&lease_dir).into_iter().collect::<Vec<_>>(), ["survivor"]);
        pod.metadata.uid = "survivor".into();
        net.teardown(&pod, &netns).unwrap();
        for ns in [&netns, &other] {
            let _ = nix::mount::umount2(ns.as_path(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::process::Command::new("ip").args(["link", "del", "coratest0"]).status();
        masquerade::remove("coratest0", "10.231.0.0/24");
    }
    /// Links enslaved to `bridge` (the host ends of pod veths).
    fn bridge_ports(bridge: &str) -> usize {
        let out = std::process::Command::new("ip").args(["-o", "link", "show", "master", bridge]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// The pod-churn leak check: every cycle a fresh pinned namespace, setup, teardown and
    /// the namespace removed, as the node does for a pod. Nothing may be left: no lease, no
    /// veth on the bridge. 100 cycles by default; `CORACLE_CHURN=1000` for the full check.
    #[test]
    fn pod_churn_leaks_no_lease_and_no_veth() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/usr/lib/cni/bridge").exists() {
            eprintln!("skipping pod_churn_leaks_no_lease_and_no_veth: needs root and CNI");
            return;
        }
        let cycles: usize = std::env::var("CORACLE_CHURN").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
        let dir = tempfile::tempdir().unwrap();
        // A /28 holds 13 pod addresses: a leak of even a few would exhaust it within the run.
        let settings =
            NetworkSettings { bridge: "corachurn0".into(), pod_cidr: "10.232.0.0/28".into(), ..Default::default() };
        let net = CniNetwork::new(&settings, &dir.path().join("net")).unwrap();
        let lease_dir = dir.path().join("net/ipam").join(NETWORK_NAME);
        let netns = dir.path().join("ns");
        let mut pod = Pod::default();
        let started = std::time::Instant::now();
        for i in 0..cycles {
            pinned_netns(&netns);
            // Not `churn-N`: the test above uses those ids, and the bridge plugin names its
            // iptables chains after the container id, so parallel tests would share chains.
            pod.metadata.uid = format!("leak-{i}");
            let ip = net.setup(&pod, &netns).unwrap_or_else(|e| panic!("cycle {i}: setup: {e}"));
            assert!(ip.is_some(), "cycle {i}: no address");
            net.teardown(&pod, &netns).unwrap_or_else(|e| panic!("cycle {i}: teardown: {e}"));
            nix::mount::umount2(netns.as_path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
            std::fs::remove_file(&netns).unwrap();
        }
        let leases = leases::leases(&lease_dir);
        let ports = bridge_ports("corachurn0");
        eprintln!("{cycles} pod churns in {:?}: {} leases, {ports} bridge ports left", started.elapsed(), leases.len());
        let _ = std::process::Command::new("ip").args(["link", "del", "corachurn0"]).status();
        masquerade::remove("corachurn0", "10.232.0.0/28");
        assert!(leases.is_empty(), "leases leaked: {leases:?}");
        assert_eq!(ports, 0, "veths left on the bridge");
    }
}
