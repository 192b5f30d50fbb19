//! The autoscaler against a real store: a deployment, pods the test keeps Ready, and CPU
//! samples the test sets as the node's cgroup reader would.

use super::*;
use crate::test_support::{deployment, labels, World};
use coracle_config::autoscaling::{CrossVersionObjectReference, MetricSpec, MetricTarget, ResourceMetricSource};
use coracle_config::core::Container;
use coracle_config::meta::Condition;
use coracle_config::Quantity;
use std::sync::Mutex;

/// CPU samples by pod uid, set by the test.
#[derive(Default)]
struct Samples(Mutex<HashMap<String, u64>>);

impl PodMetrics for Samples {
    fn cpu_millicores(&self, pod_uid: &str) -> Option<u64> {
        self.0.lock().unwrap().get(pod_uid).copied()
    }
}

impl Samples {
    fn set_all(&self, pods: &[Pod], millicores: u64) {
        let mut m = self.0.lock().unwrap();
        for p in pods {
            m.insert(p.metadata.uid.clone(), millicores);
        }
    }
}

struct Setup {
    w: World,
    samples: Arc<Samples>,
    hpa: HpaController,
}

fn setup(with_requests: bool) -> Setup {
    let w = World::new();
    w.create(deployment("web", 2, "app:1"));
    for i in 0..2 {
        let mut p = Pod::default();
        p.metadata.name = format!("web-{i}");
        p.metadata.namespace = "default".into();
        p.metadata.labels = labels(&[("app", "web")]);
        let mut c = Container { name: "c".into(), image: "app:1".into(), ..Default::default() };
        if with_requests {
            c.resources.requests.insert("cpu".into(), Quantity::parse("100m").unwrap());
        }
        p.spec.containers = vec![c];
        let stored = w.create(p);
        w.mark_ready(stored.downcast_ref::<Pod>().unwrap());
    }
    // Past the CPU initialization period, so every sample counts.
    w.time.advance(Duration::from_secs(600));
    let mut h = HorizontalPodAutoscaler::default();
    h.metadata.name = "web".into();
    h.metadata.namespace = "default".into();
    h.spec.scale_target_ref =
        CrossVersionObjectReference { api_version: "apps/v1".into(), kind: "Deployment".into(), name: "web".into() };
    h.spec.min_replicas = Some(1);
    h.spec.max_replicas = 10;
    h.spec.metrics = vec![MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget { type_: "Utilization".into(), average_utilization: Some(50), ..Default::default() },
        }),
    }];
    w.create(h);
    let samples = Arc::new(Samples::default());
    let hpa = HpaController::new(
        w.store.clone(),
        w.recorder.clone(),
        w.clock.clone(),
        samples.clone(),
        HpaSettings::default(),
    );
    Setup { w, samples, hpa }
}

impl Setup {
    fn sync(&mut self) -> Option<Duration> {
        self.hpa.reconcile(&ObjectKey::new("default", "web")).unwrap()
    }

    fn status(&self) -> HpaStatus {
        let hpa = self.w.store.get_as::<HorizontalPodAutoscaler>("default", "web").unwrap();
        hpa.status.clone().unwrap()
    }

    fn condition(&self, type_: &str) -> Condition {
        self.status().conditions.into_iter().find(|c| c.type_ == type_).unwrap()
    }

    fn replicas(&self) -> i32 {
        self.w.deployment("web").spec.replicas.unwrap()
    }
}

#[test]
fn scales_up_by_utilization_and_reports_it() {
    let mut s = setup(true);
    s.samples.set_all(&s.w.pods(), 90);
    assert_eq!(s.sync(), Some(Duration::from_secs(15)));
    // 90% of requests against a 50% goal: ceil(2 × 1.8) = 4.
    assert_eq!(s.replicas(), 4);
    let st = s.status();
    assert_eq!((st.current_replicas, st.desired_replicas), (2, 4));
    assert!(st.last_scale_time.is_some());
    let cpu = st.current_metrics[0].resource.as_ref().unwrap();
    assert_eq!(cpu.current.average_utilization, Some(90));
    assert_eq!(cpu.current.average_value.unwrap().to_string(), "90m");
    assert_eq!(s.condition("AbleToScale").reason, "SucceededRescale");
    assert_eq!(s.condition("ScalingActive").reason, "ValidMetricFound");
    assert_eq!(s.condition("ScalingLimited").status, "False");
    let events = s.w.events();
    let rescale = events.iter().find(|e| e.reason == "SuccessfulRescale").unwrap();
    assert_eq!(rescale.message, "New size: 4; reason: cpu resource utilization (percentage of request) above target");
}

#[test]
fn scale_down_waits_out_the_stabilization_window() {
    let mut s = setup(true);
    s.samples.set_all(&s.w.pods(), 90);
    s.sync();
    assert_eq!(s.replicas(), 4);
    s.samples.set_all(&s.w.pods(), 10);
    s.w.time.advance(Duration::from_secs(60));
    s.sync();
    assert_eq!(s.replicas(), 4, "held by the recommendation of a minute ago");
    assert_eq!(s.condition("AbleToScale").reason, "ScaleDownStabilized");
    s.w.time.advance(Duration::from_secs(300));
    s.sync();
    // 10% against 50% over the two pods: ceil(2 × 0.2) = 1.
    assert_eq!(s.replicas(), 1);
    assert_eq!(s.status().desired_replicas, 1);
}

#[test]
fn the_cpu_figure_alone_stays_in_memory() {
    let mut s = setup(true);
    s.samples.set_all(&s.w.pods(), 50);
    s.sync();
    assert_eq!(s.replicas(), 2, "on target");
    let file = s.w.dir.path().join("objects/horizontalpodautoscalers/default/web.json");
    let on_disk = std::fs::read(&file).unwrap();
    s.samples.set_all(&s.w.pods(), 52);
    s.sync();
    assert_eq!(s.status().current_metrics[0].resource.as_ref().unwrap().current.average_utilization, Some(52));
    assert_eq!(std::fs::read(&file).unwrap(), on_disk, "a new CPU figure is not written to flash");
}

#[test]
fn pods_without_cpu_requests_are_reported() {
    let mut s = setup(false);
    s.samples.set_all(&s.w.pods(), 90);
    s.sync();
    assert_eq!(s.replicas(), 2);
    let c = s.condition("ScalingActive");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "FailedGetResourceMetric"));
    assert!(c.message.contains("missing request for cpu in container c of Pod web-"), "{}", c.message);
    assert!(s.w.events().iter().any(|e| e.reason == "FailedGetResourceMetric" && e.type_ == "Warning"));
}

#[test]
fn replica_counts_outside_min_max_are_corrected_first() {
    let mut s = setup(true);
    let mut d = s.w.deployment("web");
    d.spec.replicas = Some(12);
    s.w.store.update(d.into()).unwrap();
    s.sync();
    assert_eq!(s.replicas(), 10);
    let events = s.w.events();
    assert!(events
        .iter()
        .any(|e| e.message == "New size: 10; reason: Current number of replicas above Spec.MaxReplicas"));
}
