//! One pod's state machine. Every pass (`sync`) re-reads the runtime's view of the pod's
//! containers, acts on the difference to the spec (start, restart after a backoff or an
//! image change, probe, terminate) and writes the status back only when something a user
//! sees changed.
//!
//! One job per file: `slots` (what is remembered of each container, keyed by its name),
//! `start` (sandbox, exits, starts and restarts), `handlers` (probes and lifecycle hooks),
//! `stop` (the active deadline, deletion) and `report` (the status).

mod handlers;
mod report;
mod slots;
mod start;
mod stop;

use super::sandbox::PodSandbox;
use super::{termination, NodeContext};
use crate::events::Reason;
use coracle_config::core::{Container, Pod, Service};
use coracle_config::meta::ObjectReference;
use coracle_config::object::Object;
use slots::Slots;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often running containers are looked at for an exit.
const POLL: Duration = Duration::from_secs(1);
/// How soon a missing image or a failed sandbox is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// What a pass asks of the worker's loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Run the next pass at this instant (or sooner, on a change to the pod).
    At(Instant),
    /// The pod is gone from the node: the worker ends.
    Done,
}

/// The pod worker: the pod's containers and what is known about them.
pub struct PodWorker {
    ctx: Arc<NodeContext>,
    uid: String,
    slots: Slots,
    sandbox: Option<PodSandbox>,
    /// The phase was terminal when the node took the pod up: nothing is started again.
    terminal: bool,
    /// Why the node failed the pod itself (`DeadlineExceeded`): status reason and message.
    failure: Option<(String, String)>,
    termination: Option<termination::Progress>,
}

impl PodWorker {
    /// A worker for `pod`, re-adopting the runtime containers `leftovers` (ids the runtime
    /// still knows for this pod) and the counters its stored status carries.
    pub fn new(ctx: Arc<NodeContext>, pod: &Pod, leftovers: Vec<(String, u32, String)>) -> PodWorker {
        let mut slots = Slots::new(pod, &ctx.backoff);
        slots.adopt(&*ctx.runtime, pod, leftovers);
        PodWorker {
            ctx,
            uid: pod.metadata.uid.clone(),
            slots,
            sandbox: None,
            terminal: matches!(pod.phase(), "Succeeded" | "Failed"),
            failure: None,
            termination: None,
        }
    }

    /// One pass over the pod; returns when to look again.
    pub fn sync(&mut self, pod: &Pod) -> Next {
        // The containers are the spec's, by name, whatever an update did to the spec.
        for id in self.slots.follow(pod) {
            termination::discard_container(&*self.ctx.runtime, &id);
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod);
        }
        let now = Instant::now();
        let mut wake = now + POLL;
        if !self.terminal {
            match stop::active_deadline_left(pod) {
                Some(left) if left.is_zero() => self.deadline_exceeded(pod),
                Some(left) => wake = wake.min(now + left),
                None => {}
            }
        }
        if let Err(e) = self.prepare(pod) {
            log::warn!("node: pod {}/{}: {e}", pod.metadata.namespace, pod.metadata.name);
            self.event_pod(pod, e.event_reason(), &e.to_string());
            self.write_status(pod);
            return Next::At(now + RETRY);
        }
        self.observe(pod);
        if !self.terminal {
            self.act(pod, &mut wake);
        }
        self.write_status(pod);
        Next::At(wake)
    }

    /// The Services in the store, for the pod's /etc/hosts.
    fn services(&self) -> Vec<Service> {
        self.ctx.store.list_as::<Service>(None, None).iter().map(|s| Service::clone(s)).collect()
    }

    /// The pod, with the field path of its container `name` (none for an unknown name).
    fn reference(&self, pod: &Pod, name: &str) -> ObjectReference {
        let mut r = coracle_store::events::reference_to(&Object::Pod(pod.clone()));
        r.field_path = self.slots.get(name).map(|s| s.field_path()).unwrap_or_default();
        r
    }

    fn event_pod(&self, pod: &Pod, reason: Reason, message: &str) {
        let involved = coracle_store::events::reference_to(&Object::Pod(pod.clone()));
        crate::events::record(&self.ctx.recorder, &involved, reason, message);
    }
}

impl super::pool::PodTask for PodWorker {
    fn sync(&mut self, pod: &Pod) -> Next {
        PodWorker::sync(self, pod)
    }

    fn remove_now(&mut self, pod: &Pod) {
        PodWorker::remove_now(self, pod)
    }
}

/// Init containers then app containers, each with whether it is an init container.
fn all_containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    pod.spec.init_containers.iter().map(|c| (c, true)).chain(pod.spec.containers.iter().map(|c| (c, false)))
}

/// The pod's `terminationGracePeriodSeconds` (30 by default), bounded so that the instants
/// counted from it cannot overflow.
fn grace_period(pod: &Pod) -> Duration {
    coracle_config::time::span(pod.spec.termination_grace_period_seconds.unwrap_or(30))
}
