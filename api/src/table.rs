//! `meta.k8s.io/v1` Tables, as kube-apiserver's server-side printers answer
//! `Accept: application/json;as=Table;…`: kubectl's `get` prints them column for column.

use coracle_config::object::{Object, ResourceInfo};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::SystemTime;
use Cell::{Count, Int, Text};

/// How a column's cell is read from the object (as JSON) at `now`.
#[derive(Clone, Copy)]
enum Cell {
    /// The integer at a JSON pointer, 0 when absent: an `integer` column.
    Int(&'static str),
    /// An integer computed from the object: an `integer` column.
    Count(fn(&Value) -> i64),
    /// Text computed from the object: a `string` column.
    Text(fn(&Value, SystemTime) -> String),
}

/// One column: its header, how its cell is read, and its priority (1 = only with `-o wide`).
#[derive(Clone, Copy)]
struct Column(&'static str, Cell, u8);

const fn shown(header: &'static str, cell: Cell) -> Column {
    Column(header, cell, 0)
}

const fn wide(header: &'static str, cell: Cell) -> Column {
    Column(header, cell, 1)
}

const NAME: Column = shown("Name", Text(|v, _| text(v, "/metadata/name")));
const AGE: Column = shown("Age", Text(|v, now| age(v, "/metadata/creationTimestamp", now)));
const SELECTOR: Column = wide("Selector", Text(|v, _| selector(v.pointer("/spec/selector").unwrap_or(&Value::Null))));

/// What Deployments and ReplicaSets show after their counts: age, then their pod template.
const TEMPLATED: &[Column] = &[
    AGE,
    wide("Containers", Text(|v, _| joined(list_of(v, "/spec/template/spec/containers"), "name"))),
    wide("Images", Text(|v, _| joined(list_of(v, "/spec/template/spec/containers"), "image"))),
    SELECTOR,
];

const POD: &[Column] = &[
    shown("Ready", Text(pod_ready)),
    shown("Status", Text(|v, _| pod_status(v))),
    shown("Restarts", Text(pod_restarts)),
    AGE,
    wide("IP", Text(|v, _| or_none(text(v, "/status/podIP")))),
    wide("Node", Text(|v, _| or_none(text(v, "/spec/nodeName")))),
    wide("Nominated Node", Text(|_, _| "<none>".into())),
    wide("Readiness Gates", Text(|_, _| "<none>".into())),
];

const DEPLOYMENT: &[Column] = &[
    shown("Ready", Text(|v, _| format!("{}/{}", int(v, "/status/readyReplicas"), int(v, "/spec/replicas")))),
    shown("Up-to-date", Int("/status/updatedReplicas")),
    shown("Available", Int("/status/availableReplicas")),
];

const REPLICASET: &[Column] = &[
    shown("Desired", Int("/spec/replicas")),
    shown("Current", Int("/status/replicas")),
    shown("Ready", Int("/status/readyReplicas")),
];

const SERVICE: &[Column] = &[
    shown("Type", Text(|v, _| service_type(v))),
    shown("Cluster-IP", Text(|v, _| or_none(text(v, "/spec/clusterIP")))),
    shown("External-IP", Text(|v, _| external_ips(v))),
    shown("Port(s)", Text(|v, _| service_ports(v))),
    AGE,
    SELECTOR,
];

const ENDPOINTS: &[Column] = &[shown("Endpoints", Text(|v, _| endpoints(v))), AGE];

const HPA: &[Column] = &[
    shown(
        "Reference",
        Text(|v, _| format!("{}/{}", text(v, "/spec/scaleTargetRef/kind"), text(v, "/spec/scaleTargetRef/name"))),
    ),
    shown("Targets", Text(|v, _| hpa_targets(v))),
    shown("MinPods", Text(|v, _| or_none(text(v, "/spec/minReplicas")).replace("<none>", "1"))),
    shown("MaxPods", Int("/spec/maxReplicas")),
    shown("Replicas", Int("/status/currentReplicas")),
    AGE,
];

const EVENT: &[Column] = &[
    shown("Last Seen", Text(last_seen)),
    shown("Type", Text(|v, _| text(v, "/type"))),
    shown("Reason", Text(|v, _| text(v, "/reason"))),
    shown(
        "Object",
        Text(|v, _| format!("{}/{}", text(v, "/involvedObject/kind").to_lowercase(), text(v, "/involvedObject/name"))),
    ),
    shown("Message", Text(|v, _| text(v, "/message"))),
    wide("Count", Text(|v, _| int(v, "/count").max(1).to_string())),
];

const NAMESPACE: &[Column] =
    &[shown("Status", Text(|v, _| or_none(text(v, "/status/phase")).replace("<none>", "Active"))), AGE];

const CONFIG_MAP: &[Column] = &[shown("Data", Count(|v| keys(v, "/data").saturating_add(keys(v, "/binaryData")))), AGE];

const SECRET: &[Column] =
    &[shown("Type", Text(|v, _| text(v, "/type"))), shown("Data", Count(|v| keys(v, "/data"))), AGE];

const SERVICE_ACCOUNT: &[Column] = &[shown("Secrets", Count(|v| list_of(v, "/secrets").len() as i64)), AGE];

/// kube-apiserver's columns for a kind, Name first; both the column definitions and every
/// row's cells come from this one list.
fn columns(kind: &str) -> Vec<Column> {
    let (own, tail): (&[Column], &[Column]) = match kind {
        "Pod" => (POD, &[]),
        "Deployment" => (DEPLOYMENT, TEMPLATED),
        "ReplicaSet" => (REPLICASET, TEMPLATED),
        "Service" => (SERVICE, &[]),
        "Endpoints" => (ENDPOINTS, &[]),
        "HorizontalPodAutoscaler" => (HPA, &[]),
        "Event" => (EVENT, &[]),
        "Namespace" => (NAMESPACE, &[]),
        "ConfigMap" => (CONFIG_MAP, &[]),
        "Secret" => (SECRET, &[]),
        "ServiceAccount" => (SERVICE_ACCOUNT, &[]),
        _ => (&[AGE], &[]),
    };
    std::iter::once(NAME).chain(own.iter().copied()).chain(tail.iter().copied()).collect()
}

impl Column {
    /// The column's definition in a Table.
    fn definition(&self) -> Value {
        let Column(name, cell, priority) = *self;
        let kind = match cell {
            Int(_) | Count(_) => "integer",
            Text(_) => "string",
        };
        let format = if name == "Name" { "name" } else { "" };
        json!({"name": name, "type": kind, "format": format, "description": name, "priority": priority})
    }

    /// The column's cell for `v`.
    fn cell(&self, v: &Value, now: SystemTime) -> Value {
        match self.1 {
            Int(pointer) => json!(int(v, pointer)),
            Count(read) => json!(read(v)),
            Text(read) => json!(read(v, now)),
        }
    }
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

/// The number of entries of the map at `pointer`.
fn keys(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_object).map_or(0, |m| m.len() as i64)
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

fn service_type(v: &Value) -> String {
    or_none(text(v, "/spec/type")).replace("<none>", "ClusterIP")
}

/// The load balancer's ingress addresses; `<pending>` while a LoadBalancer has none.
fn external_ips(v: &Value) -> String {
    let external: Vec<String> = list_of(v, "/status/loadBalancer/ingress").iter().map(|i| text(i, "/ip")).collect();
    if external.is_empty() && service_type(v) == "LoadBalancer" {
        "<pending>".into()
    } else {
        or_none(external.join(","))
    }
}

/// READY: ready containers out of all of the pod's containers.
fn pod_ready(v: &Value, _: SystemTime) -> String {
    let ready = list_of(v, "/status/containerStatuses").iter().filter(|c| c["ready"] == json!(true)).count();
    format!("{ready}/{}", list_of(v, "/spec/containers").len())
}

/// RESTARTS: the restarts of all of the pod's containers.
fn pod_restarts(v: &Value, _: SystemTime) -> String {
    list_of(v, "/status/containerStatuses").iter().map(|c| int(c, "/restartCount")).sum::<i64>().to_string()
}

/// LAST SEEN: the age of the newest of an event's timestamps.
fn last_seen(v: &Value, now: SystemTime) -> String {
    ["/lastTimestamp", "/eventTime", "/firstTimestamp", "/metadata/creationTimestamp"]
        .iter()
        .find(|p| !text(v, p).is_empty())
        .map_or("<unknown>".to_string(), |p| age(v, p, now))
}

/// The object as `PartialObjectMetadata` (what `--show-labels` and `-o name` read).
fn partial(object: &Object) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.metadata()})
}

