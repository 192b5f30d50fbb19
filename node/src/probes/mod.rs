//! Startup, liveness and readiness probes with Kubernetes' defaults and thresholds.

pub mod exec;
pub mod network;

use coracle_config::core::{ContainerPort, Probe};
use coracle_config::IntOrString;
use std::time::{Duration, Instant};

/// The result of one probe run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Success,
    /// The check failed; the message is what `Unhealthy` events show.
    Failure(String),
}

/// Which probe: what its failure does differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// Gates liveness and readiness; failing it restarts the container.
    Startup,
    /// Failing it restarts the container.
    Liveness,
    /// Failing it clears Ready.
    Readiness,
}

impl ProbeKind {
    /// `Startup`, `Liveness`, `Readiness`, as event messages name them.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// A probe's timing with Kubernetes' defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    /// Defaults: initialDelay 0, period 10, timeout 1, success 1, failure 3. Liveness and
    /// startup probes need exactly one success.
    pub fn of(probe: &Probe, kind: ProbeKind) -> Timing {
        let secs = |v: Option<i32>, default: u64, min: u64| {
            Duration::from_secs(v.map_or(default, |v| (v.max(0) as u64).max(min)))
        };
        let count = |v: Option<i32>, default: u32| v.map_or(default, |v| v.max(1) as u32);
        Timing {
            initial_delay: secs(probe.initial_delay_seconds, 0, 0),
            period: secs(probe.period_seconds, 10, 1),
            timeout: secs(probe.timeout_seconds, 1, 1),
            success_threshold: if kind == ProbeKind::Readiness { count(probe.success_threshold, 1) } else { 1 },
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

/// What a recorded outcome changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing a user sees changed.
    Unchanged,
    /// The probe now passes (thresholds met).
    Passed,
    /// One more failure, below the threshold.
    Failed(String),
    /// Failures reached the threshold.
    Tripped(String),
}

/// One probe of one running container.
#[derive(Clone, Debug)]
pub struct ProbeState {
    /// The probe as the pod spec gives it.
    pub probe: Probe,
    /// Which probe.
    pub kind: ProbeKind,
    timing: Timing,
    next_run: Instant,
    successes: u32,
    failures: u32,
    /// The current result: None before the thresholds decided anything.
    pub passing: Option<bool>,
}

impl ProbeState {
    /// A probe of a container that started at `started`.
    pub fn new(probe: Probe, kind: ProbeKind, started: Instant) -> ProbeState {
        let timing = Timing::of(&probe, kind);
        ProbeState {
            probe,
            kind,
            timing,
            next_run: started + timing.initial_delay,
            successes: 0,
            failures: 0,
            passing: None,
        }
    }

    /// The timing in force.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// When the probe runs next.
    pub fn next_run(&self) -> Instant {
        self.next_run
    }

    /// Records the outcome of the run made at `now` and schedules the next.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Verdict {
        self.next_run = now + self.timing.period;
        match outcome {
            Outcome::Success => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.successes >= self.timing.success_threshold && self.passing != Some(true) {
                    self.passing = Some(true);
                    return Verdict::Passed;
                }
                Verdict::Unchanged
            }
            Outcome::Failure(message) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.failures >= self.timing.failure_threshold {
                    self.passing = Some(false);
                    self.failures = 0;
                    return Verdict::Tripped(message);
                }
                Verdict::Failed(message)
            }
        }
    }
}

/// Resolves a probe's port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("port {name:?}: no container port has that name"))?,
        },
    };
    u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("port {n}: must be 1..65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kubernetes() {
        let t = Timing::of(&Probe::default(), ProbeKind::Liveness);
        assert_eq!(t.initial_delay, Duration::ZERO);
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        let p = Probe { success_threshold: Some(3), ..Default::default() };
        assert_eq!(Timing::of(&p, ProbeKind::Liveness).success_threshold, 1);
        assert_eq!(Timing::of(&p, ProbeKind::Readiness).success_threshold, 3);
    }

    #[test]
    fn thresholds_decide_the_verdict() {
        let t = Instant::now();
        let probe = Probe { failure_threshold: Some(2), success_threshold: Some(2), ..Default::default() };
        let mut s = ProbeState::new(probe, ProbeKind::Readiness, t);
        assert_eq!(s.next_run(), t);
        assert_eq!(s.record(Outcome::Success, t), Verdict::Unchanged);
        assert_eq!(s.record(Outcome::Success, t), Verdict::Passed);
        assert_eq!(s.next_run(), t + Duration::from_secs(10));
        assert_eq!(s.record(Outcome::Failure("x".into()), t), Verdict::Failed("x".into()));
        assert_eq!(s.record(Outcome::Failure("y".into()), t), Verdict::Tripped("y".into()));
        assert_eq!(s.passing, Some(false));
    }

    #[test]
    fn named_ports_resolve() {
        let ports = vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }];
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &ports), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::Int(80), &ports), Ok(80));
        assert!(resolve_port(&IntOrString::String("grpc".into()), &ports).unwrap_err().contains("grpc"));
        assert!(resolve_port(&IntOrString::Int(0), &ports).is_err());
    }
}
