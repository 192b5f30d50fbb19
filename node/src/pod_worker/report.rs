//! The pod's status as Kubernetes would show it, from the slots, and its write-back when
//! something a user sees changed.

use super::slots::Slot;
use super::{all_containers, PodWorker};
use crate::status;
use coracle_config::core::{ContainerState, ContainerStatus, Pod, PodIp, PodStatus};
use coracle_config::object::Object;
use coracle_store::StoreError;

impl Slot {
    /// The container's status as Kubernetes shows it.
    pub(super) fn status(&self) -> ContainerStatus {
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

impl PodWorker {
    /// The status as Kubernetes would show it now.
    pub(super) fn compute_status(&self, pod: &Pod) -> PodStatus {
        let old = pod.status.clone().unwrap_or_default();
        let statuses = |init: bool| -> Vec<ContainerStatus> {
            all_containers(pod)
                .filter(|(_, i)| *i == init)
                .filter_map(|(c, _)| self.slots.get(&c.name).map(Slot::status))
                .collect()
        };
        let (init, containers) = (statuses(true), statuses(false));
        let initialized = status::initialized(&init, pod.spec.init_containers.len());
        let ready = initialized && !containers.is_empty() && containers.iter().all(|c| c.ready);
        let phase = match (&self.failure, self.terminal) {
            (Some(_), _) => "Failed".to_string(),
            (None, true) => pod.phase().to_string(),
            (None, false) if pod.metadata.deletion_timestamp.is_some() => deleted_phase(pod, &init, &containers),
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

    /// Publishes the status when it differs from the stored one. Watchers (the API, the
    /// controllers, the proxy) see it at once; the disk write is left to the store's
    /// checkpoints (`coracle_store::CHECKPOINT_AGE`), so a pod whose readiness flaps every
    /// second costs one write per checkpoint, not one per flip. A clean stop flushes it; after
    /// a power cut the next start recomputes status from the containers it finds.
    pub(super) fn write_status(&self, pod: &Pod) {
        let next = self.compute_status(pod);
        let Some(current) = self.ctx.store.get_as::<Pod>(&pod.metadata.namespace, &pod.metadata.name) else {
            return;
        };
        if current.metadata.uid != self.uid || current.status.as_ref() == Some(&next) {
            return;
        }
        let mut updated = Pod::clone(&current);
        updated.status = Some(next);
        match self.ctx.store.update_status(Object::Pod(updated), false) {
            Ok(_) => {}
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => {
                log::warn!("node: writing the status of pod {}/{}: {e}", pod.metadata.namespace, pod.metadata.name)
            }
        }
    }
}

/// The phase of a pod being deleted: what its containers say while any still runs; once
/// none does, it is over, as the kubelet reports a terminated pod: Succeeded when every
/// container exited 0, else Failed (whatever the restart policy, nothing starts again).
fn deleted_phase(pod: &Pod, init: &[ContainerStatus], containers: &[ContainerStatus]) -> String {
    let running = init.iter().chain(containers).any(|s| s.state.running.is_some());
    if running {
        return status::phase(pod, init, containers).to_string();
    }
    let exited_ok = |s: &ContainerStatus| s.state.terminated.as_ref().is_some_and(|t| t.exit_code == 0);
    if !containers.is_empty() && containers.iter().all(exited_ok) {
        "Succeeded".into()
    } else {
        "Failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{Container, ContainerStateTerminated};

    fn terminated(name: &str, code: i32) -> ContainerStatus {
        let t = ContainerStateTerminated { exit_code: code, ..Default::default() };
        ContainerStatus {
            name: name.into(),
            state: ContainerState { terminated: Some(t), ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn a_deleted_pod_whose_containers_all_stopped_is_over() {
        let mut pod = Pod::default();
        pod.spec.containers = ["a", "b"].map(|n| Container { name: n.into(), ..Default::default() }).to_vec();
        let ok = [terminated("a", 0), terminated("b", 0)];
        assert_eq!(deleted_phase(&pod, &[], &ok), "Succeeded");
        let killed = [terminated("a", 0), terminated("b", 137)];
        assert_eq!(deleted_phase(&pod, &[], &killed), "Failed", "even under restartPolicy Always");
        let mut still = terminated("b", 0);
        still.state = status::running("2024-01-01T00:00:00Z");
        assert_eq!(deleted_phase(&pod, &[], &[terminated("a", 0), still]), "Running");
    }
}
