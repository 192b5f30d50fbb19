//! Where a pod's things live: container ids, cgroup paths, per-pod directories and logs.

use std::path::{Path, PathBuf};

/// The cgroup holding every pod, relative to the daemon's cgroup base.
pub const PODS_CGROUP: &str = "pods";

/// `pods/<uid>`: the pod's cgroup (pids.max is set here).
pub fn pod_cgroup(uid: &str) -> String {
    format!("{PODS_CGROUP}/{uid}")
}

/// `pods/<uid>/<container>`: one container's cgroup (its memory and CPU limits).
pub fn container_cgroup(uid: &str, container: &str) -> String {
    format!("{PODS_CGROUP}/{uid}/{container}")
}

/// The runtime id of attempt `attempt` of a container. `_` never occurs in a pod uid or a
/// container name (DNS labels), so the id parses back unambiguously.
pub fn container_id(uid: &str, container: &str, attempt: u32) -> String {
    format!("{uid}_{container}_{attempt}")
}

/// `(pod uid, container name, attempt)` of an id made by [`container_id`].
pub fn parse_container_id(id: &str) -> Option<(&str, &str, u32)> {
    let mut parts = id.split('_');
    let (uid, name, attempt) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || uid.is_empty() || name.is_empty() {
        return None;
    }
    Some((uid, name, attempt.parse().ok()?))
}

/// The pod's sandbox id: its uid.
pub fn sandbox_id(uid: &str) -> String {
    uid.to_string()
}

/// `DATA/pods/<uid>`: volumes and containers' writable layers.
pub fn pod_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("pods").join(uid)
}

/// `DATA/pods/<uid>/volumes/<name>`: an emptyDir.
pub fn volume_dir(data_dir: &Path, uid: &str, volume: &str) -> PathBuf {
    pod_dir(data_dir, uid).join("volumes").join(volume)
}

/// `DATA/pods/<uid>/containers/<name>`: a container's upper and work directories.
pub fn container_dir(data_dir: &Path, uid: &str, container: &str) -> PathBuf {
    pod_dir(data_dir, uid).join("containers").join(container)
}

/// `DATA/logs/<ns>_<pod>_<uid>`: the pod's log directory.
pub fn pod_log_dir(data_dir: &Path, namespace: &str, pod: &str, uid: &str) -> PathBuf {
    data_dir.join("logs").join(format!("{namespace}_{pod}_{uid}"))
}

/// `DATA/logs/<ns>_<pod>_<uid>/<container>/0.log`: the live CRI log.
pub fn log_path(data_dir: &Path, namespace: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
    pod_log_dir(data_dir, namespace, pod, uid).join(container).join("0.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_parse_back() {
        let id = container_id("3f2a-11", "web-server", 7);
        assert_eq!(parse_container_id(&id), Some(("3f2a-11", "web-server", 7)));
        assert_eq!(parse_container_id("junk"), None);
        assert_eq!(parse_container_id("a_b_c"), None);
        assert_eq!(parse_container_id("a_b_1_2"), None);
    }

    #[test]
    fn paths_follow_the_documented_layout() {
        let data = Path::new("/d");
        assert_eq!(log_path(data, "default", "web", "u1", "c"), Path::new("/d/logs/default_web_u1/c/0.log"));
        assert_eq!(volume_dir(data, "u1", "cache"), Path::new("/d/pods/u1/volumes/cache"));
        assert_eq!(container_cgroup("u1", "c"), "pods/u1/c");
    }
}
