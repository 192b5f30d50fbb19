//! `describe pod`.

use super::events::write_events;
use super::{or_none, timestamp, Describer};
use coracle_config::core::{Container, ContainerState, ContainerStatus, Event, Pod};
use std::time::SystemTime;

/// The describe text of a pod.
pub fn describe(pod: &Pod, events: &[Event], now: SystemTime) -> String {
    let mut d = Describer::default();
    let meta = &pod.metadata;
    let status = pod.status.clone().unwrap_or_default();
    d.field(0, "Name", &meta.name);
    d.field(0, "Namespace", &meta.namespace);
    d.field(0, "Priority", 0);
    d.field(0, "Service Account", pod.spec.service_account_name.as_deref().unwrap_or("default"));
    let node = match (pod.spec.node_name.as_deref(), status.host_ip.as_deref()) {
        (Some(n), Some(ip)) => format!("{n}/{ip}"),
        (Some(n), None) => n.to_string(),
        _ => "<none>".into(),
    };
    d.field(0, "Node", node);
    if let Some(start) = &status.start_time {
        d.field(0, "Start Time", timestamp(start));
    }
    d.labels(0, "Labels", &meta.labels);
    d.annotations(0, &meta.annotations);
    match &meta.deletion_timestamp {
        Some(t) => {
            d.field(0, "Status", format!("Terminating (lasts {})", coracle_config::time::age(t, now)));
            if let Some(grace) = meta.deletion_grace_period_seconds {
                d.field(0, "Termination Grace Period", format!("{grace}s"));
            }
        }
        None => d.field(0, "Status", pod.phase()),
    }
    if let Some(reason) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        d.field(0, "Reason", reason);
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        d.field(0, "Message", message);
    }
    d.field(0, "IP", status.pod_ip.as_deref().unwrap_or(""));
    if status.pod_ips.is_empty() {
        d.field(0, "IPs", "<none>");
    } else {
        d.line(0, "IPs:");
        for ip in &status.pod_ips {
            d.field(1, "IP", &ip.ip);
        }
    }
    if let Some(owner) = meta.controller_ref() {
        d.field(0, "Controlled By", format!("{}/{}", owner.kind, owner.name));
    }
    if !pod.spec.init_containers.is_empty() {
        d.line(0, "Init Containers:");
        for c in &pod.spec.init_containers {
            container(&mut d, c, status.init_container_statuses.iter().find(|s| s.name == c.name));
        }
    }
    d.line(0, "Containers:");
    for c in &pod.spec.containers {
        container(&mut d, c, status.container_statuses.iter().find(|s| s.name == c.name));
    }
    if !status.conditions.is_empty() {
        d.line(0, "Conditions:");
        d.line(1, "Type\tStatus");
        for c in &status.conditions {
            d.line(1, &format!("{} \t{} ", c.type_, c.status));
        }
    }
    if pod.spec.volumes.is_empty() {
        d.field(0, "Volumes", "<none>");
    } else {
        d.line(0, "Volumes:");
        for v in &pod.spec.volumes {
            d.line(1, &format!("{}:", v.name));
            if let Some(h) = &v.host_path {
                d.field(2, "Type", "HostPath (bare host directory volume)");
                d.field(2, "Path", &h.path);
                d.field(2, "HostPathType", h.type_.as_deref().unwrap_or(""));
            } else if let Some(e) = &v.empty_dir {
                d.field(2, "Type", "EmptyDir (a temporary directory that shares a pod's lifetime)");
                d.field(2, "Medium", e.medium.as_deref().unwrap_or(""));
                d.field(2, "SizeLimit", e.size_limit.map(|q| q.to_string()).unwrap_or_else(|| "<unset>".into()));
            } else {
                super::pod_volumes::config_volume(&mut d, v);
            }
        }
    }
    d.field(0, "QoS Class", status.qos_class.as_deref().unwrap_or("BestEffort"));
    let selectors: Vec<String> = pod.spec.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    d.field(0, "Node-Selectors", or_none(&selectors.join(",")));
    d.field(0, "Tolerations", "<none>");
    write_events(&mut d, events, now);
    d.finish()
}

/// One container's block, shared with the pod templates of deployments and replica sets.
pub fn container(d: &mut Describer, c: &Container, status: Option<&ContainerStatus>) {
    d.line(1, &format!("{}:", c.name));
    if let Some(s) = status {
        d.field(2, "Container ID", s.container_id.as_deref().unwrap_or(""));
    }
    d.field(2, "Image", &c.image);
    if let Some(s) = status {
        d.field(2, "Image ID", &s.image_id);
    }
    template_container_body(d, c, status);
}

