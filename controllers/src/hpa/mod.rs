//! The HorizontalPodAutoscaler controller: every sync period, compares the target's pods'
//! CPU utilization (from the node's cgroup accounting) with the goal, stabilizes and
//! limits the recommendation, rescales the Deployment or ReplicaSet, and reports status,
//! conditions and events as Kubernetes does.

mod behavior;
mod replica_calculator;
mod status;

#[cfg(test)]
mod tests;

pub use behavior::{Rules, ScaleHistory, Select};
pub use replica_calculator::{cpu_replicas, CalculatorSettings, CpuRecommendation, PodMetrics};

use super::clock::Clock;
use super::runner::{self, ObjectKey, Reconciler, SyncResult};
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::autoscaling::{HorizontalPodAutoscaler, HpaStatus};
use coracle_config::core::Pod;
use coracle_config::meta::LabelSelector;
use coracle_config::object::{Object, Resource, ResourceInfo};
use coracle_store::events::{EventType, Recorder};
use coracle_store::{Store, StoreError, Typed, WatchEvent, WatchFilter};
use status::{set_condition, ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The autoscaler's timing; every default matches kube-controller-manager's.
#[derive(Clone, Debug)]
pub struct HpaSettings {
    /// How often each autoscaler is evaluated.
    pub sync_period: Duration,
    /// The scale-down stabilization window for autoscalers without `behavior`.
    pub downscale_stabilization: Duration,
    pub calculator: CalculatorSettings,
}

impl Default for HpaSettings {
    fn default() -> Self {
        HpaSettings {
            sync_period: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(300),
            calculator: CalculatorSettings::default(),
        }
    }
}

/// Scales Deployments and ReplicaSets by CPU utilization.
pub struct HpaController {
    store: Store,
    recorder: Recorder,
    clock: Clock,
    metrics: Arc<dyn PodMetrics>,
    settings: HpaSettings,
    history: HashMap<ObjectKey, ScaleHistory>,
}

/// What the target of an autoscaler looks like through its scale subresource.
struct Target {
    object: Arc<Object>,
    replicas: i32,
    selector: LabelSelector,
}

const CPU_METRIC_NAME: &str = "cpu resource utilization (percentage of request)";

impl HpaController {
    /// A controller reading pod CPU usage from `metrics`.
    pub fn new(
        store: Store,
        recorder: Recorder,
        clock: Clock,
        metrics: Arc<dyn PodMetrics>,
        settings: HpaSettings,
    ) -> HpaController {
        HpaController {
            store,
            recorder: recorder.for_component("horizontal-pod-autoscaler"),
            clock,
            metrics,
            settings,
            history: HashMap::new(),
        }
    }

    fn target(&self, hpa: &HorizontalPodAutoscaler) -> Result<Target, String> {
        let r = &hpa.spec.scale_target_ref;
        let ns = &hpa.metadata.namespace;
        let not_found = |info: &ResourceInfo| format!("{} {:?} not found", info.qualified_plural(), r.name);
        match r.kind.as_str() {
            "Deployment" => {
                let d = self.store.get_as::<Deployment>(ns, &r.name).ok_or_else(|| not_found(&Deployment::INFO))?;
                let (replicas, selector) = (d.spec.replicas.unwrap_or(1), d.spec.selector.clone());
                Ok(Target { object: d.into_object(), replicas, selector })
            }
            "ReplicaSet" => {
                let rs = self.store.get_as::<ReplicaSet>(ns, &r.name).ok_or_else(|| not_found(&ReplicaSet::INFO))?;
                let (replicas, selector) = (rs.spec.replicas.unwrap_or(1), rs.spec.selector.clone());
                Ok(Target { object: rs.into_object(), replicas, selector })
            }
            other => Err(format!("the kind {other:?} has no scale subresource")),
        }
    }

    fn pods(&self, namespace: &str, selector: &LabelSelector) -> Vec<Typed<Pod>> {
        if selector.is_empty() {
            return Vec::new();
        }
        self.store.list_as(Some(namespace), Some(selector))
    }

    /// Stabilizes and limits a metric recommendation, setting AbleToScale and ScalingLimited.
    fn normalize(
        &mut self,
        key: &ObjectKey,
        hpa: &HorizontalPodAutoscaler,
        st: &mut HpaStatus,
        current: i32,
        desired: i32,
        now: SystemTime,
    ) -> i32 {
        let min = hpa.spec.min_replicas.unwrap_or(1);
        let max = hpa.spec.max_replicas;
        let history = self.history.entry(key.clone()).or_default();
        let (stabilized, limited) = match &hpa.spec.behavior {
            None => {
                let (stabilized, held) = history.stabilize_default(desired, self.settings.downscale_stabilization, now);
                if held {
                    set_condition(st, ABLE_TO_SCALE, true, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation", now);
                } else {
                    set_condition(
                        st,
                        ABLE_TO_SCALE,
                        true,
                        "ReadyForNewScale",
                        "recommended size matches current size",
                        now,
                    );
                }
                (stabilized, behavior::limit_default(current, stabilized, min, max))
            }
            Some(b) => {
                let (up, down) = behavior::resolve(b);
                let held = history.stabilize(current, desired, &up, &down, now);
                if held.replicas != desired {
                    set_condition(st, ABLE_TO_SCALE, true, held.reason, held.message, now);
                } else {
                    set_condition(
                        st,
                        ABLE_TO_SCALE,
                        true,
                        "ReadyForNewScale",
                        "recommended size matches current size",
                        now,
                    );
                }
                (held.replicas, history.limit(current, held.replicas, (min, max), &up, &down, now))
            }
        };
        set_condition(st, SCALING_LIMITED, limited.replicas != stabilized, limited.reason, limited.message, now);
        limited.replicas
    }

    /// Sets the target's spec.replicas (409 when it changed under us: the next pass retries).
    fn rescale(&self, target: &Target, replicas: i32) -> Result<(), StoreError> {
        let mut next = (*target.object).clone();
        match &mut next {
            Object::Deployment(d) => d.spec.replicas = Some(replicas),
            Object::ReplicaSet(rs) => rs.spec.replicas = Some(replicas),
            _ => unreachable!("targets are deployments or replica sets"),
        }
        self.store.update(next).map(drop)
    }

    fn write_status(&self, hpa: &HorizontalPodAutoscaler, status: HpaStatus) -> Result<(), StoreError> {
        if hpa.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let persist = status::meaningful_change(hpa.status.as_ref(), &status);
        let mut next = hpa.clone();
        next.status = Some(status);
        self.store.update_status(Object::HorizontalPodAutoscaler(next), persist).map(drop)
    }

    fn sync(&mut self, key: &ObjectKey) -> SyncResult {
        let Some(typed) = self.store.get_as::<HorizontalPodAutoscaler>(&key.namespace, &key.name) else {
            self.history.remove(key);
            return Ok(None);
        };
        let (obj, hpa) = (typed.object(), &*typed);
        let requeue = Some(self.settings.sync_period);
        let now = self.clock.now();
        let mut st = hpa.status.clone().unwrap_or_default();
        st.observed_generation = Some(hpa.metadata.generation);
        let target = match self.target(hpa) {
            Ok(t) => t,
            Err(e) => {
                let message = format!("the HPA controller was unable to get the target's current scale: {e}");
                set_condition(&mut st, ABLE_TO_SCALE, false, "FailedGetScale", message, now);
                self.recorder.record(obj, EventType::Warning, "FailedGetScale", e);
                self.write_status(hpa, st)?;
                return Ok(requeue);
            }
        };
        set_condition(
            &mut st,
            ABLE_TO_SCALE,
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now,
        );
        let current = target.replicas;
        let min = hpa.spec.min_replicas.unwrap_or(1);
        let max = hpa.spec.max_replicas;
        let (desired, reason) = if current == 0 && min != 0 {
            set_condition(
                &mut st,
                SCALING_ACTIVE,
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
            );
            (0, String::new())
        } else if current > max {
            (max, "Current number of replicas above Spec.MaxReplicas".to_string())
        } else if current < min {
            (min, "Current number of replicas below Spec.MinReplicas".to_string())
        } else {
            let Some(goal) = hpa.cpu_target_utilization() else {
                let message = "the HPA was unable to compute the replica count: only cpu resource utilization (percentage of request) metrics are supported";
                set_condition(&mut st, SCALING_ACTIVE, false, "InvalidMetricSourceType", message, now);
                self.recorder.record(obj, EventType::Warning, "InvalidMetricSourceType", message);
                st.current_replicas = current;
                st.desired_replicas = current;
                self.write_status(hpa, st)?;
                return Ok(requeue);
            };
            let pods = self.pods(&hpa.metadata.namespace, &target.selector);
            match cpu_replicas(&self.settings.calculator, current, goal, &pods, &*self.metrics, now) {
                Err(e) => {
                    let message =
                        format!("the HPA was unable to compute the replica count: failed to get cpu utilization: {e}");
                    set_condition(&mut st, SCALING_ACTIVE, false, "FailedGetResourceMetric", message, now);
                    self.recorder.record(
                        obj,
                        EventType::Warning,
                        "FailedGetResourceMetric",
                        format!("failed to get cpu utilization: {e}"),
                    );
                    let invalid = format!("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: {e}");
                    self.recorder.record(obj, EventType::Warning, "FailedComputeMetricsReplicas", invalid);
                    st.current_replicas = current;
                    st.desired_replicas = current;
                    st.current_metrics.clear();
                    self.write_status(hpa, st)?;
                    return Ok(requeue);
                }
                Ok(rec) => {
                    let message =
                        format!("the HPA was able to successfully calculate a replica count from {CPU_METRIC_NAME}");
                    set_condition(&mut st, SCALING_ACTIVE, true, "ValidMetricFound", message, now);
                    st.current_metrics = vec![status::cpu_metric(rec.utilization, rec.average_millicores)];
                    let reason = match rec.replicas.cmp(&current) {
                        std::cmp::Ordering::Greater => format!("{CPU_METRIC_NAME} above target"),
                        std::cmp::Ordering::Less => "All metrics below target".to_string(),
                        std::cmp::Ordering::Equal => String::new(),
                    };
                    (self.normalize(key, hpa, &mut st, current, rec.replicas, now), reason)
                }
            }
        };
        let rescale = desired != current && !(current == 0 && min != 0);
        if rescale {
            if let Err(e) = self.rescale(&target, desired) {
                set_condition(
                    &mut st,
                    ABLE_TO_SCALE,
                    false,
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {e}"),
                    now,
                );
                self.recorder.record(
                    obj,
                    EventType::Warning,
                    "FailedRescale",
                    format!("New size: {desired}; reason: {reason}; error: {e}"),
                );
                self.write_status(hpa, st)?;
                return Err(e);
            }
            log::info!(
                "hpa {key}: rescaled {} {} from {current} to {desired}: {reason}",
                hpa.spec.scale_target_ref.kind,
                hpa.spec.scale_target_ref.name
            );
            set_condition(
                &mut st,
                ABLE_TO_SCALE,
                true,
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
                now,
            );
            self.recorder.record(
                obj,
                EventType::Normal,
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {reason}"),
            );
            if let Some(b) = &hpa.spec.behavior {
                let (up, down) = behavior::resolve(b);
                let keep = behavior::longest_period(&up, &down);
                self.history.entry(key.clone()).or_default().record_scale(current, desired, keep, now);
            }
            st.last_scale_time = Some(coracle_config::time::rfc3339(now));
        }
        st.current_replicas = current;
        st.desired_replicas = if rescale { desired } else { current };
        self.write_status(hpa, st)?;
        Ok(requeue)
    }
}

impl Reconciler for HpaController {
    fn name(&self) -> &'static str {
        "horizontal-pod-autoscaler"
    }

    fn watches(&self) -> WatchFilter {
        // Targets and pods are read every sync period, as Kubernetes' autoscaler does.
        WatchFilter::kinds(&[&HorizontalPodAutoscaler::INFO])
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
        runner::keys_of::<HorizontalPodAutoscaler>(store)
    }

    fn keys_for(&self, _store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        match event.object().downcast_ref::<HorizontalPodAutoscaler>() {
            Some(h) => vec![ObjectKey::new(&h.metadata.namespace, &h.metadata.name)],
            None => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        self.sync(key)
    }
}
