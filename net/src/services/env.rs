//! Kubernetes' service environment variables (`{NAME}_SERVICE_HOST`, Docker-link style
//! `{NAME}_PORT_…`), given to a pod for the Services of its namespace that exist when it
//! starts (kubelet's `envvars.FromServices`).

use coracle_config::core::Service;
use coracle_store::Store;

/// The variables for every Service with a ClusterIP in `namespace`, sorted by service name.
/// The node adds them to each container unless the pod sets `enableServiceLinks: false`.
pub fn service_env(store: &Store, namespace: &str) -> Vec<(String, String)> {
    let mut services: Vec<Service> =
        store.list_as::<Service>(Some(namespace), None).iter().map(|s| Service::clone(s)).collect();
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    env_for_services(&services)
}

/// The variables for `services`, in the given order; headless and ExternalName services
/// (no ClusterIP) contribute none.
pub fn env_for_services(services: &[Service]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for svc in services {
        let Some(ip) = svc.spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "None") else {
            continue;
        };
        let Some(first) = svc.spec.ports.first() else { continue };
        let prefix = variable_name(&svc.metadata.name);
        env.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        env.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in &svc.spec.ports {
            if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                env.push((format!("{prefix}_SERVICE_PORT_{}", variable_name(name)), p.port.to_string()));
            }
        }
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        for (i, p) in svc.spec.ports.iter().enumerate() {
            let proto = p.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or("TCP");
            let lower = proto.to_ascii_lowercase();
            let url = format!("{lower}://{host}:{}", p.port);
            if i == 0 {
                env.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_ascii_uppercase());
            env.push((format!("{port_prefix}_PROTO"), lower));
            env.push((format!("{port_prefix}_PORT"), p.port.to_string()));
            env.push((format!("{port_prefix}_ADDR"), ip.to_string()));
            // Kubernetes lists the bare prefix first; keep its order.
            let at = env.len() - 3;
            env.insert(at, (port_prefix, url));
        }
    }
    env
}

/// `my-svc` → `MY_SVC`.
fn variable_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::ServicePort;
    use coracle_config::object::Object;

    fn svc(name: &str, ip: Option<&str>, ports: &[(Option<&str>, i32, &str)]) -> Service {
        let mut s = Service::default();
        s.metadata.name = name.into();
        s.metadata.namespace = "default".into();
        s.spec.cluster_ip = ip.map(String::from);
        s.spec.ports = ports
            .iter()
            .map(|(n, p, proto)| ServicePort {
                name: n.map(String::from),
                port: *p,
                protocol: Some(proto.to_string()),
                ..Default::default()
            })
            .collect();
        s
    }

    #[test]
    fn variables_match_kubelet_names_and_order() {
        let env = env_for_services(&[svc("redis-primary", Some("10.96.0.11"), &[(None, 6379, "TCP")])]);
        let want = [
            ("REDIS_PRIMARY_SERVICE_HOST", "10.96.0.11"),
            ("REDIS_PRIMARY_SERVICE_PORT", "6379"),
            ("REDIS_PRIMARY_PORT", "tcp://10.96.0.11:6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.96.0.11:6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"),
            ("REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.96.0.11"),
        ];
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn named_ports_and_udp_get_their_own_variables_and_headless_gets_none() {
        let env = env_for_services(&[
            svc("dns", Some("10.96.0.10"), &[(Some("dns"), 53, "UDP"), (Some("dns-tcp"), 53, "TCP")]),
            svc("headless", Some("None"), &[(None, 80, "TCP")]),
            svc("pending", None, &[(None, 80, "TCP")]),
        ]);
        let has = |k: &str, v: &str| env.iter().any(|(a, b)| a == k && b == v);
        assert!(has("DNS_SERVICE_PORT_DNS", "53"));
        assert!(has("DNS_SERVICE_PORT_DNS_TCP", "53"));
        assert!(has("DNS_PORT", "udp://10.96.0.10:53"));
        assert!(has("DNS_PORT_53_UDP_PROTO", "udp"));
        assert!(has("DNS_PORT_53_TCP_ADDR", "10.96.0.10"));
        assert!(!env.iter().any(|(k, _)| k.starts_with("HEADLESS") || k.starts_with("PENDING")));
    }

    #[test]
    fn service_env_reads_only_the_pods_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut other = svc("other", Some("10.96.0.3"), &[(None, 80, "TCP")]);
        other.metadata.namespace = "kube-system".into();
        store.create(Object::Service(other)).unwrap();
        store.create(Object::Service(svc("web", Some("10.96.0.2"), &[(None, 80, "TCP")]))).unwrap();
        let env = service_env(&store, "default");
        assert_eq!(env[0], ("WEB_SERVICE_HOST".to_string(), "10.96.0.2".to_string()));
        assert!(!env.iter().any(|(k, _)| k.starts_with("OTHER")));
    }
}
