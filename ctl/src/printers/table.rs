//! kubectl's `get` tables: the columns each kind prints, `-o wide` extras, `-A`'s NAMESPACE,
//! `--show-labels`, and the kind prefixes of `get all`.

use super::name::resource_name;
use super::pod_status::{pod_ready, pod_restarts, pod_status};
use super::tabwriter;
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::autoscaling::HorizontalPodAutoscaler;
use coracle_config::core::{Endpoints, Event, Namespace, Pod, PodTemplateSpec, Service};
use coracle_config::meta::LabelSelector;
use coracle_config::{time, Object, ResourceInfo};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Which optional parts of the table to print.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableOptions {
    /// `-o wide`.
    pub wide: bool,
    /// `--show-labels`.
    pub show_labels: bool,
    /// `-A`: a NAMESPACE column first.
    pub namespace_column: bool,
    /// Names as `kind.group/name`, when several types are printed together.
    pub kind_prefix: bool,
    /// `--no-headers`.
    pub no_headers: bool,
}

/// A header row and cell rows, before alignment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Builds the table for `objects`, all of type `info`.
pub fn table(info: &ResourceInfo, objects: &[Object], opts: &TableOptions, now: SystemTime) -> Table {
    let mut headers: Vec<String> = Vec::new();
    if opts.namespace_column && info.namespaced {
        headers.push("NAMESPACE".into());
    }
    headers.extend(columns(info.kind, opts.wide).iter().map(|s| s.to_string()));
    if opts.show_labels {
        headers.push("LABELS".into());
    }
    let rows = objects
        .iter()
        .map(|object| {
            let meta = object.metadata();
            let mut row = Vec::new();
            if opts.namespace_column && info.namespaced {
                row.push(meta.namespace.clone());
            }
            let name = if opts.kind_prefix { resource_name(info, &meta.name) } else { meta.name.clone() };
            row.extend(cells(object, name, opts.wide, now));
            if opts.show_labels {
                row.push(format_labels(&meta.labels));
            }
            row
        })
        .collect();
    Table { headers, rows }
}

/// Aligns tables as kubectl prints them, a blank line between consecutive tables.
pub fn render(tables: &[Table], no_headers: bool) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut text = String::new();
        if !no_headers {
            text.push_str(&t.headers.join("\t"));
            text.push('\n');
        }
        for row in &t.rows {
            text.push_str(&row.join("\t"));
            text.push('\n');
        }
        out.push_str(&tabwriter::GET.align(&text));
    }
    out
}

