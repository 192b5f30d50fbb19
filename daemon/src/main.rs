//! coracled: open the store, apply and follow the manifests directory, serve the API, and
//! shut down cleanly on SIGTERM/SIGINT.

use clap::Parser;
use coracle_config::core::Namespace;
use coracle_config::object::{Object, Resource};
use coracle_config::settings::DaemonSettings;
use coracled::api::{ApiConfig, ApiContext, ApiServer};
use coracled::cli::Cli;
use coracled::controllers::ControllerContext;
use coracled::manifests::ManifestFollower;
use coracled::services::allocator::ServiceAllocator;
use coracled::store::{Store, StoreError};
use nix::sys::signal::{SigSet, Signal};
use startup::StartupError;
use std::time::Duration;

mod startup;

/// How often the manifests directory is looked at.
const MANIFESTS_POLL: Duration = Duration::from_secs(1);

fn main() {
    // Every role of this binary (daemon, shim, scope keeper, ctl) ends on a panic.
    coracled::panic_policy::install();
    coracled::malloc_arenas::limit();
    if let Some(code) = coracled::runtime::shim::dispatch() {
        std::process::exit(code)
    }
    if let Some(code) = coracled::cgroups::scope_keeper::dispatch() {
        std::process::exit(code)
    }
    if let Some(code) = coracled::multicall::dispatch() {
        std::process::exit(code)
    }
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run(&cli) {
        log::error!("{e}");
        std::process::exit(1);
    }
}

/// Settings from the config file, then `CORACLE_*` variables, then flags.
fn settings(cli: &Cli) -> Result<DaemonSettings, StartupError> {
    let mut settings = DaemonSettings::load(cli.config.as_deref()).map_err(StartupError::layer)?;
    settings.apply_env(std::env::vars()).map_err(StartupError::layer)?;
    if let Some(v) = &cli.data_dir {
        settings.data_dir = v.clone();
    }
    if let Some(v) = &cli.socket {
        settings.socket = v.clone();
    }
    if let Some(v) = &cli.manifests_dir {
        settings.manifests_dir = v.clone();
    }
    if let Some(v) = &cli.listen {
        settings.listen = Some(v.clone());
    }
    if let Some(v) = &cli.token_file {
        settings.token_file = Some(v.clone());
    }
    Ok(settings)
}

fn read_token(settings: &DaemonSettings) -> Result<Option<String>, StartupError> {
    let Some(path) = &settings.token_file else { return Ok(None) };
    let text =
        std::fs::read_to_string(path).map_err(StartupError::step(format!("reading token file {}", path.display())))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(StartupError::Invalid(format!("token file {} is empty", path.display())));
    }
    Ok(Some(token))
}

/// systemd notifications are best effort: a failure is logged, never fatal.
fn tell_systemd(sent: std::io::Result<bool>) {
    if let Err(e) = sent {
        log::warn!("systemd notification: {e}");
    }
}

/// `default` always exists, as in Kubernetes.
/// A Warning event on each object the store repaired as it loaded (a number stored by an
/// older daemon beyond what the daemon now bounds), saying what was changed.
fn record_load_repairs(store: &Store, node_name: &str) {
    let repairs = store.take_load_repairs();
    if repairs.is_empty() {
        return;
    }
    let recorder = coracled::events::Recorder::new(store.clone(), "coracled", node_name);
    for (object, what) in repairs {
        let message = format!("Stored with values beyond their bounds; repaired at load: {what}");
        recorder.record(&object, coracled::events::EventType::Warning, "RepairedAtLoad", message);
    }
}

fn ensure_default_namespace(store: &Store) -> Result<(), StartupError> {
    if store.get(&Namespace::INFO, "", "default").is_some() {
        return Ok(());
    }
    let mut ns = Namespace::default();
    ns.metadata.name = "default".into();
    let mut object = Object::Namespace(ns);
    object.set_type_meta();
    match store.create(object) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(StartupError::step("creating namespace default")(e)),
    }
}

