use super::*;
use coracle_config::object::{Object, Resource};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn service(name: &str, type_: &str, ports: &[i32]) -> Service {
    let mut s = Service::default();
    s.metadata.name = name.into();
    s.metadata.namespace = "default".into();
    s.spec.type_ = Some(type_.into());
    s.spec.ports = ports.iter().map(|p| ServicePort { port: *p, ..Default::default() }).collect();
    s
}

fn allocator() -> ServiceAllocator {
    ServiceAllocator::new("10.96.0.0/16".parse().unwrap())
}

fn create(store: &Store, a: &ServiceAllocator, mut s: Service) -> Service {
    let held = a.allocate(store, &mut s).unwrap();
    held.settle(store.create(Object::Service(s.clone()))).unwrap();
    s
}

fn node_port(s: &Service) -> i32 {
    s.spec.ports[0].node_port.unwrap()
}

#[test]
fn cluster_ips_are_unique_in_range_and_survive_restart() {
    let (dir, store) = store();
    let a = allocator();
    let s1 = create(&store, &a, service("a", "ClusterIP", &[80]));
    let s2 = create(&store, &a, service("b", "ClusterIP", &[80]));
    let ip1 = s1.spec.cluster_ip.clone().unwrap();
    assert_eq!(ip1, "10.96.0.2");
    assert_ne!(Some(ip1.clone()), s2.spec.cluster_ip);
    assert_eq!(s1.spec.cluster_ips, std::slice::from_ref(&ip1));
    assert_eq!(s1.spec.ip_families, ["IPv4"]);
    drop(store);
    // A fresh allocator over the reopened store sees both as taken.
    let store = Store::open(dir.path()).unwrap();
    let mut again = service("c", "ClusterIP", &[80]);
    again.spec.cluster_ip = Some(ip1.clone());
    let e = allocator().allocate(&store, &mut again).unwrap_err();
    assert_eq!(e.to_string(), format!("spec.clusterIP: Invalid value: \"{ip1}\": provided IP is already allocated"));
}

#[test]
fn requested_ips_out_of_range_are_refused_and_headless_stays_none() {
    let (_d, store) = store();
    let a = allocator();
    let mut s = service("a", "ClusterIP", &[80]);
    s.spec.cluster_ip = Some("10.0.0.5".into());
    let e = a.allocate(&store, &mut s).unwrap_err().to_string();
    assert!(e.contains("The range of valid IPs is 10.96.0.0/16"), "{e}");
    let mut h = service("h", "ClusterIP", &[]);
    h.spec.cluster_ip = Some("None".into());
    let headless = a.allocate(&store, &mut h).unwrap();
    assert_eq!(h.spec.cluster_ips, ["None"]);
    assert_eq!(headless.cluster_ip(), None, "a headless Service holds no address");
    let mut ok = service("b", "ClusterIP", &[80]);
    ok.spec.cluster_ip = Some("10.96.7.7".into());
    let _held = a.allocate(&store, &mut ok).unwrap();
    assert_eq!(ok.spec.cluster_ip.as_deref(), Some("10.96.7.7"));
}

#[test]
fn a_pick_not_yet_stored_is_not_handed_out_twice() {
    let (_d, store) = store();
    let a = allocator();
    let (mut x, mut y) = (service("x", "NodePort", &[80]), service("y", "NodePort", &[80]));
    let held_x = a.allocate(&store, &mut x).unwrap();
    let _held_y = a.allocate(&store, &mut y).unwrap();
    assert_ne!(x.spec.cluster_ip, y.spec.cluster_ip);
    assert_ne!(x.spec.ports[0].node_port, y.spec.ports[0].node_port);
    // Asked for by name while held: refused, the ClusterIP and the node port alike.
    let mut twin = service("twin", "NodePort", &[80]);
    twin.spec.cluster_ip = x.spec.cluster_ip.clone();
    let e = a.allocate(&store, &mut twin).unwrap_err().to_string();
    assert!(e.ends_with("provided IP is already allocated"), "{e}");
    twin.spec.cluster_ip = None;
    twin.spec.ports[0].node_port = x.spec.ports[0].node_port;
    let e = a.allocate(&store, &mut twin).unwrap_err().to_string();
    assert!(e.ends_with("provided port is already allocated"), "{e}");
    drop(held_x);
    let mut z = service("z", "ClusterIP", &[80]);
    z.spec.cluster_ip = x.spec.cluster_ip.clone();
    let _held_z = a.allocate(&store, &mut z).unwrap();
}

