//! Kubernetes' replica calculation for CPU utilization: `desired = ceil(ready pods ×
//! utilization / target)`, nothing within the tolerance, unready and metric-less pods
//! counted so that they never cause a scale in the wrong direction.

use coracle_config::core::Pod;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

pub use coracle_config::metrics::PodMetrics;

/// The knobs of the calculation (Kubernetes' controller-manager flags).
#[derive(Clone, Debug)]
pub struct CalculatorSettings {
    /// No change while |1 − ratio| is within this.
    pub tolerance: f64,
    /// After a pod starts, its samples count only once it is Ready and a window has passed.
    pub cpu_initialization_period: Duration,
    /// A pod that went unready this soon after starting counts as never ready.
    pub initial_readiness_delay: Duration,
    /// How much time one CPU sample covers.
    pub metric_window: Duration,
}

impl Default for CalculatorSettings {
    fn default() -> Self {
        CalculatorSettings {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
            metric_window: Duration::from_secs(15),
        }
    }
}

/// The calculation's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuRecommendation {
    pub replicas: i32,
    /// Average utilization of the pods with samples, in percent of their requests.
    pub utilization: i32,
    /// Average usage of those pods, in millicores.
    pub average_millicores: i64,
}

/// Pods split as Kubernetes' `groupPods` does.
struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    samples: BTreeMap<String, i64>,
}

fn parse(t: Option<&str>) -> Option<SystemTime> {
    t.and_then(coracle_config::time::parse)
}

fn group<P: Borrow<Pod>>(pods: &[P], metrics: &dyn PodMetrics, s: &CalculatorSettings, now: SystemTime) -> Groups {
    let mut g = Groups { ready: 0, unready: BTreeSet::new(), missing: BTreeSet::new(), samples: BTreeMap::new() };
    for pod in pods.iter().map(<P as Borrow<Pod>>::borrow) {
        let uid = pod.metadata.uid.clone();
        if pod.metadata.deletion_timestamp.is_some() || pod.phase() == "Failed" {
            continue;
        }
        if pod.phase() == "Pending" {
            g.unready.insert(uid);
            continue;
        }
        let Some(usage) = metrics.cpu_millicores(&uid) else {
            g.missing.insert(uid);
            continue;
        };
        let ready = pod.condition("Ready");
        let started = parse(pod.status.as_ref().and_then(|st| st.start_time.as_deref()));
        let unready = match (ready, started) {
            (Some(c), Some(started)) => {
                let transition = parse(c.last_transition_time.as_deref()).unwrap_or(started);
                if started + s.cpu_initialization_period > now {
                    // Still initializing: count it only when Ready for at least a sample window.
                    c.status == "False" || now < transition + s.metric_window
                } else {
                    // Unready and never ready since it started.
                    c.status == "False" && started + s.initial_readiness_delay > transition
                }
            }
            _ => true,
        };
        if unready {
            g.unready.insert(uid);
            continue;
        }
        g.ready += 1;
        g.samples.insert(uid, usage as i64);
    }
    g
}

/// Each pod's summed `requests.cpu`; an error names the first container without one.
fn requests<P: Borrow<Pod>>(pods: &[P]) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods.iter().map(<P as Borrow<Pod>>::borrow) {
        let mut sum = 0;
        for c in &pod.spec.containers {
            match c.resources.requests.get("cpu") {
                Some(q) => sum += q.milli_value(),
                None => {
                    return Err(format!("missing request for cpu in container {} of Pod {}", c.name, pod.metadata.name))
                }
            }
        }
        out.insert(pod.metadata.uid.clone(), sum);
    }
    Ok(out)
}

