//! ClusterIP and NodePort allocation, done in the create (and update) call as Kubernetes
//! does. The allocations are the stored Services themselves: every pick scans the store, so
//! nothing extra is persisted and a restart loses nothing. Between a pick and the store's
//! write another request could pick the same value, so each pick is held in memory by a
//! [`Reservation`] until that write is settled: committed (the stored Service holds the
//! values from then on) or dropped (the values go back).
//!
//! One allocator per daemon, built from the settings' service CIDR in `main` and handed to
//! every write path (the API's handlers, the manifests folder).

mod reservation;
#[cfg(test)]
mod tests;

pub use reservation::Reservation;

use crate::cidr::Ipv4Cidr;
use coracle_config::core::{Service, ServicePort};
use coracle_config::validation::{FieldError, Path, NODE_PORT_RANGE};
use coracle_store::Store;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

/// The node ports a Service may claim unless the settings say otherwise (Kubernetes'
/// default range).
pub const NODE_PORTS: std::ops::RangeInclusive<i32> = NODE_PORT_RANGE;

/// Picks ClusterIPs from one block and node ports from one range (`network.node_port_range`).
pub struct ServiceAllocator {
    cidr: Ipv4Cidr,
    node_ports: std::ops::RangeInclusive<i32>,
    held: Mutex<Held>,
}

/// What live reservations hold, and where the next searches start.
struct Held {
    ips: HashSet<Ipv4Addr>,
    ports: HashSet<i32>,
    cursors: Cursors,
}

/// Where the next ClusterIP and node port searches start, so a value freed by a deleted
/// Service is not handed out again at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursors {
    /// An offset into the usable part of the block (0 is its third address).
    ip: u64,
    port: i32,
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

/// The values one admission picked that no one held before it.
#[derive(Default)]
struct Picks {
    ip: Option<Ipv4Addr>,
    ports: Vec<i32>,
}

impl ServiceAllocator {
    /// An allocator handing out ClusterIPs from `cidr` (e.g. `10.96.0.0/16`).
    pub fn new(cidr: Ipv4Cidr) -> ServiceAllocator {
        let cursors = Cursors { ip: 0, port: *NODE_PORTS.start() };
        let held = Mutex::new(Held { ips: HashSet::new(), ports: HashSet::new(), cursors });
        ServiceAllocator { cidr, node_ports: NODE_PORTS, held }
    }

    /// The allocator handing out node ports from `range` instead (checked by the settings:
    /// within 1–65535, not empty).
    pub fn with_node_ports(mut self, range: std::ops::RangeInclusive<i32>) -> ServiceAllocator {
        self.lock().cursors.port = *range.start();
        self.node_ports = range;
        self
    }

    /// The node port range.
    pub fn node_ports(&self) -> std::ops::RangeInclusive<i32> {
        self.node_ports.clone()
    }

    /// The ClusterIP block.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.cidr
    }

    /// A reservation holding nothing, for objects that get no allocations.
    pub fn nothing(&self) -> Reservation<'_> {
        Reservation::new(self, Picks::default(), None)
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fills a new Service's clusterIP, clusterIPs, ipFamilies, ipFamilyPolicy and node
    /// ports, honouring requested values and refusing ones that are taken or out of range.
    /// The values are held until the returned reservation is committed or dropped.
    pub fn allocate(&self, store: &Store, svc: &mut Service) -> Result<Reservation<'_>, FieldError> {
        self.reserve(store, svc, None)
    }

    /// Prepares a replacement of `old`: what the user left unset (clusterIP, node ports
    /// of ports still present) is carried over, then anything newly needed is allocated
    /// and node ports a type change no longer allows are dropped. Only the new values are
    /// held: `old`'s stay with the stored Service.
    pub fn allocate_update(
        &self,
        store: &Store,
        old: &Service,
        new: &mut Service,
    ) -> Result<Reservation<'_>, FieldError> {
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
        self.reserve(store, new, Some(old))
    }

    /// Picks for `svc` (a replacement of `old` when given) and holds the new picks.
    fn reserve(&self, store: &Store, svc: &mut Service, old: Option<&Service>) -> Result<Reservation<'_>, FieldError> {
        let mut held = self.lock();
        let before = held.cursors;
        let taken = taken(store, (&svc.metadata.namespace, &svc.metadata.name));
        let picked = self.cluster_ip(&mut held, &taken, svc, old).and_then(|ip| {
            let ports = node_ports(&mut held, &taken, svc, old, &self.node_ports)?;
            Ok(Picks { ip, ports })
        });
        let picks = match picked {
            Ok(picks) => picks,
            Err(e) => {
                // Nothing is held, so nothing was handed out: the search starts where it did.
                held.cursors = before;
                return Err(e);
            }
        };
        held.ips.extend(picks.ip);
        held.ports.extend(picks.ports.iter().copied());
        let moved = (held.cursors != before).then_some((before, held.cursors));
        drop(held);
        Ok(Reservation::new(self, picks, moved))
    }

    /// Gives back what a reservation held; `rewind`: it was never stored, so when no pick
    /// came after it the searches start where it started and its values come first again.
    fn release(&self, picks: &Picks, rewind: Option<(Cursors, Cursors)>) {
        let mut held = self.lock();
        if let Some(ip) = picks.ip {
            held.ips.remove(&ip);
        }
        for port in &picks.ports {
            held.ports.remove(port);
        }
        if let Some((before, after)) = rewind {
            if held.cursors == after {
                held.cursors = before;
            }
        }
    }

    /// The ClusterIP for `svc`, filled into its spec; returns it when it is a new pick to
    /// hold (not `old`'s, not headless, not an ExternalName).
    fn cluster_ip(
        &self,
        held: &mut Held,
        taken: &Taken,
        svc: &mut Service,
        old: Option<&Service>,
    ) -> Result<Option<Ipv4Addr>, FieldError> {
        let spec = &mut svc.spec;
        if spec.type_.as_deref() == Some("ExternalName") {
            return Ok(None);
        }
        let path = Path::new("spec").child("clusterIP");
        let requested = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
        let ip = match requested.as_deref() {
            Some("None") => {
                spec.cluster_ips = vec!["None".into()];
                set_families(spec);
                return Ok(None);
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
                let kept = old.is_some_and(|o| o.spec.cluster_ip.as_deref() == Some(text));
                if !kept && (taken.ips.contains_key(&ip) || held.ips.contains(&ip)) {
                    return Err(FieldError::invalid(&path, quote(text), "provided IP is already allocated"));
                }
                set_ip(spec, ip);
                return Ok((!kept).then_some(ip));
            }
            None => self.free_ip(held, taken).ok_or_else(|| {
                FieldError::invalid(&path, quote(""), &format!("no ClusterIP left in range {}", self.cidr))
            })?,
        };
        set_ip(spec, ip);
        Ok(Some(ip))
    }

    /// Not the network address, the broadcast address or `.1` (kept for a gateway or an
    /// API service, as Kubernetes keeps the first address for `kubernetes`).
    fn usable(&self, ip: Ipv4Addr) -> bool {
        self.cidr.offset_of(ip).is_some_and(|o| o >= 2 && o + 1 < self.cidr.size())
    }

    fn free_ip(&self, held: &mut Held, taken: &Taken) -> Option<Ipv4Addr> {
        let span = self.cidr.size().saturating_sub(3);
        (0..span).find_map(|i| {
            let at = (held.cursors.ip + i) % span;
            let ip = self.cidr.nth(2 + at)?;
            let free = !taken.ips.contains_key(&ip) && !held.ips.contains(&ip);
            free.then(|| {
                held.cursors.ip = (at + 1) % span;
                ip
            })
        })
    }
}

