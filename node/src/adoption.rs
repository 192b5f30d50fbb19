//! Daemon start: sort what the last run (or a power cut) left behind into containers to
//! re-adopt and leftovers to clean up: what cannot be proven alive is cleaned up.
//! Containers, sandboxes, cgroups (found under the daemon's own cgroup subpath) and
//! directories of pods that no longer exist are removed; a container whose pod lives is handed to the
//! pod's worker, which proves it alive (pid + start time) or restarts it.

use super::{layout, termination, NodeContext};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Runtime containers of live pods: pod uid → `(container name, attempt, id)`.
pub type Adoptable = HashMap<String, Vec<(String, u32, String)>>;

fn dir_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect()
}

/// Cleans up after pods not in `live` (uid → container names) and returns the containers
/// of the live ones. `run_dir` is the runtime's, whose `sandboxes/` names pod uids.
pub fn survey(ctx: &NodeContext, run_dir: &Path, live: &HashMap<String, HashSet<String>>) -> Adoptable {
    let mut adoptable = Adoptable::new();
    let mut dead_pods = HashSet::new();
    for id in ctx.runtime.list() {
        match layout::parse_container_id(&id) {
            Some((uid, name, attempt)) if live.get(uid).is_some_and(|names| names.contains(name)) => {
                adoptable.entry(uid.to_string()).or_default().push((name.to_string(), attempt, id.clone()));
            }
            Some((uid, _, _)) => {
                log::info!("node: removing container {id}: its pod is gone");
                if let Some(cgroup) = ctx.cgroups.open(&layout::pod_cgroup(uid)) {
                    let _ = cgroup.kill_all(nix::sys::signal::Signal::SIGKILL);
                }
                termination::discard_container(&*ctx.runtime, &id);
                dead_pods.insert(uid.to_string());
            }
            None => log::warn!("node: leaving container {id} alone: not a name this node gives"),
        }
    }
    for uid in dir_names(&run_dir.join("sandboxes")) {
        if !live.contains_key(&uid) {
            dead_pods.insert(uid);
        }
    }
    // Everything below the daemon's own cgroup subpath is this daemon's (each daemon on a
    // machine has its own `cgroup_subpath`): a pod cgroup no live pod owns is a leftover,
    // e.g. after a power cut wiped the run directory but a process survived a crash.
    for rel in ctx.cgroups.list(layout::PODS_CGROUP) {
        let Some(uid) = rel.strip_prefix(layout::PODS_CGROUP).and_then(|r| r.strip_prefix('/')) else { continue };
        if !live.contains_key(uid) {
            if let Some(cgroup) = ctx.cgroups.open(&rel) {
                let _ = cgroup.kill_all(nix::sys::signal::Signal::SIGKILL);
            }
            dead_pods.insert(uid.to_string());
        }
    }
    for uid in dir_names(&ctx.data_dir.join("pods")) {
        if !live.contains_key(&uid) {
            dead_pods.insert(uid);
        }
    }
    for uid in &dead_pods {
        log::info!("node: cleaning up after pod {uid}, which no longer exists");
        termination::remove_pod_leftovers(ctx, None, uid);
    }
    for name in dir_names(&ctx.data_dir.join("logs")) {
        let uid = name.rsplit('_').next().unwrap_or_default();
        if !live.contains_key(uid) {
            let _ = std::fs::remove_dir_all(ctx.data_dir.join("logs").join(&name));
        }
    }
    adoptable
}
