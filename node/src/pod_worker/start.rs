//! Running what should run: the pod's directory, cgroup and sandbox first; then the exits
//! the runtime reports, init containers one at a time, app containers (restarted after their
//! backoff, or at once when an update changed their image), each start from image to events.

use super::{all_containers, PodWorker, RETRY};
use crate::backoff::RestartBackoff;
use crate::container_spec::{self, SpecInputs};
use crate::events::{self, Reason};
use crate::{layout, sandbox, status, termination};
use coracle_config::core::{Container, ContainerStateTerminated, Pod};
use coracle_runtime::cgroups::Limits;
use coracle_runtime::ContainerState as RuntimeState;
use std::time::{Duration, Instant};

impl PodWorker {
    /// Pod directory, pod cgroup and sandbox: everything containers need first.
    pub(super) fn prepare(&mut self, pod: &Pod) -> Result<(), sandbox::PodSandboxError> {
        if self.sandbox.is_some() {
            // Done once: a pass a second per pod must not redo a dozen cgroupfs writes.
            return Ok(());
        }
        let began = Instant::now();
        let dir = layout::pod_dir(&self.ctx.data_dir, &self.uid);
        std::fs::create_dir_all(&dir)
            .map_err(|source| sandbox::PodSandboxError::PodDir { path: dir.clone(), source })?;
        let limits = Limits { pids_max: Some(self.ctx.pids_max), ..Limits::default() };
        self.ctx
            .cgroups
            .create(&layout::pod_cgroup(&self.uid), &limits)
            .map_err(sandbox::PodSandboxError::PodCgroup)?;
        let services = self.services();
        let (runtime, network) = (&*self.ctx.runtime, &*self.ctx.network);
        let s = sandbox::ensure(runtime, network, pod, Some(self.ctx.host_ip), self.ctx.network_mode, &services)?;
        self.sandbox = Some(s);
        log::debug!("node: pod {}: directory, cgroup and sandbox in {:?}", pod.metadata.name, began.elapsed());
        Ok(())
    }

