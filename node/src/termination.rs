//! Stopping containers and pods, in kubelet's order: the pod leaves every Service's
//! endpoint set (the node's `before_stop` hook), each container's `preStop` hook runs
//! within the grace period, then SIGTERM to each container's init, the rest of the grace
//! period, then SIGKILL of everything left in the cgroup; afterwards the containers,
//! sandbox, cgroups, volumes and logs go, and the pod object is removed from the store.

use super::{layout, sandbox, NodeContext};
use crate::events::{self, Reason};
use coracle_config::core::Pod;
use coracle_config::object::{Object, Resource};
use coracle_config::time::MAX_SPAN;
use coracle_runtime::{ContainerRuntime, ContainerState};
use coracle_store::{DeleteOptions, StoreError};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant, SystemTime};

/// How long a shim gets to record an exit after its container was killed.
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(5);
/// How often a terminating pod is looked at.
const TERMINATION_POLL: Duration = Duration::from_millis(200);
/// What SIGTERM leaves a container at least, however long its preStop hook took (kubelet's
/// minimum grace period after a hook).
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);
/// Stack of a thread that stops one container of a multi-container pod.
const STOPPER_STACK: usize = 128 * 1024;

/// Runs container `name`'s preStop hook within the budget, if it has one; the pod worker
/// provides it (the hook needs the container's spec and sandbox).
pub type PreStop<'a> = &'a (dyn Fn(&str, Duration) + Sync);

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
    /// Every container has stopped (their exits are recorded): [`finish`] removes the rest.
    Stopped,
    /// Everything is gone, the object too.
    Finished,
}

fn is_running(runtime: &dyn ContainerRuntime, id: &str) -> bool {
    matches!(runtime.state(id), ContainerState::Running { .. })
}

/// `span` from now on the monotonic clock, a span beyond any a clock can count (a grace
/// period from a stored object) being the longest one that can: `Instant + Duration` panics
/// on overflow, and a panic aborts the daemon.
fn instant_after(span: Duration) -> Instant {
    Instant::now() + span.min(MAX_SPAN)
}

/// `span` from now on the wall clock, bounded as in [`instant_after`].
fn time_after(span: Duration) -> SystemTime {
    SystemTime::now() + span.min(MAX_SPAN)
}

