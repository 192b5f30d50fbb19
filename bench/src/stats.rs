//! Summaries of repeated timings: nearest-rank percentiles, min and max.

use std::time::Duration;

/// p50/p99/min/max of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank; the maximum below 100 samples).
    pub p99: Duration,
    /// Fastest sample.
    pub min: Duration,
    /// Slowest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        Some(Summary {
            count: sorted.len(),
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of ascending, non-empty `sorted`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = Summary::of(&ms(&[5, 1, 4, 2, 3])).unwrap();
        assert_eq!((s.count, s.min, s.max), (5, Duration::from_millis(1), Duration::from_millis(5)));
        assert_eq!(s.p50, Duration::from_millis(3));
        assert_eq!(s.p99, Duration::from_millis(5));

        let hundred: Vec<u64> = (1..=100).collect();
        let s = Summary::of(&ms(&hundred)).unwrap();
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_no_summary() {
        let s = Summary::of(&ms(&[7])).unwrap();
        assert_eq!((s.p50, s.p99, s.min, s.max), (s.max, s.max, s.max, Duration::from_millis(7)));
        assert!(Summary::of(&[]).is_none());
    }
}