    /// Reads the runtime's state of every current instance and records exits.
    pub(super) fn observe(&mut self, pod: &Pod) {
        let now = Instant::now();
        let names: Vec<String> = self.slots.iter().map(|s| s.name.clone()).collect();
        for name in names {
            let Some(slot) = self.slots.get_mut(&name) else { continue };
            let Some(id) = slot.id.clone().filter(|_| slot.exited.is_none()) else { continue };
            match self.ctx.runtime.state(&id) {
                RuntimeState::Running { started_at, .. } => {
                    if slot.running_since.is_none() {
                        slot.running_since = Some(now);
                    }
                    slot.started_at = started_at;
                }
                exit @ RuntimeState::Exited { .. } => {
                    let oom = self.oom_killed(&name);
                    let t = status::terminated(&exit, oom, &id).expect("an exited state");
                    self.exited(pod, &name, t, now);
                }
                RuntimeState::Unknown => {
                    log::warn!("node: container {id} vanished; it will be started again");
                    termination::discard_container(&*self.ctx.runtime, &id);
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

    /// Records an instance's exit and decides whether (and after what backoff) it restarts:
    /// never in a pod that is over or being deleted.
    fn exited(&mut self, pod: &Pod, name: &str, t: ContainerStateTerminated, now: Instant) {
        let policy = status::restart_policy(pod).to_string();
        let reference = self.reference(pod, name);
        let stopping = self.terminal || pod.metadata.deletion_timestamp.is_some();
        let Some(slot) = self.slots.get_mut(name) else { return };
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
        let restart = status::should_restart(&policy, t.exit_code, slot.init) && !stopping;
        slot.exited = Some(t);
        slot.finished = !restart;
        if restart {
            let delay = slot.backoff.crashed(&self.ctx.backoff, ran, now);
            let message = status::crash_loop_message(delay, &slot.name, pod);
            events::record(
                &self.ctx.recorder,
                &reference,
                Reason::BackOff,
                format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    slot.name, pod.metadata.name, pod.metadata.namespace, pod.metadata.uid
                ),
            );
            slot.waiting = Some(("CrashLoopBackOff".into(), message));
        }
    }

    /// Starts what should run: init containers one at a time, then the app containers.
    pub(super) fn act(&mut self, pod: &Pod, wake: &mut Instant) {
        self.restart_changed_images(pod, wake);
        let now = Instant::now();
        for c in &pod.spec.init_containers {
            let Some(slot) = self.slots.get(&c.name) else { return };
            if slot.succeeded() && slot.finished {
                continue;
            }
            if slot.is_running() || slot.finished {
                // Running: wait for it. Finished with a failure: the pod has failed.
                return;
            }
            self.start_when_due(pod, &c.name, now, wake);
            return;
        }
        for c in &pod.spec.containers {
            let Some(slot) = self.slots.get(&c.name) else { continue };
            if slot.is_running() {
                self.run_probes(pod, &c.name, wake);
            } else if !slot.finished {
                self.start_when_due(pod, &c.name, now, wake);
            }
        }
    }

    /// An image changed by an update (the one change to a container Kubernetes allows)
    /// takes effect as the kubelet makes it: a running instance is stopped and the container
    /// started again at once with the new image, whatever the restart policy and backoff; one
    /// waiting to start takes it at its next start, without waiting out a backoff. A
    /// container the policy keeps down stays down.
    fn restart_changed_images(&mut self, pod: &Pod, wake: &mut Instant) {
        for (c, _) in all_containers(pod) {
            let Some(slot) = self.slots.get_mut(&c.name) else { continue };
            if slot.image == c.image || slot.finished {
                continue;
            }
            slot.backoff = RestartBackoff::default();
            if slot.waiting.as_ref().is_some_and(|w| w.0 == "CrashLoopBackOff") {
                slot.waiting = None;
            }
            let Some(id) = slot.id.clone().filter(|_| slot.is_running()) else {
                slot.image = c.image.clone();
                continue;
            };
            let message = format!("Container {} definition changed, will be restarted", c.name);
            log::info!("node: pod {}/{}: {message}", pod.metadata.namespace, pod.metadata.name);
            events::record(&self.ctx.recorder, &self.reference(pod, &c.name), Reason::Killing, message);
            self.stop_container(pod, &c.name);
            // The exit is taken now, so the restart neither waits for a pass nor asks the policy.
            let exit = self.ctx.runtime.state(&id);
            let oom = self.oom_killed(&c.name);
            let Some(slot) = self.slots.get_mut(&c.name) else { continue };
            if let Some(t) = status::terminated(&exit, oom, &id) {
                slot.exited = Some(t);
                slot.running_since = None;
                slot.probes.clear();
                slot.finished = false;
            }
            *wake = Instant::now();
        }
    }

    fn start_when_due(&mut self, pod: &Pod, name: &str, now: Instant, wake: &mut Instant) {
        let Some(slot) = self.slots.get(name) else { return };
        if let Some(until) = slot.backoff.until().filter(|_| slot.backoff.waiting(now)) {
            *wake = (*wake).min(until);
            return;
        }
        if let Err(retry) = self.start(pod, name) {
            *wake = (*wake).min(now + retry);
        }
    }

    /// Starts a new instance of container `name`; Err(retry after) when it could not.
    fn start(&mut self, pod: &Pod, name: &str) -> Result<(), Duration> {
        let Some(container) = all_containers(pod).find(|(c, _)| c.name == name).map(|(c, _)| c.clone()) else {
            return Ok(());
        };
        let reference = self.reference(pod, name);
        let Some(slot) = self.slots.get_mut(name) else { return Ok(()) };
        slot.image = container.image.clone();
        let image = match self.ctx.images.resolve(&container.image) {
            Ok(Some(image)) => image,
            Ok(None) => {
                let (reason, message) = missing_image(&container, slot.waiting.as_ref());
                if slot.waiting.as_ref().map(|w| w.0.as_str()) != Some(reason) {
                    events::record(&self.ctx.recorder, &reference, Reason::Failed, message.clone());
                }
                slot.waiting = Some((reason.into(), message));
                return Err(RETRY);
            }
            Err(e) => {
                slot.waiting = Some(("ErrImagePull".into(), format!("image {:?}: {e}", container.image)));
                return Err(RETRY);
            }
        };
        if slot.image_id != image.digest {
            let msg = format!("Container image {:?} already present on machine", container.image);
            events::record(&self.ctx.recorder, &reference, Reason::Pulled, msg);
        }
        slot.image_id = image.digest.clone();
        if let Some(old) = slot.id.take() {
            termination::discard_container(&*self.ctx.runtime, &old);
        }
        let attempt = if slot.ever_started || slot.attempt > 0 { slot.attempt + 1 } else { 0 };
        let id = layout::container_id(&self.uid, &container.name, attempt);
        let cgroup = match self.fresh_container_cgroup(&container) {
            Ok(c) => c,
            Err(message) => {
                self.set_waiting(name, "CreateContainerError", message);
                return Err(RETRY);
            }
        };
        let sandbox = self.sandbox.as_ref().expect("prepared before act");
        let service_env = if pod.spec.enable_service_links == Some(false) {
            Vec::new()
        } else {
            coracle_net::services::env::service_env(&self.ctx.store, &pod.metadata.namespace)
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
            seccomp_profile_root: &self.ctx.seccomp_profile_root,
            store: &self.ctx.store,
        };
        if let Ok(from) = crate::env_source::env_from(&self.ctx.store, pod, &container) {
            for message in from.skipped {
                events::record(&self.ctx.recorder, &reference, Reason::InvalidEnvironmentVariableNames, message);
            }
        }
        let spec = match container_spec::build(pod, &container, &inputs) {
            Ok(s) => s,
            Err(e) => {
                if self.slots.get(name).and_then(|s| s.waiting.as_ref()).map(|w| &w.1) != Some(&e.message) {
                    events::record(&self.ctx.recorder, &reference, Reason::Failed, e.message.clone());
                }
                self.set_waiting(name, e.reason, e.message);
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
        let Some(slot) = self.slots.get_mut(name) else { return Ok(()) };
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
        let created = format!("Created container {}", container.name);
        events::record(&self.ctx.recorder, &reference, Reason::Created, created);
        let began = Instant::now();
        match self.ctx.runtime.start(&spec) {
            Ok(handle) => {
                log::debug!("node: {id}: the runtime started it in {:?}", began.elapsed());
                let (namespace, pod_name) = (&pod.metadata.namespace, &pod.metadata.name);
                log::info!("node: started {id} (pid {}) for pod {namespace}/{pod_name}", handle.pid);
                let started = format!("Started container {}", container.name);
                events::record(&self.ctx.recorder, &reference, Reason::Started, started);
                let started_at = match self.ctx.runtime.state(&id) {
                    RuntimeState::Running { started_at, .. } => started_at,
                    _ => coracle_config::time::now(),
                };
                if let Some(slot) = self.slots.get_mut(name) {
                    let now = Instant::now();
                    slot.running_since = Some(now);
                    slot.started_at = started_at;
                    slot.probes = super::handlers::make_probes(&container, now);
                }
                self.run_post_start(pod, &container);
                Ok(())
            }
            Err(e) => {
                log::warn!("node: starting {id}: {e}");
                events::record(&self.ctx.recorder, &reference, Reason::Failed, format!("Error: {e}"));
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
                self.exited(pod, name, t, Instant::now());
                Err(RETRY)
            }
        }
    }

    fn set_waiting(&mut self, name: &str, reason: &str, message: String) {
        if let Some(slot) = self.slots.get_mut(name) {
            slot.waiting = Some((reason.into(), message));
        }
    }

    /// A container's cgroup, recreated so its OOM counter starts at zero.
    fn fresh_container_cgroup(&self, c: &Container) -> Result<coracle_runtime::cgroups::Cgroup, String> {
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
}
