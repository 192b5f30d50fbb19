//! coracled: Kubernetes' workload model on one board — the crate that wires the layers.
//!
//! Data flows one way: the API changes the store; the store tells its watchers; the
//! controllers and the node reconcile and write status back through the store. Each layer is
//! its own crate, so Cargo refuses an import that runs back up (docs/ARCHITECTURE.md); this
//! crate only builds them in order, and re-exports them under their old module names for the
//! tests and benchmarks.

pub mod board_claims;
pub mod cli;
pub mod malloc_arenas;
pub mod multicall;
pub mod panic_policy;

pub use coracle_api as api;
pub use coracle_api::{admission, manifests};
pub use coracle_controllers as controllers;
pub use coracle_net as net;
pub use coracle_net::services;
pub use coracle_node as node;
pub use coracle_proxy as proxy;
pub use coracle_runtime as runtime;
pub use coracle_runtime::{cgroups, image};
pub use coracle_store as store;
pub use coracle_store::events;
pub use coracle_watchdog as systemd;
