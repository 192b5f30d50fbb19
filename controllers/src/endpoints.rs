//! The endpoints controller: for each Service with a selector, an Endpoints object of the
//! same name listing the selected pods' addresses — Ready ones under `addresses`, others
//! under `notReadyAddresses` — with ports resolved (by number or by container port name)
//! per pod. A pod leaves the moment it starts terminating. Written only when it changes.

use super::runner::{self, ControllerContext, ObjectKey, Reconciler, SyncResult};
use coracle_config::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service, ServicePort};
use coracle_config::meta::ObjectReference;
use coracle_config::object::{Object, Resource};
use coracle_config::IntOrString;
use coracle_store::{DeleteOptions, Store, StoreError, Typed, WatchEvent, WatchFilter};
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Duration;

/// A full pass over every Service even when no event asked for one.
const RESYNC: Duration = Duration::from_secs(60);

/// Whether a pod belongs in a Service's Endpoints at all (kube's `ShouldPodBeInEndpoints`):
/// it has an IP, has not finished, and is not terminating.
fn serves(pod: &Pod) -> bool {
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).unwrap_or("");
    !ip.is_empty() && !matches!(pod.phase(), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's port for `sp.targetPort`: a number as is, a name looked up among the pod's
/// container ports of the same protocol.
fn resolve_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let proto = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(0)) => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.name.as_deref() == Some(name.as_str()) && p.protocol.as_deref().unwrap_or("TCP") == proto)
            .map(|p| p.container_port),
    }
}

fn address_of(pod: &Pod, svc: &Service) -> EndpointAddress {
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    let hostname = pod.spec.hostname.clone().filter(|_| pod.spec.subdomain.as_deref() == Some(&svc.metadata.name));
    EndpointAddress {
        ip,
        hostname,
        node_name: pod.spec.node_name.clone(),
        target_ref: Some(ObjectReference {
            kind: "Pod".into(),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    }
}

fn address_order(a: &EndpointAddress, b: &EndpointAddress) -> std::cmp::Ordering {
    let uid = |x: &EndpointAddress| x.target_ref.as_ref().map(|r| r.uid.clone()).unwrap_or_default();
    a.ip.cmp(&b.ip).then_with(|| uid(a).cmp(&uid(b)))
}

/// The subsets a Service's Endpoints should hold for `pods` (all pods of its namespace):
/// one subset per distinct set of resolved ports, addresses sorted by IP.
pub fn desired_subsets<P: Borrow<Pod>>(svc: &Service, pods: &[P]) -> Vec<EndpointSubset> {
    let publish_not_ready = svc.spec.publish_not_ready_addresses == Some(true);
    type Groups = BTreeMap<Vec<(String, i32, String)>, (Vec<EndpointAddress>, Vec<EndpointAddress>)>;
    let mut groups: Groups = BTreeMap::new();
    for pod in pods.iter().map(<P as Borrow<Pod>>::borrow) {
        if pod.metadata.namespace != svc.metadata.namespace || !selects(svc, pod) || !serves(pod) {
            continue;
        }
        let mut ports: Vec<(String, i32, String)> = Vec::new();
        for sp in &svc.spec.ports {
            // A pod without the named port is left out of that port, as Kubernetes does.
            if let Some(n) = resolve_port(pod, sp) {
                ports.push((
                    sp.name.clone().unwrap_or_default(),
                    n,
                    sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ));
            }
        }
        if ports.is_empty() && !svc.spec.ports.is_empty() {
            continue;
        }
        ports.sort();
        let entry = groups.entry(ports).or_default();
        let address = address_of(pod, svc);
        if publish_not_ready || pod.is_ready() {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(address_order);
            not_ready.sort_by(address_order);
            EndpointSubset {
                addresses: ready,
                not_ready_addresses: not_ready,
                ports: ports
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name: (!name.is_empty()).then_some(name),
                        port,
                        protocol: Some(protocol),
                        app_protocol: None,
                    })
                    .collect(),
            }
        })
        .collect()
}

fn selects(svc: &Service, pod: &Pod) -> bool {
    svc.spec.selector.iter().all(|(k, v)| pod.metadata.labels.get(k) == Some(v))
}

/// Keeps Endpoints in step with Services and pods.
pub struct EndpointsController {
    store: Store,
}

