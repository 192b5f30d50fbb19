//! Live usage figures: what the node samples from its cgroups, read by the metrics API, `top`
//! and the autoscaler. The traits live here, below both sides, so neither the API nor the
//! controllers depend on the node that implements them.

/// CPU and memory in use, as `kubectl top` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU in millicores (1000 = one core), averaged over the sampling window.
    pub cpu_millicores: u64,
    /// Working-set memory in bytes.
    pub memory_bytes: u64,
}

/// One container's usage inside a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub usage: Usage,
}

/// Resource usage figures for the metrics API; the node implements it from its cgroups.
pub trait MetricsSource: Send + Sync {
    /// The containers' usage of the pod with this uid; None when it has no sample yet.
    fn pod_usage(&self, pod_uid: &str) -> Option<Vec<ContainerUsage>>;
    /// The node's name and usage; None when there is no sample yet.
    fn node_usage(&self) -> Option<(String, Usage)>;
    /// The sampling window the figures are averaged over, in seconds.
    fn window_seconds(&self) -> u64 {
        15
    }
}

/// CPU usage per pod, from the node's cgroup accounting.
pub trait PodMetrics: Send + Sync {
    /// The pod's recent CPU usage in millicores; None when there is no sample yet.
    fn cpu_millicores(&self, pod_uid: &str) -> Option<u64>;
}
