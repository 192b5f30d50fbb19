//! Pods through the API: the benchmark's one-container busybox pod, and a watch that waits for
//! pods to reach a phase or disappear without polling.

use crate::daemon::BenchDaemon;
use coracle_e2e::http::WatchStream;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The pods collection of the default namespace.
pub const PODS: &str = "/api/v1/namespaces/default/pods";
/// The image every benchmark pod runs.
pub const IMAGE: &str = "busybox:bench";

/// A one-container pod that sleeps, and exits at once on SIGTERM (busybox `sleep` as pid 1
/// would ignore it and hold deletion for the whole grace period).
pub fn manifest(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "coracle-bench"}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "main",
                "image": IMAGE,
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
            }],
        },
    })
}

/// Creates a pod; returns once the API has accepted it.
pub fn create(daemon: &BenchDaemon, name: &str) -> Result<(), String> {
    let body = manifest(name).to_string();
    let resp = daemon.request("POST", PODS, Some(("application/json", body.as_bytes())))?;
    if resp.status != 201 {
        return Err(format!("creating pod {name}: HTTP {}: {}", resp.status, resp.body));
    }
    Ok(())
}

/// Deletes a pod (gracefully, as `coracle delete` does).
pub fn delete(daemon: &BenchDaemon, name: &str) -> Result<(), String> {
    let resp = daemon.request("DELETE", &format!("{PODS}/{name}"), None)?;
    if !matches!(resp.status, 200 | 202 | 404) {
        return Err(format!("deleting pod {name}: HTTP {}: {}", resp.status, resp.body));
    }
    Ok(())
}

/// A watch on the default namespace's pods that resumes from the last event it saw.
pub struct PodWatch<'d> {
    daemon: &'d BenchDaemon,
    stream: WatchStream,
    resource_version: String,
}

impl<'d> PodWatch<'d> {
    /// Lists the pods for a resourceVersion and watches from there.
    pub fn open(daemon: &'d BenchDaemon) -> Result<PodWatch<'d>, String> {
        let list = daemon.request("GET", PODS, None)?;
        let list: Value =
            serde_json::from_str(&list.body).map_err(|e| format!("GET {PODS}: not JSON ({e}): {}", list.body))?;
        let resource_version = list["metadata"]["resourceVersion"]
            .as_str()
            .ok_or_else(|| format!("GET {PODS}: no metadata.resourceVersion in {list}"))?
            .to_string();
        let stream = Self::connect(daemon, &resource_version)?;
        Ok(PodWatch { daemon, stream, resource_version })
    }

    fn connect(daemon: &BenchDaemon, resource_version: &str) -> Result<WatchStream, String> {
        let path = format!("{PODS}?watch=1&resourceVersion={resource_version}");
        let stream = WatchStream::open(daemon.socket(), &path).map_err(|e| format!("watch {path}: {e}"))?;
        if stream.status != 200 {
            return Err(format!("watch {path}: HTTP {}", stream.status));
        }
        Ok(stream)
    }

    /// Feeds each event (`type`, object) to `done` until it returns true, or fails after `timeout`.
    pub fn until(&mut self, timeout: Duration, mut done: impl FnMut(&str, &Value) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now()).ok_or_else(|| {
                format!("no matching pod event within {} s; {}", timeout.as_secs(), self.daemon.log_tail())
            })?;
            match self.stream.next_event(left) {
                Some(event) => {
                    let kind = event["type"].as_str().unwrap_or_default();
                    let object = &event["object"];
                    if kind == "ERROR" {
                        return Err(format!("watch error: {object}"));
                    }
                    if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
                        self.resource_version = rv.to_string();
                    }
                    if done(kind, object) {
                        return Ok(());
                    }
                }
                // The server ends watches after a while: resume where this one stopped.
                None if self.stream.ended() => self.stream = Self::connect(self.daemon, &self.resource_version)?,
                None => {}
            }
        }
    }

    /// Waits until every pod in `names` has reached phase Running.
    pub fn until_running(&mut self, names: &BTreeSet<String>, timeout: Duration) -> Result<(), String> {
        let mut waiting = names.clone();
        self.until(timeout, |_, pod| {
            if pod["status"]["phase"] == "Running" {
                waiting.remove(pod["metadata"]["name"].as_str().unwrap_or_default());
            }
            phase_failed(pod).map_or(waiting.is_empty(), |_| true)
        })?;
        failure_of(self.daemon, names)
    }

    /// Waits until every pod in `names` is gone.
    pub fn until_deleted(&mut self, names: &BTreeSet<String>, timeout: Duration) -> Result<(), String> {
        let mut left = names.clone();
        self.until(timeout, |kind, pod| {
            if kind == "DELETED" {
                left.remove(pod["metadata"]["name"].as_str().unwrap_or_default());
            }
            left.is_empty()
        })
    }
}

/// Why a pod will never run, when it says so (phase Failed, or a waiting reason that is an error).
fn phase_failed(pod: &Value) -> Option<String> {
    if pod["status"]["phase"] == "Failed" {
        return Some(format!("phase Failed: {}", pod["status"]));
    }
    let statuses = pod["status"]["containerStatuses"].as_array()?;
    statuses.iter().find_map(|s| {
        let reason = s["state"]["waiting"]["reason"].as_str()?;
        matches!(
            reason,
            "ErrImagePull" | "ImagePullBackOff" | "CreateContainerError" | "RunContainerError" | "StartError"
        )
        .then(|| format!("container {}: {reason}: {}", s["name"], s["state"]["waiting"]["message"]))
    })
}

/// An error naming the first of `names` that cannot run, if any.
fn failure_of(daemon: &BenchDaemon, names: &BTreeSet<String>) -> Result<(), String> {
    for name in names {
        let resp = daemon.request("GET", &format!("{PODS}/{name}"), None)?;
        if let Ok(pod) = serde_json::from_str::<Value>(&resp.body) {
            if let Some(why) = phase_failed(&pod) {
                return Err(format!("pod {name} will not run: {why}; {}", daemon.log_tail()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_pod_is_a_valid_one_container_pod() {
        let pod = manifest("bench-7");
        let typed: coracle_config::core::Pod = serde_json::from_value(pod.clone()).unwrap();
        assert_eq!(typed.metadata.name, "bench-7");
        assert_eq!(typed.spec.containers.len(), 1);
        let object = coracle_config::Object::Pod(typed);
        coracle_config::validation::validate(&object).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(pod["spec"]["containers"][0]["image"], IMAGE);
    }

    #[test]
    fn start_errors_are_recognised_and_running_pods_are_not() {
        let running =
            json!({"status": {"phase": "Running", "containerStatuses": [{"name": "main", "state": {"running": {}}}]}});
        assert_eq!(phase_failed(&running), None);
        let pulling = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(phase_failed(&pulling), None);
        let broken = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImagePull", "message": "no busybox"}}}]}});
        assert!(phase_failed(&broken).unwrap().contains("ErrImagePull"));
    }
}
