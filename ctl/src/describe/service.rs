//! `describe service`.

use super::events::write_events;
use super::{or_none, Describer};
use crate::printers::table::format_labels;
use coracle_config::core::{Endpoints, Event, Service};
use std::time::SystemTime;

/// The describe text of a service and its endpoints.
pub fn describe(s: &Service, endpoints: Option<&Endpoints>, events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    let meta = &s.metadata;
    let spec = &s.spec;
    w.field(0, "Name", &meta.name);
    w.field(0, "Namespace", &meta.namespace);
    w.labels(0, "Labels", &meta.labels);
    w.annotations(0, &meta.annotations);
    w.field(0, "Selector", format_labels(&spec.selector));
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    w.field(0, "Type", type_);
    if let Some(policy) = &spec.ip_family_policy {
        w.field(0, "IP Family Policy", policy);
    }
    if !spec.ip_families.is_empty() {
        w.field(0, "IP Families", spec.ip_families.join(","));
    }
    let ip = spec.cluster_ip.as_deref().unwrap_or("");
    w.field(0, "IP", or_none(ip));
    let ips = if spec.cluster_ips.is_empty() { ip.to_string() } else { spec.cluster_ips.join(",") };
    w.field(0, "IPs", or_none(&ips));
    if !spec.external_ips.is_empty() {
        w.field(0, "External IPs", spec.external_ips.join(","));
    }
    let ingress: Vec<String> = s
        .status
        .iter()
        .flat_map(|st| st.load_balancer.ingress.iter())
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect();
    if !ingress.is_empty() {
        w.field(0, "LoadBalancer Ingress", ingress.join(", "));
    }
    for p in &spec.ports {
        let name = p.name.as_deref().filter(|n| !n.is_empty()).unwrap_or("<unset>");
        let proto = p.protocol.as_deref().unwrap_or("");
        w.field(0, "Port", format!("{name}  {}/{proto}", p.port));
        let target = p.target_port.as_ref().map(|t| t.to_string()).unwrap_or_else(|| p.port.to_string());
        w.field(0, "TargetPort", format!("{target}/{proto}"));
        if let Some(node_port) = p.node_port.filter(|n| *n > 0) {
            w.field(0, "NodePort", format!("{name}  {node_port}/{proto}"));
        }
        w.field(0, "Endpoints", endpoints_for(endpoints, p.name.as_deref().unwrap_or("")));
    }
    w.field(0, "Session Affinity", spec.session_affinity.as_deref().unwrap_or("None"));
    if type_ == "NodePort" || type_ == "LoadBalancer" {
        w.field(0, "External Traffic Policy", spec.external_traffic_policy.as_deref().unwrap_or("Cluster"));
    }
    w.field(0, "Internal Traffic Policy", spec.internal_traffic_policy.as_deref().unwrap_or("Cluster"));
    write_events(&mut w, events, now);
    w.finish()
}

/// `ip:port,…` of the ready addresses serving the port named `port_name`.
fn endpoints_for(endpoints: Option<&Endpoints>, port_name: &str) -> String {
    let Some(e) = endpoints else { return "<none>".into() };
    let mut list = Vec::new();
    for subset in &e.subsets {
        for port in subset.ports.iter().filter(|p| p.name.as_deref().unwrap_or("") == port_name) {
            for a in &subset.addresses {
                list.push(format!("{}:{}", a.ip, port.port));
            }
        }
    }
    or_none(&list.join(",")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_lists_ports_and_endpoints() {
        let s: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]}
        }))
        .unwrap();
        let e: Endpoints = serde_json::from_value(serde_json::json!({
            "subsets": [{"addresses": [{"ip": "10.88.0.4"}], "ports": [{"port": 8080, "protocol": "TCP"}]}]
        }))
        .unwrap();
        let now = coracle_config::time::parse("2024-05-01T12:00:00Z").unwrap();
        let expected = "\
Name:                     web
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=web
Type:                     NodePort
IP:                       10.96.0.20
IPs:                      10.96.0.20
Port:                     <unset>  80/TCP
TargetPort:               8080/TCP
NodePort:                 <unset>  30080/TCP
Endpoints:                10.88.0.4:8080
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
";
        assert_eq!(describe(&s, Some(&e), &[], now), expected);
    }
}
