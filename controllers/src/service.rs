//! The service controller: a LoadBalancer Service's `status.loadBalancer.ingress` is the
//! node's address, as k3s's ServiceLB shows it (the proxy serves such a Service on that
//! address; it only reads). Written only when it differs. Other types are left alone, as
//! Kubernetes' controller leaves a Service that never had a load balancer: their status is
//! whatever a client wrote through `/status`.

use super::runner::{self, ControllerContext, ObjectKey, Reconciler, SyncResult};
use coracle_config::core::{LoadBalancerIngress, LoadBalancerStatus, Service, ServiceStatus};
use coracle_config::object::{Object, Resource};
use coracle_store::{Store, WatchEvent, WatchFilter};
use std::net::IpAddr;
use std::thread::JoinHandle;
use std::time::Duration;

/// A full pass over every Service even when no event asked for one.
const RESYNC: Duration = Duration::from_secs(60);

/// The status a LoadBalancer Service shows on a node at `node_ip`.
pub fn load_balancer_status(node_ip: IpAddr) -> ServiceStatus {
    ServiceStatus {
        load_balancer: LoadBalancerStatus {
            ingress: vec![LoadBalancerIngress {
                ip: Some(node_ip.to_string()),
                ip_mode: Some("VIP".into()),
                ..Default::default()
            }],
        },
    }
}

/// Publishes LoadBalancer Services' addresses.
pub struct ServiceController {
    store: Store,
    node_ip: IpAddr,
}

impl ServiceController {
    /// A controller over `store` for a node at `node_ip`; run it with
    /// [`spawn_service_controller`].
    pub fn new(store: Store, node_ip: IpAddr) -> ServiceController {
        ServiceController { store, node_ip }
    }
}

impl Reconciler for ServiceController {
    fn name(&self) -> &'static str {
        "service-controller"
    }

    fn watches(&self) -> WatchFilter {
        WatchFilter::kinds(&[&Service::INFO])
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
        runner::keys_of::<Service>(store)
    }

    fn keys_for(&self, _store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        match &**event.object() {
            Object::Service(s) => vec![ObjectKey::new(&s.metadata.namespace, &s.metadata.name)],
            _ => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        let Some(svc) = self.store.get_as::<Service>(&key.namespace, &key.name) else { return Ok(None) };
        if !svc.is_load_balancer() || svc.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let want = load_balancer_status(self.node_ip);
        if svc.status.as_ref() == Some(&want) {
            return Ok(None);
        }
        let mut next = Service::clone(&svc);
        next.status = Some(want);
        // Written over whatever stands: the address is this node's, whoever wrote before.
        next.metadata.resource_version.clear();
        self.store.update_status(Object::Service(next), true)?;
        Ok(None)
    }
}

/// Starts the controller on its own thread.
pub fn spawn_service_controller(ctx: &ControllerContext, node_ip: IpAddr) -> JoinHandle<()> {
    runner::spawn(ctx, ServiceController::new(ctx.store.clone(), node_ip), RESYNC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::ServicePort;
    use coracle_store::DeleteOptions;

    fn service(name: &str, type_: &str) -> Object {
        let mut s = Service::default();
        s.metadata.name = name.into();
        s.metadata.namespace = "default".into();
        s.spec.type_ = Some(type_.into());
        s.spec.ports = vec![ServicePort { port: 80, ..Default::default() }];
        Object::Service(s)
    }

    fn status(store: &Store, name: &str) -> Option<ServiceStatus> {
        match store.get(&Service::INFO, "default", name).as_deref() {
            Some(Object::Service(s)) => s.status.clone(),
            _ => None,
        }
    }

    #[test]
    fn load_balancers_get_the_node_address_once_and_other_types_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let node_ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut c = ServiceController::new(store.clone(), node_ip);
        store.create(service("lb", "LoadBalancer")).unwrap();
        store.create(service("ci", "ClusterIP")).unwrap();
        // A ClusterIP Service's status is what a client wrote through /status.
        let mut written = service("ci", "ClusterIP");
        let Object::Service(s) = &mut written else { unreachable!() };
        s.status = Some(load_balancer_status("198.51.100.1".parse().unwrap()));
        store.update_status(written, true).unwrap();
        for name in ["lb", "ci"] {
            c.reconcile(&ObjectKey::new("default", name)).unwrap();
        }
        assert_eq!(status(&store, "lb"), Some(load_balancer_status(node_ip)));
        let ingress = status(&store, "lb").unwrap().load_balancer.ingress;
        assert_eq!((ingress[0].ip.as_deref(), ingress[0].ip_mode.as_deref()), (Some("192.0.2.7"), Some("VIP")));
        assert_eq!(status(&store, "ci"), Some(load_balancer_status("198.51.100.1".parse().unwrap())));
        // Nothing to change, nothing written.
        let version = store.get(&Service::INFO, "default", "lb").unwrap().metadata().resource_version.clone();
        c.reconcile(&ObjectKey::new("default", "lb")).unwrap();
        assert_eq!(store.get(&Service::INFO, "default", "lb").unwrap().metadata().resource_version, version);
        // A Service gone by its turn is nothing to do.
        store.delete(&Service::INFO, "default", "lb", &DeleteOptions::default()).unwrap();
        assert_eq!(c.reconcile(&ObjectKey::new("default", "lb")).unwrap(), None);
    }

    #[test]
    fn the_running_controller_publishes_a_new_load_balancer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let node_ip: IpAddr = "192.0.2.7".parse().unwrap();
        let handle = spawn_service_controller(&ControllerContext::new(store.clone(), None), node_ip);
        store.create(service("lb", "LoadBalancer")).unwrap();
        let mut seen = None;
        for _ in 0..500 {
            seen = status(&store, "lb");
            if seen.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(seen, Some(load_balancer_status(node_ip)));
        store.shutdown().unwrap();
        handle.join().unwrap();
    }
}