/// Fills `svc`'s node ports where it needs them; returns the new picks to hold (requested
/// or chosen, not those `old` already has).
fn node_ports(
    held: &mut Held,
    taken: &Taken,
    svc: &mut Service,
    old: Option<&Service>,
    range: &std::ops::RangeInclusive<i32>,
) -> Result<Vec<i32>, FieldError> {
    let (first, last) = (*range.start(), *range.end());
    if !wants_node_ports(svc) {
        return Ok(Vec::new());
    }
    let kept = |np: i32| old.is_some_and(|o| o.spec.ports.iter().any(|p| p.node_port == Some(np)));
    // A port number serves TCP and UDP of the same service (e.g. DNS on 53).
    let mut chosen: HashSet<i32> = HashSet::new();
    for (i, p) in svc.spec.ports.iter().enumerate() {
        let Some(np) = p.node_port.filter(|n| *n != 0) else { continue };
        if !range.contains(&np) {
            return Err(FieldError::invalid(
                &port_path(i),
                np.to_string(),
                &format!("provided port is not in the valid range. The range of valid ports is {first}-{last}"),
            ));
        }
        if let Some(owner) = taken.ports.get(&np) {
            return Err(FieldError::invalid(
                &port_path(i),
                np.to_string(),
                &format!("provided port is already allocated (to service {owner})"),
            ));
        }
        if !kept(np) && held.ports.contains(&np) {
            return Err(FieldError::invalid(&port_path(i), np.to_string(), "provided port is already allocated"));
        }
        chosen.insert(np);
    }
    let span = last - first + 1;
    for i in 0..svc.spec.ports.len() {
        if svc.spec.ports[i].node_port.unwrap_or(0) != 0 {
            continue;
        }
        let twin = svc.spec.ports[..i].iter().find(|o| o.port == svc.spec.ports[i].port).and_then(|o| o.node_port);
        let pick = twin.or_else(|| {
            (0..span).find_map(|k| {
                let n = first + (held.cursors.port - first + k).rem_euclid(span);
                let free = !taken.ports.contains_key(&n) && !held.ports.contains(&n) && !chosen.contains(&n);
                free.then_some(n)
            })
        });
        let Some(n) = pick else {
            return Err(FieldError::invalid(&port_path(i), "0", &format!("no node port left in range {first}-{last}")));
        };
        if twin.is_none() {
            held.cursors.port = if n == last { first } else { n + 1 };
        }
        chosen.insert(n);
        svc.spec.ports[i].node_port = Some(n);
    }
    Ok(chosen.into_iter().filter(|n| !kept(*n)).collect())
}

fn same_port(a: &ServicePort, b: &ServicePort) -> bool {
    a.port == b.port && a.protocol.as_deref().unwrap_or("TCP") == b.protocol.as_deref().unwrap_or("TCP")
}

fn set_ip(spec: &mut coracle_config::core::ServiceSpec, ip: Ipv4Addr) {
    spec.cluster_ip = Some(ip.to_string());
    spec.cluster_ips = vec![ip.to_string()];
    set_families(spec);
}

fn set_families(spec: &mut coracle_config::core::ServiceSpec) {
    if spec.ip_families.is_empty() {
        spec.ip_families = vec!["IPv4".into()];
    }
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = Some("SingleStack".into());
    }
}
