//! Controllers: level-triggered loops that read the store and write the difference.

pub mod clock;
pub mod deployment;
pub mod endpoints;
pub mod garbage_collector;
pub mod hpa;
pub mod ownership;
pub mod pod_state;
pub mod replicaset;
pub mod runner;
pub mod service;
pub mod service_account;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use runner::ControllerContext;

use coracle_store::events::Recorder;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How the workload controllers run; every default matches Kubernetes.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Every object is reconciled at least this often, events or not.
    pub resync: Duration,
    pub hpa: hpa::HpaSettings,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings { resync: Duration::from_secs(30), hpa: hpa::HpaSettings::default() }
    }
}

/// Starts the ReplicaSet, Deployment and HorizontalPodAutoscaler controllers on the
/// runner, one thread each; they return once the store shuts down. (The garbage collector
/// and the endpoints controller are started on their own, on the same runner:
/// `garbage_collector::spawn_garbage_collector`, `endpoints::spawn_endpoints_controller`.)
pub fn spawn_controllers(
    ctx: &ControllerContext,
    recorder: Recorder,
    metrics: Arc<dyn hpa::PodMetrics>,
    settings: &ControllerSettings,
) -> Vec<JoinHandle<()>> {
    let (store, clock) = (&ctx.store, clock::Clock::system());
    let rs = replicaset::ReplicaSetController::new(store.clone(), recorder.clone(), clock.clone());
    let deploy = deployment::DeploymentController::new(store.clone(), recorder.clone(), clock.clone());
    let hpa = hpa::HpaController::new(store.clone(), recorder, clock, metrics, settings.hpa.clone());
    vec![
        runner::spawn(ctx, rs, settings.resync),
        runner::spawn(ctx, deploy, settings.resync),
        runner::spawn(ctx, hpa, settings.resync),
    ]
}
