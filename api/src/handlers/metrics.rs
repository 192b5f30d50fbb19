//! The resource metrics API (`metrics.k8s.io/v1beta1`) for `kubectl top` and `coracle top`:
//! PodMetrics and NodeMetrics from the node's `MetricsSource`.

use crate::context::{MetricsSource, Usage};
use crate::errors::ApiError;
use crate::routes::MetricsPath;
use coracle_config::core::Pod;
use coracle_store::Store;
use serde_json::{json, Value};

const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// `{"cpu": "12m", "memory": "3456Ki"}`, as metrics-server writes quantities.
fn usage_json(usage: &Usage) -> Value {
    json!({"cpu": format!("{}m", usage.cpu_millicores), "memory": format!("{}Ki", usage.memory_bytes / 1024)})
}

fn pod_metrics(pod: &Pod, source: &dyn MetricsSource) -> Option<Value> {
    let containers = source.pod_usage(&pod.metadata.uid)?;
    let containers: Vec<Value> =
        containers.iter().map(|c| json!({"name": c.name, "usage": usage_json(&c.usage)})).collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": pod.metadata.name,
            "namespace": pod.metadata.namespace,
            "labels": pod.metadata.labels,
            "creationTimestamp": coracle_config::time::now(),
        },
        "timestamp": coracle_config::time::now(),
        "window": format!("{}s", source.window_seconds()),
        "containers": containers,
    }))
}

fn not_found(what: &str, name: &str) -> ApiError {
    ApiError::Status { code: 404, reason: "NotFound", message: format!("{what}.metrics.k8s.io \"{name}\" not found") }
}

/// Serves a metrics path; without a source, lists are empty and single objects 404.
pub fn serve(store: &Store, source: Option<&dyn MetricsSource>, path: &MetricsPath) -> Result<Value, ApiError> {
    if path.nodes {
        let node = source.and_then(|s| s.node_usage().map(|(name, usage)| (name, usage, s.window_seconds())));
        let items: Vec<Value> = node
            .iter()
            .filter(|(name, ..)| path.name.as_ref().is_none_or(|n| n == name))
            .map(|(name, usage, window)| {
                json!({
                    "kind": "NodeMetrics",
                    "apiVersion": API_VERSION,
                    "metadata": {"name": name, "creationTimestamp": coracle_config::time::now()},
                    "timestamp": coracle_config::time::now(),
                    "window": format!("{window}s"),
                    "usage": usage_json(usage),
                })
            })
            .collect();
        return match &path.name {
            Some(name) => items.into_iter().next().ok_or_else(|| not_found("nodes", name)),
            None => Ok(json!({"kind": "NodeMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": items})),
        };
    }
    let mut items: Vec<Value> = store
        .list_as::<Pod>(path.namespace.as_deref(), None)
        .iter()
        .filter(|pod| path.name.as_ref().is_none_or(|n| *n == pod.metadata.name))
        .filter_map(|pod| source.and_then(|s| pod_metrics(pod, s)))
        .collect();
    items.sort_by(|a, b| {
        let key = |v: &Value| (v["metadata"]["namespace"].to_string(), v["metadata"]["name"].to_string());
        key(a).cmp(&key(b))
    });
    match &path.name {
        Some(name) => items.into_iter().next().ok_or_else(|| not_found("pods", name)),
        None => Ok(json!({"kind": "PodMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": items})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContainerUsage;
    use coracle_config::object::Object;

    struct Fixed;

    impl MetricsSource for Fixed {
        fn pod_usage(&self, pod_uid: &str) -> Option<Vec<ContainerUsage>> {
            (pod_uid == "u1").then(|| {
                vec![ContainerUsage {
                    name: "app".into(),
                    usage: Usage { cpu_millicores: 12, memory_bytes: 3456 * 1024 },
                }]
            })
        }
        fn node_usage(&self) -> Option<(String, Usage)> {
            Some(("board".into(), Usage { cpu_millicores: 250, memory_bytes: 1 << 30 }))
        }
    }

    #[test]
    fn pod_and_node_metrics_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut pod = Pod::default();
        pod.metadata.name = "web".into();
        pod.metadata.namespace = "default".into();
        let stored = store.create(Object::Pod(pod)).unwrap();
        let uid = stored.metadata().uid.clone();
        // The fixed source knows uid "u1" only: the stored pod has no figures yet.
        let path = MetricsPath { nodes: false, namespace: Some("default".into()), name: None };
        let list = serve(&store, Some(&Fixed), &path).unwrap();
        assert_eq!(list["items"], json!([]));
        assert_ne!(uid, "u1");
        let mut pod = Pod::default();
        pod.metadata.uid = "u1".into();
        pod.metadata.name = "p".into();
        let one = pod_metrics(&pod, &Fixed).unwrap();
        assert_eq!(one["containers"][0]["usage"], json!({"cpu": "12m", "memory": "3456Ki"}));
        assert_eq!(one["window"], "15s");
        let nodes = serve(&store, Some(&Fixed), &MetricsPath { nodes: true, namespace: None, name: None }).unwrap();
        assert_eq!(nodes["items"][0]["metadata"]["name"], "board");
        let missing = MetricsPath { nodes: true, namespace: None, name: Some("other".into()) };
        assert_eq!(serve(&store, Some(&Fixed), &missing).unwrap_err().code(), 404);
        assert_eq!(
            serve(&store, None, &MetricsPath { nodes: true, namespace: None, name: None }).unwrap()["items"],
            json!([])
        );
    }
}
