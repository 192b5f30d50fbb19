//! The node (the kubelet): turns the pods in the store into supervised containers.
//!
//! One supervisor thread watches the pods and hands each to the pod pool (`pool`), which
//! runs the pod's level-triggered state machine (`pod_worker`) on a small set of threads
//! when its timer comes due and on every change to the pod: a hundred pods cost a few
//! threads, not a hundred.

pub mod adoption;
pub mod backoff;
pub mod config_refresh;
pub mod config_volume;
pub mod container_spec;
pub mod env_expansion;
pub mod env_source;
pub mod events;
pub mod host_path;
pub mod layout;
pub mod metrics;
pub mod oom_score;
pub mod pod_worker;
pub mod pool;
pub mod probes;
pub mod sandbox;
pub mod status;
pub mod termination;

use backoff::BackoffPolicy;
use coracle_config::core::Pod;
use coracle_config::object::Resource;
use coracle_config::settings::{DaemonSettings, NetworkMode};
use coracle_net::PodNetwork;
use coracle_runtime::cgroups::Cgroups;
use coracle_runtime::image::ImageStore;
use coracle_runtime::ContainerRuntime;
use coracle_store::events::Recorder;
use coracle_store::{Filter, Store, WatchEnd, WatchEvent};
use coracle_watchdog::{Heartbeat, Watchdog};
use pod_worker::PodWorker;
use pool::{PodPool, PoolLimits};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// pids.max of a pod's cgroup unless the node is told otherwise.
pub const DEFAULT_PIDS_MAX: i64 = 1024;
/// How often the supervisor looks up from the watch when nothing happens.
const WATCH_TICK: Duration = Duration::from_millis(500);

/// What every pod worker shares.
pub struct NodeContext {
    pub store: Store,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub images: Arc<ImageStore>,
    pub cgroups: Cgroups,
    pub network: Arc<dyn PodNetwork>,
    pub recorder: Recorder,
    pub data_dir: PathBuf,
    pub node_name: String,
    pub host_ip: IpAddr,
    pub backoff: BackoffPolicy,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub pids_max: i64,
    /// Called with a pod's uid before any of its containers is signalled to stop.
    pub before_stop: BeforeStop,
    /// `network.mode`: `host` puts every pod on the host network.
    pub network_mode: NetworkMode,
    /// The node's memory in bytes (containers' `oom_score_adj`); None when unreadable.
    pub node_memory: Option<u64>,
    /// Where `Localhost` seccomp profiles live (`runtime.seccomp_profile_root`).
    pub seccomp_profile_root: PathBuf,
}

/// A hook run with a pod's uid before SIGTERM reaches the pod (or its preStop hooks run):
/// main.rs passes the proxy's `withdraw_pod`, keeping the node independent of the proxy.
pub type BeforeStop = Arc<dyn Fn(&str) + Send + Sync>;

/// Node options beyond the daemon settings.
pub struct NodeOptions {
    /// Pod networking; loopback only by default.
    pub network: Arc<dyn PodNetwork>,
    /// pids.max per pod.
    pub pids_max: i64,
    /// Where usage samples go; made by the caller when the API serves them too.
    pub usage: Option<Arc<metrics::PodUsage>>,
    /// Run before a pod is stopped (the proxy's withdrawal); nothing by default.
    pub before_stop: BeforeStop,
    /// systemd's watchdog: the supervisor and the pod pool register heartbeats with it.
    pub watchdog: Option<Watchdog>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            network: Arc::new(coracle_net::LoopbackOnly),
            pids_max: DEFAULT_PIDS_MAX,
            usage: None,
            before_stop: Arc::new(|_: &str| {}),
            watchdog: None,
        }
    }
}

/// The running node.
pub struct Node {
    ctx: Arc<NodeContext>,
    usage: Arc<metrics::PodUsage>,
    stop: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
}

impl Node {
    /// Starts the node with loopback-only pod networking.
    pub fn start(
        store: Store,
        settings: &DaemonSettings,
        runtime: Arc<dyn ContainerRuntime>,
        images: Arc<ImageStore>,
        cgroups: Cgroups,
    ) -> Node {
        Node::start_with(store, settings, runtime, images, cgroups, NodeOptions::default())
    }

    /// Starts the node: cleans up after vanished pods, re-adopts living containers, then
    /// supervises every pod in the store. Pod deletion becomes graceful from here on.
    pub fn start_with(
        store: Store,
        settings: &DaemonSettings,
        runtime: Arc<dyn ContainerRuntime>,
        images: Arc<ImageStore>,
        cgroups: Cgroups,
        options: NodeOptions,
    ) -> Node {
        limit_malloc_arenas();
        store.set_graceful_pod_deletion(true);
        let ctx = Arc::new(NodeContext {
            recorder: Recorder::new(store.clone(), "kubelet", &settings.node_name),
            store,
            runtime,
            images,
            cgroups,
            network: options.network,
            data_dir: settings.data_dir.clone(),
            node_name: settings.node_name.clone(),
            host_ip: coracle_net::service_route::node_address(),
            backoff: BackoffPolicy::from_settings(&settings.backoff),
            log_max_size: settings.logs.max_size_bytes,
            log_max_files: settings.logs.max_files,
            pids_max: options.pids_max,
            before_stop: options.before_stop,
            network_mode: settings.network.mode,
            seccomp_profile_root: settings.runtime.seccomp_profile_root.clone(),
            node_memory: oom_score::node_memory()
                .map_err(|e| log::warn!("node: containers keep the daemon's oom_score_adj: {e}"))
                .ok(),
        });
        let usage = options.usage.unwrap_or_else(|| Arc::new(metrics::PodUsage::new(&settings.node_name)));
        let stop = Arc::new(AtomicBool::new(false));
        let beat_every = options.watchdog.as_ref().map_or(WATCH_TICK, |w| w.beat_every().min(WATCH_TICK));
        let heartbeat = options.watchdog.as_ref().map(|w| w.register("node"));
        let pool = {
            let ctx = ctx.clone();
            let make = move |pod: &Pod, leftovers: pool::Leftovers| PodWorker::new(ctx.clone(), pod, leftovers);
            let limits = PoolLimits { beat_every, ..PoolLimits::default() };
            PodPool::new(Box::new(make), limits, options.watchdog.as_ref().map(|w| w.register("pod-workers")))
        };
        let _config_volumes = config_refresh::spawn(ctx.store.clone(), settings.run_dir.clone(), stop.clone());
        let supervisor = {
            let (ctx, usage, stop, run_dir) = (ctx.clone(), usage.clone(), stop.clone(), settings.run_dir.clone());
            std::thread::Builder::new()
                .name("node".into())
                .spawn(move || Supervisor { ctx, usage, stop, run_dir, pool, heartbeat, tick: beat_every }.run())
                .expect("spawning the node thread")
        };
        Node { ctx, usage, stop, supervisor: Some(supervisor) }
    }

