//! What the proxy should serve, computed from Services, Endpoints and pods: per service port
//! the addresses to listen on and the Ready backends behind it. A backend whose pod is
//! terminating or not Ready is left out here even before the endpoints controller has
//! rewritten the Endpoints, so it stops getting traffic the moment its pod changes.

use super::endpoint_set::{Backend, EndpointSet};
use coracle_config::core::{Endpoints, Pod, Service, ServicePort};
use coracle_net::SandboxPaths;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// TCP or UDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Names one service port: namespace, service, port number and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId {
    pub namespace: String,
    pub service: String,
    pub port: i32,
    pub protocol: Protocol,
}

impl std::fmt::Display for PortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = if self.protocol == Protocol::Tcp { "tcp" } else { "udp" };
        write!(f, "{}/{}:{}/{proto}", self.namespace, self.service, self.port)
    }
}

/// How one service port is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// ClusterIP:port, 0.0.0.0:nodePort, nodeIP:port (LoadBalancer).
    pub listen: Vec<SocketAddr>,
    /// ClusterIP:port again inside each loopback-only pod's network namespace (the pod
    /// cannot reach the host's), as (namespace path, address).
    pub pod_listen: Vec<(PathBuf, SocketAddr)>,
    pub endpoints: EndpointSet,
    /// ClientIP affinity timeout.
    pub affinity: Option<Duration>,
}

/// The node facts a plan needs.
pub struct PlanContext<'a> {
    /// The node's primary address (LoadBalancer services listen there).
    pub node_ip: IpAddr,
    /// Finds loopback-only pods' namespaces.
    pub paths: &'a dyn SandboxPaths,
    /// Pods withdrawn by the node ahead of their SIGTERM.
    pub withdrawn: &'a HashSet<String>,
}

fn protocol(p: Option<&str>) -> Option<Protocol> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        _ => None,
    }
}

/// The plan for every service port of `services`.
pub fn plan<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    endpoints: impl IntoIterator<Item = &'a Endpoints>,
    pods: impl IntoIterator<Item = &'a Pod>,
    ctx: &PlanContext,
) -> BTreeMap<PortId, PortPlan> {
    let eps: HashMap<(&str, &str), &Endpoints> =
        endpoints.into_iter().map(|e| ((e.metadata.namespace.as_str(), e.metadata.name.as_str()), e)).collect();
    let pods: Vec<&Pod> = pods.into_iter().collect();
    // Pods that must not get new connections: terminating or not Ready.
    let unserving: HashSet<&str> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() || !p.is_ready())
        .map(|p| p.metadata.uid.as_str())
        .collect();
    let known: HashSet<&str> = pods.iter().map(|p| p.metadata.uid.as_str()).collect();
    let loopback_pods = loopback_only_namespaces(&pods, ctx);
    let mut out = BTreeMap::new();
    for svc in services {
        let cluster_ip: Option<IpAddr> = svc.spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
        if svc.spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let affinity = (svc.spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let secs = svc.spec.session_affinity_config.as_ref().and_then(|c| c.client_ip.as_ref()?.timeout_seconds);
            Duration::from_secs(secs.unwrap_or(10800).max(1) as u64)
        });
        let ep = eps.get(&(svc.metadata.namespace.as_str(), svc.metadata.name.as_str()));
        for sp in &svc.spec.ports {
            let Some(proto) = protocol(sp.protocol.as_deref()) else { continue };
            let Ok(port) = u16::try_from(sp.port) else { continue };
            let mut listen = Vec::new();
            let mut pod_listen = Vec::new();
            if let Some(ip) = cluster_ip {
                listen.push(SocketAddr::new(ip, port));
                pod_listen.extend(loopback_pods.iter().map(|ns| (ns.clone(), SocketAddr::new(ip, port))));
            }
            if let Some(np) = sp.node_port.and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0) {
                listen.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), np));
            }
            if svc.is_load_balancer() && !ctx.node_ip.is_loopback() {
                listen.push(SocketAddr::new(ctx.node_ip, port));
            }
            if listen.is_empty() {
                continue;
            }
            let backends = ep.map(|e| backends_for(e, sp, proto, ctx, &unserving, &known)).unwrap_or_default();
            let id = PortId {
                namespace: svc.metadata.namespace.clone(),
                service: svc.metadata.name.clone(),
                port: sp.port,
                protocol: proto,
            };
            out.insert(id, PortPlan { listen, pod_listen, endpoints: EndpointSet { backends }, affinity });
        }
    }
    out
}

