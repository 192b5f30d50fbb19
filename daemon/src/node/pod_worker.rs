//! One pod's state machine. Every pass (`sync`) re-reads the runtime's view of the pod's
//! containers, acts on the difference to the spec (start, restart after backoff, probe,
//! terminate) and writes the status back only when something a user sees changed.

use super::backoff::{BackoffPolicy, RestartBackoff};
use super::container_spec::{self, SpecInputs};
use super::probes::{self, exec, network, Outcome, ProbeKind, ProbeState, Verdict};
use super::sandbox::{self, PodSandbox};
use super::{layout, status, termination, NodeContext};
use crate::cgroups::Limits;
use crate::events::EventType;
use crate::runtime::{ContainerSpec, ContainerState as RuntimeState};
use crate::store::StoreError;
use coracle_config::core::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, ExecAction, HttpGetAction, Pod, PodIp,
    PodStatus, Service, TcpSocketAction,
};
use coracle_config::meta::ObjectReference;
use coracle_config::object::{Object, Resource};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

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

/// One container of the pod, as the node remembers it between passes.
struct Slot {
    name: String,
    init: bool,
    /// Attempt number of the current (or last) container instance.
    attempt: u32,
    /// The current instance's runtime id, running or exited.
    id: Option<String>,
    restart_count: i32,
    /// Whether any instance has started (a new start then counts as a restart).
    ever_started: bool,
    /// The current instance's exit, once seen.
    exited: Option<ContainerStateTerminated>,
    /// The previous instance's exit (`lastState`).
    last: Option<ContainerStateTerminated>,
    /// The instance has exited and the policy keeps it down.
    finished: bool,
    backoff: RestartBackoff,
    /// Why the container is not running when it is not (image, config, backoff).
    waiting: Option<(String, String)>,
    running_since: Option<Instant>,
    started_at: String,
    probes: Vec<ProbeState>,
    image: String,
    image_id: String,
    /// The spec it runs with, for exec probes.
    spec: Option<ContainerSpec>,
}

impl Slot {
    fn new(c: &Container, init: bool) -> Slot {
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
            spec: None,
        }
    }

    /// Takes up what the stored status says of the container (after a daemon restart):
    /// counters, exits, and the restart backoff they imply.
    fn restore(&mut self, s: &ContainerStatus, policy: &BackoffPolicy) {
        self.restart_count = s.restart_count;
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

    fn succeeded(&self) -> bool {
        self.exited.as_ref().is_some_and(|t| t.exit_code == 0)
    }

    fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    fn probe(&self, kind: ProbeKind) -> Option<&ProbeState> {
        self.probes.iter().find(|p| p.kind == kind)
    }

    fn started(&self) -> bool {
        self.is_running() && self.probe(ProbeKind::Startup).is_none_or(|p| p.passing == Some(true))
    }

    fn ready(&self) -> bool {
        self.started() && self.probe(ProbeKind::Readiness).is_none_or(|p| p.passing == Some(true))
    }

    fn field_path(&self) -> String {
        if self.init {
            format!("spec.initContainers{{{}}}", self.name)
        } else {
            format!("spec.containers{{{}}}", self.name)
        }
    }

    fn status(&self) -> ContainerStatus {
        let state = if let (true, Some(_)) = (self.is_running(), &self.id) {
            status::running(&self.started_at)
        } else if let Some((reason, message)) = &self.waiting {
            status::waiting(reason, message.clone())
        } else if let Some(t) = &self.exited {
            ContainerState { terminated: Some(t.clone()), ..Default::default() }
        } else {
            status::waiting(if self.init { "PodInitializing" } else { "ContainerCreating" }, "")
        };
        // Waiting to run again (backoff, image, config): the exit it waits after is what
        // kubelet shows as lastState, and what a restarted daemon resumes the backoff from.
        let last = if self.waiting.is_some() && !self.is_running() { self.exited.as_ref() } else { None };
        ContainerStatus {
            name: self.name.clone(),
            state,
            last_state: ContainerState { terminated: last.or(self.last.as_ref()).cloned(), ..Default::default() },
            ready: self.ready(),
            restart_count: self.restart_count,
            image: self.image.clone(),
            image_id: self.image_id.clone(),
            container_id: self.id.as_deref().map(status::container_id_uri),
            started: (!self.init).then(|| self.started()),
        }
    }
}