impl EndpointsController {
    /// A controller over `store`; run it with [`spawn_endpoints_controller`].
    pub fn new(store: Store) -> EndpointsController {
        EndpointsController { store }
    }

    fn pods_in(&self, namespace: &str) -> Vec<Typed<Pod>> {
        self.store.list_as(Some(namespace), None)
    }

    fn delete_endpoints(&self, key: &ObjectKey) -> SyncResult {
        if self.store.get(&Endpoints::INFO, &key.namespace, &key.name).is_some() {
            match self.store.delete(&Endpoints::INFO, &key.namespace, &key.name, &DeleteOptions::default()) {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoints-controller"
    }

    fn watches(&self) -> WatchFilter {
        WatchFilter::kinds(&[&Service::INFO, &Endpoints::INFO, &Pod::INFO])
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
        runner::keys_of::<Service>(store)
    }

    fn keys_for(&self, store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        let obj = event.object();
        let meta = obj.metadata();
        match &**obj {
            Object::Service(_) | Object::Endpoints(_) => vec![ObjectKey::new(&meta.namespace, &meta.name)],
            // A label change may move a pod out of a Service it no longer matches, and the
            // event shows only the new labels: every Service of the namespace looks again.
            Object::Pod(_) => store
                .list_as::<Service>(Some(&meta.namespace), None)
                .iter()
                .map(|s| ObjectKey::new(&s.metadata.namespace, &s.metadata.name))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        let Some(svc) = self.store.get_as::<Service>(&key.namespace, &key.name) else {
            return self.delete_endpoints(key);
        };
        if svc.spec.selector.is_empty() {
            // Without a selector the Endpoints are the user's to manage.
            return Ok(None);
        }
        if svc.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let subsets = desired_subsets(&svc, &self.pods_in(&key.namespace));
        match self.store.get_as::<Endpoints>(&key.namespace, &key.name) {
            Some(ep) => {
                if ep.subsets == subsets && ep.metadata.labels == svc.metadata.labels {
                    return Ok(None);
                }
                let mut next = Endpoints::clone(&ep);
                next.subsets = subsets;
                next.metadata.labels.clone_from(&svc.metadata.labels);
                self.store.update(Object::Endpoints(next))?;
            }
            None => {
                let mut ep = Endpoints::default();
                ep.metadata.name = key.name.clone();
                ep.metadata.namespace = key.namespace.clone();
                ep.metadata.labels.clone_from(&svc.metadata.labels);
                ep.subsets = subsets;
                let mut object = Object::Endpoints(ep);
                object.set_type_meta();
                self.store.create(object)?;
            }
        }
        Ok(None)
    }
}

/// Removes Endpoints whose Service went while the daemon was down, then starts the
/// controller on its own thread.
pub fn spawn_endpoints_controller(ctx: &ControllerContext) -> JoinHandle<()> {
    let store = &ctx.store;
    let mut controller = EndpointsController::new(store.clone());
    for ep in store.list_as::<Endpoints>(None, None) {
        let m = &ep.metadata;
        if store.get_as::<Service>(&m.namespace, &m.name).is_none() {
            let key = ObjectKey::new(&m.namespace, &m.name);
            if let Err(e) = controller.reconcile(&key) {
                log::warn!("endpoints-controller: removing orphaned endpoints {key}: {e}");
            }
        }
    }
    runner::spawn(ctx, controller, RESYNC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{Container, ContainerPort, PodStatus};
    use coracle_config::meta::Condition;

    fn svc(selector: &[(&str, &str)], ports: &[(Option<&str>, i32, IntOrString)]) -> Service {
        let mut s = Service::default();
        s.metadata.name = "web".into();
        s.metadata.namespace = "default".into();
        s.spec.selector = selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        s.spec.ports = ports
            .iter()
            .map(|(n, p, t)| ServicePort {
                name: n.map(String::from),
                port: *p,
                protocol: Some("TCP".into()),
                target_port: Some(t.clone()),
                ..Default::default()
            })
            .collect();
        s
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, ports: &[(&str, i32)]) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.metadata.uid = format!("uid-{name}");
        p.metadata.labels.insert("app".into(), "web".into());
        p.spec.containers = vec![Container {
            name: "c".into(),
            ports: ports
                .iter()
                .map(|(n, port)| ContainerPort {
                    name: Some(n.to_string()),
                    container_port: *port,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }];
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: ip.map(String::from),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        p
    }

    fn ips(list: &[EndpointAddress]) -> Vec<&str> {
        list.iter().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_pods_are_addresses_others_not_ready_terminating_and_ipless_left_out() {
        let s = svc(&[("app", "web")], &[(None, 80, IntOrString::Int(8080))]);
        let mut terminating = pod("d", Some("10.88.0.4"), true, &[]);
        terminating.metadata.deletion_timestamp = Some("2024-01-01T00:00:00Z".into());
        let mut other = pod("e", Some("10.88.0.5"), true, &[]);
        other.metadata.labels.insert("app".into(), "db".into());
        let pods = [
            pod("b", Some("10.88.0.3"), true, &[]),
            pod("a", Some("10.88.0.2"), true, &[]),
            pod("c", Some("10.88.0.9"), false, &[]),
            pod("n", None, true, &[]),
            terminating,
            other,
        ];
        let subsets = desired_subsets(&s, &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), ["10.88.0.2", "10.88.0.3"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.88.0.9"]);
        assert_eq!(subsets[0].ports, [EndpointPort { port: 8080, protocol: Some("TCP".into()), ..Default::default() }]);
        let target = subsets[0].addresses[0].target_ref.as_ref().unwrap();
        assert_eq!((target.kind.as_str(), target.name.as_str(), target.uid.as_str()), ("Pod", "a", "uid-a"));
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_group_subsets() {
        let s = svc(
            &[("app", "web")],
            &[(Some("http"), 80, IntOrString::from("web")), (Some("metrics"), 9090, IntOrString::Int(9090))],
        );
        let pods = [
            pod("a", Some("10.88.0.2"), true, &[("web", 8080)]),
            pod("b", Some("10.88.0.3"), true, &[("web", 8081)]),
            pod("c", Some("10.88.0.4"), true, &[]),
        ];
        let subsets = desired_subsets(&s, &pods);
        let described: Vec<(Vec<&str>, Vec<i32>)> =
            subsets.iter().map(|s| (ips(&s.addresses), s.ports.iter().map(|p| p.port).collect())).collect();
        assert_eq!(
            described,
            [
                (vec!["10.88.0.2"], vec![8080, 9090]),
                (vec!["10.88.0.3"], vec![8081, 9090]),
                (vec!["10.88.0.4"], vec![9090])
            ]
        );
    }

    #[test]
    fn publish_not_ready_lists_every_pod_as_ready() {
        let mut s = svc(&[("app", "web")], &[(None, 80, IntOrString::Int(80))]);
        s.spec.publish_not_ready_addresses = Some(true);
        let subsets = desired_subsets(&s, &[pod("c", Some("10.88.0.9"), false, &[])]);
        assert_eq!(ips(&subsets[0].addresses), ["10.88.0.9"]);
    }

    #[test]
    fn reconcile_creates_updates_only_on_change_and_deletes_with_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create(Object::Service(svc(&[("app", "web")], &[(None, 80, IntOrString::Int(80))]))).unwrap();
        store.create(Object::Pod(pod("a", Some("10.88.0.2"), true, &[]))).unwrap();
        let mut c = EndpointsController::new(store.clone());
        let key = ObjectKey::new("default", "web");
        c.reconcile(&key).unwrap();
        let get = || store.get_as::<Endpoints>("default", "web");
        let first = get().unwrap();
        assert_eq!(ips(&first.subsets[0].addresses), ["10.88.0.2"]);
        c.reconcile(&key).unwrap();
        assert_eq!(get().unwrap().metadata.resource_version, first.metadata.resource_version, "no change, no write");
        // The pod starts terminating: it leaves at once.
        store.set_graceful_pod_deletion(true);
        let marked = store.delete(&Pod::INFO, "default", "a", &DeleteOptions::default()).unwrap();
        assert!(marked.metadata().deletion_timestamp.is_some());
        c.reconcile(&key).unwrap();
        assert!(get().unwrap().subsets.is_empty());
        store.delete(&Service::INFO, "default", "web", &DeleteOptions::default()).unwrap();
        c.reconcile(&key).unwrap();
        assert!(get().is_none());
    }
}
