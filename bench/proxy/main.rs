//! coracle-proxy-bench: the Service proxy beside haproxy 2.6 (Debian, TCP mode), in one run
//! on loopback, with wrk against (a) the backend directly, (b) Coracle's proxy and (c)
//! haproxy, all in front of the same backend: keep-alive requests/s, new connections/s,
//! bulk MB/s, p99 latency and the proxy's resident memory. Prints a table.
//!
//! Coracle's proxy runs as the daemon runs it (`coracled::proxy::start` over a store holding
//! a selector-less NodePort Service and hand-written Endpoints naming the backend), in a
//! child process of its own so its memory is measured alone.

mod backend;
mod wrk;

use coracle_config::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort};
use coracle_config::object::Object;
use nix::sys::resource::{getrusage, UsageWho};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wrk::{Load, WrkFigures};

/// The size of the bulk file.
const BULK_BYTES: usize = 64 << 20;
/// Serving threads of the backend: above every connection count used below.
const BACKEND_THREADS: usize = 160;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve-proxy") {
        if let Err(e) = serve_proxy(&args[2..]) {
            eprintln!("coracle-proxy-bench serve-proxy: {e}");
            std::process::exit(1);
        }
        return;
    }
    let (mut seconds, mut rounds) = (5u64, 3usize);
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        // bench/run passes its BENCH-ARGS to every benchmark: a quick run is one short round.
        if matches!(arg.as_str(), "--quick" | "--smoke") {
            (seconds, rounds) = (2, 1);
            continue;
        }
        let value = rest.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--seconds", Some(v)) => seconds = v.max(1),
            ("--rounds", Some(v)) => rounds = (v as usize).max(1),
            _ => {
                eprintln!("usage: coracle-proxy-bench [--seconds N] [--rounds N] [--quick]   (at {arg:?})");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = run(Duration::from_secs(seconds), rounds) {
        eprintln!("coracle-proxy-bench: {e}");
        std::process::exit(1);
    }
}

/// The child: a store with one Service and its Endpoints, and the proxy serving it until
/// stdin closes.
fn serve_proxy(args: &[String]) -> Result<(), String> {
    let [port, backend, dir] = args else { return Err("expects PORT BACKEND_ADDR DATA_DIR".into()) };
    let port: i32 = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    let backend: SocketAddr = backend.parse().map_err(|e| format!("backend {backend:?}: {e}"))?;
    let store = coracled::store::Store::open(Path::new(dir)).map_err(|e| format!("opening the store in {dir}: {e}"))?;
    let mut svc = Service::default();
    svc.metadata.name = "bench".into();
    svc.metadata.namespace = "default".into();
    svc.spec.type_ = Some("NodePort".into());
    svc.spec.ports = vec![ServicePort { port: 80, node_port: Some(port), ..Default::default() }];
    store.create(Object::Service(svc)).map_err(|e| format!("creating the Service: {e}"))?;
    let mut ep = Endpoints::default();
    ep.metadata.name = "bench".into();
    ep.metadata.namespace = "default".into();
    ep.subsets = vec![EndpointSubset {
        addresses: vec![EndpointAddress { ip: backend.ip().to_string(), ..Default::default() }],
        ports: vec![EndpointPort {
            port: i32::from(backend.port()),
            protocol: Some("TCP".into()),
            ..Default::default()
        }],
        ..Default::default()
    }];
    store.create(Object::Endpoints(ep)).map_err(|e| format!("creating the Endpoints: {e}"))?;
    let config = coracled::proxy::ProxyConfig {
        node_ip: "127.0.0.1".parse().expect("an address"),
        paths: std::sync::Arc::new(coracled::net::SandboxDirs { run_dir: Path::new(dir).join("run") }),
        limits: coracled::proxy::TcpLimits::default(),
    };
    let proxy = coracled::proxy::start(store.clone(), config);
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let _ = store.shutdown();
    proxy.shutdown();
    Ok(())
}

/// A child process ended when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until `port` answers a request with the greeting (or gives up after 10 s).
fn wait_serving(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let answered = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut answer = String::new();
            s.read_to_string(&mut answer)?;
            Ok(answer.ends_with("hello, world\n"))
        });
        if answered.unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not start answering on 127.0.0.1:{port}"))
}

/// haproxy in TCP mode with as many threads as Coracle's proxy has workers (neither pinned),
/// so the comparison is thread for thread.
fn haproxy_config(port: u16, backend: SocketAddr, threads: usize) -> String {
    format!(
        "global\n  maxconn 4096\n  nbthread {threads}\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  \
         timeout server 60s\n\nfrontend bench\n  bind 127.0.0.1:{port}\n  default_backend backend\n\n\
         backend backend\n  server s1 {backend}\n"
    )
}

/// `VmHWM` (peak) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The three figures of one target.
#[derive(Clone, Copy, Default)]
struct Figures {
    keep_alive: WrkFigures,
    new_connections: WrkFigures,
    bulk: WrkFigures,
}

