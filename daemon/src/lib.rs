//! coracled: Kubernetes' workload model on one board.
//!
//! Data flows one way: the API changes the store; the store tells its watchers; the
//! controllers and the node reconcile and write status back through the store.

pub mod store;
