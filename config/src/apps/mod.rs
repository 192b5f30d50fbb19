//! The `apps/v1` API group: deployments and replica sets.

pub mod deployment;
pub mod replicaset;

pub use deployment::*;
pub use replicaset::*;