fn columns(kind: &str, wide: bool) -> &'static [&'static str] {
    match (kind, wide) {
        ("Pod", false) => &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ("Pod", true) => {
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        }
        ("Deployment", false) => &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ("Deployment", true) => {
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        }
        ("ReplicaSet", false) => &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        ("ReplicaSet", true) => &["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        ("Service", false) => &["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        ("Service", true) => &["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
        ("Endpoints", _) => &["NAME", "ENDPOINTS", "AGE"],
        ("HorizontalPodAutoscaler", _) => &["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
        ("Event", false) => &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        ("Event", true) => {
            &["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"]
        }
        ("Namespace", _) => &["NAME", "STATUS", "AGE"],
        ("ConfigMap", _) => &["NAME", "DATA", "AGE"],
        ("Secret", _) => &["NAME", "TYPE", "DATA", "AGE"],
        ("ServiceAccount", _) => &["NAME", "SECRETS", "AGE"],
        _ => &["NAME", "AGE"],
    }
}

fn cells(object: &Object, name: String, wide: bool, now: SystemTime) -> Vec<String> {
    let age = |o: &Object| age_of(o.metadata().creation_timestamp.as_deref(), now);
    match object {
        Object::Pod(p) => pod_cells(p, name, age(object), wide, now),
        Object::Deployment(d) => deployment_cells(d, name, age(object), wide),
        Object::ReplicaSet(rs) => replicaset_cells(rs, name, age(object), wide),
        Object::Service(s) => service_cells(s, name, age(object), wide),
        Object::Endpoints(e) => vec![name, format_endpoints(e), age(object)],
        Object::HorizontalPodAutoscaler(h) => hpa_cells(h, name, age(object)),
        Object::Event(e) => event_cells(e, wide, now),
        Object::Namespace(n) => vec![name, namespace_phase(n), age(object)],
        Object::ConfigMap(c) => vec![name, (c.data.len() + c.binary_data.len()).to_string(), age(object)],
        Object::Secret(s) => vec![name, s.secret_type().to_string(), s.data.len().to_string(), age(object)],
        Object::ServiceAccount(sa) => vec![name, sa.secrets.len().to_string(), age(object)],
    }
}

fn age_of(timestamp: Option<&str>, now: SystemTime) -> String {
    timestamp.map(|t| time::age(t, now)).unwrap_or_else(|| "<unknown>".into())
}

fn pod_cells(p: &Pod, name: String, age: String, wide: bool, now: SystemTime) -> Vec<String> {
    let mut row = vec![name, pod_ready(p), pod_status(p), pod_restarts(p, now), age];
    if wide {
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).filter(|ip| !ip.is_empty());
        row.push(ip.unwrap_or_else(|| "<none>".into()));
        row.push(p.spec.node_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "<none>".into()));
        row.push("<none>".into());
        row.push("<none>".into());
    }
    row
}

fn template_cells(template: &PodTemplateSpec, selector: &LabelSelector) -> [String; 3] {
    let names: Vec<&str> = template.spec.containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = template.spec.containers.iter().map(|c| c.image.as_str()).collect();
    [names.join(","), images.join(","), selector.to_sorted_query()]
}

fn deployment_cells(d: &Deployment, name: String, age: String, wide: bool) -> Vec<String> {
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.replicas.unwrap_or(1);
    let mut row = vec![
        name,
        format!("{}/{desired}", status.ready_replicas.unwrap_or(0)),
        status.updated_replicas.unwrap_or(0).to_string(),
        status.available_replicas.unwrap_or(0).to_string(),
        age,
    ];
    if wide {
        row.extend(template_cells(&d.spec.template, &d.spec.selector));
    }
    row
}

fn replicaset_cells(rs: &ReplicaSet, name: String, age: String, wide: bool) -> Vec<String> {
    let status = rs.status.clone().unwrap_or_default();
    let mut row = vec![
        name,
        rs.spec.replicas.unwrap_or(1).to_string(),
        status.replicas.to_string(),
        status.ready_replicas.unwrap_or(0).to_string(),
        age,
    ];
    if wide {
        row.extend(template_cells(&rs.spec.template, &rs.spec.selector));
    }
    row
}

fn service_cells(s: &Service, name: String, age: String, wide: bool) -> Vec<String> {
    let type_ = s.spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let cluster_ip = s.spec.cluster_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "<none>".into());
    let ports = service_ports(s);
    let mut row = vec![name, type_, cluster_ip, service_external_ip(s, wide), ports, age];
    if wide {
        row.push(format_labels(&s.spec.selector));
    }
    row
}

/// `80:30080/TCP,443/TCP`, or `<none>`.
pub fn service_ports(s: &Service) -> String {
    let pieces: Vec<String> = s
        .spec
        .ports
        .iter()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or_default();
            match p.node_port.filter(|n| *n > 0) {
                Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                None => format!("{}/{protocol}", p.port),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".into()
    } else {
        pieces.join(",")
    }
}

fn service_external_ip(s: &Service, wide: bool) -> String {
    let external = &s.spec.external_ips;
    match s.spec.type_.as_deref().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let ingress: Vec<String> = s
                .status
                .iter()
                .flat_map(|st| st.load_balancer.ingress.iter())
                .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .collect();
            let mut lb = ingress.join(",");
            if !wide && lb.chars().count() > 16 {
                lb = format!("{}...", lb.chars().take(13).collect::<String>());
            }
            match (external.is_empty(), lb.is_empty()) {
                (false, true) => external.join(","),
                (false, false) => format!("{},{lb}", external.join(",")),
                (true, false) => lb,
                (true, true) => "<pending>".into(),
            }
        }
        _ => "<unknown>".into(),
    }
}

