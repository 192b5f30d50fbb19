//! CPU usage in millicores from cumulative CPU time, for `coracle top` and the autoscaler.

use std::collections::HashMap;
use std::time::Instant;

/// Millicores used between two readings of a cumulative CPU counter: 1000 means one
/// whole CPU. `None` when no time passed or the counter went backwards (the cgroup was
/// recreated), since neither says anything about usage.
pub fn millicores(prev_nanos: u64, prev_at: Instant, now_nanos: u64, now_at: Instant) -> Option<u64> {
    let elapsed = now_at.checked_duration_since(prev_at)?.as_nanos();
    let used = u128::from(now_nanos.checked_sub(prev_nanos)?);
    if elapsed == 0 {
        return None;
    }
    u64::try_from(used * 1000 / elapsed).ok()
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    nanos: u64,
    at: Instant,
}

/// Keeps the last two CPU readings per cgroup; the caller feeds it on a timer.
#[derive(Debug, Default)]
pub struct UsageSampler {
    samples: HashMap<String, (Option<Sample>, Sample)>,
}

impl UsageSampler {
    /// An empty sampler.
    pub fn new() -> UsageSampler {
        UsageSampler::default()
    }

    /// Records a reading of `key`'s cumulative CPU time and returns the millicores used
    /// since the previous reading, if there is one.
    pub fn record(&mut self, key: &str, cpu_usage_nanos: u64, at: Instant) -> Option<u64> {
        let now = Sample { nanos: cpu_usage_nanos, at };
        let previous = self.samples.get(key).map(|(_, last)| *last);
        self.samples.insert(key.to_string(), (previous, now));
        self.millicores(key)
    }

    /// Millicores over the interval between `key`'s last two readings.
    pub fn millicores(&self, key: &str) -> Option<u64> {
        let (previous, last) = self.samples.get(key)?;
        let previous = previous.as_ref()?;
        millicores(previous.nanos, previous.at, last.nanos, last.at)
    }

    /// Drops the readings of cgroups for which `keep` says no (deleted pods).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.samples.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn half_a_cpu_over_two_seconds_is_500_millicores() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(millicores(0, t0, 1_000_000_000, t1), Some(500));
        assert_eq!(millicores(5, t0, 5, t1), Some(0));
    }

    #[test]
    fn no_figure_without_elapsed_time_or_on_a_counter_reset() {
        let t0 = Instant::now();
        assert_eq!(millicores(0, t0, 10, t0), None);
        assert_eq!(millicores(10, t0, 5, t0 + Duration::from_secs(1)), None);
        assert_eq!(millicores(0, t0 + Duration::from_secs(1), 10, t0), None);
    }

    #[test]
    fn sampler_reports_over_the_last_interval_only() {
        let t0 = Instant::now();
        let mut sampler = UsageSampler::new();
        assert_eq!(sampler.record("a", 0, t0), None);
        assert_eq!(sampler.record("a", 2_000_000_000, t0 + Duration::from_secs(1)), Some(2000));
        assert_eq!(sampler.record("a", 2_100_000_000, t0 + Duration::from_secs(2)), Some(100));
        assert_eq!(sampler.millicores("a"), Some(100));
        assert_eq!(sampler.millicores("b"), None);
        sampler.retain(|key| key != "a");
        assert_eq!(sampler.millicores("a"), None);
    }
}
