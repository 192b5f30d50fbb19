//! `meta.k8s.io/v1` Tables, as kube-apiserver's server-side printers answer
//! `Accept: application/json;as=Table;…`: kubectl's `get` prints them column for column.

use coracle_config::object::{Object, ResourceInfo};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::SystemTime;

/// One column: its header, JSON type, and priority (1 = only with `-o wide`).
struct Column(&'static str, &'static str, u8);

fn columns(info: &ResourceInfo) -> Vec<Column> {
    let mut cols = vec![Column("Name", "string", 0)];
    let rest: &[Column] = match info.kind {
        "Pod" => &[
            Column("Ready", "string", 0),
            Column("Status", "string", 0),
            Column("Restarts", "string", 0),
            Column("Age", "string", 0),
            Column("IP", "string", 1),
            Column("Node", "string", 1),
            Column("Nominated Node", "string", 1),
            Column("Readiness Gates", "string", 1),
        ],
        "Deployment" => &[
            Column("Ready", "string", 0),
            Column("Up-to-date", "integer", 0),
            Column("Available", "integer", 0),
            Column("Age", "string", 0),
            Column("Containers", "string", 1),
            Column("Images", "string", 1),
            Column("Selector", "string", 1),
        ],
        "ReplicaSet" => &[
            Column("Desired", "integer", 0),
            Column("Current", "integer", 0),
            Column("Ready", "integer", 0),
            Column("Age", "string", 0),
            Column("Containers", "string", 1),
            Column("Images", "string", 1),
            Column("Selector", "string", 1),
        ],
        "Service" => &[
            Column("Type", "string", 0),
            Column("Cluster-IP", "string", 0),
            Column("External-IP", "string", 0),
            Column("Port(s)", "string", 0),
            Column("Age", "string", 0),
            Column("Selector", "string", 1),
        ],
        "Endpoints" => &[Column("Endpoints", "string", 0), Column("Age", "string", 0)],
        "HorizontalPodAutoscaler" => &[
            Column("Reference", "string", 0),
            Column("Targets", "string", 0),
            Column("MinPods", "string", 0),
            Column("MaxPods", "integer", 0),
            Column("Replicas", "integer", 0),
            Column("Age", "string", 0),
        ],
        "Event" => &[
            Column("Last Seen", "string", 0),
            Column("Type", "string", 0),
            Column("Reason", "string", 0),
            Column("Object", "string", 0),
            Column("Message", "string", 0),
            Column("Count", "string", 1),
        ],
        "Namespace" => &[Column("Status", "string", 0), Column("Age", "string", 0)],
        _ => &[Column("Age", "string", 0)],
    };
    cols.extend(rest.iter().map(|c| Column(c.0, c.1, c.2)));
    cols
}

fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

fn age(v: &Value, pointer: &str, now: SystemTime) -> String {
    let t = text(v, pointer);
    if t.is_empty() {
        return "<unknown>".into();
    }
    coracle_config::time::age(&t, now)
}

fn list_of<'v>(v: &'v Value, pointer: &str) -> &'v [Value] {
    v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn joined(items: &[Value], field: &str) -> String {
    items.iter().map(|c| text(c, &format!("/{field}"))).collect::<Vec<_>>().join(",")
}

/// A label selector (`matchLabels` only, as kubectl's wide column shows it mostly) or the
/// map selector of a Service.
fn selector(v: &Value) -> String {
    let map = v.pointer("/matchLabels").or(Some(v)).and_then(Value::as_object);
    let mut parts: Vec<String> =
        map.into_iter().flatten().filter_map(|(k, val)| val.as_str().map(|s| format!("{k}={s}"))).collect();
    for expr in list_of(v, "/matchExpressions") {
        let values: Vec<String> =
            list_of(expr, "/values").iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
        parts.push(format!("{} {} ({})", text(expr, "/key"), text(expr, "/operator").to_lowercase(), values.join(",")));
    }
    or_none(parts.join(","))
}