/// A Table of `objects`; `definitions` false leaves the column definitions out (watch
/// events after the first).
pub fn table(info: &ResourceInfo, objects: &[Arc<Object>], resource_version: Option<u64>, definitions: bool) -> Value {
    let now = SystemTime::now();
    let columns = columns(info.kind);
    let defs: Vec<Value> = if definitions { columns.iter().map(Column::definition).collect() } else { Vec::new() };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let v = o.to_json();
            let cells: Vec<Value> = columns.iter().map(|c| c.cell(&v, now)).collect();
            json!({"cells": cells, "object": partial(o)})
        })
        .collect();
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

    /// A Deployment or ReplicaSet of 3 pods of one `nginx` container `n`, selected by
    /// `app=web`, with `status`.
    fn templated(kind: &str, name: &str, status: Value) -> Arc<Object> {
        object(json!({
            "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "n", "image": "nginx"}]}}},
            "status": status
        }))
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
    fn replicaset_hpa_and_event_rows_with_their_column_types() {
        let rs = templated("ReplicaSet", "web-1", json!({"replicas": 2, "readyReplicas": 1}));
        let t = table(rs.info(), std::slice::from_ref(&rs), None, true);
        let defs: Vec<(&str, &str, i64)> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            defs,
            [
                ("Name", "string", 0),
                ("Desired", "integer", 0),
                ("Current", "integer", 0),
                ("Ready", "integer", 0),
                ("Age", "string", 0),
                ("Containers", "string", 1),
                ("Images", "string", 1),
                ("Selector", "string", 1)
            ]
        );
        assert_eq!(t["rows"][0]["cells"], json!(["web-1", 3, 2, 1, "<unknown>", "n", "nginx", "app=web"]));

        let hpa = object(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "maxReplicas": 4,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 73}}}]}
        }));
        let t = table(hpa.info(), std::slice::from_ref(&hpa), None, false);
        assert_eq!(t["rows"][0]["cells"], json!(["web", "Deployment/web", "cpu: 73%/50%", "1", 4, 2, "<unknown>"]));

        let event = object(json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web"}, "type": "Normal", "reason": "Started",
            "message": "Started container"
        }));
        let t = table(event.info(), std::slice::from_ref(&event), None, false);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web.1", "<unknown>", "Normal", "Started", "pod/web", "Started container", "1"])
        );
    }

    #[test]
    fn deployment_and_service_rows() {
        let deploy =
            templated("Deployment", "web", json!({"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}));
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

    #[test]
    fn config_rows_count_keys() {
        let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                               "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}));
        let t = table(cm.info(), std::slice::from_ref(&cm), None, true);
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Name", "Data", "Age"]);
        assert_eq!(t["rows"][0]["cells"][1], json!(3));
        let secret = object(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                   "type": "kubernetes.io/basic-auth", "data": {"username": "YQ=="}}));
        let t = table(secret.info(), std::slice::from_ref(&secret), None, false);
        assert_eq!(
            (&t["rows"][0]["cells"][1], &t["rows"][0]["cells"][2]),
            (&json!("kubernetes.io/basic-auth"), &json!(1))
        );
        let sa = object(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}));
        let t = table(sa.info(), std::slice::from_ref(&sa), None, false);
        assert_eq!(t["rows"][0]["cells"][1], json!(0));
    }
}
