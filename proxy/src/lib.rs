//! The Service proxy, in the spirit of kube-proxy's old userspace mode: a listener per
//! service port address (ClusterIP:port, 0.0.0.0:nodePort, and for LoadBalancer services
//! nodeIP:port), round-robin over Ready endpoints, falling through to the next endpoint
//! when a connect fails.
//!
//! Threads: one worker per CPU (at most [`MAX_WORKERS`]), each a single-threaded executor
//! over its own edge-triggered epoll ([`worker`], [`reactor`]). A TCP address has a listener
//! per worker (`SO_REUSEPORT`), and a connection lives on one worker from accept to close
//! (the accepting one, or a lighter one when the kernel's spread is uneven), so a request
//! costs its reads and writes and no cross-thread wake-up; a UDP address is served by one
//! worker. A sync thread keeps a view of Services, Endpoints and Pods from a store watch
//! ([`view`]) and reconciles listeners and endpoint sets from it after each burst of changes
//! (each set an `Arc` swapped whole, so the hot path takes no lock). An endpoint leaves its set
//! as soon as its pod is seen terminating or unready (the plan reads pods directly, not
//! only Endpoints), or at once when the node calls [`ProxyHandle::withdraw_pod`] before
//! sending SIGTERM.
//! Open connections are never cut by a change: they drain until they end or the pod dies
//! at the end of its grace period.
//!
//! ClusterIPs are addresses of the host because the service CIDR is a local route (see
//! `net`); loopback-only pods get each ClusterIP listener a second time inside their own
//! namespace ([`netns_listen`]), and their upstream sockets are made there too, both by
//! the helpers of [`netns_pool`] so no worker ever leaves the host's namespace or blocks.
//! LoadBalancer services are also served on the node's address; their
//! `status.loadBalancer` is the service controller's to write (the proxy only reads).

pub mod endpoint_set;
pub mod netns_listen;
pub mod netns_pool;
pub mod plan;
pub mod pump;
pub mod reactor;
pub mod tcp;
pub mod udp;
pub mod upstream;
pub mod view;
pub mod worker;

use coracle_config::core::{Endpoints, Pod, Service};
use coracle_config::object::Resource;
use coracle_net::SandboxPaths;
use coracle_store::{Store, WatchEnd, WatchFilter};
use endpoint_set::PortState;
use netns_pool::NetnsPool;
use plan::{PlanContext, PortId, PortPlan, Protocol};
use reactor::Io;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use view::View;
use worker::{RemoteTask, Workers};

pub use tcp::TcpLimits;

/// The most proxy workers; one per CPU below that. A board has few cores, and the relays
/// are syscall-bound, so more threads than cores only add switches.
pub const MAX_WORKERS: usize = 4;

/// How many workers the proxy runs on this machine.
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS)
}

/// A pass even without events: retries listeners that could not bind.
const RESYNC: Duration = Duration::from_secs(5);

/// What the proxy needs to know about the node.
pub struct ProxyConfig {
    /// The node's primary address (LoadBalancer listeners).
    pub node_ip: IpAddr,
    /// Finds loopback-only pods' network namespaces.
    pub paths: Arc<dyn SandboxPaths>,
    pub limits: TcpLimits,
}

struct Listener {
    port: PortId,
    /// The accept loops (or UDP server); dropping them closes the sockets.
    _tasks: Vec<RemoteTask>,
}

/// Live proxy state, shared by the sync thread and [`ProxyHandle`].
struct Shared {
    ports: Mutex<HashMap<PortId, Arc<PortState>>>,
    /// Pods the node withdrew ahead of their deletion showing in the store.
    withdrawn: Mutex<HashSet<String>>,
}

/// A running proxy.
pub struct ProxyHandle {
    shared: Arc<Shared>,
    workers: Arc<Workers>,
    netns: Arc<NetnsPool>,
    stop: Arc<AtomicBool>,
    sync: JoinHandle<()>,
}

