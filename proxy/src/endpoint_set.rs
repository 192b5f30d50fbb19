//! One service port's live state: the endpoint set (an `Arc` swapped whole on change, read
//! without a lock), the round-robin cursor, ClientIP affinity and the connection count.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One place traffic may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The pod's namespace to connect from, for loopback-only pods; None: the host's.
    pub netns: Option<PathBuf>,
    /// The pod behind the address (empty when Endpoints name none).
    pub pod_uid: String,
}

/// An immutable snapshot of a service port's Ready endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSet {
    pub backends: Vec<Backend>,
}

/// A service port as the proxy serves it.
pub struct PortState {
    /// Log name, `ns/name:port/proto`.
    pub name: String,
    set: ArcSwap<EndpointSet>,
    next: AtomicUsize,
    affinity: Mutex<Affinity>,
    active: AtomicUsize,
}

#[derive(Default)]
struct Affinity {
    timeout: Option<Duration>,
    clients: HashMap<IpAddr, (SocketAddr, Instant)>,
}

/// Holds one slot of a port's connection count; released on drop.
pub struct ConnectionSlot(Arc<PortState>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PortState {
    /// A port with no endpoints yet.
    pub fn new(name: String) -> PortState {
        PortState {
            name,
            set: ArcSwap::from_pointee(EndpointSet::default()),
            next: AtomicUsize::new(0),
            affinity: Mutex::new(Affinity::default()),
            active: AtomicUsize::new(0),
        }
    }

    /// The current snapshot.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.set.load_full()
    }

    /// Replaces the endpoint set atomically; connections already open keep running (drain).
    /// Returns whether anything changed.
    pub fn replace(&self, set: EndpointSet) -> bool {
        if *self.set.load_full() == set {
            return false;
        }
        self.set.store(Arc::new(set));
        true
    }

    /// Drops every backend of `pod_uid` from the set at once.
    pub fn withdraw_pod(&self, pod_uid: &str) -> bool {
        let current = self.set.load_full();
        if !current.backends.iter().any(|b| b.pod_uid == pod_uid) {
            return false;
        }
        let backends = current.backends.iter().filter(|b| b.pod_uid != pod_uid).cloned().collect();
        self.set.store(Arc::new(EndpointSet { backends }));
        true
    }

    /// Sets ClientIP affinity (None: round-robin only).
    pub fn set_affinity(&self, timeout: Option<Duration>) {
        let mut a = self.affinity.lock().unwrap_or_else(|p| p.into_inner());
        if a.timeout != timeout {
            a.timeout = timeout;
            a.clients.clear();
        }
    }

    /// Takes a connection slot unless `limit` are open.
    pub fn try_slot(self: &Arc<Self>, limit: usize) -> Option<ConnectionSlot> {
        let prev = self.active.fetch_add(1, Ordering::AcqRel);
        let slot = ConnectionSlot(self.clone());
        (prev < limit).then_some(slot)
    }

    /// How many connections are open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// The snapshot and the order to try its backends for `client`: the client's sticky
    /// backend first (ClientIP affinity), then round-robin from the cursor, each once.
    pub fn candidates(&self, client: IpAddr) -> (Arc<EndpointSet>, Vec<usize>) {
        let set = self.set.load_full();
        let n = set.backends.len();
        if n == 0 {
            return (set, Vec::new());
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        let a = self.affinity.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(timeout), Some((addr, at))) = (a.timeout, a.clients.get(&client)) {
            if at.elapsed() < timeout {
                if let Some(pos) = order.iter().position(|&i| set.backends[i].addr == *addr) {
                    let sticky = order.remove(pos);
                    order.insert(0, sticky);
                }
            }
        }
        (set, order)
    }

    /// Records where `client` was sent, for affinity.
    pub fn remember(&self, client: IpAddr, backend: SocketAddr) {
        let mut a = self.affinity.lock().unwrap_or_else(|p| p.into_inner());
        let Some(timeout) = a.timeout else { return };
        let now = Instant::now();
        if a.clients.len() > 4096 {
            a.clients.retain(|_, (_, at)| now.duration_since(*at) < timeout);
        }
        a.clients.insert(client, (backend, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ports: &[u16]) -> EndpointSet {
        EndpointSet {
            backends: ports
                .iter()
                .map(|p| Backend {
                    addr: SocketAddr::from(([10, 88, 0, 1], *p)),
                    netns: None,
                    pod_uid: format!("u{p}"),
                })
                .collect(),
        }
    }

    #[test]
    fn round_robin_rotates_and_tries_every_backend_once() {
        let s = PortState::new("t".into());
        s.replace(set(&[1, 2, 3]));
        let client: IpAddr = [1, 2, 3, 4].into();
        let firsts: Vec<usize> = (0..4).map(|_| s.candidates(client).1[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0]);
        let mut all = s.candidates(client).1;
        all.sort();
        assert_eq!(all, [0, 1, 2]);
    }

    #[test]
    fn affinity_puts_the_remembered_backend_first_while_it_exists() {
        let s = PortState::new("t".into());
        s.replace(set(&[1, 2, 3]));
        s.set_affinity(Some(Duration::from_secs(10800)));
        let client: IpAddr = [1, 2, 3, 4].into();
        s.remember(client, SocketAddr::from(([10, 88, 0, 1], 2)));
        for _ in 0..5 {
            let (set, order) = s.candidates(client);
            assert_eq!(set.backends[order[0]].addr.port(), 2);
        }
        assert!(s.withdraw_pod("u2"));
        let (set, order) = s.candidates(client);
        assert!(order.iter().all(|&i| set.backends[i].addr.port() != 2));
    }

    #[test]
    fn a_swap_leaves_held_snapshots_alone_and_slots_are_bounded() {
        let s = Arc::new(PortState::new("t".into()));
        s.replace(set(&[1]));
        let held = s.endpoints();
        assert!(s.replace(set(&[2])));
        assert!(!s.replace(set(&[2])));
        assert_eq!(held.backends[0].addr.port(), 1);
        let a = s.try_slot(1).unwrap();
        assert!(s.try_slot(1).is_none());
        drop(a);
        assert_eq!(s.active(), 0);
        assert!(s.try_slot(1).is_some());
    }
}