#[test]
fn a_dropped_reservation_gives_its_values_back() {
    let (_d, store) = store();
    let a = allocator();
    let mut x = service("x", "NodePort", &[80]);
    let held = a.allocate(&store, &mut x).unwrap();
    let (ip, port) = (held.cluster_ip().unwrap(), held.node_ports().to_vec());
    assert_eq!((Some(ip.to_string()), port.clone()), (x.spec.cluster_ip.clone(), vec![node_port(&x)]));
    drop(held);
    // Nothing picked since: the next Service gets the very same values.
    let mut y = service("y", "NodePort", &[80]);
    let again = a.allocate(&store, &mut y).unwrap();
    assert_eq!((again.cluster_ip(), again.node_ports()), (Some(ip), &port[..]));
    drop(again);
    // And they can be asked for by name.
    let mut z = service("z", "NodePort", &[80]);
    z.spec.cluster_ip = Some(ip.to_string());
    z.spec.ports[0].node_port = Some(port[0]);
    let _held = a.allocate(&store, &mut z).unwrap();
}

#[test]
fn a_committed_reservation_keeps_its_values_with_the_stored_service() {
    let (_d, store) = store();
    let a = allocator();
    let x = create(&store, &a, service("x", "NodePort", &[80]));
    let ip = x.spec.cluster_ip.clone().unwrap();
    let mut y = service("y", "NodePort", &[80]);
    let _y = a.allocate(&store, &mut y).unwrap();
    assert_ne!(y.spec.cluster_ip.as_deref(), Some(ip.as_str()));
    assert_ne!(node_port(&y), node_port(&x));
    let mut clash = service("clash", "NodePort", &[80]);
    clash.spec.cluster_ip = Some(ip.clone());
    let e = a.allocate(&store, &mut clash).unwrap_err().to_string();
    assert_eq!(e, format!("spec.clusterIP: Invalid value: \"{ip}\": provided IP is already allocated"));
    clash.spec.cluster_ip = None;
    clash.spec.ports[0].node_port = Some(node_port(&x));
    let e = a.allocate(&store, &mut clash).unwrap_err().to_string();
    assert!(e.ends_with("provided port is already allocated (to service default/x)"), "{e}");
    // The Service's deletion frees them.
    store.delete(&Service::INFO, "default", "x", &coracle_store::DeleteOptions::default()).unwrap();
    let _clash = a.allocate(&store, &mut clash).unwrap();
}

#[test]
fn a_failed_write_gives_the_values_back() {
    let (_d, store) = store();
    let a = allocator();
    let x = create(&store, &a, service("x", "ClusterIP", &[80]));
    // A second create of the same name fails in the store: its pick is not kept.
    let mut dup = service("x", "ClusterIP", &[80]);
    let held = a.allocate(&store, &mut dup).unwrap();
    let ip = held.cluster_ip().unwrap();
    assert_ne!(Some(ip.to_string()), x.spec.cluster_ip);
    assert!(held.settle(store.create(Object::Service(dup))).is_err());
    let mut next = service("next", "ClusterIP", &[80]);
    let _next = a.allocate(&store, &mut next).unwrap();
    assert_eq!(next.spec.cluster_ip, Some(ip.to_string()));
}

