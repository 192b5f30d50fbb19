//! The pod's end: its active deadline passing (the pod fails, its containers stop), its
//! graceful deletion (preStop hooks, SIGTERM, the grace period, SIGKILL, cleanup, the
//! object's removal) and its vanishing from the store. Throughout, the status keeps telling
//! what runs: a container that stopped shows its exit, even on an object finalizers hold.

use super::{grace_period, Next, PodWorker};
use crate::events::Reason;
use crate::termination;
use coracle_config::core::Pod;
use std::time::{Duration, SystemTime};

impl PodWorker {
    /// `activeDeadlineSeconds` passed: the pod fails and its containers stop for good.
    pub(super) fn deadline_exceeded(&mut self, pod: &Pod) {
        let message = "Pod was active on the node longer than the specified deadline";
        log::info!("node: pod {}/{}: {message}", pod.metadata.namespace, pod.metadata.name);
        self.event_pod(pod, Reason::DeadlineExceeded, message);
        self.terminal = true;
        self.failure = Some(("DeadlineExceeded".into(), message.into()));
        let running: Vec<(String, String)> = self
            .slots
            .iter()
            .filter(|s| s.is_running())
            .filter_map(|s| s.id.clone().map(|id| (s.name.clone(), id)))
            .collect();
        let pre_stop = |name: &str, budget: Duration| self.run_pre_stop(pod, name, budget);
        termination::stop_pod(&self.ctx, pod, &running, grace_period(pod), &pre_stop);
    }

    /// Deletion: SIGTERM, the grace period, SIGKILL of the pod's cgroup, cleanup, and the
    /// object's final removal from the store. Exits are recorded (never restarted) and
    /// written as they happen, and once more before the removal when finalizers keep the
    /// object: it must not show a container running that is gone.
    pub(super) fn terminate(&mut self, pod: &Pod) -> Next {
        self.observe(pod);
        let instances = self.slots.instances();
        let mut progress = self.termination.take().unwrap_or_default();
        let pre_stop = |name: &str, budget: Duration| self.run_pre_stop(pod, name, budget);
        let step = termination::step(&self.ctx, pod, &instances, &mut progress, &pre_stop);
        self.termination = Some(progress);
        if let termination::Step::Wait(at) = step {
            self.write_status(pod);
            return Next::At(at);
        }
        self.observe(pod);
        if !pod.metadata.finalizers.is_empty() {
            self.write_status(pod);
        }
        match termination::finish(&self.ctx, pod, &instances) {
            termination::Step::Wait(at) => Next::At(at),
            termination::Step::Stopped | termination::Step::Finished => Next::Done,
        }
    }

    /// The pod vanished from the store without a graceful deletion: kill and clean up now.
    pub fn remove_now(&mut self, pod: &Pod) {
        let ids: Vec<String> = self.slots.iter().filter_map(|s| s.id.clone()).collect();
        termination::kill_and_clean(&self.ctx, pod, &ids);
    }
}

/// What is left of the pod's `activeDeadlineSeconds`, counted from its `startTime`; None
/// without a deadline or before the node has started the pod. A deadline beyond what the
/// clock can hold is none.
pub(super) fn active_deadline_left(pod: &Pod) -> Option<Duration> {
    let seconds = pod.spec.active_deadline_seconds?;
    let start = pod.status.as_ref()?.start_time.as_deref().and_then(coracle_config::time::parse)?;
    let end = start.checked_add(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))?;
    Some(end.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::PodStatus;

    fn started(ago: Duration, deadline: i64) -> Pod {
        let mut pod = Pod::default();
        pod.spec.active_deadline_seconds = Some(deadline);
        let start = coracle_config::time::rfc3339(SystemTime::now() - ago);
        pod.status = Some(PodStatus { start_time: Some(start), ..Default::default() });
        pod
    }

    #[test]
    fn the_deadline_counts_from_the_start_and_never_overflows() {
        let left = active_deadline_left(&started(Duration::from_secs(10), 60)).unwrap();
        assert!(left > Duration::from_secs(45) && left <= Duration::from_secs(50), "{left:?}");
        assert_eq!(active_deadline_left(&started(Duration::from_secs(10), 5)), Some(Duration::ZERO));
        assert_eq!(active_deadline_left(&started(Duration::ZERO, i64::MAX)), None, "beyond the clock: no deadline");
        assert_eq!(active_deadline_left(&started(Duration::ZERO, -1)), Some(Duration::ZERO));
        assert_eq!(active_deadline_left(&Pod::default()), None);
    }
}