/// Waits (bounded) until the runtime no longer reports `id` running.
fn wait_exited(runtime: &dyn ContainerRuntime, id: &str, timeout: Duration) -> bool {
    let deadline = instant_after(timeout);
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

/// Stops one container for a restart: its preStop hook, SIGTERM, the rest of `grace`
/// (at least two seconds after a hook), then SIGKILL of its cgroup.
pub fn stop_container(ctx: &NodeContext, uid: &str, name: &str, id: &str, grace: Duration, pre_stop: PreStop) {
    let started = Instant::now();
    pre_stop(name, grace);
    if let Err(e) = ctx.runtime.signal(id, Signal::SIGTERM) {
        log::warn!("node: SIGTERM to container {id}: {e}");
    }
    let left = grace.saturating_sub(started.elapsed());
    let left = if started.elapsed() > Duration::from_millis(100) { left.max(MIN_GRACE_AFTER_HOOK) } else { left };
    if !wait_exited(&*ctx.runtime, id, left) {
        if let Some(cgroup) = ctx.cgroups.open(&layout::container_cgroup(uid, name)) {
            if let Err(e) = cgroup.kill_all(Signal::SIGKILL) {
                log::warn!("node: SIGKILL to the cgroup of container {id}: {e}");
            }
        }
        let _ = ctx.runtime.signal(id, Signal::SIGKILL);
        wait_exited(&*ctx.runtime, id, EXIT_RECORD_WAIT);
    }
}

/// Withdraws the pod from Services, then for each running container (in parallel, as
/// kubelet does): the `Killing` event, its preStop hook within what is left of the grace
/// period, SIGTERM. Returns once every container has been signalled.
pub fn signal_pod(ctx: &NodeContext, pod: &Pod, ids: &[(String, String)], deadline: SystemTime, pre_stop: PreStop) {
    (ctx.before_stop)(&pod.metadata.uid);
    let running: Vec<&(String, String)> = ids.iter().filter(|(_, id)| is_running(&*ctx.runtime, id)).collect();
    let stop_one = |name: &str, id: &str| {
        let mut reference = coracle_store::events::reference_to(&Object::Pod(pod.clone()));
        reference.field_path = format!("spec.containers{{{name}}}");
        events::record(&ctx.recorder, &reference, Reason::Killing, format!("Stopping container {name}"));
        pre_stop(name, deadline.duration_since(SystemTime::now()).unwrap_or_default());
        if let Err(e) = ctx.runtime.signal(id, Signal::SIGTERM) {
            log::warn!("node: SIGTERM to container {id}: {e}");
        }
    };
    if let [(name, id)] = running.as_slice() {
        stop_one(name, id);
        return;
    }
    std::thread::scope(|scope| {
        for (name, id) in &running {
            let stop_one = &stop_one;
            let spawned = std::thread::Builder::new()
                .name("stop-container".into())
                .stack_size(STOPPER_STACK)
                .spawn_scoped(scope, move || stop_one(name, id));
            if let Err(e) = spawned {
                log::warn!("node: no thread to stop container {id} ({e}); stopping it in turn");
                stop_one(name, id);
            }
        }
    });
}

/// Stops every running container of a pod that stays in the store (its active deadline
/// passed): [`signal_pod`], up to `grace`, then SIGKILL of what is left. Blocks meanwhile.
pub fn stop_pod(ctx: &NodeContext, pod: &Pod, ids: &[(String, String)], grace: Duration, pre_stop: PreStop) {
    let deadline = time_after(grace);
    signal_pod(ctx, pod, ids, deadline, pre_stop);
    for (name, id) in ids {
        let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
        if !wait_exited(&*ctx.runtime, id, left) {
            if let Some(cgroup) = ctx.cgroups.open(&layout::container_cgroup(&pod.metadata.uid, name)) {
                if let Err(e) = cgroup.kill_all(Signal::SIGKILL) {
                    log::warn!("node: SIGKILL to the cgroup of container {id}: {e}");
                }
            }
            let _ = ctx.runtime.signal(id, Signal::SIGKILL);
            wait_exited(&*ctx.runtime, id, EXIT_RECORD_WAIT);
        }
    }
}

/// One pass of a graceful deletion of `pod`, whose current container instances are `ids`
/// (`(container name, runtime id)`): signals them once, waits out the grace period, then
/// kills what is left and waits for the exits to be recorded ([`Step::Stopped`]).
pub fn step(
    ctx: &NodeContext,
    pod: &Pod,
    ids: &[(String, String)],
    progress: &mut Progress,
    pre_stop: PreStop,
) -> Step {
    let deadline = pod
        .metadata
        .deletion_timestamp
        .as_deref()
        .and_then(coracle_config::time::parse)
        .unwrap_or_else(SystemTime::now);
    if !progress.signaled {
        progress.signaled = true;
        signal_pod(ctx, pod, ids, deadline, pre_stop);
    }
    let any_running = ids.iter().any(|(_, id)| is_running(&*ctx.runtime, id));
    let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    if any_running && !left.is_zero() {
        return Step::Wait(Instant::now() + left.min(TERMINATION_POLL));
    }
    if any_running {
        kill_pod_cgroup(ctx, &pod.metadata.uid);
        for (_, id) in ids {
            wait_exited(&*ctx.runtime, id, EXIT_RECORD_WAIT);
        }
    }
    Step::Stopped
}

/// The end of a graceful deletion once [`step`] said `Stopped`: removes the containers,
/// sandbox, cgroups, volumes and logs, then the object from the store.
pub fn finish(ctx: &NodeContext, pod: &Pod, ids: &[(String, String)]) -> Step {
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
    (ctx.before_stop)(uid);
    kill_pod_cgroup(ctx, uid);
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

/// SIGKILL of everything in pod `uid`'s cgroup.
fn kill_pod_cgroup(ctx: &NodeContext, uid: &str) {
    if let Some(cgroup) = ctx.cgroups.open(&layout::pod_cgroup(uid)) {
        if let Err(e) = cgroup.kill_all(Signal::SIGKILL) {
            log::warn!("node: SIGKILL to pod {uid}'s cgroup: {e}");
        }
    }
}

/// Removes the sandbox, cgroups and directories of pod `uid` (its containers must be gone).
pub fn remove_pod_leftovers(ctx: &NodeContext, pod: Option<&Pod>, uid: &str) {
    let result: Result<(), Box<dyn std::error::Error>> = match pod {
        Some(pod) => sandbox::remove(&*ctx.runtime, &*ctx.network, pod).map_err(Into::into),
        None => ctx.runtime.remove_sandbox(&layout::sandbox_id(uid)).map_err(Into::into),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_from_any_grace_period_are_on_the_clock() {
        // `SystemTime::now() + grace` with a stored grace of i64::MAX seconds aborted the
        // daemon when a pod's active deadline passed, and again on every restart.
        let grace = Duration::from_secs(i64::MAX as u64);
        let wall = time_after(grace);
        assert!(wall > SystemTime::now() + Duration::from_secs(3600 * 24 * 365 * 60));
        assert!(coracle_config::time::rfc3339(wall).starts_with("20"));
        assert!(instant_after(Duration::MAX) > Instant::now() + Duration::from_secs(3600 * 24 * 365 * 60));
        let short = Duration::from_secs(5);
        assert!(time_after(short) <= SystemTime::now() + short);
    }
}