/// The pod worker: the pod's containers and what is known about them.
pub struct PodWorker {
    ctx: Arc<NodeContext>,
    uid: String,
    slots: Vec<Slot>,
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
        let old = pod.status.clone().unwrap_or_default();
        let mut slots: Vec<Slot> = Vec::new();
        let specs =
            pod.spec.init_containers.iter().map(|c| (c, true)).chain(pod.spec.containers.iter().map(|c| (c, false)));
        for (c, init) in specs {
            let mut slot = Slot::new(c, init);
            let statuses = if init { &old.init_container_statuses } else { &old.container_statuses };
            if let Some(s) = statuses.iter().find(|s| s.name == c.name) {
                slot.restore(s, &ctx.backoff);
            }
            slots.push(slot);
        }
        let mut worker = PodWorker {
            ctx,
            uid: pod.metadata.uid.clone(),
            slots,
            sandbox: None,
            terminal: matches!(pod.phase(), "Succeeded" | "Failed"),
            failure: None,
            termination: None,
        };
        worker.adopt(pod, leftovers);
        worker
    }

    /// Takes over the newest runtime instance of each container; older ones are removed.
    fn adopt(&mut self, pod: &Pod, mut leftovers: Vec<(String, u32, String)>) {
        leftovers.sort_by_key(|(_, attempt, _)| std::cmp::Reverse(*attempt));
        for (name, attempt, id) in leftovers {
            let Some(slot) = self.slots.iter_mut().find(|s| s.name == name) else { continue };
            if slot.id.is_some() {
                termination::discard_container(&*self.ctx.runtime, &id);
                continue;
            }
            slot.attempt = attempt;
            slot.id = Some(id.clone());
            match self.ctx.runtime.state(&id) {
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
                    termination::discard_container(&*self.ctx.runtime, &id);
                    slot.id = None;
                }
            }
        }
        // Readiness of a re-adopted container is kept until its probe says otherwise.
        let old = pod.status.clone().unwrap_or_default();
        for slot in self.slots.iter_mut().filter(|s| s.is_running()) {
            let Some(spec) = all_containers(pod).find(|(c, _)| c.name == slot.name).map(|(c, _)| c) else { continue };
            slot.probes = make_probes(spec, Instant::now());
            let was = old.container_statuses.iter().find(|s| s.name == slot.name);
            for p in &mut slot.probes {
                p.passing = match p.kind {
                    ProbeKind::Startup => was.and_then(|s| s.started).filter(|s| *s),
                    _ => was.map(|s| s.ready).filter(|r| *r),
                };
            }
        }
    }

    /// One pass over the pod; returns when to look again.
    pub fn sync(&mut self, pod: &Pod) -> Next {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod);
        }
        let now = Instant::now();
        let mut wake = now + POLL;
        if !self.terminal {
            match active_deadline_left(pod) {
                Some(left) if left.is_zero() => self.deadline_exceeded(pod),
                Some(left) => wake = wake.min(now + left),
                None => {}
            }
        }
        if let Err(message) = self.prepare(pod) {
            log::warn!("node: pod {}/{}: {message}", pod.metadata.namespace, pod.metadata.name);
            self.event_pod(pod, EventType::Warning, "FailedCreatePodSandBox", &message);
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

    /// `activeDeadlineSeconds` passed: the pod fails and its containers stop for good.
    fn deadline_exceeded(&mut self, pod: &Pod) {
        let message = "Pod was active on the node longer than the specified deadline";
        log::info!("node: pod {}/{}: {message}", pod.metadata.namespace, pod.metadata.name);
        self.event_pod(pod, EventType::Normal, "DeadlineExceeded", message);
        self.terminal = true;
        self.failure = Some(("DeadlineExceeded".into(), message.into()));
        let ids: Vec<(String, String)> = self
            .slots
            .iter()
            .filter(|s| s.is_running())
            .filter_map(|s| s.id.clone().map(|id| (s.name.clone(), id)))
            .collect();
        let grace = coracle_config::time::span(pod.spec.termination_grace_period_seconds.unwrap_or(30));
        let pre_stop = |name: &str, budget: Duration| self.run_pre_stop(pod, name, budget);
        termination::stop_pod(&self.ctx, pod, &ids, grace, &pre_stop);
    }

    /// Pod directory, pod cgroup and sandbox: everything containers need first.
    fn prepare(&mut self, pod: &Pod) -> Result<(), String> {
        if self.sandbox.is_some() {
            // Done once: a pass a second per pod must not redo a dozen cgroupfs writes.
            return Ok(());
        }
        let began = Instant::now();
        let dir = layout::pod_dir(&self.ctx.data_dir, &self.uid);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let limits = Limits { pids_max: Some(self.ctx.pids_max), ..Limits::default() };
        self.ctx
            .cgroups
            .create(&layout::pod_cgroup(&self.uid), &limits)
            .map_err(|e| format!("creating the pod cgroup: {e}"))?;
        let services = self.services();
        let (runtime, network) = (&*self.ctx.runtime, &*self.ctx.network);
        let s = sandbox::ensure(runtime, network, pod, Some(self.ctx.host_ip), self.ctx.network_mode, &services)?;
        self.sandbox = Some(s);
        log::debug!("node: pod {}: directory, cgroup and sandbox in {:?}", pod.metadata.name, began.elapsed());
        Ok(())
    }

    /// Reads the runtime's state of every current instance and records exits.
    fn observe(&mut self, pod: &Pod) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            let Some(id) = self.slots[i].id.clone() else { continue };
            if self.slots[i].exited.is_some() {
                continue;
            }
            match self.ctx.runtime.state(&id) {
                RuntimeState::Running { started_at, .. } => {
                    let slot = &mut self.slots[i];
                    if slot.running_since.is_none() {
                        slot.running_since = Some(now);
                    }
                    slot.started_at = started_at;
                }
                exit @ RuntimeState::Exited { .. } => {
                    let oom = self.oom_killed(&self.slots[i].name);
                    let t = status::terminated(&exit, oom, &id).expect("an exited state");
                    self.exited(pod, i, t, now);
                }
                RuntimeState::Unknown => {
                    log::warn!("node: container {id} vanished; it will be started again");
                    termination::discard_container(&*self.ctx.runtime, &id);
                    let slot = &mut self.slots[i];
                    slot.id = None;
                    slot.running_since = None;
                }
            }
        }
    }

    fn oom_killed(&self, container: &str) -> bool {
        let cgroup = self.ctx.cgroups.open(&layout::container_cgroup(&self.uid, container));
        cgroup.and_then(|c| c.stats().ok()).is_some_and(|s| s.oom_kills > 0)
    }

    /// Records an instance's exit and decides whether (and after what backoff) it restarts.
    fn exited(&mut self, pod: &Pod, i: usize, t: ContainerStateTerminated, now: Instant) {
        let policy = status::restart_policy(pod).to_string();
        let reference = self.reference(pod, i);
        let slot = &mut self.slots[i];
        let ran = slot.running_since.map(|s| now.saturating_duration_since(s)).unwrap_or_default();
        log::info!(
            "node: container {} of pod {}/{} exited with {} ({})",
            slot.name,
            pod.metadata.namespace,
            pod.metadata.name,
            t.exit_code,
            t.reason
        );
        slot.running_since = None;
        slot.probes.clear();
        let restart = status::should_restart(&policy, t.exit_code, slot.init) && !self.terminal;
        slot.exited = Some(t);
        slot.finished = !restart;
        if restart {
            let delay = slot.backoff.crashed(&self.ctx.backoff, ran, now);
            let message = status::crash_loop_message(delay, &slot.name, pod);
            self.ctx.recorder.record_ref(
                &reference,
                EventType::Warning,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    slot.name, pod.metadata.name, pod.metadata.namespace, pod.metadata.uid
                ),
            );
            slot.waiting = Some(("CrashLoopBackOff".into(), message));
        }
    }

    /// Starts what should run: init containers one at a time, then the app containers.
    fn act(&mut self, pod: &Pod, wake: &mut Instant) {
        let now = Instant::now();
        let n_init = pod.spec.init_containers.len();
        for i in 0..n_init {
            let slot = &self.slots[i];
            if slot.succeeded() && slot.finished {
                continue;
            }
            if slot.is_running() || slot.finished {
                // Running: wait for it. Finished with a failure: the pod has failed.
                return;
            }
            self.start_when_due(pod, i, now, wake);
            return;
        }
        for i in n_init..self.slots.len() {
            if self.slots[i].is_running() {
                self.run_probes(pod, i, wake);
            } else if !self.slots[i].finished {
                self.start_when_due(pod, i, now, wake);
            }
        }
    }

    fn start_when_due(&mut self, pod: &Pod, i: usize, now: Instant, wake: &mut Instant) {
        if let Some(until) = self.slots[i].backoff.until().filter(|_| self.slots[i].backoff.waiting(now)) {
            *wake = (*wake).min(until);
            return;
        }
        if let Err(retry) = self.start(pod, i) {
            *wake = (*wake).min(now + retry);
        }
    }

    /// Starts a new instance of container `i`; Err(retry after) when it could not.
    fn start(&mut self, pod: &Pod, i: usize) -> Result<(), Duration> {
        let container = all_containers(pod).nth(i).map(|(c, _)| c.clone()).expect("slots follow the spec");
        let reference = self.reference(pod, i);
        let image = match self.ctx.images.resolve(&container.image) {
            Ok(Some(image)) => image,
            Ok(None) => {
                let (reason, message) = missing_image(&container, self.slots[i].waiting.as_ref());
                if self.slots[i].waiting.as_ref().map(|w| w.0.as_str()) != Some(reason) {
                    self.ctx.recorder.record_ref(&reference, EventType::Warning, "Failed", message.clone());
                }
                self.slots[i].waiting = Some((reason.into(), message));
                return Err(RETRY);
            }
            Err(e) => {
                self.slots[i].waiting = Some(("ErrImagePull".into(), format!("image {:?}: {e}", container.image)));
                return Err(RETRY);
            }
        };
        let slot = &mut self.slots[i];
        if slot.image_id != image.digest {
            let msg = format!("Container image {:?} already present on machine", container.image);
            self.ctx.recorder.record_ref(&reference, EventType::Normal, "Pulled", msg);
        }
        let slot = &mut self.slots[i];
        slot.image_id = image.digest.clone();
        if let Some(old) = slot.id.take() {
            termination::discard_container(&*self.ctx.runtime, &old);
        }
        let attempt = if slot.ever_started || slot.attempt > 0 { slot.attempt + 1 } else { 0 };
        let id = layout::container_id(&self.uid, &container.name, attempt);
        let cgroup = match self.fresh_container_cgroup(&container) {
            Ok(c) => c,
            Err(message) => {
                self.slots[i].waiting = Some(("CreateContainerError".into(), message));
                return Err(RETRY);
            }
        };
        let sandbox = self.sandbox.as_ref().expect("prepared before act");
        let service_env = if pod.spec.enable_service_links == Some(false) {
            Vec::new()
        } else {
            crate::services::env::service_env(&self.ctx.store, &pod.metadata.namespace)
        };
        let inputs = SpecInputs {
            data_dir: &self.ctx.data_dir,
            image: &image,
            sandbox: &sandbox.sandbox,
            pod_ip: sandbox.ip,
            host_ip: self.ctx.host_ip,
            node_name: &self.ctx.node_name,
            id: id.clone(),
            cgroup_dirs: cgroup.dirs(),
            log_max_size: self.ctx.log_max_size,
            log_max_files: self.ctx.log_max_files,
            service_env: &service_env,
            node_memory: self.ctx.node_memory,
        };
        let spec = match container_spec::build(pod, &container, &inputs) {
            Ok(s) => s,
            Err(e) => {
                if self.slots[i].waiting.as_ref().map(|w| &w.1) != Some(&e.message) {
                    self.ctx.recorder.record_ref(&reference, EventType::Warning, "Failed", e.message.clone());
                }
                self.slots[i].waiting = Some((e.reason.into(), e.message));
                return Err(RETRY);
            }
        };
        // Each instance starts from a clean writable layer, as a new container would.
        let dir = layout::container_dir(&self.ctx.data_dir, &self.uid, &container.name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("node: clearing {}: {e}", dir.display());
            }
        }
        let slot = &mut self.slots[i];
        slot.attempt = attempt;
        slot.id = Some(id.clone());
        if slot.ever_started {
            slot.restart_count += 1;
        }
        slot.ever_started = true;
        if let Some(t) = slot.exited.take() {
            slot.last = Some(t);
        }
        slot.waiting = None;
        slot.finished = false;
        self.ctx.recorder.record_ref(
            &reference,
            EventType::Normal,
            "Created",
            format!("Created container {}", container.name),
        );
        let began = Instant::now();
        match self.ctx.runtime.start(&spec) {
            Ok(handle) => {
                log::debug!("node: {id}: the runtime started it in {:?}", began.elapsed());
                log::info!(
                    "node: started {} (pid {}) for pod {}/{}",
                    id,
                    handle.pid,
                    pod.metadata.namespace,
                    pod.metadata.name
                );
                self.ctx.recorder.record_ref(
                    &reference,
                    EventType::Normal,
                    "Started",
                    format!("Started container {}", container.name),
                );
                let slot = &mut self.slots[i];
                let now = Instant::now();
                slot.running_since = Some(now);
                slot.started_at = match self.ctx.runtime.state(&id) {
                    RuntimeState::Running { started_at, .. } => started_at,
                    _ => coracle_config::time::now(),
                };
                slot.probes = make_probes(&container, now);
                slot.spec = Some(spec);
                Ok(())
            }
            Err(e) => {
                log::warn!("node: starting {id}: {e}");
                self.ctx.recorder.record_ref(&reference, EventType::Warning, "Failed", format!("Error: {e}"));
                let now = coracle_config::time::now();
                let t = ContainerStateTerminated {
                    exit_code: 128,
                    signal: None,
                    reason: e.reason.clone(),
                    message: e.message.clone(),
                    started_at: None,
                    finished_at: Some(now),
                    container_id: Some(status::container_id_uri(&id)),
                };
                self.exited(pod, i, t, Instant::now());
                Err(RETRY)
            }
        }
    }

    /// A container's cgroup, recreated so its OOM counter starts at zero.
    fn fresh_container_cgroup(&self, c: &Container) -> Result<crate::cgroups::Cgroup, String> {
        let rel = layout::container_cgroup(&self.uid, &c.name);
        if let Some(old) = self.ctx.cgroups.open(&rel) {
            old.remove().map_err(|e| format!("removing the old cgroup {rel}: {e}"))?;
        }
        let milli = |m: &std::collections::BTreeMap<String, coracle_config::Quantity>, k: &str| {
            m.get(k).map(|q| q.milli_value())
        };
        let limits = Limits {
            memory_bytes: c.resources.limits.get("memory").map(|q| q.value()).filter(|v| *v > 0),
            cpu_limit_millis: milli(&c.resources.limits, "cpu"),
            cpu_request_millis: milli(&c.resources.requests, "cpu").or(milli(&c.resources.limits, "cpu")),
            pids_max: None,
        };
        self.ctx.cgroups.create(&rel, &limits).map_err(|e| format!("creating cgroup {rel}: {e}"))
    }

    /// Runs the probes that are due on running container `i`.
    fn run_probes(&mut self, pod: &Pod, i: usize, wake: &mut Instant) {
        let now = Instant::now();
        let reference = self.reference(pod, i);
        let startup_done = self.slots[i].probe(ProbeKind::Startup).is_none_or(|p| p.passing == Some(true));
        for p in 0..self.slots[i].probes.len() {
            let state = &self.slots[i].probes[p];
            let gated = state.kind != ProbeKind::Startup && !startup_done;
            if gated || (state.kind == ProbeKind::Startup && state.passing == Some(true)) {
                continue;
            }
            if state.next_run() > now {
                *wake = (*wake).min(state.next_run());
                continue;
            }
            let outcome = self.probe_once(pod, i, &self.slots[i].probes[p]);
            let kind = self.slots[i].probes[p].kind;
            let verdict = self.slots[i].probes[p].record(outcome, now);
            *wake = (*wake).min(self.slots[i].probes[p].next_run());
            match verdict {
                Verdict::Unchanged | Verdict::Passed => {}
                Verdict::Failed(message) => {
                    self.unhealthy(&reference, kind, &message);
                }
                Verdict::Tripped(message) => {
                    self.unhealthy(&reference, kind, &message);
                    if kind != ProbeKind::Readiness {
                        let what = if kind == ProbeKind::Liveness { "liveness" } else { "startup" };
                        let name = self.slots[i].name.clone();
                        self.ctx.recorder.record_ref(
                            &reference,
                            EventType::Normal,
                            "Killing",
                            format!("Container {name} failed {what} probe, will be restarted"),
                        );
                        if let Some(id) = self.slots[i].id.clone() {
                            let grace =
                                coracle_config::time::span(pod.spec.termination_grace_period_seconds.unwrap_or(30));
                            let pre_stop = |name: &str, budget: Duration| self.run_pre_stop(pod, name, budget);
                            termination::stop_container(&self.ctx, &self.uid, &name, &id, grace, &pre_stop);
                        }
                        *wake = Instant::now();
                        return;
                    }
                }
            }
        }
    }

    fn unhealthy(&self, reference: &ObjectReference, kind: ProbeKind, message: &str) {
        self.ctx.recorder.record_ref(
            reference,
            EventType::Warning,
            "Unhealthy",
            format!("{} probe failed: {message}", kind.as_str()),
        );
    }

    fn probe_once(&self, pod: &Pod, i: usize, state: &ProbeState) -> Outcome {
        let probe = &state.probe;
        let handler = Handler { exec: &probe.exec, http_get: &probe.http_get, tcp_socket: &probe.tcp_socket };
        self.run_handler(pod, i, handler, state.timing().timeout)
    }

    /// Runs an exec, httpGet or tcpSocket action (a probe's or a lifecycle hook's) against
    /// running container `i`.
    fn run_handler(&self, pod: &Pod, i: usize, handler: Handler, timeout: Duration) -> Outcome {
        let container = all_containers(pod).nth(i).map(|(c, _)| c);
        let ports = container.map(|c| c.ports.as_slice()).unwrap_or_default();
        let sandbox = self.sandbox.as_ref();
        let target = |host: Option<&String>| {
            let host_ip = host.and_then(|h| h.parse().ok());
            // A loopback-only pod's address (127.0.0.1) is only its own inside its namespace.
            let pod_ip = sandbox.and_then(|s| s.ip).filter(|ip| !ip.is_loopback());
            match (host_ip, pod_ip) {
                (Some(ip), _) | (None, Some(ip)) => network::NetTarget { ip, netns: None },
                (None, None) => network::NetTarget {
                    ip: [127, 0, 0, 1].into(),
                    netns: sandbox.and_then(|s| s.sandbox.netns_path.clone()),
                },
            }
        };
        if let Some(action) = handler.exec {
            let slot = &self.slots[i];
            let Some(RuntimeState::Running { pid, .. }) = slot.id.as_deref().map(|id| self.ctx.runtime.state(id))
            else {
                return Outcome::Failure("container is not running".into());
            };
            let env = slot.spec.as_ref().map(|s| s.env.clone()).unwrap_or_default();
            let path_env =
                env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/bin:/usr/bin:/bin").to_string();
            let user = slot.spec.as_ref().map(|s| s.user.clone()).unwrap_or_default();
            let cgroup_procs = self
                .ctx
                .cgroups
                .open(&layout::container_cgroup(&self.uid, &slot.name))
                .map(|c| c.dirs().into_iter().map(|d| d.join("cgroup.procs")).collect())
                .unwrap_or_default();
            let target = exec::ExecTarget { pid, path_env: &path_env, env: &env, user: &user, cgroup_procs };
            return exec::run(&action.command, &target, timeout);
        }
        if let Some(action) = handler.http_get {
            if action.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("https")) {
                return Outcome::Failure("httpGet scheme HTTPS is not supported by this node".into());
            }
            let port = match probes::resolve_port(&action.port, ports) {
                Ok(p) => p,
                Err(e) => return Outcome::Failure(e),
            };
            let request = network::HttpRequest {
                path: action.path.clone().unwrap_or_else(|| "/".into()),
                port,
                headers: action.http_headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
            };
            return network::http(&target(action.host.as_ref()), request, timeout);
        }
        if let Some(action) = handler.tcp_socket {
            return match probes::resolve_port(&action.port, ports) {
                Ok(port) => network::tcp(&target(action.host.as_ref()), port, timeout),
                Err(e) => Outcome::Failure(e),
            };
        }
        Outcome::Failure("names no handler (exec, httpGet or tcpSocket)".into())
    }

    /// Runs container `name`'s preStop hook, if any, within `budget`; a failure is an event.
    fn run_pre_stop(&self, pod: &Pod, name: &str, budget: Duration) {
        let Some(i) = self.slots.iter().position(|s| s.name == name) else { return };
        let Some(hook) = all_containers(pod).nth(i).and_then(|(c, _)| c.lifecycle.as_ref()?.pre_stop.as_ref()) else {
            return;
        };
        let outcome = match &hook.sleep {
            Some(sleep) => {
                std::thread::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(budget));
                Outcome::Success
            }
            None => {
                let handler = Handler { exec: &hook.exec, http_get: &hook.http_get, tcp_socket: &hook.tcp_socket };
                self.run_handler(pod, i, handler, budget.max(Duration::from_secs(1)))
            }
        };
        if let Outcome::Failure(message) = outcome {
            log::warn!("node: preStop hook of container {name} in pod {}: {message}", pod.metadata.name);
            self.ctx.recorder.record_ref(
                &self.reference(pod, i),
                EventType::Warning,
                "FailedPreStopHook",
                format!("PreStopHook failed: {message}"),
            );
        }
    }

    /// Deletion: SIGTERM, the grace period, SIGKILL of the pod's cgroup, cleanup, and the
    /// object's final removal from the store.
    fn terminate(&mut self, pod: &Pod) -> Next {
        let ids: Vec<(String, String)> =
            self.slots.iter().filter_map(|s| s.id.clone().map(|id| (s.name.clone(), id))).collect();
        let mut progress = self.termination.take().unwrap_or_default();
        let pre_stop = |name: &str, budget: Duration| self.run_pre_stop(pod, name, budget);
        let step = termination::step(&self.ctx, pod, &ids, &mut progress, &pre_stop);
        self.termination = Some(progress);
        match step {
            termination::Step::Wait(at) => Next::At(at),
            termination::Step::Finished => Next::Done,
        }
    }

    /// The pod vanished from the store without a graceful deletion: kill and clean up now.
    pub fn remove_now(&mut self, pod: &Pod) {
        let ids: Vec<String> = self.slots.iter().filter_map(|s| s.id.clone()).collect();
        termination::kill_and_clean(&self.ctx, pod, &ids);
    }

    /// The Services in the store, for the pod's /etc/hosts.
    fn services(&self) -> Vec<Service> {
        let filter = crate::store::Filter { resource: Some(&Service::INFO), namespace: None };
        let (objects, _) = self.ctx.store.list(&filter);
        objects
            .iter()
            .filter_map(|o| match &**o {
                Object::Service(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    fn reference(&self, pod: &Pod, i: usize) -> ObjectReference {
        let mut r = crate::events::reference_to(&Object::Pod(pod.clone()));
        r.field_path = self.slots.get(i).map(Slot::field_path).unwrap_or_default();
        r
    }

    fn event_pod(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
        self.ctx.recorder.record(&Object::Pod(pod.clone()), type_, reason, message.to_string());
    }

    /// The status as Kubernetes would show it now.
    fn compute_status(&self, pod: &Pod) -> PodStatus {
        let old = pod.status.clone().unwrap_or_default();
        let init: Vec<ContainerStatus> = self.slots.iter().filter(|s| s.init).map(Slot::status).collect();
        let containers: Vec<ContainerStatus> = self.slots.iter().filter(|s| !s.init).map(Slot::status).collect();
        let initialized = status::initialized(&init, pod.spec.init_containers.len());
        let ready = initialized && !containers.is_empty() && containers.iter().all(|c| c.ready);
        let phase = match (&self.failure, self.terminal) {
            (Some(_), _) => "Failed".to_string(),
            (None, true) => pod.phase().to_string(),
            (None, false) => status::phase(pod, &init, &containers).to_string(),
        };
        let (reason, message) = match &self.failure {
            Some((reason, message)) => (Some(reason.clone()), Some(message.clone())),
            None => (old.reason.clone().filter(|_| self.terminal), old.message.clone().filter(|_| self.terminal)),
        };
        let now = coracle_config::time::now();
        let pod_ip = self.sandbox.as_ref().and_then(|s| s.ip).map(|ip| ip.to_string());
        PodStatus {
            phase: Some(phase),
            conditions: status::conditions(&old.conditions, initialized, ready, &now),
            message,
            reason,
            host_ip: Some(self.ctx.host_ip.to_string()),
            pod_ips: pod_ip.iter().map(|ip| PodIp { ip: ip.clone() }).collect(),
            pod_ip,
            start_time: old.start_time.or(Some(now)),
            init_container_statuses: init,
            container_statuses: containers,
            qos_class: Some(status::qos_class(pod).to_string()),
        }
    }

    /// Writes the status when it differs from the stored one. Every field here is something
    /// a user sees and nothing changes on a timer, so each change is persisted; but watchers
    /// (the API, controllers) are told first and the fsync follows within the same pass, so
    /// apply → Running does not wait on the disk.
    fn write_status(&self, pod: &Pod) {
        let next = self.compute_status(pod);
        let Some(Object::Pod(current)) =
            self.ctx.store.get(&Pod::INFO, &pod.metadata.namespace, &pod.metadata.name).as_deref().cloned()
        else {
            return;
        };
        if current.metadata.uid != self.uid || current.status.as_ref() == Some(&next) {
            return;
        }
        let mut updated = current;
        updated.status = Some(next);
        let published = self.ctx.store.update_status(Object::Pod(updated), false);
        // Unchanged since (resourceVersion precondition): nothing but the fsync is left to do.
        let persisted = published.and_then(|p| self.ctx.store.update_status((*p).clone(), true));
        match persisted {
            Ok(_) => {}
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => {
                log::warn!("node: writing the status of pod {}/{}: {e}", pod.metadata.namespace, pod.metadata.name)
            }
        }
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

/// The action of a probe or lifecycle hook: exactly one is set (validation sees to it).
#[derive(Clone, Copy)]
struct Handler<'a> {
    exec: &'a Option<ExecAction>,
    http_get: &'a Option<HttpGetAction>,
    tcp_socket: &'a Option<TcpSocketAction>,
}

/// What is left of the pod's `activeDeadlineSeconds`, counted from its `startTime`; None
/// without a deadline or before the node has started the pod.
fn active_deadline_left(pod: &Pod) -> Option<Duration> {
    let seconds = pod.spec.active_deadline_seconds?;
    let start = pod.status.as_ref()?.start_time.as_deref().and_then(coracle_config::time::parse)?;
    let end = start + coracle_config::time::span(seconds);
    Some(end.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// Init containers then app containers, each with whether it is an init container.
fn all_containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    pod.spec.init_containers.iter().map(|c| (c, true)).chain(pod.spec.containers.iter().map(|c| (c, false)))
}

fn make_probes(c: &Container, started: Instant) -> Vec<ProbeState> {
    [
        (&c.startup_probe, ProbeKind::Startup),
        (&c.liveness_probe, ProbeKind::Liveness),
        (&c.readiness_probe, ProbeKind::Readiness),
    ]
    .into_iter()
    .filter_map(|(p, kind)| p.clone().map(|p| ProbeState::new(p, kind, started)))
    .collect()
}

/// The waiting reason for an image the store does not have: this node never pulls.
fn missing_image(c: &Container, previous: Option<&(String, String)>) -> (&'static str, String) {
    if c.image_pull_policy.as_deref() == Some("Never") {
        return (
            "ErrImageNeverPull",
            format!("Container image {:?} is not present with pull policy of Never", c.image),
        );
    }
    let reason = match previous.map(|w| w.0.as_str()) {
        Some("ErrImagePull" | "ImagePullBackOff") => "ImagePullBackOff",
        _ => "ErrImagePull",
    };
    let message = format!(
        "image {:?} is not in the node's image store and this node does not pull: load it with `coracle image load`",
        c.image
    );
    (reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_images_wait_with_kubernetes_reasons() {
        let mut c = Container { name: "app".into(), image: "busybox".into(), ..Default::default() };
        c.image_pull_policy = Some("Never".into());
        let (reason, message) = missing_image(&c, None);
        assert_eq!(reason, "ErrImageNeverPull");
        assert_eq!(message, "Container image \"busybox\" is not present with pull policy of Never");
        c.image_pull_policy = None;
        let first = missing_image(&c, None);
        assert_eq!(first.0, "ErrImagePull");
        assert_eq!(missing_image(&c, Some(&(first.0.to_string(), first.1))).0, "ImagePullBackOff");
    }

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
}
