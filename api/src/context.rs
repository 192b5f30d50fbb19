//! What the API serves from: the object store, the image store, the Services' address
//! allocator, where the node writes container logs, and (when the node provides one) a
//! source of resource usage figures.

use coracle_net::services::allocator::ServiceAllocator;
use coracle_proxy::netns_pool::NetnsPool;
use coracle_runtime::image::ImageStore;
use coracle_store::Store;
use std::path::PathBuf;
use std::sync::Arc;

pub use coracle_config::metrics::{ContainerUsage, MetricsSource, Usage};

/// Where pods' network namespaces are, and who can make sockets inside them.
#[derive(Clone)]
pub struct Sandboxes {
    pub paths: Arc<dyn coracle_net::SandboxPaths>,
    pub helpers: Arc<NetnsPool>,
}

/// Everything a request handler may read or change.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub images: Arc<ImageStore>,
    /// ClusterIPs and node ports for every Service write (shared with the manifests folder).
    pub services: Arc<ServiceAllocator>,
    /// `DATA/logs`: `<ns>_<pod>_<uid>/<container>/<n>.log` (see `handlers::logs`).
    pub logs_dir: PathBuf,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    /// Finds pods' network namespaces for port-forward, and the proxy's helpers that make
    /// sockets inside them; None: every pod is reached from the host's namespace.
    pub sandboxes: Option<Sandboxes>,
    /// Port-forward sessions whose second leg is still to come.
    pub port_forwards: Arc<crate::portforward::Sessions>,
}

impl ApiContext {
    /// A context over `store` and `images`, allocating Services' addresses with `services`
    /// and reading logs under `data_dir/logs`, without metrics (the metrics API then lists
    /// nothing).
    pub fn new(
        store: Store,
        images: Arc<ImageStore>,
        services: Arc<ServiceAllocator>,
        data_dir: &std::path::Path,
    ) -> ApiContext {
        ApiContext {
            store,
            images,
            services,
            logs_dir: data_dir.join("logs"),
            metrics: None,
            sandboxes: None,
            port_forwards: Default::default(),
        }
    }

    /// The same context with a metrics source.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSource>) -> ApiContext {
        self.metrics = Some(metrics);
        self
    }

    /// The same context finding pods' network namespaces through `paths` and making sockets
    /// in them with `helpers`.
    pub fn with_sandboxes(mut self, paths: Arc<dyn coracle_net::SandboxPaths>, helpers: Arc<NetnsPool>) -> ApiContext {
        self.sandboxes = Some(Sandboxes { paths, helpers });
        self
    }
}