/// kubectl's pod STATUS: the phase, refined by a waiting/terminated container reason, or
/// `Terminating` once the pod is marked for deletion.
fn pod_status(v: &Value) -> String {
    let mut reason = text(v, "/status/reason");
    if reason.is_empty() {
        reason = or_none(text(v, "/status/phase")).replace("<none>", "Pending");
    }
    for (i, c) in list_of(v, "/status/initContainerStatuses").iter().enumerate() {
        let terminated_ok = c.pointer("/state/terminated/exitCode").and_then(Value::as_i64) == Some(0);
        if terminated_ok {
            continue;
        }
        let waiting = text(c, "/state/waiting/reason");
        let total = list_of(v, "/spec/initContainers").len();
        return if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{total}")
        };
    }
    for c in list_of(v, "/status/containerStatuses").iter().rev() {
        let waiting = text(c, "/state/waiting/reason");
        let terminated = text(c, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting;
        } else if !terminated.is_empty() {
            reason = terminated;
        } else if c.pointer("/state/terminated").is_some() {
            let code = int(c, "/state/terminated/exitCode");
            reason = format!("ExitCode:{code}");
        }
    }
    if v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        reason = "Terminating".into();
    }
    reason
}

fn service_ports(v: &Value) -> String {
    let ports: Vec<String> = list_of(v, "/spec/ports")
        .iter()
        .map(|p| {
            let node = int(p, "/nodePort");
            let proto = or_none(text(p, "/protocol")).replace("<none>", "TCP");
            if node > 0 {
                format!("{}:{node}/{proto}", int(p, "/port"))
            } else {
                format!("{}/{proto}", int(p, "/port"))
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn endpoints(v: &Value) -> String {
    let mut all = Vec::new();
    for subset in list_of(v, "/subsets") {
        for address in list_of(subset, "/addresses") {
            let ports = list_of(subset, "/ports");
            if ports.is_empty() {
                all.push(text(address, "/ip"));
            }
            for port in ports {
                all.push(format!("{}:{}", text(address, "/ip"), int(port, "/port")));
            }
        }
    }
    let shown = all.len().min(3);
    let mut out = all[..shown].join(",");
    if all.len() > 3 {
        out.push_str(&format!(" + {} more...", all.len() - 3));
    }
    or_none(out)
}

fn hpa_targets(v: &Value) -> String {
    let metrics = list_of(v, "/spec/metrics");
    let current = list_of(v, "/status/currentMetrics");
    let parts: Vec<String> = metrics
        .iter()
        .map(|m| {
            let name = text(m, "/resource/name");
            let target = m.pointer("/resource/target/averageUtilization").and_then(Value::as_i64);
            let now = current
                .iter()
                .find(|c| text(c, "/resource/name") == name)
                .and_then(|c| c.pointer("/resource/current/averageUtilization"))
                .and_then(Value::as_i64);
            let now = now.map_or("<unknown>".to_string(), |n| format!("{n}%"));
            match target {
                Some(t) => format!("{name}: {now}/{t}%"),
                None => format!("{name}: {now}/{}", text(m, "/resource/target/averageValue")),
            }
        })
        .collect();
    or_none(parts.join(", "))
}

fn cells(object: &Object, now: SystemTime) -> Vec<Value> {
    let v = object.to_json();
    let name = json!(object.metadata().name);
    let rest: Vec<Value> = match object.info().kind {
        "Pod" => {
            let statuses = list_of(&v, "/status/containerStatuses");
            let ready = statuses.iter().filter(|c| c["ready"] == json!(true)).count();
            let restarts: i64 = statuses.iter().map(|c| int(c, "/restartCount")).sum();
            vec![
                json!(format!("{ready}/{}", list_of(&v, "/spec/containers").len())),
                json!(pod_status(&v)),
                json!(restarts.to_string()),
                json!(age(&v, "/metadata/creationTimestamp", now)),
                json!(or_none(text(&v, "/status/podIP"))),
                json!(or_none(text(&v, "/spec/nodeName"))),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "Deployment" | "ReplicaSet" => {
            let containers = list_of(&v, "/spec/template/spec/containers");
            let wide = [
                json!(joined(containers, "name")),
                json!(joined(containers, "image")),
                json!(selector(v.pointer("/spec/selector").unwrap_or(&Value::Null))),
            ];
            let mut row = if object.info().kind == "Deployment" {
                vec![
                    json!(format!("{}/{}", int(&v, "/status/readyReplicas"), int(&v, "/spec/replicas"))),
                    json!(int(&v, "/status/updatedReplicas")),
                    json!(int(&v, "/status/availableReplicas")),
                ]
            } else {
                vec![
                    json!(int(&v, "/spec/replicas")),
                    json!(int(&v, "/status/replicas")),
                    json!(int(&v, "/status/readyReplicas")),
                ]
            };
            row.push(json!(age(&v, "/metadata/creationTimestamp", now)));
            row.extend(wide);
            row
        }
        "Service" => {
            let external: Vec<String> =
                list_of(&v, "/status/loadBalancer/ingress").iter().map(|i| text(i, "/ip")).collect();
            let kind = or_none(text(&v, "/spec/type")).replace("<none>", "ClusterIP");
            let external = if external.is_empty() && kind == "LoadBalancer" {
                "<pending>".into()
            } else {
                or_none(external.join(","))
            };
            vec![
                json!(kind),
                json!(or_none(text(&v, "/spec/clusterIP"))),
                json!(external),
                json!(service_ports(&v)),
                json!(age(&v, "/metadata/creationTimestamp", now)),
                json!(selector(v.pointer("/spec/selector").unwrap_or(&Value::Null))),
            ]
        }
        "Endpoints" => vec![json!(endpoints(&v)), json!(age(&v, "/metadata/creationTimestamp", now))],
        "HorizontalPodAutoscaler" => vec![
            json!(format!("{}/{}", text(&v, "/spec/scaleTargetRef/kind"), text(&v, "/spec/scaleTargetRef/name"))),
            json!(hpa_targets(&v)),
            json!(or_none(text(&v, "/spec/minReplicas")).replace("<none>", "1")),
            json!(int(&v, "/spec/maxReplicas")),
            json!(int(&v, "/status/currentReplicas")),
            json!(age(&v, "/metadata/creationTimestamp", now)),
        ],
        "Event" => {
            let last = ["/lastTimestamp", "/eventTime", "/firstTimestamp", "/metadata/creationTimestamp"]
                .iter()
                .find(|p| !text(&v, p).is_empty())
                .map_or("<unknown>".to_string(), |p| age(&v, p, now));
            let object_ref =
                format!("{}/{}", text(&v, "/involvedObject/kind").to_lowercase(), text(&v, "/involvedObject/name"));
            vec![
                json!(last),
                json!(text(&v, "/type")),
                json!(text(&v, "/reason")),
                json!(object_ref),
                json!(text(&v, "/message")),
                json!(int(&v, "/count").max(1).to_string()),
            ]
        }
        "Namespace" => vec![
            json!(or_none(text(&v, "/status/phase")).replace("<none>", "Active")),
            json!(age(&v, "/metadata/creationTimestamp", now)),
        ],
        _ => vec![json!(age(&v, "/metadata/creationTimestamp", now))],
    };
    std::iter::once(name).chain(rest).collect()
}

/// The object as `PartialObjectMetadata` (what `--show-labels` and `-o name` read).
fn partial(object: &Object) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.metadata()})
}

/// A Table of `objects`; `definitions` false leaves the column definitions out (watch
/// events after the first).
pub fn table(info: &ResourceInfo, objects: &[Arc<Object>], resource_version: Option<u64>, definitions: bool) -> Value {
    let now = SystemTime::now();
    let defs: Vec<Value> = if definitions {
        columns(info)
            .iter()
            .map(|c| {
                let mut d = json!({"name": c.0, "type": c.1, "format": "", "description": c.0, "priority": c.2});
                if c.0 == "Name" {
                    d["format"] = json!("name");
                }
                d
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects.iter().map(|o| json!({"cells": cells(o, now), "object": partial(o)})).collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::manifest::decode_object;

    fn object(v: Value) -> Arc<Object> {
        Arc::new(decode_object(v).unwrap().object)
    }

    #[test]
    fn pod_rows_follow_kubectl_columns() {
        let pod = object(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], "nodeName": "board"},
            "status": {"phase": "Running", "podIP": "10.0.0.2", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "image": "x", "imageID": "", "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1, "image": "y", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        }));
        let t = table(pod.info(), std::slice::from_ref(&pod), Some(7), true);
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "3");
        assert_eq!((cells[5].as_str(), cells[6].as_str()), (Some("10.0.0.2"), Some("board")));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
    }

    #[test]
    fn deployment_and_service_rows() {
        let deploy = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "n", "image": "nginx"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        }));
        let t = table(deploy.info(), std::slice::from_ref(&deploy), None, true);
        let cells = &t["rows"][0]["cells"];
        assert_eq!((cells[1].as_str(), cells[2].as_i64(), cells[3].as_i64()), (Some("2/3"), Some(3), Some(2)));
        assert_eq!(
            (cells[5].as_str(), cells[6].as_str(), cells[7].as_str()),
            (Some("n"), Some("nginx"), Some("app=web"))
        );
        let svc = object(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}
        }));
        let t = table(svc.info(), std::slice::from_ref(&svc), None, false);
        assert_eq!(t["columnDefinitions"], json!([]));
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[1], "NodePort");
        assert_eq!(cells[4], "80:30080/TCP");
        assert_eq!(cells[6], "app=web");
    }
}
