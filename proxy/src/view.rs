//! The proxy's view of the store: every Service, Endpoints and Pod, kept from watch events
//! (a watch from "any version" starts with an ADDED for every object, then brings each
//! change), so a pass reads memory instead of listing and cloning the store. The objects
//! are the store's own `Arc`s; other kinds are ignored.

use coracle_config::core::{Endpoints, Pod, Service};
use coracle_config::object::Object;
use coracle_store::WatchEvent;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Namespace and name.
type Key = (String, String);

/// The Services, Endpoints and Pods the proxy plans from.
#[derive(Debug, Default, PartialEq)]
pub struct View {
    services: BTreeMap<Key, Arc<Object>>,
    endpoints: BTreeMap<Key, Arc<Object>>,
    pods: BTreeMap<Key, Arc<Object>>,
}

fn key(object: &Object) -> Key {
    let meta = object.metadata();
    (meta.namespace.clone(), meta.name.clone())
}

impl View {
    /// The view of a full list of the store.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Arc<Object>>) -> View {
        let mut view = View::default();
        for object in objects {
            view.put(object);
        }
        view
    }

    /// Applies one change; returns whether it concerned the view (a Service, Endpoints or
    /// Pod).
    pub fn apply(&mut self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => self.put(o),
            WatchEvent::Deleted(o) => self.table(o).map(|t| t.remove(&key(o))).is_some(),
        }
    }

    fn table(&mut self, object: &Object) -> Option<&mut BTreeMap<Key, Arc<Object>>> {
        match object {
            Object::Service(_) => Some(&mut self.services),
            Object::Endpoints(_) => Some(&mut self.endpoints),
            Object::Pod(_) => Some(&mut self.pods),
            _ => None,
        }
    }

    fn put(&mut self, object: &Arc<Object>) -> bool {
        let Some(table) = self.table(object) else { return false };
        table.insert(key(object), object.clone());
        true
    }

    /// Every Service.
    pub fn services(&self) -> impl Iterator<Item = &Service> + Clone {
        self.services.values().filter_map(|o| match &**o {
            Object::Service(s) => Some(s),
            _ => None,
        })
    }

    /// Every Endpoints.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoints> + Clone {
        self.endpoints.values().filter_map(|o| match &**o {
            Object::Endpoints(e) => Some(e),
            _ => None,
        })
    }

    /// Every Pod.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> + Clone {
        self.pods.values().filter_map(|o| match &**o {
            Object::Pod(p) => Some(p),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{self, PlanContext};
    use coracle_config::core::{EndpointAddress, EndpointPort, EndpointSubset, Namespace, PodStatus, ServicePort};
    use coracle_config::meta::{Condition, ObjectReference};
    use coracle_config::object::Resource;
    use coracle_net::SandboxDirs;
    use coracle_store::{DeleteOptions, Filter, Store};
    use std::collections::HashSet;
    use std::time::Duration;

    /// A small deterministic generator (no dependency): the same sequence every run.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn service(name: &str, port: i32) -> Object {
        let mut s = Service::default();
        s.metadata.name = name.into();
        s.metadata.namespace = "default".into();
        s.spec.cluster_ip = Some(format!("10.96.0.{}", 2 + port % 200));
        s.spec.ports = vec![ServicePort { port, ..Default::default() }];
        Object::Service(s)
    }

    fn endpoints(name: &str, pod: &Object, port: i32) -> Object {
        let mut e = Endpoints::default();
        e.metadata.name = name.into();
        e.metadata.namespace = "default".into();
        e.subsets = vec![EndpointSubset {
            addresses: vec![EndpointAddress {
                ip: "10.88.0.2".into(),
                target_ref: Some(ObjectReference {
                    kind: "Pod".into(),
                    uid: pod.metadata().uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ports: vec![EndpointPort { port, protocol: Some("TCP".into()), ..Default::default() }],
            ..Default::default()
        }];
        Object::Endpoints(e)
    }

    fn pod(name: &str, ready: bool) -> Object {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.status = Some(PodStatus {
            pod_ip: Some("10.88.0.2".into()),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        Object::Pod(p)
    }

    fn relist(store: &Store) -> View {
        View::from_objects(&store.list(&Filter::default()).0)
    }

    /// Drains what the watch has; returns how many events concerned the view.
    fn drain(view: &mut View, watcher: &coracle_store::Watcher) -> usize {
        let mut relevant = 0;
        while let Some((_, event)) = watcher.next_timeout(Duration::ZERO) {
            relevant += usize::from(view.apply(&event));
        }
        relevant
    }

    #[test]
    fn a_sequence_of_watch_events_gives_the_view_a_full_list_gives() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Some objects before the watch starts: its ADDEDs bring them.
        let first = store.create(pod("p0", true)).unwrap();
        store.create(service("s0", 80)).unwrap();
        store.create(endpoints("s0", &first, 8080)).unwrap();
        let mut ns = Namespace::default();
        ns.metadata.name = "default".into();
        store.create(Object::Namespace(ns)).unwrap();
        let watcher = store.watch(Filter::default(), Some(0)).unwrap();
        let mut view = View::default();
        assert_eq!(drain(&mut view, &watcher), 3, "the namespace is not the view's");
        assert_eq!(view, relist(&store));

        let mut rng = Lcg(7);
        for step in 0..400 {
            let name = format!("{}", rng.below(4));
            let port = 80 + rng.below(3) as i32;
            let info = match rng.below(3) {
                0 => &Service::INFO,
                1 => &Endpoints::INFO,
                _ => &Pod::INFO,
            };
            let live = store.get(info, "default", &format!("x{name}"));
            let pods = store.list(&Filter { resource: Some(&Pod::INFO), namespace: None }).0;
            let target = pods.first().cloned().unwrap_or_else(|| first.clone());
            let next = match info.kind {
                "Service" => service(&format!("x{name}"), port),
                "Endpoints" => endpoints(&format!("x{name}"), &target, port + 8000),
                _ => pod(&format!("x{name}"), rng.below(2) == 0),
            };
            match (live, rng.below(4)) {
                (None, _) => drop(store.create(next).unwrap()),
                (Some(_), 0) => {
                    drop(store.delete(info, "default", &format!("x{name}"), &DeleteOptions::default()).unwrap())
                }
                (Some(_), 1) if info.kind == "Pod" => drop(store.update_status(next, false).unwrap()),
                (Some(_), _) => drop(store.update(next).unwrap()),
            }
            drain(&mut view, &watcher);
            assert_eq!(view, relist(&store), "after step {step}");
        }
        // The plans agree too (the proxy's whole use of the view).
        let paths = SandboxDirs { run_dir: "/nonexistent".into() };
        let withdrawn = HashSet::new();
        let ctx = PlanContext { node_ip: "192.0.2.2".parse().unwrap(), paths: &paths, withdrawn: &withdrawn };
        let full = relist(&store);
        assert_eq!(
            plan::plan(view.services(), view.endpoints(), view.pods(), &ctx),
            plan::plan(full.services(), full.endpoints(), full.pods(), &ctx)
        );
        assert!(view.services().count() > 0 && view.pods().count() > 0, "the sequence left something to plan");
    }
}
