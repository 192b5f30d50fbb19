//! ClusterIP and NodePort allocation, done in the create (and update) call as Kubernetes
//! does. The allocations are the stored Services themselves: every pick scans the store, so
//! nothing extra is persisted and a restart loses nothing. Between a pick and the store's
//! create another request could pick the same value, so picks are also held for a short
//! while in memory (`Reservations`); the store's own copy takes over once created.

use crate::cidr::Ipv4Cidr;
use coracle_config::core::{Service, ServicePort};
use coracle_config::validation::{FieldError, Path, NODE_PORT_RANGE};
use coracle_store::Store;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The node ports a Service may claim (Kubernetes' default range).
pub const NODE_PORTS: std::ops::RangeInclusive<i32> = NODE_PORT_RANGE;

/// How long a pick is held for a create that has not reached the store yet.
const RESERVATION: Duration = Duration::from_secs(30);

/// Picks ClusterIPs from one block and node ports from [`NODE_PORTS`].
pub struct ServiceAllocator {
    cidr: Ipv4Cidr,
    reserved: Mutex<Reservations>,
}

#[derive(Default)]
struct Reservations {
    ips: HashMap<Ipv4Addr, Instant>,
    ports: HashMap<i32, Instant>,
    /// Where the next ClusterIP search starts, so a released IP is not handed out again at once.
    next_ip: u64,
    next_port: i32,
}

impl Reservations {
    fn expire(&mut self, now: Instant) {
        self.ips.retain(|_, t| *t > now);
        self.ports.retain(|_, t| *t > now);
    }
}

/// What the stored Services already hold, excluding the one being admitted.
struct Taken {
    ips: HashMap<Ipv4Addr, String>,
    ports: HashMap<i32, String>,
}

fn taken(store: &Store, except: (&str, &str)) -> Taken {
    let mut t = Taken { ips: HashMap::new(), ports: HashMap::new() };
    for s in store.list_as::<Service>(None, None) {
        let (ns, name) = (s.metadata.namespace.as_str(), s.metadata.name.as_str());
        if (ns, name) == except {
            continue;
        }
        let owner = format!("{ns}/{name}");
        for ip in s.spec.cluster_ips.iter().chain(s.spec.cluster_ip.iter()) {
            if let Ok(ip) = ip.parse() {
                t.ips.insert(ip, owner.clone());
            }
        }
        for p in &s.spec.ports {
            if let Some(np) = p.node_port.filter(|n| *n != 0) {
                t.ports.insert(np, owner.clone());
            }
        }
    }
    t
}

fn wants_node_ports(svc: &Service) -> bool {
    match svc.spec.type_.as_deref() {
        Some("NodePort") => true,
        Some("LoadBalancer") => svc.spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

/// A value as Kubernetes quotes it in a field error.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn port_path(i: usize) -> Path {
    Path::new("spec").child("ports").index(i).child("nodePort")
}

impl ServiceAllocator {
    /// An allocator handing out ClusterIPs from `cidr` (e.g. `10.96.0.0/16`).
    pub fn new(cidr: Ipv4Cidr) -> ServiceAllocator {
        ServiceAllocator {
            cidr,
            reserved: Mutex::new(Reservations { next_port: *NODE_PORTS.start(), ..Default::default() }),
        }
    }

    /// The ClusterIP block.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.cidr
    }

    /// Fills a new Service's clusterIP, clusterIPs, ipFamilies, ipFamilyPolicy and node
    /// ports, honouring requested values and refusing ones that are taken or out of range.
    pub fn allocate(&self, store: &Store, svc: &mut Service) -> Result<(), FieldError> {
        let mut r = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        r.expire(Instant::now());
        let taken = taken(store, (&svc.metadata.namespace, &svc.metadata.name));
        self.cluster_ip(&mut r, &taken, svc)?;
        self.node_ports(&mut r, &taken, svc)
    }

    /// Prepares a replacement of `old`: what the user left unset (clusterIP, node ports
    /// of ports still present) is carried over, then anything newly needed is allocated
    /// and node ports a type change no longer allows are dropped.
    pub fn allocate_update(&self, store: &Store, old: &Service, new: &mut Service) -> Result<(), FieldError> {
        let external = new.spec.type_.as_deref() == Some("ExternalName");
        if !external && new.spec.cluster_ip.as_deref().unwrap_or("").is_empty() {
            new.spec.cluster_ip.clone_from(&old.spec.cluster_ip);
            new.spec.cluster_ips.clone_from(&old.spec.cluster_ips);
        }
        if wants_node_ports(new) {
            for p in new.spec.ports.iter_mut().filter(|p| p.node_port.unwrap_or(0) == 0) {
                p.node_port = old.spec.ports.iter().find(|o| same_port(o, p)).and_then(|o| o.node_port);
            }
        } else if new.spec.type_.as_deref() != Some("LoadBalancer") {
            for p in &mut new.spec.ports {
                p.node_port = None;
            }
        }
        self.allocate(store, new)
    }

    /// Drops the in-memory hold on what `svc` was given, for a create that failed after
    /// allocation. A stored Service's allocations end with its deletion, nothing to call.
    pub fn release(&self, svc: &Service) {
        let mut r = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        for ip in svc.spec.cluster_ips.iter().chain(svc.spec.cluster_ip.iter()) {
            if let Ok(ip) = ip.parse() {
                r.ips.remove(&ip);
            }
        }
        for np in svc.spec.ports.iter().filter_map(|p| p.node_port) {
            r.ports.remove(&np);
        }
    }

    fn cluster_ip(&self, r: &mut Reservations, taken: &Taken, svc: &mut Service) -> Result<(), FieldError> {
        let spec = &mut svc.spec;
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok(());
        }
        let path = Path::new("spec").child("clusterIP");
        let requested = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
        let ip = match requested.as_deref() {
            Some("None") => {
                spec.cluster_ips = vec!["None".into()];
                set_families(spec);
                return Ok(());
            }
            Some(text) => {
                let ip: Ipv4Addr = text.parse().map_err(|_| {
                    FieldError::invalid(&path, quote(text), "must be a valid IPv4 address (IPv6 is not supported)")
                })?;
                if !self.usable(ip) {
                    let detail =
                        format!("provided IP is not in the valid range. The range of valid IPs is {}", self.cidr);
                    return Err(FieldError::invalid(&path, quote(text), &detail));
                }
                let mine = spec.cluster_ips.first().map(String::as_str) == Some(text);
                if taken.ips.contains_key(&ip) || (!mine && r.ips.contains_key(&ip)) {
                    return Err(FieldError::invalid(&path, quote(text), "provided IP is already allocated"));
                }
                ip
            }
            None => self.free_ip(r, taken).ok_or_else(|| {
                FieldError::invalid(&path, quote(""), &format!("no ClusterIP left in range {}", self.cidr))
            })?,
        };
        r.ips.insert(ip, Instant::now() + RESERVATION);
        spec.cluster_ip = Some(ip.to_string());
        spec.cluster_ips = vec![ip.to_string()];
        set_families(spec);
        Ok(())
    }

    /// Not the network address, the broadcast address or `.1` (kept for a gateway or an
    /// API service, as Kubernetes keeps the first address for `kubernetes`).
    fn usable(&self, ip: Ipv4Addr) -> bool {
        self.cidr.offset_of(ip).is_some_and(|o| o >= 2 && o + 1 < self.cidr.size())
    }

    fn free_ip(&self, r: &mut Reservations, taken: &Taken) -> Option<Ipv4Addr> {
        let size = self.cidr.size();
        let span = size.saturating_sub(3);
        (0..span).find_map(|i| {
            let offset = 2 + (r.next_ip + i) % span;
            let ip = self.cidr.nth(offset)?;
            let free = !taken.ips.contains_key(&ip) && !r.ips.contains_key(&ip);
            free.then(|| {
                r.next_ip = (offset - 2 + 1) % span;
                ip
            })
        })
    }

    fn node_ports(&self, r: &mut Reservations, taken: &Taken, svc: &mut Service) -> Result<(), FieldError> {
        if !wants_node_ports(svc) {
            return Ok(());
        }
        // A port number serves TCP and UDP of the same service (e.g. DNS on 53).
        let mut mine: HashMap<i32, usize> = HashMap::new();
        let mut chosen: HashSet<i32> = HashSet::new();
        for (i, p) in svc.spec.ports.iter().enumerate() {
            let Some(np) = p.node_port.filter(|n| *n != 0) else { continue };
            if !NODE_PORTS.contains(&np) {
                return Err(FieldError::invalid(
                    &port_path(i),
                    np.to_string(),
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
            if let Some(owner) = taken.ports.get(&np) {
                return Err(FieldError::invalid(
                    &port_path(i),
                    np.to_string(),
                    &format!("provided port is already allocated (to service {owner})"),
                ));
            }
            mine.insert(np, i);
            chosen.insert(np);
        }
        let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
        for i in 0..svc.spec.ports.len() {
            if svc.spec.ports[i].node_port.unwrap_or(0) != 0 {
                continue;
            }
            let twin = svc.spec.ports[..i].iter().find(|o| o.port == svc.spec.ports[i].port).and_then(|o| o.node_port);
            let pick = twin.or_else(|| {
                (0..span).find_map(|k| {
                    let n = NODE_PORTS.start() + (r.next_port - NODE_PORTS.start() + k).rem_euclid(span);
                    let free = !taken.ports.contains_key(&n) && !r.ports.contains_key(&n) && !chosen.contains(&n);
                    free.then_some(n)
                })
            });
            let Some(n) = pick else {
                return Err(FieldError::invalid(&port_path(i), "0", "no node port left in range 30000-32767"));
            };
            r.next_port = if n == *NODE_PORTS.end() { *NODE_PORTS.start() } else { n + 1 };
            chosen.insert(n);
            svc.spec.ports[i].node_port = Some(n);
        }
        let now = Instant::now();
        for n in chosen {
            r.ports.insert(n, now + RESERVATION);
        }
        Ok(())
    }
}

fn same_port(a: &ServicePort, b: &ServicePort) -> bool {
    a.port == b.port && a.protocol.as_deref().unwrap_or("TCP") == b.protocol.as_deref().unwrap_or("TCP")
}

fn set_families(spec: &mut coracle_config::core::ServiceSpec) {
    if spec.ip_families.is_empty() {
        spec.ip_families = vec!["IPv4".into()];
    }
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = Some("SingleStack".into());
    }
}

static GLOBAL: OnceLock<ServiceAllocator> = OnceLock::new();

/// Sets the ClusterIP block used by [`allocate`]; call once at start, before the API runs.
/// Later calls are ignored (the first block stays, as stored ClusterIPs come from it).
pub fn configure(cidr: Ipv4Cidr) {
    if GLOBAL.set(ServiceAllocator::new(cidr)).is_err() {
        log::debug!("service allocator already configured; keeping the first ClusterIP range");
    }
}

fn global() -> &'static ServiceAllocator {
    GLOBAL.get_or_init(|| {
        ServiceAllocator::new(Ipv4Cidr::new(Ipv4Addr::new(10, 96, 0, 0), 16).expect("the default range is valid"))
    })
}

/// Admission hook for a Service create: fills clusterIP(s), ipFamilies and node ports.
pub fn allocate(store: &Store, svc: &mut Service) -> Result<(), FieldError> {
    global().allocate(store, svc)
}

/// Admission hook for a Service update: carries unset allocations over from `old`.
pub fn allocate_update(store: &Store, old: &Service, new: &mut Service) -> Result<(), FieldError> {
    global().allocate_update(store, old, new)
}

/// Drops the hold on a Service's picks after its create failed.
pub fn release(svc: &Service) {
    global().release(svc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::object::Object;

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
        a.allocate(store, &mut s).unwrap();
        store.create(Object::Service(s.clone())).unwrap();
        s
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
        assert_eq!(
            e.to_string(),
            format!("spec.clusterIP: Invalid value: \"{ip1}\": provided IP is already allocated")
        );
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
        a.allocate(&store, &mut h).unwrap();
        assert_eq!(h.spec.cluster_ips, ["None"]);
        let mut ok = service("b", "ClusterIP", &[80]);
        ok.spec.cluster_ip = Some("10.96.7.7".into());
        a.allocate(&store, &mut ok).unwrap();
        assert_eq!(ok.spec.cluster_ip.as_deref(), Some("10.96.7.7"));
    }

    #[test]
    fn a_pick_not_yet_stored_is_not_handed_out_twice() {
        let (_d, store) = store();
        let a = allocator();
        let (mut x, mut y) = (service("x", "NodePort", &[80]), service("y", "NodePort", &[80]));
        a.allocate(&store, &mut x).unwrap();
        a.allocate(&store, &mut y).unwrap();
        assert_ne!(x.spec.cluster_ip, y.spec.cluster_ip);
        assert_ne!(x.spec.ports[0].node_port, y.spec.ports[0].node_port);
        a.release(&x);
        let mut z = service("z", "ClusterIP", &[80]);
        z.spec.cluster_ip = x.spec.cluster_ip.clone();
        a.allocate(&store, &mut z).unwrap();
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
    fn updates_keep_what_the_user_left_unset() {
        let (_d, store) = store();
        let a = allocator();
        let old = create(&store, &a, service("web", "NodePort", &[80]));
        let mut new = service("web", "NodePort", &[80, 81]);
        a.allocate_update(&store, &old, &mut new).unwrap();
        assert_eq!(new.spec.cluster_ip, old.spec.cluster_ip);
        assert_eq!(new.spec.ports[0].node_port, old.spec.ports[0].node_port);
        assert!(new.spec.ports[1].node_port.is_some());
        let mut back = service("web", "ClusterIP", &[80]);
        back.spec.ports[0].node_port = old.spec.ports[0].node_port;
        a.allocate_update(&store, &old, &mut back).unwrap();
        assert_eq!((back.spec.ports[0].node_port, back.spec.cluster_ip), (None, old.spec.cluster_ip));
    }
}
