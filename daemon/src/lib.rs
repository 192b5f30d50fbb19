//! coracled: Kubernetes' workload model on one board.
//!
//! Data flows one way: the API changes the store; the store tells its watchers; the
//! controllers and the node reconcile and write status back through the store.

pub mod admission;
pub mod api;
pub mod cgroups;
pub mod cli;
pub mod controllers;
pub mod events;
pub mod image;
pub mod manifests;
pub mod multicall;
pub mod net;
pub mod node;
pub mod proxy;
pub mod runtime;
pub mod services;
pub mod store;
pub mod systemd;
