//! Controllers: level-triggered loops that read the store and write the difference.

pub mod garbage_collector;
pub mod clock;
pub mod ownership;
pub mod pod_state;
pub mod replicaset;
pub mod runner;

#[cfg(test)]
mod test_support;