/// `10.0.0.5:80,10.0.0.6:80 + 2 more...`, or `<none>`.
pub fn format_endpoints(e: &Endpoints) -> String {
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    let mut more = false;
    for subset in &e.subsets {
        if subset.ports.is_empty() {
            count += subset.addresses.len();
            for a in &subset.addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(a.ip.clone());
            }
            continue;
        }
        for port in &subset.ports {
            count += subset.addresses.len();
            for a in &subset.addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let host = if a.ip.contains(':') { format!("[{}]", a.ip) } else { a.ip.clone() };
                list.push(format!("{host}:{}", port.port));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else if joined.is_empty() {
        "<none>".into()
    } else {
        joined
    }
}

fn hpa_cells(h: &HorizontalPodAutoscaler, name: String, age: String) -> Vec<String> {
    let target = &h.spec.scale_target_ref;
    vec![
        name,
        format!("{}/{}", target.kind, target.name),
        hpa_targets(h),
        h.spec.min_replicas.map(|m| m.to_string()).unwrap_or_else(|| "<unset>".into()),
        h.spec.max_replicas.to_string(),
        h.status.as_ref().map(|s| s.current_replicas).unwrap_or(0).to_string(),
        age,
    ]
}

/// `cpu: 12%/80%`, `cpu: <unknown>/80%`, or `<none>`; two metrics at most, then `+ N more...`.
pub fn hpa_targets(h: &HorizontalPodAutoscaler) -> String {
    if h.spec.metrics.is_empty() {
        return "<none>".into();
    }
    let statuses = h.status.as_ref().map(|s| s.current_metrics.as_slice()).unwrap_or_default();
    let list: Vec<String> = h
        .spec
        .metrics
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let Some(resource) = spec.resource.as_ref().filter(|_| spec.type_ == "Resource") else {
                return "<unknown type>".to_string();
            };
            let current = statuses.get(i).and_then(|s| s.resource.as_ref()).map(|r| &r.current);
            if let Some(target) = &resource.target.average_value {
                let current = current.and_then(|c| c.average_value).map(|q| q.to_string());
                format!("{}: {}/{target}", resource.name, current.as_deref().unwrap_or("<unknown>"))
            } else {
                let current = current.and_then(|c| c.average_utilization).map(|u| format!("{u}%"));
                let target = resource.target.average_utilization.map(|u| format!("{u}%"));
                format!(
                    "{}: {}/{}",
                    resource.name,
                    current.as_deref().unwrap_or("<unknown>"),
                    target.as_deref().unwrap_or("<auto>")
                )
            }
        })
        .collect();
    if list.len() > 2 {
        format!("{} + {} more...", list[..2].join(", "), list.len() - 2)
    } else {
        list.join(", ")
    }
}

fn event_cells(e: &Event, wide: bool, now: SystemTime) -> Vec<String> {
    let first = e.first_timestamp.as_deref().or(e.event_time.as_deref());
    let first_seen = age_of(first, now);
    let last_seen = match e.last_timestamp.as_deref() {
        Some(t) => time::age(t, now),
        None => first_seen.clone(),
    };
    let kind = e.involved_object.kind.to_ascii_lowercase();
    let object = if e.involved_object.name.is_empty() { kind } else { format!("{kind}/{}", e.involved_object.name) };
    let message = e.message.trim().to_string();
    if !wide {
        return vec![last_seen, e.type_.clone(), e.reason.clone(), object, message];
    }
    let source = match (e.source.component.as_str(), e.source.host.as_str()) {
        ("", _) => e.reporting_component.clone(),
        (c, "") => c.to_string(),
        (c, h) => format!("{c}, {h}"),
    };
    vec![
        last_seen,
        e.type_.clone(),
        e.reason.clone(),
        object,
        e.involved_object.field_path.clone(),
        source,
        message,
        first_seen,
        e.count.unwrap_or(1).to_string(),
        e.metadata.name.clone(),
    ]
}

fn namespace_phase(n: &Namespace) -> String {
    n.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Active".into())
}

