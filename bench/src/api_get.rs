//! `GET /api/v1/pods` with 100 pods in the store, served by coracled over TCP (bearer token,
//! keep-alive), beside nginx serving the same bytes as a static file over the same transport,
//! both loaded by wrk in the same run: requests/s and the 99th latency percentile.
//!
//! The pods name an image that is never loaded, so they stay Pending and the list holds still
//! while it is measured; nginx serves the list as coracled answered it just before.

use crate::daemon::BenchDaemon;
use crate::table::{duration, verdict, Table};
use crate::wrk::{self, Load, WrkFigures};
use crate::Binaries;
use serde_json::json;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path both servers answer.
const PATH: &str = "/api/v1/pods";
/// The bench's bearer token (loopback only, for this run's daemon).
const TOKEN: &str = "coracle-bench-token";

/// How the load is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGetConfig {
    /// Pods in the store.
    pub pods: usize,
    /// Length of each measured wrk run.
    pub duration: Duration,
    /// wrk's threads and connections.
    pub threads: u32,
    pub connections: u32,
    /// Measured runs per server, alternating; the median is reported.
    pub rounds: usize,
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A pod that never starts: its image is never loaded.
fn pending_pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("web-{i:03}"), "namespace": "default", "labels": {"app": "web", "tier": "bench"}},
        "spec": {"containers": [{
            "name": "web", "image": "registry.invalid/never-loaded:1",
            "ports": [{"containerPort": 8080}],
            "env": [{"name": "MODE", "value": "bench"}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        }]},
    })
}

/// nginx on `port`, serving `root` as static files, one worker per core, logging nothing.
struct Nginx {
    child: Child,
}

impl Nginx {
    fn start(dir: &Path, port: u16) -> Result<Nginx, String> {
        let conf = dir.join("nginx.conf");
        let text = format!(
            "user root;\nworker_processes auto;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  keepalive_requests 1000000;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{ root {dir}/www; default_type application/json; }}\n  }}\n}}\n",
            dir = dir.display()
        );
        std::fs::write(&conf, text).map_err(|e| format!("writing {}: {e}", conf.display()))?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting nginx (apt-get install nginx): {e}"))?;
        let nginx = Nginx { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("nginx did not listen on 127.0.0.1:{port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    fn version() -> String {
        let out = Command::new("nginx").arg("-v").output().ok();
        out.map(|o| String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("nginx version: ").to_string())
            .unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGQUIT);
        let _ = self.child.wait();
    }
}

/// One HTTP GET over TCP with the token: status and body.
fn get(port: u16) -> Result<(u16, Vec<u8>), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connecting: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let head =
        format!("GET {PATH} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).map_err(|e| format!("sending: {e}"))?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).map_err(|e| format!("reading: {e}"))?;
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no response head")?;
    let head = String::from_utf8_lossy(&reply[..split]).to_string();
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad head {head:?}"))?;
    Ok((code, reply[split + 4..].to_vec()))
}

fn load(config: &ApiGetConfig, port: u16, duration: Duration) -> Result<WrkFigures, String> {
    let url = format!("http://127.0.0.1:{port}{PATH}");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let load = Load {
        threads: config.threads,
        connections: config.connections,
        duration,
        url: &url,
        headers: &[&auth],
        cpu: None,
    };
    let figures = wrk::run(&load)?;
    if figures.non_2xx > 0 {
        return Err(format!("{url}: {} of {} answers were not 2xx", figures.non_2xx, figures.requests));
    }
    Ok(figures)
}

fn median(mut runs: Vec<WrkFigures>) -> WrkFigures {
    runs.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    runs[runs.len() / 2]
}

pub fn run(config: &ApiGetConfig, bins: &Binaries) -> Result<Table, String> {
    let dir = tempfile::Builder::new()
        .prefix("coracle-bench-api-")
        .tempdir_in("/var/tmp")
        .map_err(|e| format!("creating a temp dir in /var/tmp: {e}"))?;
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).map_err(|e| format!("writing {}: {e}", token.display()))?;
    let api_port = free_port()?;
    let listen = format!("127.0.0.1:{api_port}");
    let args = [OsStr::new("--listen"), OsStr::new(&listen), OsStr::new("--token-file"), token.as_os_str()];
    let daemon = BenchDaemon::start_with(&bins.coracled, &args)?;
    for i in 0..config.pods {
        let body = pending_pod(i).to_string();
        let resp = daemon.request("POST", crate::pods::PODS, Some(("application/json", body.as_bytes())))?;
        if resp.status != 201 {
            return Err(format!("creating pod {i}: HTTP {}: {}", resp.status, resp.body));
        }
    }
    // Let the node give every pod its (Pending) status, so the list holds still.
    std::thread::sleep(Duration::from_secs(3));
    let (code, bytes) = get(api_port)?;
    if code != 200 {
        return Err(format!("GET {PATH}: HTTP {code}: {}", String::from_utf8_lossy(&bytes)));
    }
    let www = dir.path().join("www/api/v1");
    std::fs::create_dir_all(&www).map_err(|e| format!("creating {}: {e}", www.display()))?;
    std::fs::write(www.join("pods"), &bytes).map_err(|e| format!("writing the pod list: {e}"))?;
    let nginx_port = free_port()?;
    let nginx = Nginx::start(dir.path(), nginx_port)?;
    let (code, served) = get(nginx_port)?;
    if code != 200 || served != bytes {
        return Err(format!("nginx answered {code} with {} bytes, not the {} of the list", served.len(), bytes.len()));
    }
    // Warm both, then alternate measured runs so drift on a shared machine hits both alike.
    load(config, api_port, Duration::from_secs(2))?;
    load(config, nginx_port, Duration::from_secs(2))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..config.rounds {
        ours.push(load(config, api_port, config.duration)?);
        theirs.push(load(config, nginx_port, config.duration)?);
    }
    drop(nginx);
    let (ours, theirs) = (median(ours), median(theirs));
    let (_, after) = get(api_port)?;
    daemon.stop()?;

    let mut table = Table::new(
        format!("GET {PATH}: {} pods, {} bytes, over TCP loopback with keep-alive", config.pods, bytes.len()),
        &["", "coracled", "nginx (same bytes)", "ratio", "target", "met"],
    );
    let ratio = ours.requests_per_sec / theirs.requests_per_sec.max(f64::MIN_POSITIVE);
    table.row(vec![
        "requests/s".into(),
        format!("{:.0}", ours.requests_per_sec),
        format!("{:.0}", theirs.requests_per_sec),
        format!("{:.0} %", ratio * 100.0),
        "≥ 50 % of nginx".into(),
        verdict(ratio >= 0.5),
    ]);
    let p99_ratio = ours.p99.as_secs_f64() / theirs.p99.as_secs_f64().max(f64::MIN_POSITIVE);
    table.row(vec![
        "p99 latency".into(),
        duration(ours.p99),
        duration(theirs.p99),
        format!("{p99_ratio:.1}×"),
        "≤ 2× nginx".into(),
        verdict(p99_ratio <= 2.0),
    ]);
    table.note(format!(
        "wrk -t{} -c{} --latency, {} s per run, median of {} alternating runs per server; {}",
        config.threads,
        config.connections,
        config.duration.as_secs(),
        config.rounds,
        Nginx::version()
    ));
    table.note(
        "coracled checks the bearer token on every request and renders the list once per store version \
         (kept by request); nginx sends a static file (sendfile, worker_processes auto)",
    );
    if after != bytes {
        table.note("the list changed during the run (a pod status moved): nginx served the earlier bytes");
    }
    Ok(table)
}