/// The one allocator of ClusterIPs (from `network.service_cidr`) and node ports (from
/// `network.node_port_range`), handed to every write path: the API and the manifests folder.
fn service_allocator(settings: &DaemonSettings) -> Result<std::sync::Arc<ServiceAllocator>, StartupError> {
    let cidr = settings
        .network
        .service_cidr
        .parse()
        .map_err(|e| StartupError::Invalid(format!("network.service_cidr: {e}")))?;
    let node_ports = settings.network.node_ports().map_err(StartupError::Invalid)?;
    Ok(std::sync::Arc::new(ServiceAllocator::new(cidr).with_node_ports(node_ports)))
}

/// Services: the local route that makes ClusterIPs (from `cidr`) host addresses, the
/// endpoints and service controllers, the pods' hosts-file refresher and the proxy.
fn start_service_networking(
    settings: &DaemonSettings,
    controllers: &ControllerContext,
    cidr: coracled::net::cidr::Ipv4Cidr,
) -> coracled::proxy::ProxyHandle {
    let store = &controllers.store;
    if let Err(e) = coracled::net::service_route::install(cidr) {
        log::warn!("ClusterIPs will not be reachable: {e}");
    }
    let paths: std::sync::Arc<dyn coracled::net::SandboxPaths> =
        std::sync::Arc::new(coracled::net::SandboxDirs { run_dir: settings.run_dir.clone() });
    let node_ip = coracled::net::service_route::node_address();
    let _endpoints = coracled::controllers::endpoints::spawn_endpoints_controller(controllers);
    let _services = coracled::controllers::service::spawn_service_controller(controllers, node_ip);
    let _hosts = coracled::services::hosts::spawn_hosts_refresher(store.clone(), paths.clone());
    let config = coracled::proxy::ProxyConfig { node_ip, paths, limits: coracled::proxy::TcpLimits::default() };
    coracled::proxy::start(store.clone(), config)
}

/// The ReplicaSet, Deployment and HorizontalPodAutoscaler controllers.
fn start_controllers(
    settings: &DaemonSettings,
    controllers: &ControllerContext,
    usage: std::sync::Arc<coracled::node::metrics::PodUsage>,
) -> Vec<std::thread::JoinHandle<()>> {
    let store = &controllers.store;
    use coracled::controllers::{hpa, ControllerSettings};
    let a = &settings.autoscaler;
    let mut hpa_settings = hpa::HpaSettings {
        sync_period: Duration::from_secs(a.sync_period_seconds),
        downscale_stabilization: Duration::from_secs(a.downscale_stabilization_seconds),
        ..Default::default()
    };
    hpa_settings.calculator.cpu_initialization_period = Duration::from_secs(a.cpu_initialization_period_seconds);
    hpa_settings.calculator.initial_readiness_delay = Duration::from_secs(a.initial_readiness_delay_seconds);
    hpa_settings.calculator.metric_window = usage.period();
    let recorder = coracled::events::Recorder::new(store.clone(), "controller-manager", &settings.node_name);
    let controller_settings = ControllerSettings { hpa: hpa_settings, ..Default::default() };
    coracled::controllers::spawn_controllers(controllers, recorder, usage, &controller_settings)
}

