//! An autoscaler's status: conditions AbleToScale / ScalingActive / ScalingLimited, the
//! CPU figure, and whether a change is worth a write to flash.

use coracle_config::autoscaling::{HpaStatus, MetricStatus, MetricValueStatus, ResourceMetricStatus};
use coracle_config::meta::Condition;
use coracle_config::Quantity;
use std::time::SystemTime;

pub const ABLE_TO_SCALE: &str = "AbleToScale";
pub const SCALING_ACTIVE: &str = "ScalingActive";
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// Sets a condition; the transition time moves only when the status does (`setCondition`).
pub fn set_condition(
    status: &mut HpaStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
    now: SystemTime,
) {
    let value = if value { "True" } else { "False" };
    let now = coracle_config::time::rfc3339(now);
    let message = message.into();
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Some(now);
            }
            c.status = value.into();
            c.reason = reason.into();
            c.message = message;
        }
        None => status.conditions.push(Condition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.into(),
            message,
            last_transition_time: Some(now),
            ..Default::default()
        }),
    }
}

/// The CPU figure for `currentMetrics`.
pub fn cpu_metric(utilization: i32, average_millicores: i64) -> MetricStatus {
    MetricStatus {
        type_: "Resource".into(),
        resource: Some(ResourceMetricStatus {
            name: "cpu".into(),
            current: MetricValueStatus {
                average_utilization: Some(utilization),
                average_value: Some(Quantity::from_milli(average_millicores)),
                ..Default::default()
            },
        }),
    }
}

/// The parts of a status worth persisting: replica counts, scale time, generation and
/// each condition's status and reason. CPU figures and messages move every sync and stay
/// in memory.
fn durable(status: &HpaStatus) -> HpaStatus {
    let mut s = status.clone();
    s.current_metrics.clear();
    for c in &mut s.conditions {
        c.message.clear();
        c.last_transition_time = None;
    }
    s
}

/// True when the change from `old` to `new` should reach disk.
pub fn meaningful_change(old: Option<&HpaStatus>, new: &HpaStatus) -> bool {
    old.map(durable) != Some(durable(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cpu_figures_alone_are_not_worth_persisting() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut a = HpaStatus { current_replicas: 2, desired_replicas: 2, ..Default::default() };
        set_condition(&mut a, SCALING_ACTIVE, true, "ValidMetricFound", "ok", t0);
        let mut b = a.clone();
        b.current_metrics = vec![cpu_metric(40, 40)];
        assert!(!meaningful_change(Some(&a), &b));
        set_condition(&mut b, SCALING_ACTIVE, false, "FailedGetResourceMetric", "no", t0 + Duration::from_secs(1));
        assert!(meaningful_change(Some(&a), &b));
        assert_ne!(a.conditions[0].last_transition_time, b.conditions[0].last_transition_time);
        assert!(meaningful_change(None, &a));
    }
}