/// (usage ratio, utilization %, average millicores) over the sampled pods.
fn utilization_ratio(
    samples: &BTreeMap<String, i64>,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (uid, usage) in samples {
        if let Some(r) = requests.get(uid) {
            used += usage;
            requested += r;
            n += 1;
        }
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = (used * 100 / requested) as i32;
    Ok((f64::from(utilization) / f64::from(target), utilization, used / n))
}

/// The replica count CPU utilization asks for (`GetResourceReplicas`).
pub fn cpu_replicas<P: Borrow<Pod>>(
    s: &CalculatorSettings,
    current: i32,
    target: i32,
    pods: &[P],
    metrics: &dyn PodMetrics,
    now: SystemTime,
) -> Result<CpuRecommendation, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    if target <= 0 {
        return Err(format!("invalid target utilization {target}: must be positive"));
    }
    let g = group(pods, metrics, s, now);
    if g.samples.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = requests(pods)?;
    let (ratio, utilization, average_millicores) = utilization_ratio(&g.samples, &requests, target)?;
    let answer = |replicas| Ok(CpuRecommendation { replicas, utilization, average_millicores });
    let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if (1.0 - ratio).abs() <= s.tolerance {
            return answer(current);
        }
        return answer((ratio * g.ready as f64).ceil() as i32);
    }
    // Fill the gaps pessimistically for the direction of the change.
    let mut samples = g.samples.clone();
    if ratio < 1.0 {
        // Scaling down: a pod without a sample is assumed busy (100%, or the target if higher).
        let fallback = i64::from(target.max(100));
        for uid in &g.missing {
            samples.insert(uid.clone(), requests.get(uid).copied().unwrap_or(0) * fallback / 100);
        }
    } else if ratio > 1.0 {
        // Scaling up: a pod without a sample is assumed idle.
        for uid in &g.missing {
            samples.insert(uid.clone(), 0);
        }
    }
    if scale_up_with_unready {
        for uid in &g.unready {
            samples.insert(uid.clone(), 0);
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&samples, &requests, target)?;
    let flips = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
    if (1.0 - new_ratio).abs() <= s.tolerance || flips {
        return answer(current);
    }
    let replicas = (new_ratio * samples.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return answer(current);
    }
    answer(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{Container, PodStatus, ResourceRequirements};
    use coracle_config::meta::Condition;
    use coracle_config::Quantity;
    use std::collections::HashMap;

    /// Samples keyed by pod uid, standing in for the node's cgroup readings.
    struct Samples(HashMap<String, u64>);

    impl PodMetrics for Samples {
        fn cpu_millicores(&self, pod_uid: &str) -> Option<u64> {
            self.0.get(pod_uid).copied()
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    const NOW: u64 = 3600;

    /// A pod requesting 100m; `ready` None leaves it Pending.
    fn pod(name: &str, ready: Option<bool>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.uid = name.into();
        let mut resources = ResourceRequirements::default();
        resources.requests.insert("cpu".into(), Quantity::parse("100m").unwrap());
        p.spec.containers = vec![Container { name: "c".into(), resources, ..Default::default() }];
        p.status = Some(match ready {
            None => PodStatus { phase: Some("Pending".into()), ..Default::default() },
            Some(r) => PodStatus {
                phase: Some("Running".into()),
                start_time: Some(coracle_config::time::rfc3339(at(0))),
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: if r { "True" } else { "False" }.into(),
                    last_transition_time: Some(coracle_config::time::rfc3339(at(10))),
                    ..Default::default()
                }],
                ..Default::default()
            },
        });
        p
    }

    fn calc(current: i32, target: i32, pods: &[Pod], usage: &[(&str, u64)]) -> Result<CpuRecommendation, String> {
        let metrics = Samples(usage.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        cpu_replicas(&CalculatorSettings::default(), current, target, pods, &metrics, at(NOW))
    }

    fn ready(names: &[&str]) -> Vec<Pod> {
        names.iter().map(|n| pod(n, Some(true))).collect()
    }

    #[test]
    fn replica_table() {
        let abc = ready(&["a", "b", "c"]);
        // (current, target %, usage per pod in millicores, expected replicas, utilization)
        let cases: &[(i32, i32, [u64; 3], i32, i32)] = &[
            (3, 50, [50, 50, 50], 3, 50),     // on target
            (3, 50, [54, 54, 54], 3, 54),     // ratio 1.08: within tolerance
            (3, 50, [56, 56, 56], 4, 56),     // ratio 1.12: ceil(3.36)
            (3, 50, [100, 100, 100], 6, 100), // ratio 2
            (3, 50, [10, 10, 10], 1, 10),     // ratio 0.2: ceil(0.6)
            (3, 50, [46, 46, 46], 3, 46),     // ratio 0.92: within tolerance
        ];
        for (current, target, usage, want, utilization) in cases {
            let got = calc(*current, *target, &abc, &[("a", usage[0]), ("b", usage[1]), ("c", usage[2])]).unwrap();
            assert_eq!((got.replicas, got.utilization), (*want, *utilization), "usage {usage:?}");
        }
    }

    #[test]
    fn missing_metrics_count_as_idle_up_and_busy_down() {
        let abc = ready(&["a", "b", "c"]);
        // Up: (100+100+0)/300 = 66% of 50 → ratio 1.32 → ceil(3.96) = 4, not 6.
        assert_eq!(calc(3, 50, &abc, &[("a", 100), ("b", 100)]).unwrap().replicas, 4);
        // Down: (10+10+100)/300 = 40% of 50 → 0.8 → ceil(2.4) = 3, not 1.
        assert_eq!(calc(3, 50, &abc, &[("a", 10), ("b", 10)]).unwrap().replicas, 3);
    }

    #[test]
    fn unready_pods_count_as_idle_when_scaling_up() {
        let mut pods = ready(&["a", "b"]);
        pods.push(pod("pending", None));
        pods.push(pod("unready", Some(false)));
        let got = calc(4, 50, &pods, &[("a", 100), ("b", 100), ("unready", 500)]).unwrap();
        // (100+100+0+0)/400 = 50%: exactly on target once unready pods count as idle.
        assert_eq!(got.replicas, 4);
        assert_eq!(got.utilization, 100, "reported utilization is over ready pods only");
    }

    #[test]
    fn errors_name_what_is_missing() {
        let mut pods = ready(&["a"]);
        pods[0].spec.containers[0].resources.requests.clear();
        let err = calc(1, 50, &pods, &[("a", 10)]).unwrap_err();
        assert_eq!(err, "missing request for cpu in container c of Pod a");
        let err = calc(1, 50, &ready(&["a"]), &[]).unwrap_err();
        assert!(err.contains("did not receive metrics"), "{err}");
        assert!(calc(1, 50, &[], &[]).unwrap_err().contains("no pods"));
    }
}