/// The node (kubelet) on the runtime the settings choose. A board where pods cannot run
/// (no usable cgroups) still serves the API, without graceful pod deletion.
fn start_node(
    settings: &DaemonSettings,
    store: &Store,
    images: std::sync::Arc<coracled::image::ImageStore>,
    usage: std::sync::Arc<coracled::node::metrics::PodUsage>,
    proxy: std::sync::Arc<coracled::proxy::ProxyHandle>,
    watchdog: &coracled::systemd::Watchdog,
) -> Option<coracled::node::Node> {
    let cgroups = match coracled::cgroups::Cgroups::detect_for_pods(&settings.cgroup_subpath) {
        Ok(c) => c,
        Err(e) => {
            log::error!("node disabled, pods will not run: {e}");
            return None;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&settings.run_dir) {
        log::error!("node disabled, pods will not run: creating {}: {e}", settings.run_dir.display());
        return None;
    }
    let runtime = coracled::runtime::from_settings(settings);
    let paths = coracled::net::SandboxDirs { run_dir: settings.run_dir.clone() };
    // Leases of pods whose namespace is still pinned belong to re-adopted pods; keep them.
    let live = |uid: &str| coracled::net::SandboxPaths::netns_path(&paths, uid).is_some();
    let network = match coracled::net::from_settings(&settings.network, &settings.data_dir, &live) {
        Ok(n) => n,
        Err(e) => {
            log::error!("node disabled, pods will not run: pod network: {e}");
            return None;
        }
    };
    // A stopping pod leaves every Service before SIGTERM reaches it.
    let before_stop: coracled::node::BeforeStop = std::sync::Arc::new(move |uid: &str| {
        proxy.withdraw_pod(uid);
    });
    let options = coracled::node::NodeOptions {
        usage: Some(usage),
        network,
        before_stop,
        watchdog: Some(watchdog.clone()),
        ..Default::default()
    };
    Some(coracled::node::Node::start_with(store.clone(), settings, runtime, images, cgroups, options))
}

/// Creates the data directory 0700 or makes it so, as the packaged units do for the
/// default one: objects, pod volumes, logs and image layers (with their set-id files) are
/// the daemon's alone, whatever directory `data_dir` names.
fn private_data_dir(dir: &std::path::Path) -> Result<(), StartupError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(StartupError::step(format!("creating the data directory {}", dir.display())))?;
    let mode = std::fs::metadata(dir)
        .map_err(StartupError::step(format!("inspecting {}", dir.display())))?
        .permissions()
        .mode();
    if mode & 0o7777 != 0o700 {
        log::info!("data directory {}: mode {:o} made 700", dir.display(), mode & 0o7777);
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(StartupError::step(format!("making {} private", dir.display())))?;
    }
    Ok(())
}

