//! The controllers on their own threads, as the daemon runs them: a rollout interrupted
//! by a daemon restart finishes after it.

use super::test_support::{deployment, mark_ready};
use super::*;
use coracle_config::apps::{Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment};
use coracle_config::core::Pod;
use coracle_config::object::Object;
use coracle_config::IntOrString;
use coracle_store::{Store, Typed};
use std::path::Path;
use std::time::SystemTime;

/// The node has not sampled anything yet.
struct NoSamples;

impl hpa::PodMetrics for NoSamples {
    fn cpu_millicores(&self, _pod_uid: &str) -> Option<u64> {
        None
    }
}

struct Daemon {
    store: Store,
    handles: Vec<JoinHandle<()>>,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let store = Store::open(dir).unwrap();
        let recorder = Recorder::new(store.clone(), "controllers", "board");
        let settings = ControllerSettings { resync: Duration::from_secs(1), ..Default::default() };
        let ctx = ControllerContext::new(store.clone(), None);
        let handles = spawn_controllers(&ctx, recorder, Arc::new(NoSamples), &settings);
        Daemon { store, handles }
    }

    fn stop(self) {
        self.store.shutdown().unwrap();
        for h in self.handles {
            h.join().unwrap();
        }
    }

    fn pods(&self) -> Vec<Typed<Pod>> {
        self.store.list_as(None, None)
    }

    fn sets(&self) -> Vec<Typed<ReplicaSet>> {
        self.store.list_as(None, None)
    }

    fn deployment(&self) -> Deployment {
        (*self.store.get_as::<Deployment>("default", "web").unwrap()).clone()
    }

    /// Plays the kubelet (every pod becomes Ready) until `done` holds.
    fn run_until(&self, what: &str, done: impl Fn(&Daemon) -> bool) {
        for _ in 0..1000 {
            for p in self.pods().iter().filter(|p| !p.is_ready()) {
                mark_ready(&self.store, p, SystemTime::now());
            }
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("gave up waiting for {what}");
    }
}

fn rolled_out(d: &Daemon, image: &str) -> bool {
    let dep = d.deployment();
    let st = dep.status.clone().unwrap_or_default();
    st.observed_generation == Some(dep.metadata.generation)
        && st.updated_replicas == Some(4)
        && st.available_replicas == Some(4)
        && st.replicas == Some(4)
        && d.pods().len() == 4
        && d.pods().iter().all(|p| p.spec.containers[0].image == image)
}

#[test]
fn a_rollout_interrupted_by_a_restart_finishes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let mut d = deployment("web", 4, "app:1");
    d.spec.strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(1)),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    });
    daemon.store.create(Object::Deployment(d)).unwrap();
    daemon.run_until("the first rollout", |d| rolled_out(d, "app:1"));

    let mut d = daemon.deployment();
    d.spec.template.spec.containers[0].image = "app:2".into();
    daemon.store.update(Object::Deployment(d)).unwrap();
    // Stop mid-rollout: the new set has its first (unready) pod, the old one still runs.
    for _ in 0..500 {
        if daemon.pods().iter().any(|p| p.spec.containers[0].image == "app:2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(daemon.sets().len(), 2);
    daemon.stop();

    let daemon = Daemon::start(dir.path());
    daemon.run_until("the rollout to finish after the restart", |d| rolled_out(d, "app:2"));
    let sets = daemon.sets();
    assert_eq!(sets.len(), 2, "the restart reused the new set");
    let mut sizes: Vec<i32> = sets.iter().map(|rs| rs.spec.replicas.unwrap()).collect();
    sizes.sort();
    assert_eq!(sizes, [0, 4]);
    daemon.stop();
}
