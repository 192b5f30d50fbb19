//! Restart backoff for one container, as the kubelet does it: `base` after the first crash,
//! doubling per consecutive crash up to `cap`, forgotten once a run lasted `reset`.

use coracle_config::settings::BackoffSettings;
use std::time::{Duration, Instant};

/// The backoff knobs, from the daemon settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// A run at least this long forgets earlier crashes.
    pub reset: Duration,
}

impl BackoffPolicy {
    /// The policy the daemon settings ask for (a zero base is raised to 1 s: a crash loop
    /// without any delay would spin the board's CPU).
    pub fn from_settings(s: &BackoffSettings) -> BackoffPolicy {
        let base = Duration::from_secs(s.base_seconds.max(1));
        BackoffPolicy {
            base,
            cap: Duration::from_secs(s.cap_seconds).max(base),
            reset: Duration::from_secs(s.reset_seconds),
        }
    }
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy::from_settings(&BackoffSettings::default())
    }
}

/// One container's crash history.
#[derive(Clone, Debug, Default)]
pub struct RestartBackoff {
    /// The delay given after the latest crash; None before the first.
    current: Option<Duration>,
    /// When the container may start again.
    until: Option<Instant>,
}

impl RestartBackoff {
    /// Records an exit at `at` after a run of `ran`; returns the delay before the next start.
    pub fn crashed(&mut self, policy: &BackoffPolicy, ran: Duration, at: Instant) -> Duration {
        if ran >= policy.reset {
            self.current = None;
        }
        let next = match self.current {
            None => policy.base,
            Some(d) => (d * 2).min(policy.cap),
        };
        self.current = Some(next);
        self.until = Some(at + next);
        next
    }

    /// The backoff of a container taken up again after a daemon restart, derived from its
    /// stored status as kubelet's in-memory backoff would have left it: its latest exit
    /// happened `since_exit` ago after a run of `ran`, when it had been restarted `restarts`
    /// times. A short run means `restarts` crashes in a row (the delay doubled each time);
    /// a run of at least `reset` had forgotten them. The delay runs from the exit, so a
    /// crash-looping container does not start again the moment the daemon is back.
    pub fn resumed(policy: &BackoffPolicy, restarts: i32, ran: Duration, since_exit: Duration, now: Instant) -> Self {
        let delay = if ran >= policy.reset {
            policy.base
        } else {
            (0..restarts.max(0))
                .try_fold(policy.base, |d, _| (d < policy.cap).then(|| (d * 2).min(policy.cap)))
                .unwrap_or(policy.cap)
        };
        let until = now + delay.saturating_sub(since_exit);
        RestartBackoff { current: Some(delay), until: Some(until) }
    }

    /// The delay currently in force (for the CrashLoopBackOff message).
    pub fn delay(&self) -> Option<Duration> {
        self.current
    }

    /// True while the container must not be started yet.
    pub fn waiting(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// When the current wait ends.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }
}

/// `40s`, `1m20s`, `5m0s`, as Go prints a `time.Duration` of whole seconds.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset_after_a_long_run() {
        let policy = BackoffPolicy::default();
        let t = Instant::now();
        let mut b = RestartBackoff::default();
        let short = Duration::from_secs(1);
        let delays: Vec<u64> = (0..7).map(|_| b.crashed(&policy, short, t).as_secs()).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300]);
        assert!(b.waiting(t + Duration::from_secs(299)));
        assert!(!b.waiting(t + Duration::from_secs(300)));
        assert_eq!(b.crashed(&policy, Duration::from_secs(600), t).as_secs(), 10);
    }

    #[test]
    fn a_resumed_backoff_continues_from_the_status() {
        let policy = BackoffPolicy::default();
        let t = Instant::now();
        let (short, secs) = (Duration::from_secs(1), Duration::from_secs);
        // Third crash in a row (restarted twice): 40 s from the exit, 15 s of which passed.
        let b = RestartBackoff::resumed(&policy, 2, short, secs(15), t);
        assert_eq!(b.delay(), Some(secs(40)));
        assert_eq!(b.until(), Some(t + secs(25)));
        assert!(b.waiting(t + secs(24)) && !b.waiting(t + secs(25)));
        // The next crash doubles on from there, as if the daemon had never stopped.
        let mut b = b;
        assert_eq!(b.crashed(&policy, short, t).as_secs(), 80);
        assert_eq!(RestartBackoff::resumed(&policy, 40, short, secs(0), t).delay(), Some(secs(300)), "capped");
        assert_eq!(RestartBackoff::resumed(&policy, 0, short, secs(0), t).delay(), Some(secs(10)), "first crash");
        let long = RestartBackoff::resumed(&policy, 7, secs(600), secs(2), t);
        assert_eq!(long.delay(), Some(secs(10)), "a long run forgot the earlier crashes");
        assert!(!RestartBackoff::resumed(&policy, 3, short, secs(3600), t).waiting(t), "over long ago");
    }

    #[test]
    fn settings_choose_base_and_cap() {
        let policy =
            BackoffPolicy::from_settings(&BackoffSettings { base_seconds: 1, cap_seconds: 4, reset_seconds: 60 });
        let mut b = RestartBackoff::default();
        let t = Instant::now();
        let delays: Vec<u64> = (0..4).map(|_| b.crashed(&policy, Duration::ZERO, t).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 4]);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(40)), "40s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
