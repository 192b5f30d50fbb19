//! A coracled started for a benchmark: its own temp data dir, socket and run dir, a bridge,
//! pod range and cgroup subpath of its own (so it never meets another daemon's pods: a daemon
//! starting on the same subpath would take them for leftovers and kill them), stderr kept in
//! memory (so its log never counts as disk writes), and a teardown that leaves no container
//! or cgroup behind.

use coracle_e2e::http::{self, HttpResponse};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of the daemon's last log lines are kept for error messages.
const LOG_TAIL: usize = 40;

/// The cgroup subpath, beneath this process's own, of this benchmark run's daemon.
fn cgroup_subpath() -> String {
    format!("coracle-bench-{}", std::process::id())
}

/// This run's pod bridge.
fn bridge() -> String {
    format!("cbench{}", std::process::id() % 100_000)
}

/// Settings that keep this run's pods on a bridge, address range and cgroup subpath of their
/// own, apart from other daemons and from a benchmark running beside it.
fn config_text() -> String {
    format!(
        "network:\n  bridge: {}\n  pod_cidr: {}\n  service_cidr: {}\ncgroup_subpath: {}\n",
        bridge(),
        pod_cidr(),
        service_cidr(),
        cgroup_subpath()
    )
}

/// This run's Service block: the default one is the installed daemon's, whose ClusterIP
/// listeners (SO_REUSEPORT) this run's would otherwise share.
fn service_cidr() -> String {
    format!("10.245.{}.0/22", (std::process::id() % 64) * 4)
}

/// This run's pod address range.
fn pod_cidr() -> String {
    format!("10.244.{}.0/22", (std::process::id() % 64) * 4)
}

/// A running coracled owned by the benchmark.
pub struct BenchDaemon {
    /// Removed (with the data dir) when the daemon is dropped.
    _dir: tempfile::TempDir,
    socket: PathBuf,
    run_dir: PathBuf,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl BenchDaemon {
    /// Starts `coracled` on fresh directories and waits (up to 30 s) for /healthz.
    pub fn start(coracled: &Path) -> Result<BenchDaemon, String> {
        BenchDaemon::start_with(coracled, &[])
    }

    /// As `start`, with extra command-line arguments (`--listen`, `--token-file`).
    pub fn start_with(coracled: &Path, extra_args: &[&std::ffi::OsStr]) -> Result<BenchDaemon, String> {
        let dir = tempfile::Builder::new()
            .prefix("coracle-bench-")
            .tempdir_in("/var/tmp")
            .map_err(|e| format!("creating a temp dir in /var/tmp: {e}"))?;
        let root = dir.path();
        let config = root.join("config.yaml");
        std::fs::write(&config, config_text()).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let manifests = root.join("manifests");
        std::fs::create_dir_all(&manifests).map_err(|e| format!("creating {}: {e}", manifests.display()))?;
        let socket = root.join("coracle.sock");
        let run_dir = root.join("run");
        let mut child = Command::new(coracled)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(root.join("data"))
            .arg("--socket")
            .arg(&socket)
            .arg("--manifests")
            .arg(&manifests)
            .args(extra_args)
            .env("CORACLE_RUN_DIR", &run_dir)
            .env("RUST_LOG", std::env::var("CORACLE_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("CORACLE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", coracled.display()))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = sink.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let mut daemon = BenchDaemon { _dir: dir, socket, run_dir, child, log };
        daemon.wait_healthy()?;
        Ok(daemon)
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("coracled exited during start ({status}); {}", self.log_tail()));
            }
            if http::request(&self.socket, "GET", "/healthz", &[], None).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("coracled did not answer /healthz within 30 s; {}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The last lines the daemon logged, for error messages.
    pub fn log_tail(&self) -> String {
        let tail = self.log.lock().unwrap_or_else(|e| e.into_inner());
        format!("last coracled log lines:\n{}", tail.iter().cloned().collect::<Vec<_>>().join("\n"))
    }

    /// One request over the socket.
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Result<HttpResponse, String> {
        let headers: Vec<(&str, &str)> = body.iter().map(|(ct, _)| ("Content-Type", *ct)).collect();
        http::request(&self.socket, method, path, &headers, body.map(|(_, b)| b))
            .map_err(|e| format!("{method} {path}: {e}; {}", self.log_tail()))
    }

    /// Loads an image archive through the images API.
    pub fn load_image(&self, archive: &Path) -> Result<(), String> {
        let tar = std::fs::read(archive).map_err(|e| format!("reading {}: {e}", archive.display()))?;
        let resp = self.request("POST", "/apis/images.coracle.io/v1/images", Some(("application/x-tar", &tar)))?;
        if !(200..300).contains(&resp.status) {
            return Err(format!("loading image {}: HTTP {}: {}", archive.display(), resp.status, resp.body));
        }
        Ok(())
    }

    /// The supervising shims of the containers the runtime's records know about.
    pub fn shim_pids(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(self.run_dir.join("containers")) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("state.json")).ok())
            .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .filter_map(|v| v["shim_pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
            .filter(|&pid| crate::procfs::exists(pid))
            .collect()
    }

    /// SIGTERM, wait for the exit, then remove whatever containers and sandboxes are left.
    pub fn stop(mut self) -> Result<(), String> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<(), String> {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        let result = loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break Err(format!("coracled ignored SIGTERM for 30 s and was killed; {}", self.log_tail()));
                }
            }
        };
        self.remove_leftovers();
        result
    }

    /// Containers keep running when the daemon stops (the next start re-adopts them); a
    /// benchmark must not leave them behind, nor the sandboxes' pinned namespaces.
    fn remove_leftovers(&self) {
        let runtime = coracled::runtime::BuiltinRuntime::new(&self.run_dir);
        use coracled::runtime::ContainerRuntime;
        for id in runtime.list() {
            let _ = runtime.signal(&id, Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(runtime.state(&id), coracled::runtime::ContainerState::Running { .. })
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Err(e) = runtime.remove(&id) {
                eprintln!("coracle-bench: leftover container {id}: {e}");
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.run_dir.join("sandboxes")) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if let Err(e) = runtime.remove_sandbox(&id) {
                    eprintln!("coracle-bench: leftover sandbox {id}: {e}");
                }
            }
        }
        remove_cgroups();
        // The daemon leaves its bridge up for the pods of its next start; this run has none.
        let _ = Command::new("ip").args(["link", "del", &bridge()]).stderr(Stdio::null()).status();
        let _ = Command::new("ip")
            .args(["route", "del", "local", &service_cidr(), "dev", "lo", "table", "local"])
            .stderr(Stdio::null())
            .status();
        coracled::net::masquerade::remove(&bridge(), &pod_cidr());
    }
}

/// Removes the run's (by now empty) cgroup subpath, pod cgroups first, in every hierarchy.
fn remove_cgroups() {
    let Ok(cgroups) = coracled::cgroups::Cgroups::detect(&cgroup_subpath()) else { return };
    for base in cgroups.base_dirs() {
        let pods = base.join("pods");
        for entry in std::fs::read_dir(&pods).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(entry.path());
        }
        for dir in [pods, base] {
            if let Err(e) = std::fs::remove_dir(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("coracle-bench: leftover cgroup {}: {e}", dir.display());
                }
            }
        }
    }
}

impl Drop for BenchDaemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.terminate();
        }
    }
}
