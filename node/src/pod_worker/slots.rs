//! What the node remembers of each container between passes, keyed by the container's name
//! (never its position: a spec whose containers change cannot make one container's state
//! another's), restored from the stored status and the runtime after a daemon restart.

use super::all_containers;
use super::handlers::make_probes;
use crate::backoff::{BackoffPolicy, RestartBackoff};
use crate::probes::{ProbeKind, ProbeState};
use crate::status;
use crate::termination;
use coracle_config::core::{Container, ContainerStateTerminated, ContainerStatus, Pod};
use coracle_runtime::{ContainerRuntime, ContainerState as RuntimeState};
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

/// One container of the pod, as the node remembers it between passes.
pub(super) struct Slot {
    pub name: String,
    pub init: bool,
    /// Attempt number of the current (or last) container instance.
    pub attempt: u32,
    /// The current instance's runtime id, running or exited.
    pub id: Option<String>,
    pub restart_count: i32,
    /// Whether any instance has started (a new start then counts as a restart).
    pub ever_started: bool,
    /// The current instance's exit, once seen.
    pub exited: Option<ContainerStateTerminated>,
    /// The previous instance's exit (`lastState`).
    pub last: Option<ContainerStateTerminated>,
    /// The instance has exited and the policy keeps it down.
    pub finished: bool,
    pub backoff: RestartBackoff,
    /// Why the container is not running when it is not (image, config, backoff).
    pub waiting: Option<(String, String)>,
    pub running_since: Option<Instant>,
    pub started_at: String,
    pub probes: Vec<ProbeState>,
    /// The image of the current instance (or of the next start).
    pub image: String,
    pub image_id: String,
}

impl Slot {
    pub fn new(c: &Container, init: bool) -> Slot {
        Slot {
            name: c.name.clone(),
            init,
            attempt: 0,
            id: None,
            restart_count: 0,
            ever_started: false,
            exited: None,
            last: None,
            finished: false,
            backoff: RestartBackoff::default(),
            waiting: None,
            running_since: None,
            started_at: String::new(),
            probes: Vec::new(),
            image: c.image.clone(),
            image_id: String::new(),
        }
    }

    /// Takes up what the stored status says of the container (after a daemon restart):
    /// its image, counters, exits, and the restart backoff they imply.
    pub fn restore(&mut self, s: &ContainerStatus, policy: &BackoffPolicy) {
        self.restart_count = s.restart_count;
        // The image the status shows is the one the instance runs, even if an update has
        // changed the spec's since: the difference is what restarts it.
        if !s.image.is_empty() {
            self.image.clone_from(&s.image);
            self.image_id.clone_from(&s.image_id);
        }
        self.ever_started = s.container_id.is_some() || s.last_state.terminated.is_some();
        let last = s.last_state.terminated.clone();
        match (&s.state.terminated, &s.state.waiting) {
            (Some(t), _) => {
                self.exited = Some(t.clone());
                self.last = last;
            }
            // Waiting after an exit: that exit is the instance the next start replaces.
            (None, Some(w)) if last.is_some() => {
                self.exited = last;
                if w.reason == "CrashLoopBackOff" {
                    self.waiting = Some((w.reason.clone(), w.message.clone()));
                }
            }
            _ => self.last = last,
        }
        // The restart count the latest exit happened at: a running container has been
        // restarted once since the exit in lastState.
        let (exit, restarts) = match (&self.exited, &self.last) {
            (Some(t), _) if s.state.waiting.is_some() => (t, self.restart_count),
            (None, Some(t)) => (t, self.restart_count - 1),
            _ => return,
        };
        let at = |v: &Option<String>| v.as_deref().and_then(coracle_config::time::parse);
        let (Some(started), Some(finished)) = (at(&exit.started_at), at(&exit.finished_at)) else { return };
        let ran = finished.duration_since(started).unwrap_or_default();
        let since_exit = SystemTime::now().duration_since(finished).unwrap_or_default();
        self.backoff = RestartBackoff::resumed(policy, restarts, ran, since_exit, Instant::now());
    }

    pub fn succeeded(&self) -> bool {
        self.exited.as_ref().is_some_and(|t| t.exit_code == 0)
    }

    pub fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    pub fn probe(&self, kind: ProbeKind) -> Option<&ProbeState> {
        self.probes.iter().find(|p| p.kind == kind)
    }

    pub fn started(&self) -> bool {
        self.is_running() && self.probe(ProbeKind::Startup).is_none_or(|p| p.passing == Some(true))
    }

    pub fn ready(&self) -> bool {
        self.started() && self.probe(ProbeKind::Readiness).is_none_or(|p| p.passing == Some(true))
    }

