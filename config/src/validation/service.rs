//! Core `v1` validation of Services and Endpoints.

use super::field::{quote, FieldError, Path};
use super::handlers::port_num_or_name;
use super::meta;
use super::names;
use super::pod::{protocol, required_label};
use crate::core::{EndpointAddress, Endpoints, ServiceSpec};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The node ports a Service may claim by default (Kubernetes' `--service-node-port-range`);
/// the daemon's range is a setting (`network.node_port_range`), checked where node ports are
/// allocated, as Kubernetes' registry does, not here.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

/// `ValidateService`'s spec checks: type, ports, node ports, affinity, cluster IP.
pub fn service_spec(spec: &ServiceSpec, errs: &mut Vec<FieldError>) {
    let path = Path::new("spec");
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if !TYPES.contains(&type_) {
        errs.push(FieldError::not_supported(&path.child("type"), type_, TYPES));
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if type_ == "ExternalName" {
        if spec.cluster_ip.as_deref().is_some_and(|ip| !ip.is_empty()) {
            errs.push(FieldError::forbidden(&path.child("clusterIP"), "may not be set for ExternalName services"));
        }
        let name = spec.external_name.as_deref().unwrap_or("").trim_end_matches('.');
        let p = path.child("externalName");
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        }
        for msg in if name.is_empty() { Vec::new() } else { names::dns1123_subdomain(name) } {
            errs.push(FieldError::invalid(&p, quote(name), &msg));
        }
    } else if spec.ports.is_empty() && !headless {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    if let Some(ip) = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "None") {
        if ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &path.child("clusterIP"),
                quote(ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    ports(spec, type_, &path.child("ports"), errs);
    meta::labels(&spec.selector, &path.child("selector"), errs);

    let affinity = spec.session_affinity.as_deref().unwrap_or("None");
    if affinity != "None" && affinity != "ClientIP" {
        errs.push(FieldError::not_supported(&path.child("sessionAffinity"), affinity, &["ClientIP", "None"]));
    }
    if let Some(cfg) = &spec.session_affinity_config {
        let p = path.child("sessionAffinityConfig");
        if affinity == "None" {
            errs.push(FieldError::invalid(&p, "\"\"", "must not be set when session affinity is None"));
        }
        if let Some(t) = cfg.client_ip.as_ref().and_then(|c| c.timeout_seconds) {
            if !(1..=86400).contains(&t) {
                errs.push(FieldError::invalid(
                    &p.child("clientIP").child("timeoutSeconds"),
                    t.to_string(),
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
    }
    for (field, policy) in [
        ("externalTrafficPolicy", &spec.external_traffic_policy),
        ("internalTrafficPolicy", &spec.internal_traffic_policy),
    ] {
        if let Some(p) = policy.as_deref().filter(|p| *p != "Cluster" && *p != "Local") {
            errs.push(FieldError::not_supported(&path.child(field), p, &["Cluster", "Local"]));
        }
    }
    for (i, ip) in spec.external_ips.iter().enumerate() {
        if ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                &path.child("externalIPs").index(i),
                quote(ip),
                "must be a valid IP address",
            ));
        }
    }
}

fn ports(spec: &ServiceSpec, type_: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let require_names = spec.ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port_name(port.name.as_deref(), require_names, &p, errs) {
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&p.child("name"), quote(name)));
            }
        }
        port_number_and_protocol(port.port, port.protocol.as_deref(), &p, errs);
        if let Some(target) = &port.target_port {
            port_num_or_name(target, &p.child("targetPort"), errs);
        }
        let proto = port.protocol.as_deref().unwrap_or("TCP");
        if !seen.insert((proto.to_string(), port.port)) {
            errs.push(FieldError::duplicate(
                &p,
                format!("core.ServicePort{{Protocol:{}, Port:{}}}", quote(proto), port.port),
            ));
        }
        if let Some(node_port) = port.node_port.filter(|&n| n != 0) {
            let np = p.child("nodePort");
            if type_ == "ClusterIP" || type_ == "ExternalName" {
                errs.push(FieldError::forbidden(&np, &format!("may not be used when `type` is '{type_}'")));
            } else if let Some(detail) = names::port_number(node_port).first() {
                errs.push(FieldError::invalid(&np, node_port.to_string(), detail));
            } else if !node_ports.insert((proto.to_string(), node_port)) {
                errs.push(FieldError::duplicate(&np, node_port.to_string()));
            }
        }
    }
}

/// `ValidateEndpoints`: addresses are IPs, ports valid and named when several.
pub fn endpoints(e: &Endpoints, errs: &mut Vec<FieldError>) {
    for (i, subset) in e.subsets.iter().enumerate() {
        let p = Path::new("subsets").index(i);
        for (field, list) in [("addresses", &subset.addresses), ("notReadyAddresses", &subset.not_ready_addresses)] {
            for (j, a) in list.iter().enumerate() {
                address(a, &p.child(field).index(j), errs);
            }
        }
        let require_names = subset.ports.len() > 1;
        for (j, port) in subset.ports.iter().enumerate() {
            let pp = p.child("ports").index(j);
            port_name(port.name.as_deref(), require_names, &pp, errs);
            port_number_and_protocol(port.port, port.protocol.as_deref(), &pp, errs);
        }
    }
}

/// The `name` of the port at `path` (a Service's or an Endpoints subset's): required when
/// the list has several ports, else optional; a DNS label. The name, when one is given.
fn port_name<'n>(name: Option<&'n str>, required: bool, path: &Path, errs: &mut Vec<FieldError>) -> Option<&'n str> {
    let name = name.unwrap_or("");
    if name.is_empty() && !required {
        return None;
    }
    required_label(name, &path.child("name"), errs).then_some(name)
}

/// The `port` number and `protocol` of the port at `path`.
fn port_number_and_protocol(port: i32, proto: Option<&str>, path: &Path, errs: &mut Vec<FieldError>) {
    for msg in names::port_number(port) {
        errs.push(FieldError::invalid(&path.child("port"), port.to_string(), &msg));
    }
    protocol(proto, &path.child("protocol"), errs);
}

fn address(a: &EndpointAddress, path: &Path, errs: &mut Vec<FieldError>) {
    if a.ip.parse::<IpAddr>().is_err() {
        errs.push(FieldError::invalid(&path.child("ip"), quote(&a.ip), "must be a valid IP address"));
    }
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        for msg in names::dns1123_label(h) {
            errs.push(FieldError::invalid(&path.child("hostname"), quote(h), &msg));
        }
    }
}