/// Keeps the better of two runs of the same load, figure by figure: the higher rate (with
/// that run's CPU figures) and the lower p99. The machine may be shared: a dip or a latency
/// spike in one run is the neighbours', not the target's, and the same rule serves every
/// target.
fn best(a: WrkFigures, b: WrkFigures) -> WrkFigures {
    if a.requests == 0 {
        return b;
    }
    let (mut kept, other) = if b.requests_per_sec > a.requests_per_sec { (b, a) } else { (a, b) };
    kept.p99 = kept.p99.min(other.p99);
    kept
}

/// CPU time (user + system) every thread of `pid` has used so far: the first field of each
/// thread's `schedstat`, in nanoseconds (finer than `stat`'s clock ticks).
fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// CPU time (user + system) of this process (its only busy threads during a load are the
/// backend's) or of its waited-for children (wrk, once it has exited).
fn rusage_cpu(who: UsageWho) -> Duration {
    getrusage(who).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// Runs one wrk load against a target, charging the CPU time its proxy process (if any),
/// wrk and the backend spent meanwhile to the run: where the CPU of a load goes says which
/// of the three limits it.
fn run_load(load: &Load, proxy: Option<u32>) -> Result<WrkFigures, String> {
    let before = proxy.map(cpu_time);
    let (client_before, backend_before) = (rusage_cpu(UsageWho::RUSAGE_CHILDREN), rusage_cpu(UsageWho::RUSAGE_SELF));
    let mut figures = wrk::run(load)?;
    figures.backend_cpu = rusage_cpu(UsageWho::RUSAGE_SELF).saturating_sub(backend_before);
    figures.client_cpu = rusage_cpu(UsageWho::RUSAGE_CHILDREN).saturating_sub(client_before);
    if let (Some(pid), Some(before)) = (proxy, before) {
        figures.proxy_cpu = cpu_time(pid).saturating_sub(before);
    }
    Ok(figures)
}

/// Measures every target, load by load and round by round, so that a change in the
/// machine's other load hits all targets alike; the best round of each is kept. `targets`
/// pairs each port with the pid of the proxy behind it (none for the backend itself).
fn measure(targets: &[(u16, Option<u32>)], duration: Duration, rounds: usize) -> Result<Vec<Figures>, String> {
    let mut out = vec![Figures::default(); targets.len()];
    for _ in 0..rounds {
        for (i, (port, pid)) in targets.iter().enumerate() {
            let url = format!("http://127.0.0.1:{port}/");
            let load = Load { threads: 2, connections: 64, duration, url: &url, headers: &[] };
            out[i].keep_alive = best(out[i].keep_alive, run_load(&load, *pid)?);
        }
        for (i, (port, pid)) in targets.iter().enumerate() {
            let url = format!("http://127.0.0.1:{port}/");
            let load = Load { threads: 2, connections: 32, duration, url: &url, headers: &["Connection: close"] };
            out[i].new_connections = best(out[i].new_connections, run_load(&load, *pid)?);
            // Let the closed connections' TIME_WAIT ports settle before the next target.
            std::thread::sleep(Duration::from_secs(2));
        }
        for (i, (port, pid)) in targets.iter().enumerate() {
            let url = format!("http://127.0.0.1:{port}/bulk");
            let load = Load { threads: 1, connections: 4, duration, url: &url, headers: &[] };
            out[i].bulk = best(out[i].bulk, run_load(&load, *pid)?);
        }
    }
    Ok(out)
}

fn run(duration: Duration, rounds: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("making a temp dir: {e}"))?;
    let bulk_path = dir.path().join("bulk.bin");
    let pattern: Vec<u8> = (0..BULK_BYTES).map(|i| (i % 251) as u8).collect();
    std::fs::write(&bulk_path, &pattern).map_err(|e| format!("writing {}: {e}", bulk_path.display()))?;
    let backend = backend::start(BACKEND_THREADS, bulk_path).map_err(|e| format!("starting the backend: {e}"))?;
    wait_serving(backend.addr.port(), "the backend")?;

    let proxy_port = free_port()?;
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    let coracle = Running(
        Command::new(me)
            .args(["serve-proxy", &proxy_port.to_string(), &backend.addr.to_string()])
            .arg(&store_dir)
            .stdin(Stdio::piped())
            .env("RUST_LOG", "warn")
            .spawn()
            .map_err(|e| format!("starting Coracle's proxy: {e}"))?,
    );
    wait_serving(proxy_port, "Coracle's proxy")?;

    let haproxy_port = free_port()?;
    let cfg = dir.path().join("haproxy.cfg");
    let threads = coracled::proxy::worker_count();
    std::fs::write(&cfg, haproxy_config(haproxy_port, backend.addr, threads)).map_err(|e| e.to_string())?;
    let haproxy = Running(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting haproxy (apt-get install haproxy): {e}"))?,
    );
    wait_serving(haproxy_port, "haproxy")?;
    let haproxy_version = Command::new("haproxy")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
        .unwrap_or_default();

    println!(
        "proxy benchmark: wrk on loopback, {}s per load, best of {rounds} interleaved rounds; {haproxy_version}; \
         {threads} threads each (Coracle's workers, haproxy's nbthread), unpinned",
        duration.as_secs()
    );
    let targets =
        [(backend.addr.port(), None), (proxy_port, Some(coracle.0.id())), (haproxy_port, Some(haproxy.0.id()))];
    let figures = measure(&targets, duration, rounds)?;
    let (direct, ours, theirs) = (figures[0], figures[1], figures[2]);
    let (ours_peak, ours_rss) = memory_kib(coracle.0.id());
    let (theirs_peak, theirs_rss) = memory_kib(haproxy.0.id());
    drop(coracle);
    drop(haproxy);

    let mib = |b: f64| b / (1024.0 * 1024.0);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // The proxy's CPU time over what it moved: less noisy than the rates on a shared machine,
    // since it does not depend on how much CPU the others left it.
    let per_request = |f: WrkFigures| f.proxy_cpu.as_secs_f64() * 1e6 / f.requests.max(1) as f64;
    let gib_of =
        |f: WrkFigures| (f.bytes_per_sec * duration.as_secs_f64() / f64::from(1u32 << 30)).max(f64::MIN_POSITIVE);
    let per_gib = |cpu: Duration, f: WrkFigures| cpu.as_secs_f64() * 1e3 / gib_of(f);
    let rows: [(&str, f64, f64, f64, bool); 11] = [
        (
            "keep-alive requests/s",
            direct.keep_alive.requests_per_sec,
            ours.keep_alive.requests_per_sec,
            theirs.keep_alive.requests_per_sec,
            true,
        ),
        (
            "new connections/s",
            direct.new_connections.requests_per_sec,
            ours.new_connections.requests_per_sec,
            theirs.new_connections.requests_per_sec,
            true,
        ),
        (
            "bulk MiB/s",
            mib(direct.bulk.bytes_per_sec),
            mib(ours.bulk.bytes_per_sec),
            mib(theirs.bulk.bytes_per_sec),
            true,
        ),
        (
            "p99 latency keep-alive (ms)",
            ms(direct.keep_alive.p99),
            ms(ours.keep_alive.p99),
            ms(theirs.keep_alive.p99),
            false,
        ),
        ("proxy CPU µs per request", f64::NAN, per_request(ours.keep_alive), per_request(theirs.keep_alive), false),
        (
            "proxy CPU µs per connection",
            f64::NAN,
            per_request(ours.new_connections),
            per_request(theirs.new_connections),
            false,
        ),
        (
            "proxy CPU ms per GiB bulk",
            f64::NAN,
            per_gib(ours.bulk.proxy_cpu, ours.bulk),
            per_gib(theirs.bulk.proxy_cpu, theirs.bulk),
            false,
        ),
        (
            "wrk CPU ms per GiB bulk",
            per_gib(direct.bulk.client_cpu, direct.bulk),
            per_gib(ours.bulk.client_cpu, ours.bulk),
            per_gib(theirs.bulk.client_cpu, theirs.bulk),
            false,
        ),
        (
            "backend CPU ms per GiB bulk",
            per_gib(direct.bulk.backend_cpu, direct.bulk),
            per_gib(ours.bulk.backend_cpu, ours.bulk),
            per_gib(theirs.bulk.backend_cpu, theirs.bulk),
            false,
        ),
        ("proxy peak RSS (MiB)", f64::NAN, ours_peak as f64 / 1024.0, theirs_peak as f64 / 1024.0, false),
        ("proxy RSS at end (MiB)", f64::NAN, ours_rss as f64 / 1024.0, theirs_rss as f64 / 1024.0, false),
    ];
    println!("{:<30} {:>14} {:>14} {:>14}  coracle vs haproxy", "figure", "direct", "coracle", "haproxy");
    for (name, d, o, t, higher_is_better) in rows {
        let cell = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{v:.2}") };
        let better = if higher_is_better { o >= t } else { o <= t };
        let verdict = format!("{} ({:+.1}%)", if better { "at or better" } else { "worse" }, (o - t) / t * 100.0);
        println!("{name:<30} {:>14} {:>14} {:>14}  {verdict}", cell(d), cell(o), cell(t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests_per_sec: f64, p99_ms: u64) -> WrkFigures {
        WrkFigures { requests_per_sec, requests: 1, p99: Duration::from_millis(p99_ms), ..WrkFigures::default() }
    }

    #[test]
    fn the_best_of_rounds_takes_each_figure_at_its_best() {
        let first = best(WrkFigures::default(), run(100.0, 5));
        assert_eq!((first.requests_per_sec, first.p99), (100.0, Duration::from_millis(5)));
        let kept = best(first, run(120.0, 9));
        assert_eq!((kept.requests_per_sec, kept.p99), (120.0, Duration::from_millis(5)));
        let kept = best(kept, run(90.0, 3));
        assert_eq!((kept.requests_per_sec, kept.p99), (120.0, Duration::from_millis(3)));
    }
}