/// The namespaces of running loopback-only pods (address 127.0.0.1 in a namespace of their
/// own): the proxy listens on every ClusterIP inside them too.
fn loopback_only_namespaces(pods: &[&Pod], ctx: &PlanContext) -> Vec<PathBuf> {
    pods.iter()
        .filter(|p| p.spec.host_network != Some(true) && !matches!(p.phase(), "Succeeded" | "Failed"))
        .filter(|p| {
            let ip = p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse::<IpAddr>().ok());
            ip.is_some_and(|ip| ip.is_loopback())
        })
        .filter_map(|p| ctx.paths.netns_path(&p.metadata.uid))
        .collect()
}

fn backends_for(
    ep: &Endpoints,
    sp: &ServicePort,
    proto: Protocol,
    ctx: &PlanContext,
    unserving: &HashSet<&str>,
    known: &HashSet<&str>,
) -> Vec<Backend> {
    let name = sp.name.as_deref().unwrap_or("");
    let mut out = Vec::new();
    for subset in &ep.subsets {
        let Some(port) = subset
            .ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == name && protocol(p.protocol.as_deref()) == Some(proto))
        else {
            continue;
        };
        let Ok(port) = u16::try_from(port.port) else { continue };
        for a in &subset.addresses {
            let Ok(ip) = a.ip.parse::<IpAddr>() else { continue };
            let uid = a.target_ref.as_ref().map(|r| r.uid.clone()).unwrap_or_default();
            let gone = !known.contains(uid.as_str());
            if !uid.is_empty() && (gone || unserving.contains(uid.as_str()) || ctx.withdrawn.contains(&uid)) {
                continue;
            }
            let netns = if ip.is_loopback() && !uid.is_empty() {
                // A loopback-only pod: reachable only from inside its own namespace. A
                // loopback address naming no pod (hand-written Endpoints of a Service
                // without selector) is the host's own.
                match ctx.paths.netns_path(&uid) {
                    Some(p) => Some(p),
                    None => continue,
                }
            } else {
                None
            };
            out.push(Backend { addr: SocketAddr::new(ip, port), netns, pod_uid: uid });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{EndpointAddress, EndpointPort, EndpointSubset, PodStatus};
    use coracle_config::meta::{Condition, ObjectReference};
    use coracle_net::SandboxDirs;

    fn svc(type_: &str, ports: &[(&str, i32, &str, Option<i32>)]) -> Service {
        let mut s = Service::default();
        s.metadata.namespace = "default".into();
        s.metadata.name = "web".into();
        s.spec.type_ = Some(type_.into());
        s.spec.cluster_ip = Some("10.96.0.5".into());
        s.spec.ports = ports
            .iter()
            .map(|(n, p, proto, np)| ServicePort {
                name: (!n.is_empty()).then(|| n.to_string()),
                port: *p,
                protocol: Some(proto.to_string()),
                node_port: *np,
                ..Default::default()
            })
            .collect();
        s
    }

    fn addr(ip: &str, uid: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            target_ref: Some(ObjectReference { kind: "Pod".into(), uid: uid.into(), ..Default::default() }),
            ..Default::default()
        }
    }

    fn eps(ports: &[(&str, i32, &str)], addrs: &[(&str, &str)]) -> Endpoints {
        let mut e = Endpoints::default();
        e.metadata.namespace = "default".into();
        e.metadata.name = "web".into();
        e.subsets = vec![EndpointSubset {
            addresses: addrs.iter().map(|(ip, uid)| addr(ip, uid)).collect(),
            ports: ports
                .iter()
                .map(|(n, p, proto)| EndpointPort {
                    name: (!n.is_empty()).then(|| n.to_string()),
                    port: *p,
                    protocol: Some(proto.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }];
        e
    }

    fn pod(uid: &str, ready: bool, terminating: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.uid = uid.into();
        if terminating {
            p.metadata.deletion_timestamp = Some("2024-01-01T00:00:00Z".into());
        }
        p.status = Some(PodStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    fn ctx<'a>(paths: &'a SandboxDirs, withdrawn: &'a HashSet<String>) -> PlanContext<'a> {
        PlanContext { node_ip: "192.0.2.2".parse().unwrap(), paths, withdrawn }
    }

    #[test]
    fn ports_match_by_name_and_protocol_and_listen_where_the_type_says() {
        let paths = SandboxDirs { run_dir: "/nonexistent".into() };
        let none = HashSet::new();
        let s = svc("LoadBalancer", &[("http", 80, "TCP", Some(30080)), ("dns", 53, "UDP", None)]);
        let e = eps(&[("http", 8080, "TCP"), ("dns", 5353, "UDP")], &[("10.88.0.2", "a")]);
        let p = plan(&[s], &[e], &[pod("a", true, false)], &ctx(&paths, &none));
        let http = p.values().find(|v| v.listen[0].port() == 80).unwrap();
        let listen: Vec<String> = http.listen.iter().map(|a| a.to_string()).collect();
        assert_eq!(listen, ["10.96.0.5:80", "0.0.0.0:30080", "192.0.2.2:80"]);
        assert_eq!(http.endpoints.backends[0].addr, "10.88.0.2:8080".parse().unwrap());
        let dns = p.iter().find(|(k, _)| k.protocol == Protocol::Udp).unwrap().1;
        assert_eq!(dns.endpoints.backends[0].addr, "10.88.0.2:5353".parse().unwrap());
    }

    #[test]
    fn terminating_unready_and_withdrawn_pods_get_no_new_traffic() {
        let paths = SandboxDirs { run_dir: "/nonexistent".into() };
        let withdrawn: HashSet<String> = ["d".to_string()].into();
        let s = svc("ClusterIP", &[("", 80, "TCP", None)]);
        let e =
            eps(&[("", 80, "TCP")], &[("10.88.0.2", "a"), ("10.88.0.3", "b"), ("10.88.0.4", "c"), ("10.88.0.5", "d")]);
        let pods = [pod("a", true, false), pod("b", true, true), pod("c", false, false), pod("d", true, false)];
        let p = plan(&[s], &[e], &pods, &ctx(&paths, &withdrawn));
        let only: Vec<String> =
            p.values().next().unwrap().endpoints.backends.iter().map(|b| b.addr.to_string()).collect();
        assert_eq!(only, ["10.88.0.2:80"]);
    }

    #[test]
    fn loopback_pods_without_a_namespace_on_disk_are_skipped_and_affinity_defaults() {
        let paths = SandboxDirs { run_dir: "/nonexistent".into() };
        let none = HashSet::new();
        let mut s = svc("ClusterIP", &[("", 80, "TCP", None)]);
        s.spec.session_affinity = Some("ClientIP".into());
        let e = eps(&[("", 80, "TCP")], &[("127.0.0.1", "a")]);
        let p = plan(&[s], &[e], &[pod("a", true, false)], &ctx(&paths, &none));
        let port = p.values().next().unwrap();
        assert!(port.endpoints.backends.is_empty());
        assert_eq!(port.affinity, Some(Duration::from_secs(10800)));
    }
    /// Paths whose every pod has a namespace on disk.
    struct AllPinned;

    impl SandboxPaths for AllPinned {
        fn hosts_path(&self, _pod: &Pod) -> Option<PathBuf> {
            None
        }
        fn netns_path(&self, uid: &str) -> Option<PathBuf> {
            Some(PathBuf::from(format!("/run/ns/{uid}")))
        }
    }

    #[test]
    fn loopback_only_pods_get_cluster_ip_listeners_in_their_namespace() {
        let none = HashSet::new();
        let c = PlanContext { node_ip: "192.0.2.2".parse().unwrap(), paths: &AllPinned, withdrawn: &none };
        let with_ip = |uid: &str, ip: &str| {
            let mut p = pod(uid, true, false);
            p.status.as_mut().unwrap().pod_ip = Some(ip.into());
            p
        };
        let mut on_host = with_ip("h", "192.0.2.2");
        on_host.spec.host_network = Some(true);
        let pods = [with_ip("lo", "127.0.0.1"), with_ip("cni", "10.88.0.9"), on_host];
        let s = svc("NodePort", &[("", 80, "TCP", Some(30080))]);
        let p = plan(&[s], &[], &pods, &c);
        let port = p.values().next().unwrap();
        assert_eq!(port.pod_listen, [(PathBuf::from("/run/ns/lo"), "10.96.0.5:80".parse().unwrap())]);
    }

    #[test]
    fn a_loopback_address_naming_no_pod_is_the_hosts_own() {
        let paths = SandboxDirs { run_dir: "/nonexistent".into() };
        let none = HashSet::new();
        let mut e = eps(&[("", 8080, "TCP")], &[("127.0.0.1", "")]);
        e.subsets[0].addresses[0].target_ref = None;
        let p = plan(&[svc("ClusterIP", &[("", 80, "TCP", None)])], &[e], &[], &ctx(&paths, &none));
        let backends = &p.values().next().unwrap().endpoints.backends;
        assert_eq!((backends[0].addr, backends[0].netns.clone()), ("127.0.0.1:8080".parse().unwrap(), None));
    }
}