fn run(cli: &Cli) -> Result<(), StartupError> {
    let settings = settings(cli)?;
    let token = read_token(&settings)?;
    if settings.listen.is_some() && token.is_none() {
        return Err(StartupError::Invalid(
            "--listen needs --token-file: the TCP API is served only with a bearer token".into(),
        ));
    }
    // Block the shutdown signals before any thread starts, so every thread inherits the
    // mask and only the wait below receives them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(StartupError::step("blocking SIGTERM/SIGINT"))?;
    raise_open_file_limit();
    // Under systemd (Type=notify): progress as STATUS=, READY=1 once the store is loaded and
    // the API serves, and watchdog pings only while the API answers and every loop beats.
    let watchdog = coracled::systemd::Watchdog::from_env().map_err(StartupError::step("systemd watchdog settings"))?;
    tell_systemd(coracled::systemd::status("opening the store"));

    // Before anything touches the network: a bridge owned by another daemon is fatal.
    coracled::net::bridge_claim::check(&settings.network).map_err(StartupError::layer)?;
    private_data_dir(&settings.data_dir)?;
    // Before anything reads the store or looks at a container: a data dir, run dir or cgroup
    // subpath another daemon holds is fatal (its pods are its own). Held until the exit.
    let _claims = coracled::board_claims::claim(&settings, std::path::Path::new(coracled::net::bridge_claim::LOCK_DIR))
        .map_err(StartupError::layer)?;
    let store = Store::open(&settings.data_dir)
        .map_err(StartupError::step(format!("opening the store in {}", settings.data_dir.display())))?;
    ensure_default_namespace(&store)?;
    // Status the node reports reaches the disk at checkpoints; it ends with the store.
    coracled::store::spawn_checkpoints(store.clone(), coracled::store::CHECKPOINT_AGE)
        .map_err(StartupError::step("starting the store's checkpoints"))?;
    // The controllers' and the node's loops beat heartbeats too: pings stop if any wedges.
    let controllers = ControllerContext::new(store.clone(), Some(watchdog.clone()));
    record_load_repairs(&store, &settings.node_name);
    let services = service_allocator(&settings)?;
    let proxy = std::sync::Arc::new(start_service_networking(&settings, &controllers, services.cidr()));
    let images = std::sync::Arc::new(
        coracled::image::ImageStore::open_with(&settings.data_dir, &settings.images)
            .map_err(StartupError::step(format!("opening the image store in {}", settings.data_dir.display())))?,
    );
    let usage = std::sync::Arc::new(coracled::node::metrics::PodUsage::with_period(
        &settings.node_name,
        coracled::node::metrics::SAMPLE_PERIOD.min(Duration::from_secs(settings.autoscaler.sync_period_seconds)),
    ));
    // The node first: it turns pod deletion graceful, so no delete that comes in before it
    // runs (from the API, a removed manifest or the garbage collector) can drop a running pod
    // from the store without its containers being stopped first.
    let node = start_node(&settings, &store, images.clone(), usage.clone(), proxy.clone(), &watchdog);
    let _gc = coracled::controllers::garbage_collector::spawn_garbage_collector(&controllers);
    let _accounts = coracled::controllers::service_account::spawn_service_account_controller(&controllers);
    let follower =
        ManifestFollower::start(store.clone(), services.clone(), settings.manifests_dir.clone(), MANIFESTS_POLL);
    let _controllers = start_controllers(&settings, &controllers, usage.clone());
    let api = ApiServer::start(
        ApiContext::new(store.clone(), images.clone(), services, &settings.data_dir)
            .with_metrics(usage.clone())
            .with_sandboxes(
                std::sync::Arc::new(coracled::net::SandboxDirs { run_dir: settings.run_dir.clone() }),
                proxy.netns(),
            ),
        &ApiConfig {
            socket: settings.socket.clone(),
            socket_group: Some(settings.socket_group.clone()).filter(|g| !g.is_empty()),
            listen: settings.listen.clone(),
            token,
            limits: api_limits(&settings.api),
        },
    )
    .map_err(StartupError::step("starting the API"))?;
    let api_probe =
        coracled::systemd::ApiProbe::start(settings.socket.clone(), watchdog.register("api"), watchdog.beat_every())
            .map_err(StartupError::step("starting the API probe"))?;
    let watchdog_pings = watchdog.spawn().map_err(StartupError::step("starting the watchdog"))?;
    tell_systemd(coracled::systemd::ready());
    tell_systemd(coracled::systemd::status(&format!("serving on {}", settings.socket.display())));
    log::info!("coracled ready (data {})", settings.data_dir.display());

    let signal = signals.wait().map_err(StartupError::step("waiting for a signal"))?;
    log::info!("{signal:?} received; shutting down");
    tell_systemd(coracled::systemd::stopping());
    tell_systemd(coracled::systemd::status("shutting down"));
    drop(watchdog_pings);
    drop(api_probe);
    api.shutdown();
    follower.stop();
    // Containers keep running: the next start re-adopts them.
    if let Some(node) = node {
        node.stop();
    }
    store.flush().map_err(StartupError::step("flushing the store"))?;
    store.shutdown().map_err(StartupError::step("shutting the store down"))?;
    // The node held the other reference; it is stopped by now.
    match std::sync::Arc::try_unwrap(proxy) {
        Ok(proxy) => proxy.shutdown(),
        Err(_) => log::warn!("proxy still referenced at shutdown; its listeners end with the process"),
    }
    log::info!("coracled stopped");
    Ok(())
}

/// The API server's bounds from the `api` settings (checked when they were loaded).
fn api_limits(api: &coracle_config::settings::ApiSettings) -> coracled::api::ApiLimits {
    let seconds = std::time::Duration::from_secs;
    coracled::api::ApiLimits {
        workers: api.workers as usize,
        streams: api.max_streams as usize,
        connections: api.max_connections as usize,
        header_timeout: seconds(api.header_timeout_seconds),
        idle_timeout: seconds(api.idle_timeout_seconds),
        ..Default::default()
    }
}

/// Raises the soft limit on open files to the hard one, as many servers do: each API
/// connection is a descriptor (up to `api.max_connections`), and the usual soft limit of 1024
/// would refuse connections long before that. systemd's unit already sets both (LimitNOFILE).
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => log::debug!("open files: soft limit raised from {soft} to {hard}"),
            Err(e) => log::warn!("open files: raising the soft limit from {soft} to {hard}: {e}"),
        },
        Ok(_) => {}
        Err(e) => log::warn!("open files: reading the limit: {e}"),
    }
}