/// `app=web,tier=front` sorted by key, or `<none>` (`labels.FormatLabels`).
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".into();
    }
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> SystemTime {
        time::parse("2024-05-01T12:00:00Z").unwrap()
    }

    fn object(kind: &str, value: serde_json::Value) -> Object {
        Object::from_json(ResourceInfo::lookup(kind).unwrap(), value).unwrap()
    }

    fn print(kind: &str, objects: Vec<Object>, opts: TableOptions) -> String {
        let info = ResourceInfo::lookup(kind).unwrap();
        render(&[table(info, &objects, &opts, now())], opts.no_headers)
    }

    fn nginx_pod(name: &str, ns: &str) -> Object {
        object(
            "pod",
            json!({"metadata": {"name": name, "namespace": ns, "creationTimestamp": "2024-05-01T11:55:00Z",
                    "labels": {"app": "nginx", "pod-template-hash": "7854ff8877"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2"}], "nodeName": "board"},
                "status": {"phase": "Running", "podIP": "10.88.0.4", "containerStatuses": [
                    {"name": "nginx", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
        )
    }

    #[test]
    fn pods_print_kubectl_columns() {
        let out = print("po", vec![nginx_pod("nginx-7854ff8877-x2x4z", "default")], TableOptions::default());
        assert_eq!(
            out,
            "NAME                     READY   STATUS    RESTARTS   AGE\n\
             nginx-7854ff8877-x2x4z   1/1     Running   0          5m\n"
        );
        let wide = print("po", vec![nginx_pod("web", "default")], TableOptions { wide: true, ..Default::default() });
        assert_eq!(
            wide,
            "NAME   READY   STATUS    RESTARTS   AGE   IP          NODE    NOMINATED NODE   READINESS GATES\n\
             web    1/1     Running   0          5m    10.88.0.4   board   <none>           <none>\n"
        );
    }

    #[test]
    fn all_namespaces_and_labels_add_columns() {
        let opts = TableOptions { namespace_column: true, show_labels: true, ..Default::default() };
        let out = print("pods", vec![nginx_pod("a", "default"), nginx_pod("b", "kube-system")], opts);
        assert_eq!(
            out,
            "NAMESPACE     NAME   READY   STATUS    RESTARTS   AGE   LABELS\n\
             default       a      1/1     Running   0          5m    app=nginx,pod-template-hash=7854ff8877\n\
             kube-system   b      1/1     Running   0          5m    app=nginx,pod-template-hash=7854ff8877\n"
        );
    }

    #[test]
    fn deployments_and_replicasets() {
        let d = object(
            "deploy",
            json!({"metadata": {"name": "nginx-deployment", "creationTimestamp": "2024-04-30T12:00:00Z"},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2"}]}}},
                "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
        );
        assert_eq!(
            print("deploy", vec![d.clone()], TableOptions { wide: true, kind_prefix: true, ..Default::default() }),
            "NAME                               READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES         SELECTOR\n\
             deployment.apps/nginx-deployment   2/3     3            2           24h   nginx        nginx:1.14.2   app=nginx\n"
        );
        let rs = object(
            "rs",
            json!({"metadata": {"name": "nginx-deployment-66b6c48dd5", "creationTimestamp": "2024-05-01T11:59:30Z"},
                "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 3}}),
        );
        assert_eq!(
            print("rs", vec![rs], TableOptions::default()),
            "NAME                          DESIRED   CURRENT   READY   AGE\n\
             nginx-deployment-66b6c48dd5   3         3         3       30s\n"
        );
    }

    #[test]
    fn services_endpoints_and_autoscalers() {
        let svc = object(
            "svc",
            json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T10:00:00Z"},
                "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "selector": {"app": "nginx"},
                    "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 443, "protocol": "TCP"}]}}),
        );
        assert_eq!(
            print("svc", vec![svc], TableOptions::default()),
            "NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)                AGE\n\
             web    NodePort   10.96.0.20   <none>        80:30080/TCP,443/TCP   120m\n"
        );
        let ep = object(
            "ep",
            json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T10:00:00Z"},
                "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                    "ports": [{"port": 80}]}]}),
        );
        assert_eq!(
            print("ep", vec![ep], TableOptions::default()),
            "NAME   ENDPOINTS                                         AGE\n\
             web    10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...   120m\n"
        );
        let hpa = |status: serde_json::Value| {
            object(
                "hpa",
                json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
                    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
                    "status": status}),
            )
        };
        let measured = hpa(json!({"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}));
        assert_eq!(
            print("hpa", vec![measured, hpa(json!({"currentReplicas": 1}))], TableOptions::default()),
            "NAME   REFERENCE        TARGETS              MINPODS   MAXPODS   REPLICAS   AGE\n\
             web    Deployment/web   cpu: 12%/80%         1         5         2          60m\n\
             web    Deployment/web   cpu: <unknown>/80%   1         5         1          60m\n"
        );
    }

    #[test]
    fn events_and_namespaces() {
        let ev = object(
            "events",
            json!({"metadata": {"name": "web.17a"}, "type": "Normal", "reason": "Scheduled",
                "involvedObject": {"kind": "Pod", "name": "web"}, "message": "Successfully assigned default/web to board ",
                "firstTimestamp": "2024-05-01T11:59:00Z", "lastTimestamp": "2024-05-01T11:59:50Z"}),
        );
        assert_eq!(
            print("ev", vec![ev], TableOptions::default()),
            "LAST SEEN   TYPE     REASON      OBJECT    MESSAGE\n\
             10s         Normal   Scheduled   pod/web   Successfully assigned default/web to board\n"
        );
        let ns = object(
            "ns",
            json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "status": {"phase": "Active"}}),
        );
        assert_eq!(
            print("ns", vec![ns], TableOptions { no_headers: true, ..Default::default() }),
            "default   Active   60m\n"
        );
    }

    #[test]
    fn consecutive_tables_are_aligned_separately() {
        let info = ResourceInfo::lookup("po").unwrap();
        let opts = TableOptions { kind_prefix: true, ..Default::default() };
        let pods = table(info, &[nginx_pod("web", "default")], &opts, now());
        let svc = object(
            "svc",
            json!({"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.96.0.1",
            "ports": [{"port": 443, "protocol": "TCP"}]}}),
        );
        let svcs = table(ResourceInfo::lookup("svc").unwrap(), &[svc], &opts, now());
        assert_eq!(
            render(&[pods, svcs], false),
            "NAME      READY   STATUS    RESTARTS   AGE\n\
             pod/web   1/1     Running   0          5m\n\
             \n\
             NAME                 TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n\
             service/kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   <unknown>\n"
        );
    }
}