    /// `spec.containers{NAME}`, the field path events about the container carry.
    pub fn field_path(&self) -> String {
        if self.init {
            format!("spec.initContainers{{{}}}", self.name)
        } else {
            format!("spec.containers{{{}}}", self.name)
        }
    }
}

/// The pod's containers by name.
#[derive(Default)]
pub(super) struct Slots {
    by_name: BTreeMap<String, Slot>,
}

impl Slots {
    /// A slot for every container of `pod`, restored from its stored status.
    pub fn new(pod: &Pod, policy: &BackoffPolicy) -> Slots {
        let mut slots = Slots::default();
        slots.follow(pod);
        let old = pod.status.clone().unwrap_or_default();
        for slot in slots.by_name.values_mut() {
            let statuses = if slot.init { &old.init_container_statuses } else { &old.container_statuses };
            if let Some(s) = statuses.iter().find(|s| s.name == slot.name) {
                slot.restore(s, policy);
            }
        }
        slots
    }

    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.by_name.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Slot> {
        self.by_name.get_mut(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.by_name.values()
    }

    /// `(container name, runtime id)` of every container's current instance.
    pub fn instances(&self) -> Vec<(String, String)> {
        self.iter().filter_map(|s| s.id.clone().map(|id| (s.name.clone(), id))).collect()
    }

    /// Makes the slots those of `pod`'s containers: a container the spec no longer names (or
    /// names as the other kind) loses its slot, and the runtime ids of its instance are
    /// returned to be discarded; a container new to the spec gets a fresh slot.
    pub fn follow(&mut self, pod: &Pod) -> Vec<String> {
        let mut gone = Vec::new();
        self.by_name.retain(|name, slot| {
            let kept = all_containers(pod).any(|(c, init)| c.name == *name && init == slot.init);
            if !kept {
                gone.extend(slot.id.clone());
            }
            kept
        });
        for (c, init) in all_containers(pod) {
            if !self.by_name.contains_key(&c.name) {
                self.by_name.insert(c.name.clone(), Slot::new(c, init));
            }
        }
        gone
    }

    /// Takes over the newest runtime instance of each container; older ones are removed.
    /// `leftovers` are `(container name, attempt, runtime id)`.
    pub fn adopt(&mut self, runtime: &dyn ContainerRuntime, pod: &Pod, mut leftovers: Vec<(String, u32, String)>) {
        leftovers.sort_by_key(|(_, attempt, _)| std::cmp::Reverse(*attempt));
        for (name, attempt, id) in leftovers {
            let Some(slot) = self.by_name.get_mut(&name) else { continue };
            if slot.id.is_some() {
                termination::discard_container(runtime, &id);
                continue;
            }
            slot.attempt = attempt;
            slot.id = Some(id.clone());
            match runtime.state(&id) {
                RuntimeState::Running { pid, started_at } => {
                    log::info!("node: re-adopted container {id} (pid {pid}) of pod {}", pod.metadata.name);
                    // How long it has run decides whether its next crash resets the backoff.
                    let age = coracle_config::time::parse(&started_at)
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .unwrap_or_default();
                    slot.running_since = Some(Instant::now().checked_sub(age).unwrap_or_else(Instant::now));
                    slot.started_at = started_at;
                    slot.ever_started = true;
                    slot.exited = None;
                    slot.waiting = None;
                }
                RuntimeState::Exited { .. } => {
                    // Seen at the next pass, unless the stored status already shows this exit.
                    let uri = status::container_id_uri(&id);
                    let shown = slot.exited.as_ref().or(slot.last.as_ref()).and_then(|t| t.container_id.as_deref());
                    if shown != Some(uri.as_str()) {
                        slot.exited = None;
                    } else if slot.exited.is_none() {
                        slot.id = None;
                    }
                }
                RuntimeState::Unknown => {
                    log::warn!(
                        "node: container {id} of pod {} cannot be proven alive; restarting it",
                        pod.metadata.name
                    );
                    termination::discard_container(runtime, &id);
                    slot.id = None;
                }
            }
        }
        // Readiness of a re-adopted container is kept until its probe says otherwise.
        let old = pod.status.clone().unwrap_or_default();
        for (c, _) in all_containers(pod) {
            let Some(slot) = self.by_name.get_mut(&c.name).filter(|s| s.is_running()) else { continue };
            slot.probes = make_probes(c, Instant::now());
            let was = old.container_statuses.iter().find(|s| s.name == slot.name);
            for p in &mut slot.probes {
                p.passing = match p.kind {
                    ProbeKind::Startup => was.and_then(|s| s.started).filter(|s| *s),
                    _ => was.map(|s| s.ready).filter(|r| *r),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::ContainerState;
    use std::time::Duration;

    fn exit_at(finished: SystemTime, ran: Duration) -> ContainerStateTerminated {
        ContainerStateTerminated {
            exit_code: 1,
            reason: "Error".into(),
            started_at: Some(coracle_config::time::rfc3339(finished - ran)),
            finished_at: Some(coracle_config::time::rfc3339(finished)),
            container_id: Some(status::container_id_uri("u_app_2")),
            ..Default::default()
        }
    }

    #[test]
    fn a_crash_loop_resumes_its_backoff_from_the_stored_status() {
        let policy = BackoffPolicy::default();
        let c = Container { name: "app".into(), image: "busybox".into(), ..Default::default() };
        // Third crash in a row, 5 s ago: kubelet's delay is 40 s from the exit.
        let exited = SystemTime::now() - Duration::from_secs(5);
        let stored = ContainerStatus {
            name: "app".into(),
            state: status::waiting("CrashLoopBackOff", "back-off 40s restarting failed container=app pod=p_default(u)"),
            last_state: ContainerState {
                terminated: Some(exit_at(exited, Duration::from_secs(1))),
                ..Default::default()
            },
            restart_count: 2,
            image: "busybox".into(),
            ..Default::default()
        };
        let mut slot = Slot::new(&c, false);
        slot.restore(&stored, &policy);
        let now = Instant::now();
        assert_eq!(slot.backoff.delay(), Some(Duration::from_secs(40)));
        assert!(slot.backoff.waiting(now + Duration::from_secs(30)), "still backing off after the restart");
        assert!(!slot.backoff.waiting(now + Duration::from_secs(36)), "but only for what is left of the 40 s");
        let shown = slot.status();
        assert_eq!((&shown.state, &shown.last_state), (&stored.state, &stored.last_state), "status unchanged");
        assert_eq!(shown.restart_count, 2);
        // Started again, the exit moves to lastState and the next crash doubles the delay.
        let mut next = slot.backoff.clone();
        assert_eq!(next.crashed(&policy, Duration::from_secs(1), now), Duration::from_secs(80));
    }

    #[test]
    fn a_running_container_resumes_the_delay_of_its_last_crash() {
        let policy = BackoffPolicy::default();
        let c = Container { name: "app".into(), image: "busybox".into(), ..Default::default() };
        let stored = ContainerStatus {
            name: "app".into(),
            state: status::running(&coracle_config::time::now()),
            last_state: ContainerState {
                terminated: Some(exit_at(SystemTime::now() - Duration::from_secs(60), Duration::from_secs(2))),
                ..Default::default()
            },
            restart_count: 3,
            ..Default::default()
        };
        let mut slot = Slot::new(&c, false);
        slot.restore(&stored, &policy);
        assert!(slot.exited.is_none() && slot.last.is_some());
        assert_eq!(slot.backoff.delay(), Some(Duration::from_secs(40)), "the delay before this run");
        assert!(!slot.backoff.waiting(Instant::now()));
        let mut next = slot.backoff.clone();
        assert_eq!(next.crashed(&policy, Duration::from_secs(1), Instant::now()), Duration::from_secs(80));
    }

    fn pod(init: &[&str], app: &[&str]) -> Pod {
        let c = |n: &&str| Container { name: n.to_string(), image: "busybox".into(), ..Default::default() };
        let mut p = Pod::default();
        p.spec.init_containers = init.iter().map(c).collect();
        p.spec.containers = app.iter().map(c).collect();
        p
    }

    #[test]
    fn slots_follow_the_spec_by_name_whatever_the_order() {
        let mut slots = Slots::new(&pod(&["setup"], &["web", "side"]), &BackoffPolicy::default());
        slots.get_mut("web").unwrap().id = Some("u_web_0".into());
        slots.get_mut("side").unwrap().id = Some("u_side_0".into());
        slots.get_mut("side").unwrap().restart_count = 4;
        // Reordered, one renamed, one turned into an init container: each keeps only its own state.
        let gone = slots.follow(&pod(&["setup", "web"], &["side", "new"]));
        assert_eq!(gone, ["u_web_0"], "web is now another kind of container: its instance goes");
        assert_eq!(slots.get("side").map(|s| (s.restart_count, s.id.as_deref())), Some((4, Some("u_side_0"))));
        assert!(slots.get("web").is_some_and(|s| s.init && s.id.is_none()));
        assert!(slots.get("new").is_some_and(|s| !s.init && s.restart_count == 0));
        let mut names: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["new", "setup", "side", "web"]);
        assert_eq!(slots.follow(&pod(&[], &["side"])), Vec::<String>::new(), "no instance left to discard");
        assert_eq!(slots.instances(), [("side".to_string(), "u_side_0".to_string())]);
    }
}