#[test]
fn an_exhausted_range_is_an_error_until_something_is_given_back() {
    let (_d, store) = store();
    // 8 addresses: the network, .1, the broadcast, and five to hand out.
    let a = ServiceAllocator::new("10.0.0.0/29".parse().unwrap());
    let mut held: Vec<_> = (0..5)
        .map(|i| {
            let mut s = service(&format!("s{i}"), "ClusterIP", &[80]);
            a.allocate(&store, &mut s).unwrap()
        })
        .collect();
    let mut ips: Vec<String> = held.iter().map(|r| r.cluster_ip().unwrap().to_string()).collect();
    ips.sort();
    assert_eq!(ips, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    let mut late = service("late", "ClusterIP", &[80]);
    let e = a.allocate(&store, &mut late).unwrap_err().to_string();
    assert_eq!(e, "spec.clusterIP: Invalid value: \"\": no ClusterIP left in range 10.0.0.0/29");
    let freed = held.remove(2).cluster_ip();
    let again = a.allocate(&store, &mut late).unwrap();
    assert_eq!(again.cluster_ip(), freed);

    // Node ports: one Service holding the whole range leaves none for the next.
    let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
    let mut big = service("big", "NodePort", &(1..=span).collect::<Vec<_>>());
    let b = allocator();
    let all = b.allocate(&store, &mut big).unwrap();
    assert_eq!(all.node_ports().len(), span as usize);
    let mut one = service("one", "NodePort", &[80]);
    let e = b.allocate(&store, &mut one).unwrap_err().to_string();
    assert_eq!(e, "spec.ports[0].nodePort: Invalid value: 0: no node port left in range 30000-32767");
    assert_eq!(one.spec.ports[0].node_port, None);
    drop(all);
    let _one = b.allocate(&store, &mut one).unwrap();
}

#[test]
fn node_ports_are_picked_for_nodeport_and_loadbalancer_and_conflicts_refused() {
    let (_d, store) = store();
    let a = allocator();
    let np = create(&store, &a, service("np", "NodePort", &[80, 443]));
    let ports: Vec<i32> = np.spec.ports.iter().map(|p| p.node_port.unwrap()).collect();
    assert!(ports.iter().all(|p| NODE_PORTS.contains(p)) && ports[0] != ports[1], "{ports:?}");
    let lb = create(&store, &a, service("lb", "LoadBalancer", &[80]));
    assert!(lb.spec.ports[0].node_port.is_some_and(|p| !ports.contains(&p)));
    let ci = create(&store, &a, service("ci", "ClusterIP", &[80]));
    assert_eq!(ci.spec.ports[0].node_port, None);
    let mut clash = service("clash", "NodePort", &[80]);
    clash.spec.ports[0].node_port = Some(ports[0]);
    let e = a.allocate(&store, &mut clash).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("spec.ports[0].nodePort: Invalid value: {}: provided port is already", ports[0])),
        "{e}"
    );
    let mut out = service("out", "NodePort", &[80]);
    out.spec.ports[0].node_port = Some(8080);
    assert!(a.allocate(&store, &mut out).unwrap_err().to_string().contains("30000-32767"));
}

#[test]
fn a_configured_node_port_range_is_the_only_one_used_and_named() {
    let (_d, store) = store();
    let a = allocator().with_node_ports(40000..=40002);
    assert_eq!(a.node_ports(), 40000..=40002);
    let np = create(&store, &a, service("np", "NodePort", &[80, 443]));
    let ports: Vec<i32> = np.spec.ports.iter().map(|p| p.node_port.unwrap()).collect();
    assert_eq!(ports, [40000, 40001]);
    // A port of the default range is outside this daemon's: refused with its range.
    let mut default = service("default", "NodePort", &[80]);
    default.spec.ports[0].node_port = Some(30000);
    let e = a.allocate(&store, &mut default).unwrap_err().to_string();
    assert_eq!(
        e,
        "spec.ports[0].nodePort: Invalid value: 30000: provided port is not in the valid range. The range of valid ports is 40000-40002"
    );
    let last = create(&store, &a, service("last", "NodePort", &[80]));
    assert_eq!(last.spec.ports[0].node_port, Some(40002));
    let mut none = service("none", "NodePort", &[80]);
    let e = a.allocate(&store, &mut none).unwrap_err().to_string();
    assert_eq!(e, "spec.ports[0].nodePort: Invalid value: 0: no node port left in range 40000-40002");
}

#[test]
fn updates_keep_what_the_user_left_unset() {
    let (_d, store) = store();
    let a = allocator();
    let old = create(&store, &a, service("web", "NodePort", &[80]));
    let mut new = service("web", "NodePort", &[80, 81]);
    let held = a.allocate_update(&store, &old, &mut new).unwrap();
    assert_eq!(new.spec.cluster_ip, old.spec.cluster_ip);
    assert_eq!(new.spec.ports[0].node_port, old.spec.ports[0].node_port);
    assert!(new.spec.ports[1].node_port.is_some());
    // Only the new port is held: the rest stays with the stored Service.
    assert_eq!((held.cluster_ip(), held.node_ports()), (None, &[new.spec.ports[1].node_port.unwrap()][..]));
    drop(held);
    let mut back = service("web", "ClusterIP", &[80]);
    back.spec.ports[0].node_port = old.spec.ports[0].node_port;
    let _held = a.allocate_update(&store, &old, &mut back).unwrap();
    assert_eq!((back.spec.ports[0].node_port, back.spec.cluster_ip), (None, old.spec.cluster_ip));
}
