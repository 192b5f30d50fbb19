//! What the API serves from: the object store, the image store, where the node writes
//! container logs, and (when the node provides one) a source of resource usage figures.

use crate::image::ImageStore;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

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

/// Everything a request handler may read or change.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub images: Arc<ImageStore>,
    /// `DATA/logs`: `<ns>_<pod>_<uid>/<container>/<n>.log` (see `handlers::logs`).
    pub logs_dir: PathBuf,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    /// Finds pods' network namespaces for port-forward; None: every pod is reached from the
    /// host's namespace.
    pub sandboxes: Option<Arc<dyn crate::net::SandboxPaths>>,
}

impl ApiContext {
    /// A context over `store` and `images`, reading logs under `data_dir/logs`, without
    /// metrics (the metrics API then lists nothing).
    pub fn new(store: Store, images: Arc<ImageStore>, data_dir: &std::path::Path) -> ApiContext {
        ApiContext { store, images, logs_dir: data_dir.join("logs"), metrics: None, sandboxes: None }
    }

    /// The same context with a metrics source.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSource>) -> ApiContext {
        self.metrics = Some(metrics);
        self
    }

    /// The same context finding pods' network namespaces through `sandboxes`.
    pub fn with_sandboxes(mut self, sandboxes: Arc<dyn crate::net::SandboxPaths>) -> ApiContext {
        self.sandboxes = Some(sandboxes);
        self
    }
}