    /// Stops supervising; containers keep running, to be re-adopted by the next start.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
        self.ctx.recorder.flush();
    }

    /// CPU used by the pod over the last sampling interval, in millicores.
    pub fn pod_cpu_millicores(&self, pod_uid: &str) -> Option<u64> {
        self.usage.cpu_millicores(pod_uid)
    }

    /// Memory charged to the pod's cgroup, in bytes.
    pub fn pod_memory_bytes(&self, pod_uid: &str) -> Option<u64> {
        self.usage.memory_bytes(pod_uid)
    }

    /// The pod usage table, shareable with the HPA and the API.
    pub fn usage(&self) -> Arc<metrics::PodUsage> {
        self.usage.clone()
    }
}

struct Supervisor {
    ctx: Arc<NodeContext>,
    usage: Arc<metrics::PodUsage>,
    stop: Arc<AtomicBool>,
    run_dir: PathBuf,
    pool: PodPool<PodWorker>,
    heartbeat: Option<Heartbeat>,
    /// Longest wait on the watch.
    tick: Duration,
}

impl Supervisor {
    fn run(self) {
        let filter = Filter { resource: Some(&Pod::INFO), namespace: None };
        let (pods, rv) = self.ctx.store.list(&filter);
        let pods: Vec<Pod> = pods.iter().filter_map(|o| o.downcast_ref::<Pod>().cloned()).collect();
        let live: HashMap<String, HashSet<String>> = pods
            .iter()
            .map(|p| {
                let names = p.spec.init_containers.iter().chain(&p.spec.containers).map(|c| c.name.clone()).collect();
                (p.metadata.uid.clone(), names)
            })
            .collect();
        let mut adoptable = adoption::survey(&self.ctx, &self.run_dir, &live);
        for pod in pods {
            let leftovers = adoptable.remove(&pod.metadata.uid).unwrap_or_default();
            self.pool.add(pod, leftovers);
        }
        let mut from = Some(rv);
        let mut next_sample = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            self.beat();
            let watcher = match self.ctx.store.watch(filter.clone(), from) {
                Ok(w) => w,
                Err(e) => {
                    log::warn!("node: watching pods: {e}; relisting");
                    self.resync(&filter);
                    from = None;
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            };
            from = None;
            loop {
                self.beat();
                self.pool.tend();
                if self.stop.load(Ordering::Acquire) {
                    break;
                }
                if Instant::now() >= next_sample {
                    let uids = self.pool.uids();
                    self.usage.sample(&self.ctx.cgroups, uids.iter().map(String::as_str));
                    next_sample = Instant::now() + self.usage.period();
                }
                match watcher.next_timeout(self.tick) {
                    Some((_, event)) => self.dispatch(event),
                    None => match watcher.ended() {
                        Some(WatchEnd::ShutDown) => {
                            self.stop.store(true, Ordering::Release);
                            break;
                        }
                        Some(WatchEnd::TooSlow) => {
                            self.resync(&filter);
                            break;
                        }
                        None => {}
                    },
                }
            }
        }
        self.pool.stop();
    }

    fn beat(&self) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }

    fn dispatch(&self, event: WatchEvent) {
        let Some(pod) = event.object().downcast_ref::<Pod>().cloned() else { return };
        match event {
            WatchEvent::Deleted(_) => self.pool.remove(&pod.metadata.uid.clone(), pod),
            _ => self.pool.update(pod),
        }
    }

    /// After a lost watch: every pod gets its current object; vanished pods are removed.
    fn resync(&self, filter: &Filter) {
        let (pods, _) = self.ctx.store.list(filter);
        let pods: Vec<Pod> = pods.iter().filter_map(|o| o.downcast_ref::<Pod>().cloned()).collect();
        let uids: HashSet<&str> = pods.iter().map(|p| p.metadata.uid.as_str()).collect();
        for uid in self.pool.uids() {
            if !uids.contains(uid.as_str()) {
                let mut gone = Pod::default();
                gone.metadata.uid = uid.clone();
                self.pool.remove(&uid, gone);
            }
        }
        for pod in pods {
            self.pool.update(pod);
        }
    }
}

/// glibc gives every thread that allocates an arena of its own (up to 8 per core), each
/// keeping its freed pages: with pool, probe and API threads that is most of the daemon's
/// heap. Two arenas serve threads that mostly sleep; set before the first worker starts.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes a tunable of glibc's allocator; M_ARENA_MAX takes any
    // positive count and is safe to set while other threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
