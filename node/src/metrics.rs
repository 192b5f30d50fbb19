//! Pod usage from the cgroups: CPU millicores over the last sampling interval and memory
//! bytes, per pod, per container and for the whole node, kept in memory for the HPA, the
//! metrics API and `top`.

use super::layout;
use coracle_config::metrics::{ContainerUsage, MetricsSource, PodMetrics, Usage};
use coracle_runtime::cgroups::{Cgroups, UsageSampler};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the node samples by default; the metrics API reports it as its window.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(10);

/// Key of the node's own figures (the daemon's whole cgroup subtree).
const NODE_KEY: &str = "";

/// The latest usage of the node, its pods and their containers.
pub struct PodUsage {
    node_name: String,
    period: Duration,
    sampler: Mutex<UsageSampler>,
    memory: Mutex<HashMap<String, u64>>,
    containers: Mutex<HashMap<String, Vec<String>>>,
}

impl PodUsage {
    /// An empty table for the node `node_name`, sampled every `SAMPLE_PERIOD`.
    pub fn new(node_name: &str) -> PodUsage {
        PodUsage::with_period(node_name, SAMPLE_PERIOD)
    }

    /// An empty table sampled every `period`: the autoscaler needs samples at least as often
    /// as it syncs.
    pub fn with_period(node_name: &str, period: Duration) -> PodUsage {
        PodUsage {
            node_name: node_name.to_string(),
            period: period.max(Duration::from_secs(1)),
            sampler: Mutex::new(UsageSampler::new()),
            memory: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
        }
    }

    fn record(&self, key: &str, cpu_nanos: u64, memory: u64, at: Instant) {
        lock(&self.sampler).record(key, cpu_nanos, at);
        lock(&self.memory).insert(key.to_string(), memory);
    }

    /// Reads the cgroup counters of the node and of the pods `uids`, forgetting the rest.
    pub fn sample<'a>(&self, cgroups: &Cgroups, uids: impl Iterator<Item = &'a str>) {
        let now = Instant::now();
        let mut seen = vec![NODE_KEY.to_string()];
        if let Some(stats) = cgroups.open("").and_then(|c| c.stats().ok()) {
            self.record(NODE_KEY, stats.cpu_usage_nanos, stats.memory_bytes, now);
        }
        let mut containers = HashMap::new();
        for uid in uids {
            let pod = layout::pod_cgroup(uid);
            let Some(stats) = cgroups.open(&pod).and_then(|c| c.stats().ok()) else { continue };
            self.record(uid, stats.cpu_usage_nanos, stats.memory_bytes, now);
            seen.push(uid.to_string());
            let mut names = Vec::new();
            for rel in cgroups.list(&pod) {
                let Some(stats) = cgroups.open(&rel).and_then(|c| c.stats().ok()) else { continue };
                let name = rel.rsplit('/').next().unwrap_or_default().to_string();
                let key = format!("{uid}/{name}");
                self.record(&key, stats.cpu_usage_nanos, stats.memory_bytes, now);
                seen.push(key);
                names.push(name);
            }
            containers.insert(uid.to_string(), names);
        }
        lock(&self.sampler).retain(|k| seen.iter().any(|s| s == k));
        lock(&self.memory).retain(|k, _| seen.contains(k));
        *lock(&self.containers) = containers;
    }

    /// How often the node samples.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// CPU used by the pod over the last interval, in millicores.
    pub fn cpu_millicores(&self, uid: &str) -> Option<u64> {
        lock(&self.sampler).millicores(uid)
    }

    /// Memory charged to the pod's cgroup, in bytes.
    pub fn memory_bytes(&self, uid: &str) -> Option<u64> {
        lock(&self.memory).get(uid).copied()
    }

    fn usage(&self, key: &str) -> Option<Usage> {
        let cpu = lock(&self.sampler).millicores(key)?;
        Some(Usage { cpu_millicores: cpu, memory_bytes: self.memory_bytes(key).unwrap_or(0) })
    }
}

impl PodMetrics for PodUsage {
    fn cpu_millicores(&self, pod_uid: &str) -> Option<u64> {
        PodUsage::cpu_millicores(self, pod_uid)
    }
}

impl MetricsSource for PodUsage {
    fn pod_usage(&self, pod_uid: &str) -> Option<Vec<ContainerUsage>> {
        let names = lock(&self.containers).get(pod_uid).cloned()?;
        let usage: Vec<ContainerUsage> = names
            .into_iter()
            .filter_map(|name| self.usage(&format!("{pod_uid}/{name}")).map(|usage| ContainerUsage { name, usage }))
            .collect();
        (!usage.is_empty()).then_some(usage)
    }

    fn node_usage(&self) -> Option<(String, Usage)> {
        Some((self.node_name.clone(), self.usage(NODE_KEY)?))
    }

    fn window_seconds(&self) -> u64 {
        self.period.as_secs()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_cgroup_is_sampled_into_millicores() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping a_pod_cgroup_is_sampled_into_millicores: needs root (cgroups)");
            return;
        }
        let sub = format!("coracle-metrics-test-{}", std::process::id());
        let cgroups = Cgroups::detect(&sub).expect("cgroups");
        let cg = cgroups.create("pods/u1/app", &Default::default()).unwrap();
        let usage = PodUsage::new("board");
        usage.sample(&cgroups, ["u1"].into_iter());
        std::thread::sleep(Duration::from_millis(50));
        usage.sample(&cgroups, ["u1"].into_iter());
        assert!(usage.cpu_millicores("u1").is_some());
        assert!(usage.pod_usage("u1").is_some_and(|c| c[0].name == "app"));
        assert!(usage.node_usage().is_some_and(|(n, _)| n == "board"));
        usage.sample(&cgroups, std::iter::empty());
        assert_eq!(usage.cpu_millicores("u1"), None, "forgotten once the pod is gone");
        cg.remove().unwrap();
        if let Some(base) = cgroups.open("") {
            let _ = base.remove();
        }
    }
}
