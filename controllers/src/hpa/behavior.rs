//! What keeps an autoscaler from flapping: stabilization windows over past
//! recommendations, and scaling policies that cap change per period — Kubernetes'
//! defaults without `behavior` (scale-down window, ×2-or-+4 up limit) and `behavior`
//! honored when given.

use coracle_config::autoscaling::{HpaBehavior, HpaScalingPolicy, HpaScalingRules};
use coracle_config::defaults::{scale_down_policies, scale_up_policies};
use std::time::{Duration, SystemTime};

/// How a direction's policies combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the most change.
    Max,
    /// The policy allowing the least change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One direction's rules, with Kubernetes' defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub window: Duration,
    pub select: Select,
    pub policies: Vec<HpaScalingPolicy>,
}

impl Rules {
    fn from_spec(
        spec: Option<&HpaScalingRules>,
        default_window: i32,
        default_policies: Vec<HpaScalingPolicy>,
    ) -> Rules {
        let spec = spec.cloned().unwrap_or_default();
        let select = match spec.select_policy.as_deref() {
            Some("Min") => Select::Min,
            Some("Disabled") => Select::Disabled,
            _ => Select::Max,
        };
        let window = spec.stabilization_window_seconds.unwrap_or(default_window).max(0);
        let policies = if spec.policies.is_empty() { default_policies } else { spec.policies };
        Rules { window: Duration::from_secs(window as u64), select, policies }
    }
}

/// Scale-up and scale-down rules from a `behavior` (absent parts take the defaults).
pub fn resolve(behavior: &HpaBehavior) -> (Rules, Rules) {
    (
        Rules::from_spec(behavior.scale_up.as_ref(), 0, scale_up_policies()),
        Rules::from_spec(behavior.scale_down.as_ref(), 300, scale_down_policies()),
    )
}

/// A limited recommendation and why (ScalingLimited's reason and message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    pub replicas: i32,
    pub reason: &'static str,
    pub message: &'static str,
}

const WITHIN_RANGE: Limited =
    Limited { replicas: 0, reason: "DesiredWithinRange", message: "the desired count is within the acceptable range" };

fn limited(replicas: i32, reason: &'static str, message: &'static str) -> Limited {
    Limited { replicas, reason, message }
}

/// Without `behavior`: min/max, and at most ×2 or +4 up per pass (`convertDesiredReplicasWithRules`).
pub fn limit_default(current: i32, desired: i32, min: i32, max: i32) -> Limited {
    let scale_up_limit = (current * 2).max(4);
    let (maximum, reason, message) = if max > scale_up_limit {
        (scale_up_limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
    } else {
        (max, "TooManyReplicas", "the desired replica count is more than the maximum replica count")
    };
    if desired < min {
        return limited(min, "TooFewReplicas", "the desired replica count is less than the minimum replica count");
    }
    if desired > maximum {
        return limited(maximum, reason, message);
    }
    Limited { replicas: desired, ..WITHIN_RANGE }
}

/// One autoscaler's memory: recent recommendations and scale changes. In memory only, as
/// in Kubernetes; a restart starts the windows afresh.
#[derive(Clone, Debug, Default)]
pub struct ScaleHistory {
    recommendations: Vec<(SystemTime, i32)>,
    scale_ups: Vec<(SystemTime, i32)>,
    scale_downs: Vec<(SystemTime, i32)>,
}

fn after(t: SystemTime, cutoff: SystemTime) -> bool {
    t > cutoff
}

fn cutoff(now: SystemTime, window: Duration) -> SystemTime {
    now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH)
}

impl ScaleHistory {
    /// Without `behavior`: the highest recommendation within the scale-down window
    /// (`stabilizeRecommendation`); true when an older, higher one won.
    pub fn stabilize_default(&mut self, desired: i32, window: Duration, now: SystemTime) -> (i32, bool) {
        let from = cutoff(now, window);
        self.recommendations.retain(|(t, _)| after(*t, from));
        let highest = self.recommendations.iter().map(|(_, r)| *r).fold(desired, i32::max);
        self.recommendations.push((now, desired));
        (highest, highest != desired)
    }