/// The part of a container block that follows the image lines.
pub fn template_container_body(d: &mut Describer, c: &Container, status: Option<&ContainerStatus>) {
    if c.ports.is_empty() {
        d.field(2, "Port", "<none>");
        d.field(2, "Host Port", "<none>");
    } else {
        for p in &c.ports {
            let proto = p.protocol.as_deref().unwrap_or("");
            d.field(2, "Port", format!("{}/{proto}", p.container_port));
            d.field(2, "Host Port", format!("{}/{proto}", p.host_port.unwrap_or(0)));
        }
    }
    if let Some(cmd) = &c.command {
        d.line(2, "Command:");
        for part in cmd {
            d.line(3, part);
        }
    }
    if let Some(args) = &c.args {
        d.line(2, "Args:");
        for part in args {
            d.line(3, part);
        }
    }
    if let Some(s) = status {
        state(d, "State", &s.state);
        if s.last_state.running.is_some() || s.last_state.terminated.is_some() || s.last_state.waiting.is_some() {
            state(d, "Last State", &s.last_state);
        }
        d.field(2, "Ready", if s.ready { "True" } else { "False" });
        d.field(2, "Restart Count", s.restart_count);
    }
    for (kind, list) in [("Limits", &c.resources.limits), ("Requests", &c.resources.requests)] {
        if !list.is_empty() {
            d.line(2, &format!("{kind}:"));
            for (k, v) in list {
                d.field(3, k, v);
            }
        }
    }
    if c.env.is_empty() {
        d.field(2, "Environment", "<none>");
    } else {
        d.line(2, "Environment:");
        for e in &c.env {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => match (&from.field_ref, &from.resource_field_ref) {
                    (Some(f), _) => format!(" ({}:{})", f.api_version.as_deref().unwrap_or("v1"), f.field_path),
                    (None, Some(r)) => format!(" ({})", r.resource),
                    _ => super::pod_volumes::key_ref(from),
                },
                (None, None) => String::new(),
            };
            d.field(3, &e.name, value);
        }
    }
    super::pod_volumes::env_from(d, c);
    if c.volume_mounts.is_empty() {
        d.field(2, "Mounts", "<none>");
    } else {
        d.line(2, "Mounts:");
        for m in &c.volume_mounts {
            let mode = if m.read_only == Some(true) { "ro" } else { "rw" };
            d.line(3, &format!("{} from {} ({mode})", m.mount_path, m.name));
        }
    }
}

fn state(d: &mut Describer, label: &str, s: &ContainerState) {
    match s {
        ContainerState { running: Some(r), .. } => {
            d.field(2, label, "Running");
            d.field(3, "Started", r.started_at.as_deref().map(timestamp).unwrap_or_default());
        }
        ContainerState { waiting: Some(w), .. } => {
            d.field(2, label, "Waiting");
            d.field(3, "Reason", &w.reason);
        }
        ContainerState { terminated: Some(t), .. } => {
            d.field(2, label, "Terminated");
            d.field(3, "Reason", &t.reason);
            if !t.message.is_empty() {
                d.field(3, "Message", &t.message);
            }
            d.field(3, "Exit Code", t.exit_code);
            if let Some(sig) = t.signal.filter(|s| *s != 0) {
                d.field(3, "Signal", sig);
            }
            d.field(3, "Started", t.started_at.as_deref().map(timestamp).unwrap_or_default());
            d.field(3, "Finished", t.finished_at.as_deref().map(timestamp).unwrap_or_default());
        }
        _ => d.field(2, label, "Waiting"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_pod_reads_like_kubectl() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "board", "containers": [{"name": "nginx", "image": "nginx:1.14.2",
                "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": "10.88.0.4", "podIPs": [{"ip": "10.88.0.4"}], "hostIP": "192.168.1.2",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0, "image": "nginx:1.14.2",
                    "imageID": "sha256:abc", "containerID": "coracle://1",
                    "state": {"running": {"startedAt": "2024-05-01T11:00:00Z"}}}]}
        }))
        .unwrap();
        let now = coracle_config::time::parse("2024-05-01T12:00:00Z").unwrap();
        let text = describe(&pod, &[], now);
        let expected = "\
Name:             web
Namespace:        default
Priority:         0
Service Account:  default
Node:             board/192.168.1.2
Labels:           app=web
Annotations:      <none>
Status:           Running
IP:               10.88.0.4
IPs:
  IP:           10.88.0.4
Controlled By:  ReplicaSet/web-abc
Containers:
  nginx:
    Container ID:   coracle://1
    Image:          nginx:1.14.2
    Image ID:       sha256:abc
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Wed, 01 May 2024 11:00:00 +0000
    Ready:          True
    Restart Count:  0
    Environment:    <none>
    Mounts:         <none>
Conditions:
  Type           Status
  Ready          True 
Volumes:         <none>
QoS Class:       BestEffort
Node-Selectors:  <none>
Tolerations:     <none>
Events:          <none>
";
        assert_eq!(text, expected);
    }
}
