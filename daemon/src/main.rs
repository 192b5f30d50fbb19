//! coracled: open the store, apply and follow the manifests directory, serve the API, and
//! shut down cleanly on SIGTERM/SIGINT.

use clap::Parser;
use coracle_config::core::Namespace;
use coracle_config::object::{Object, Resource};
use coracle_config::settings::DaemonSettings;
use coracled::api::{ApiConfig, ApiServer};
use coracled::cli::Cli;
use coracled::manifests::ManifestFollower;
use coracled::store::{Store, StoreError};
use nix::sys::signal::{SigSet, Signal};
use std::time::Duration;

/// How often the manifests directory is looked at.
const MANIFESTS_POLL: Duration = Duration::from_secs(1);

fn main() {
    if let Some(code) = coracled::runtime::shim::dispatch() {
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
fn settings(cli: &Cli) -> Result<DaemonSettings, String> {
    let mut settings = DaemonSettings::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    settings.apply_env(std::env::vars()).map_err(|e| e.to_string())?;
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

fn read_token(settings: &DaemonSettings) -> Result<Option<String>, String> {
    let Some(path) = &settings.token_file else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading token file {}: {e}", path.display()))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(Some(token))
}

/// `default` always exists, as in Kubernetes.
fn ensure_default_namespace(store: &Store) -> Result<(), String> {
    if store.get(&Namespace::INFO, "", "default").is_some() {
        return Ok(());
    }
    let mut ns = Namespace::default();
    ns.metadata.name = "default".into();
    let mut object = Object::Namespace(ns);
    object.set_type_meta();
    match store.create(object) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(format!("creating namespace default: {e}")),
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let settings = settings(cli)?;
    let token = read_token(&settings)?;
    if settings.listen.is_some() && token.is_none() {
        return Err("--listen needs --token-file: the TCP API is served only with a bearer token".into());
    }
    // Block the shutdown signals before any thread starts, so every thread inherits the
    // mask and only the wait below receives them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(|e| format!("blocking SIGTERM/SIGINT: {e}"))?;

    let store = Store::open(&settings.data_dir)
        .map_err(|e| format!("opening the store in {}: {e}", settings.data_dir.display()))?;
    ensure_default_namespace(&store)?;
    let _gc = coracled::controllers::garbage_collector::spawn_garbage_collector(store.clone());
    let follower = ManifestFollower::start(store.clone(), settings.manifests_dir.clone(), MANIFESTS_POLL);
    let api = ApiServer::start(
        store.clone(),
        &ApiConfig { socket: settings.socket.clone(), listen: settings.listen.clone(), token },
    )
    .map_err(|e| format!("starting the API: {e}"))?;
    log::info!("coracled ready (data {})", settings.data_dir.display());

    let signal = signals.wait().map_err(|e| format!("waiting for a signal: {e}"))?;
    log::info!("{signal:?} received; shutting down");
    api.shutdown();
    follower.stop();
    store.flush().map_err(|e| format!("flushing the store: {e}"))?;
    store.shutdown().map_err(|e| format!("shutting the store down: {e}"))?;
    log::info!("coracled stopped");
    Ok(())
}