impl ProxyHandle {
    /// Takes a pod out of every endpoint set now; the node calls it before SIGTERM so no
    /// new connection reaches a stopping pod. Returns whether the pod was serving anything.
    pub fn withdraw_pod(&self, pod_uid: &str) -> bool {
        self.shared.withdrawn.lock().unwrap_or_else(|p| p.into_inner()).insert(pod_uid.to_string());
        let ports = self.shared.ports.lock().unwrap_or_else(|p| p.into_inner());
        let mut any = false;
        for state in ports.values() {
            any |= state.withdraw_pod(pod_uid);
        }
        any
    }

    /// The helpers that make sockets inside pods' network namespaces, for other users of
    /// such sockets (the API's port-forward).
    pub fn netns(&self) -> Arc<NetnsPool> {
        self.netns.clone()
    }

    /// Stops listening and ends open connections with the workers; the sync thread ends
    /// with the store (or within one resync period).
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Release);
        self.workers.shutdown();
        let _ = self.sync.join();
    }
}

/// Starts the workers, the netns helpers and the sync thread; they end when the store
/// shuts down (or at [`ProxyHandle::shutdown`]). Panics only if the system refuses a thread,
/// an epoll instance, an eventfd or a look at this thread's network namespace, none of
/// which a daemon can run without.
pub fn start(store: Store, config: ProxyConfig) -> ProxyHandle {
    let workers = Arc::new(Workers::start(worker_count(), "proxy").expect("starting the proxy workers"));
    let netns = Arc::new(NetnsPool::start(netns_pool::HELPERS).expect("starting the proxy's netns helpers"));
    let shared = Arc::new(Shared { ports: Mutex::new(HashMap::new()), withdrawn: Mutex::new(HashSet::new()) });
    let stop = Arc::new(AtomicBool::new(false));
    let (sync_shared, sync_stop, sync_workers, sync_netns) =
        (shared.clone(), stop.clone(), workers.clone(), netns.clone());
    let sync = std::thread::Builder::new().name("proxy-sync".into()).spawn(move || {
        let mut sync = Sync {
            store,
            config,
            workers: sync_workers,
            netns: sync_netns,
            shared: sync_shared,
            stop: sync_stop,
            view: View::default(),
            listeners: HashMap::new(),
        };
        sync.run();
        drop(sync.listeners);
        sync.workers.shutdown();
    });
    let sync = sync.expect("spawning the proxy-sync thread");
    ProxyHandle { shared, workers, netns, stop, sync }
}

/// Where a listener is: the pod namespace (None: the host's), address and protocol.
type ListenKey = (Option<std::path::PathBuf>, SocketAddr, Protocol);

struct Sync {
    store: Store,
    config: ProxyConfig,
    workers: Arc<Workers>,
    netns: Arc<NetnsPool>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// The Services, Endpoints and Pods as the watch has brought them.
    view: View,
    listeners: HashMap<ListenKey, Listener>,
}

