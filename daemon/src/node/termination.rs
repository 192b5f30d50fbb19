//! Stopping containers and pods: SIGTERM to each container's init, the grace period, then
//! SIGKILL of everything left in the cgroup; afterwards the containers, sandbox, cgroups,
//! volumes and logs go, and the pod object is removed from the store.

use super::{layout, sandbox, NodeContext};
use crate::events::EventType;
use crate::runtime::{ContainerRuntime, ContainerState};
use crate::store::{DeleteOptions, StoreError};
use coracle_config::core::Pod;
use coracle_config::object::{Object, Resource};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant, SystemTime};

/// How long a shim gets to record an exit after its container was killed.
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(5);
/// How often a terminating pod is looked at.
const TERMINATION_POLL: Duration = Duration::from_millis(200);

/// Where a pod's termination stands between passes.
#[derive(Debug, Default)]
pub struct Progress {
    signaled: bool,
}

/// What a termination pass asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Containers are still inside their grace period: look again then.
    Wait(Instant),
    /// Everything is gone, the object too.
    Finished,
}

fn is_running(runtime: &dyn ContainerRuntime, id: &str) -> bool {
    matches!(runtime.state(id), ContainerState::Running { .. })
}

/// Waits (bounded) until the runtime no longer reports `id` running.
fn wait_exited(runtime: &dyn ContainerRuntime, id: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_running(runtime, id) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Kills a container instance that is no longer wanted and forgets it.
pub fn discard_container(runtime: &dyn ContainerRuntime, id: &str) {
    if is_running(runtime, id) {
        if let Err(e) = runtime.signal(id, Signal::SIGKILL) {
            log::warn!("node: killing container {id}: {e}");
        }
        wait_exited(runtime, id, EXIT_RECORD_WAIT);
    }
    if let Err(e) = runtime.remove(id) {
        log::warn!("node: removing container {id}: {e}");
    }
}

/// Stops one container for a restart: SIGTERM, up to `grace`, then SIGKILL of its cgroup.
pub fn stop_container(ctx: &NodeContext, uid: &str, name: &str, id: &str, grace: Duration) {
    if let Err(e) = ctx.runtime.signal(id, Signal::SIGTERM) {
        log::warn!("node: SIGTERM to container {id}: {e}");
    }
    if !wait_exited(&*ctx.runtime, id, grace) {
        if let Some(cgroup) = ctx.cgroups.open(&layout::container_cgroup(uid, name)) {
            if let Err(e) = cgroup.kill_all(Signal::SIGKILL) {
                log::warn!("node: SIGKILL to the cgroup of container {id}: {e}");
            }
        }
        let _ = ctx.runtime.signal(id, Signal::SIGKILL);
        wait_exited(&*ctx.runtime, id, EXIT_RECORD_WAIT);
    }
}

/// One pass of a graceful deletion of `pod`, whose current container instances are `ids`
/// (`(container name, runtime id)`).
pub fn step(ctx: &NodeContext, pod: &Pod, ids: &[(String, String)], progress: &mut Progress) -> Step {
    let deadline = pod
        .metadata
        .deletion_timestamp
        .as_deref()
        .and_then(coracle_config::time::parse)
        .unwrap_or_else(SystemTime::now);
    if !progress.signaled {
        progress.signaled = true;
        for (name, id) in ids.iter().filter(|(_, id)| is_running(&*ctx.runtime, id)) {
            let mut reference = crate::events::reference_to(&Object::Pod(pod.clone()));
            reference.field_path = format!("spec.containers{{{name}}}");
            ctx.recorder.record_ref(&reference, EventType::Normal, "Killing", format!("Stopping container {name}"));
            if let Err(e) = ctx.runtime.signal(id, Signal::SIGTERM) {
                log::warn!("node: SIGTERM to container {id}: {e}");
            }
        }
    }
    let any_running = ids.iter().any(|(_, id)| is_running(&*ctx.runtime, id));
    let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    if any_running && !left.is_zero() {
        return Step::Wait(Instant::now() + left.min(TERMINATION_POLL));
    }
    let ids: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    kill_and_clean(ctx, pod, &ids);
    let options = DeleteOptions {
        grace_period_seconds: Some(0),
        precondition_uid: Some(pod.metadata.uid.clone()),
        ..DeleteOptions::default()
    };
    match ctx.store.delete(&Pod::INFO, &pod.metadata.namespace, &pod.metadata.name, &options) {
        Ok(_) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {}
        Err(e) => {
            log::warn!("node: removing pod {}/{}: {e}", pod.metadata.namespace, pod.metadata.name);
            return Step::Wait(Instant::now() + Duration::from_secs(1));
        }
    }
    log::info!("node: pod {}/{} terminated and removed", pod.metadata.namespace, pod.metadata.name);
    Step::Finished
}

/// SIGKILL of everything in the pod's cgroup, then removal of its containers, sandbox,
/// cgroups, volumes, writable layers and logs. Repeatable; errors are logged.
pub fn kill_and_clean(ctx: &NodeContext, pod: &Pod, ids: &[String]) {
    let uid = &pod.metadata.uid;
    let cgroup = ctx.cgroups.open(&layout::pod_cgroup(uid));
    if let Some(cgroup) = &cgroup {
        if let Err(e) = cgroup.kill_all(Signal::SIGKILL) {
            log::warn!("node: SIGKILL to pod {uid}'s cgroup: {e}");
        }
    }
    let mut all: Vec<String> = ids.to_vec();
    for id in ctx.runtime.list() {
        if layout::parse_container_id(&id).is_some_and(|(u, _, _)| u == uid) && !all.contains(&id) {
            all.push(id);
        }
    }
    for id in &all {
        discard_container(&*ctx.runtime, id);
    }
    remove_pod_leftovers(ctx, Some(pod), uid);
}

/// Removes the sandbox, cgroups and directories of pod `uid` (its containers must be gone).
pub fn remove_pod_leftovers(ctx: &NodeContext, pod: Option<&Pod>, uid: &str) {
    let result = match pod {
        Some(pod) => sandbox::remove(&*ctx.runtime, &*ctx.network, pod),
        None => ctx.runtime.remove_sandbox(&layout::sandbox_id(uid)).map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        log::warn!("node: pod {uid}: {e}");
    }
    if let Some(cgroup) = ctx.cgroups.open(&layout::pod_cgroup(uid)) {
        if let Err(e) = cgroup.remove() {
            log::warn!("node: removing pod {uid}'s cgroup: {e}");
        }
    }
    let mut dirs = vec![layout::pod_dir(&ctx.data_dir, uid)];
    if let Some(pod) = pod {
        let ns = if pod.metadata.namespace.is_empty() { "default" } else { &pod.metadata.namespace };
        dirs.push(layout::pod_log_dir(&ctx.data_dir, ns, &pod.metadata.name, uid));
    }
    for dir in dirs {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("node: removing {}: {e}", dir.display()),
        }
    }
}