    /// With `behavior`: the recommendation held between the lowest within the scale-up
    /// window and the highest within the scale-down window
    /// (`stabilizeRecommendationWithBehaviors`), with the condition reason and message.
    pub fn stabilize(&mut self, current: i32, desired: i32, up: &Rules, down: &Rules, now: SystemTime) -> Limited {
        let (up_from, down_from) = (cutoff(now, up.window), cutoff(now, down.window));
        let mut up_rec = desired;
        let mut down_rec = desired;
        for (t, r) in &self.recommendations {
            if after(*t, up_from) {
                up_rec = up_rec.min(*r);
            }
            if after(*t, down_from) {
                down_rec = down_rec.max(*r);
            }
        }
        let recommendation = current.max(up_rec).min(down_rec);
        let keep_from = up_from.min(down_from);
        self.recommendations.retain(|(t, _)| after(*t, keep_from));
        self.recommendations.push((now, desired));
        if desired >= current {
            limited(
                recommendation,
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        } else {
            limited(
                recommendation,
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            )
        }
    }

    fn changed_within(events: &[(SystemTime, i32)], period: Duration, now: SystemTime) -> i32 {
        let from = cutoff(now, period);
        events.iter().filter(|(t, _)| after(*t, from)).map(|(_, n)| *n).sum()
    }

    /// The most replicas the policies allow now (`calculateScaleUpLimitWithScalingRules`).
    fn scale_up_limit(&self, current: i32, rules: &Rules, now: SystemTime) -> i32 {
        let pick: fn(i32, i32) -> i32 = match rules.select {
            Select::Disabled => return current,
            Select::Min => i32::min,
            Select::Max => i32::max,
        };
        let mut result = if rules.select == Select::Min { i32::MAX } else { i32::MIN };
        for p in &rules.policies {
            let period = Duration::from_secs(p.period_seconds.max(0) as u64);
            let start = current - Self::changed_within(&self.scale_ups, period, now)
                + Self::changed_within(&self.scale_downs, period, now);
            let proposed = if p.type_ == "Pods" {
                start + p.value
            } else {
                (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            };
            result = pick(result, proposed);
        }
        result
    }

    /// The fewest replicas the policies allow now (`calculateScaleDownLimitWithBehaviors`).
    fn scale_down_limit(&self, current: i32, rules: &Rules, now: SystemTime) -> i32 {
        // Min picks the smallest change, so the largest limit.
        let pick: fn(i32, i32) -> i32 = match rules.select {
            Select::Disabled => return current,
            Select::Min => i32::max,
            Select::Max => i32::min,
        };
        let mut result = if rules.select == Select::Min { i32::MIN } else { i32::MAX };
        for p in &rules.policies {
            let period = Duration::from_secs(p.period_seconds.max(0) as u64);
            let start = current + Self::changed_within(&self.scale_downs, period, now)
                - Self::changed_within(&self.scale_ups, period, now);
            let proposed = if p.type_ == "Pods" {
                start - p.value
            } else {
                (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32
            };
            result = pick(result, proposed);
        }
        result
    }

    /// Caps a stabilized recommendation by (min, max) and the policies
    /// (`convertDesiredReplicasWithBehaviorRate`).
    pub fn limit(
        &self,
        current: i32,
        desired: i32,
        (min, max): (i32, i32),
        up: &Rules,
        down: &Rules,
        now: SystemTime,
    ) -> Limited {
        if desired > current {
            let up_limit = self.scale_up_limit(current, up, now).max(current);
            let (maximum, reason, message) = if max > up_limit {
                (up_limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
            } else {
                (max, "TooManyReplicas", "the desired replica count is more than the maximum replica count")
            };
            if desired > maximum {
                return limited(maximum, reason, message);
            }
        } else if desired < current {
            let down_limit = self.scale_down_limit(current, down, now).min(current);
            let (minimum, reason, message) = if min < down_limit {
                (
                    down_limit,
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (min, "TooFewReplicas", "the desired replica count is less than the minimum replica count")
            };
            if desired < minimum {
                return limited(minimum, reason, message);
            }
        }
        Limited { replicas: desired, ..WITHIN_RANGE }
    }

    /// Remembers a rescale for the policies' periods, forgetting changes older than `keep`.
    pub fn record_scale(&mut self, from: i32, to: i32, keep: Duration, now: SystemTime) {
        let oldest = cutoff(now, keep);
        self.scale_ups.retain(|(t, _)| after(*t, oldest));
        self.scale_downs.retain(|(t, _)| after(*t, oldest));
        if to > from {
            self.scale_ups.push((now, to - from));
        } else if to < from {
            self.scale_downs.push((now, from - to));
        }
    }
}

/// The longest policy period: how long scale changes must be remembered.
pub fn longest_period(up: &Rules, down: &Rules) -> Duration {
    let secs = up.policies.iter().chain(&down.policies).map(|p| p.period_seconds.max(0)).max().unwrap_or(0);
    Duration::from_secs(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn policy(type_: &str, value: i32, period_seconds: i32) -> HpaScalingPolicy {
        HpaScalingPolicy { type_: type_.into(), value, period_seconds }
    }

    #[test]
    fn default_stabilization_keeps_the_highest_recommendation_of_the_window() {
        let mut h = ScaleHistory::default();
        let window = Duration::from_secs(300);
        assert_eq!(h.stabilize_default(5, window, at(0)), (5, false));
        assert_eq!(h.stabilize_default(2, window, at(60)), (5, true));
        assert_eq!(h.stabilize_default(3, window, at(120)), (5, true));
        // The 5 from t=0 has left the window; the 3 from t=120 has not.
        assert_eq!(h.stabilize_default(2, window, at(301)), (3, true));
        assert_eq!(h.stabilize_default(2, window, at(500)), (2, false));
    }

    #[test]
    fn default_limits_are_min_max_and_double_or_four() {
        assert_eq!(limit_default(1, 10, 1, 10).replicas, 4);
        assert_eq!(limit_default(1, 10, 1, 10).reason, "ScaleUpLimit");
        assert_eq!(limit_default(5, 10, 1, 10), Limited { replicas: 10, ..WITHIN_RANGE });
        assert_eq!(limit_default(5, 12, 1, 10).reason, "TooManyReplicas");
        let low = limit_default(5, 1, 2, 10);
        assert_eq!((low.replicas, low.reason), (2, "TooFewReplicas"));
    }

    #[test]
    fn behavior_policies_cap_change_per_period() {
        let up = Rules {
            window: Duration::ZERO,
            select: Select::Max,
            policies: vec![policy("Pods", 4, 60), policy("Percent", 100, 60)],
        };
        let down = Rules { window: Duration::ZERO, select: Select::Max, policies: vec![policy("Percent", 50, 60)] };
        let mut h = ScaleHistory::default();
        // Up from 2: the larger of +4 and +100% is 6.
        let l = h.limit(2, 20, (1, 20), &up, &down, at(0));
        assert_eq!((l.replicas, l.reason), (6, "ScaleUpLimit"));
        h.record_scale(2, 6, longest_period(&up, &down), at(0));
        // Within the period the budget is spent: the period started at 2.
        assert_eq!(h.limit(6, 20, (1, 20), &up, &down, at(10)).replicas, 6);
        // After it, the budget is counted from 6 again.
        assert_eq!(h.limit(6, 20, (1, 20), &up, &down, at(61)).replicas, 12);
        // Down by at most half.
        let l = h.limit(10, 1, (1, 20), &up, &down, at(200));
        assert_eq!((l.replicas, l.reason), (5, "ScaleDownLimit"));
        let min_select = Rules { select: Select::Min, ..up.clone() };
        assert_eq!(h.limit(2, 20, (1, 20), &min_select, &down, at(300)).replicas, 4);
        let disabled = Rules { select: Select::Disabled, ..down.clone() };
        assert_eq!(h.limit(10, 1, (1, 20), &up, &disabled, at(300)).replicas, 10);
    }

    #[test]
    fn behavior_windows_hold_between_recent_lows_and_highs() {
        let up = Rules { window: Duration::from_secs(60), select: Select::Max, policies: scale_up_policies() };
        let down = Rules { window: Duration::from_secs(120), select: Select::Max, policies: scale_down_policies() };
        let mut h = ScaleHistory::default();
        assert_eq!(h.stabilize(3, 3, &up, &down, at(0)).replicas, 3);
        // A spike to 8 is held at the recent low (3) while the up window lasts.
        let l = h.stabilize(3, 8, &up, &down, at(30));
        assert_eq!((l.replicas, l.reason), (3, "ScaleUpStabilized"));
        // A dip to 1 is held at the recent high (8) while the down window lasts.
        let l = h.stabilize(3, 1, &up, &down, at(100));
        assert_eq!((l.replicas, l.reason), (3, "ScaleDownStabilized"));
        assert_eq!(h.stabilize(3, 1, &up, &down, at(400)).replicas, 1);
    }

    #[test]
    fn resolve_fills_kubernetes_defaults() {
        let (up, down) = resolve(&HpaBehavior::default());
        assert_eq!((up.window, down.window), (Duration::ZERO, Duration::from_secs(300)));
        assert_eq!((up.select, up.policies.len(), down.policies.len()), (Select::Max, 2, 1));
    }
}