impl Sync {
    fn run(&mut self) {
        log::info!("proxy: started (node address {})", self.config.node_ip);
        while !self.store.is_shut_down() && !self.stop.load(Ordering::Acquire) {
            // From "any version": an ADDED for every object first, so the view starts whole.
            let kinds = WatchFilter::kinds(&[&Service::INFO, &Endpoints::INFO, &Pod::INFO]);
            let watcher = match self.store.watch(kinds, Some(0)) {
                Ok(w) => w,
                Err(e) => {
                    log::warn!("proxy: cannot watch the store: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            self.view = View::default();
            while let Some((_, event)) = watcher.next_timeout(Duration::ZERO) {
                self.view.apply(&event);
            }
            self.pass();
            loop {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                let changed = match watcher.next_timeout(RESYNC) {
                    // Take the whole burst, then one pass.
                    Some((_, event)) => {
                        let mut changed = self.view.apply(&event);
                        while let Some((_, event)) = watcher.next_timeout(Duration::ZERO) {
                            changed |= self.view.apply(&event);
                        }
                        changed
                    }
                    None => match watcher.ended() {
                        Some(WatchEnd::ShutDown) => return,
                        // Cut off: start over from a whole view.
                        Some(WatchEnd::TooSlow) => break,
                        // Quiet: a pass all the same, retrying listeners that could not bind.
                        None => true,
                    },
                };
                if changed {
                    self.pass();
                }
            }
        }
    }

    /// One reconcile: endpoint sets first (so a listener never starts on stale backends),
    /// then listeners.
    fn pass(&mut self) {
        let withdrawn = {
            let mut w = self.shared.withdrawn.lock().unwrap_or_else(|p| p.into_inner());
            // Forget withdrawn pods once gone from the store.
            let alive: HashSet<&str> = self.view.pods().map(|p| p.metadata.uid.as_str()).collect();
            w.retain(|uid| alive.contains(uid.as_str()));
            w.clone()
        };
        let ctx =
            PlanContext { node_ip: self.config.node_ip, paths: self.config.paths.as_ref(), withdrawn: &withdrawn };
        let desired = plan::plan(self.view.services(), self.view.endpoints(), self.view.pods(), &ctx);
        self.apply_endpoints(&desired);
        self.apply_listeners(&desired);
    }

    fn apply_endpoints(&self, desired: &BTreeMap<PortId, PortPlan>) {
        let mut ports = self.shared.ports.lock().unwrap_or_else(|p| p.into_inner());
        ports.retain(|id, _| desired.contains_key(id));
        for (id, p) in desired {
            let state = ports.entry(id.clone()).or_insert_with(|| Arc::new(PortState::new(id.to_string())));
            state.set_affinity(p.affinity);
            if state.replace(p.endpoints.clone()) {
                log::debug!("proxy {id}: {} endpoints", p.endpoints.backends.len());
            }
        }
    }

    fn apply_listeners(&mut self, desired: &BTreeMap<PortId, PortPlan>) {
        let want: HashMap<ListenKey, &PortId> = desired
            .iter()
            .flat_map(|(id, p)| {
                let host = p.listen.iter().map(move |a| ((None, *a, id.protocol), id));
                let pods = p.pod_listen.iter().map(move |(ns, a)| ((Some(ns.clone()), *a, id.protocol), id));
                host.chain(pods)
            })
            .collect();
        // A listener whose address now belongs to another port is restarted for it.
        self.listeners.retain(|key, l| want.get(key).is_some_and(|id| **id == l.port));
        let ports = self.shared.ports.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (key, id) in want {
            if self.listeners.contains_key(&key) {
                continue;
            }
            let Some(state) = ports.get(id).cloned() else { continue };
            let place = key.0.as_ref().map(|ns| format!(" in {}", ns.display())).unwrap_or_default();
            match self.listen(&key, state) {
                Ok(tasks) => {
                    log::info!("proxy {id}: listening on {}{place} ({:?})", key.1, key.2);
                    self.listeners.insert(key, Listener { port: id.clone(), _tasks: tasks });
                }
                Err(e) => log::warn!("proxy {id}: cannot listen on {}{place}: {e}; retrying", key.1),
            }
        }
    }

    /// Binds `key` and starts serving it: a TCP address on every worker, a UDP address on
    /// one (picked by the address, so ports spread over the workers).
    fn listen(&self, (netns, addr, proto): &ListenKey, state: Arc<PortState>) -> std::io::Result<Vec<RemoteTask>> {
        let shards = match proto {
            Protocol::Tcp => self.workers.len(),
            Protocol::Udp => 1,
        };
        let bound = match netns {
            Some(ns) => netns_listen::bind_in(&self.netns, ns, *addr, *proto, shards)?,
            None => netns_listen::bind(*addr, *proto, shards)?,
        };
        let limits = self.config.limits;
        let first = usize::from(addr.port());
        Ok(bound
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let (state, netns) = (state.clone(), self.netns.clone());
                self.workers.spawn_on(first + i, move || async move {
                    let failed = match socket {
                        netns_listen::Bound::Tcp(l) => match Io::new(l) {
                            Ok(l) => return tcp::accept_loop(l, state, limits, netns).await,
                            Err(e) => e,
                        },
                        netns_listen::Bound::Udp(s) => match Io::new(s) {
                            Ok(s) => return udp::serve(s, state, netns).await,
                            Err(e) => e,
                        },
                    };
                    log::warn!("proxy {}: cannot serve a listener: {failed}", state.name);
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{
        EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, PodStatus, Service, ServicePort,
    };
    use coracle_config::meta::{Condition, ObjectReference};
    use coracle_config::object::Object;
    use std::io::Read;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn ready_pod(uid_hint: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = uid_hint.into();
        p.metadata.namespace = "default".into();
        p.status = Some(PodStatus {
            pod_ip: Some("127.0.0.2".into()),
            conditions: vec![Condition { type_: "Ready".into(), status: "True".into(), ..Default::default() }],
            ..Default::default()
        });
        p
    }

    /// End to end through the store: a NodePort service on a loopback port whose Endpoints
    /// name a real backend; the proxy answers through it, then stops when the pod is
    /// withdrawn.
    #[test]
    fn serves_a_stored_service_and_withdraws_a_pod_at_once() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping serves_a_stored_service_and_withdraws_a_pod_at_once: setns needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let backend = tcp::tests::named_backend("hello");
        let pod = store.create(Object::Pod(ready_pod("p"))).unwrap();
        let uid = pod.metadata().uid.clone();
        let node_port = free_port();
        let mut svc = Service::default();
        svc.metadata.name = "web".into();
        svc.metadata.namespace = "default".into();
        svc.spec.type_ = Some("NodePort".into());
        svc.spec.ports = vec![ServicePort { port: 80, node_port: Some(node_port as i32), ..Default::default() }];
        store.create(Object::Service(svc)).unwrap();
        let mut ep = Endpoints::default();
        ep.metadata.name = "web".into();
        ep.metadata.namespace = "default".into();
        ep.subsets = vec![EndpointSubset {
            addresses: vec![EndpointAddress {
                ip: "127.0.0.1".into(),
                target_ref: Some(ObjectReference { kind: "Pod".into(), uid: uid.clone(), ..Default::default() }),
                ..Default::default()
            }],
            ports: vec![EndpointPort {
                port: backend.port() as i32,
                protocol: Some("TCP".into()),
                ..Default::default()
            }],
            ..Default::default()
        }];
        store.create(Object::Endpoints(ep)).unwrap();
        // 127.0.0.1 is a loopback-only pod address: its namespace is found through the paths,
        // here the host's own.
        struct HostNs;
        impl SandboxPaths for HostNs {
            fn hosts_path(&self, _pod: &Pod) -> Option<std::path::PathBuf> {
                None
            }
            fn netns_path(&self, _uid: &str) -> Option<std::path::PathBuf> {
                Some("/proc/self/ns/net".into())
            }
        }
        let handle = start(
            store.clone(),
            ProxyConfig {
                node_ip: "127.0.0.1".parse().unwrap(),
                paths: Arc::new(HostNs),
                limits: TcpLimits::default(),
            },
        );
        let ask = || -> Option<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", node_port)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            Some(out)
        };
        let mut answer = None;
        for _ in 0..100 {
            answer = ask().filter(|a| !a.is_empty());
            if answer.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(answer.as_deref(), Some("hello"));
        assert!(handle.withdraw_pod(&uid));
        assert_eq!(ask().as_deref(), Some(""), "a withdrawn pod gets no new connection");
        store.shutdown().unwrap();
        handle.shutdown();
    }
}
