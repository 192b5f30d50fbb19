//! coracle-proxy-bench: the Service proxy beside haproxy 2.6 (Debian, TCP mode), in one run
//! on loopback, with wrk against (a) the backend directly, (b) Coracle's proxy and (c)
//! haproxy, all in front of the same backend: keep-alive requests/s, new connections/s,
//! bulk MB/s, p99 latency and the proxy's resident memory. Prints a table.
//!
//! Coracle's proxy runs as the daemon runs it (`coracled::proxy::start` over a store holding
//! a selector-less NodePort Service and hand-written Endpoints naming the backend), in a
//! child process of its own so its memory is measured alone.
//!
//! Two layouts (see `layout`): all processes on all cores, then wrk on a core of its own.
//! Each round runs every target once per load, back to back, in alternating order; the
//! table gives each figure's median and compares Coracle with haproxy round by round.

mod backend;
mod layout;
mod table;
mod wrk;

use coracle_config::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort};
use coracle_config::object::Object;
use layout::Layout;
use nix::sys::resource::{getrusage, UsageWho};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use table::Row;
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
    let (mut seconds, mut rounds, mut layouts) = (5u64, 5usize, vec![Layout::Shared, Layout::Pinned]);
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        // bench/run passes its BENCH-ARGS to every benchmark: a quick run is one short round.
        if matches!(arg.as_str(), "--quick" | "--smoke") {
            (seconds, rounds) = (2, 1);
            continue;
        }
        let value = rest.next().map(String::as_str);
        let number = value.and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), number, value) {
            ("--seconds", Some(v), _) => seconds = v.max(1),
            ("--rounds", Some(v), _) => rounds = (v as usize).max(1),
            ("--layout", _, Some("shared")) => layouts = vec![Layout::Shared],
            ("--layout", _, Some("pinned")) => layouts = vec![Layout::Pinned],
            ("--layout", _, Some("both")) => layouts = vec![Layout::Shared, Layout::Pinned],
            _ => {
                eprintln!(
                    "usage: coracle-proxy-bench [--seconds N] [--rounds N] [--layout shared|pinned|both] [--quick] \
                     (at {arg:?})"
                );
                std::process::exit(2);
            }
        }
    }
    let result = layout::usable_cpus().and_then(|cpus| {
        layouts.into_iter().try_for_each(|layout| run(Duration::from_secs(seconds), rounds, layout, &cpus))
    });
    if let Err(e) = result {
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

/// haproxy in TCP mode with as many threads as Coracle's proxy has workers (neither pins its
/// threads to cores; the layout confines both alike), so the comparison is thread for thread.
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

/// One of the loads every target gets.
struct LoadSpec {
    path: &'static str,
    threads: u32,
    connections: u32,
    headers: &'static [&'static str],
    /// Each request closes its connection: the TIME_WAIT ports settle before the next target.
    closes: bool,
}

const KEEP_ALIVE: usize = 0;
const NEW_CONNECTIONS: usize = 1;
const BULK: usize = 2;
/// The loads, indexed by the constants above.
const LOADS: [LoadSpec; 3] = [
    LoadSpec { path: "/", threads: 2, connections: 64, headers: &[], closes: false },
    LoadSpec { path: "/", threads: 2, connections: 32, headers: &["Connection: close"], closes: true },
    LoadSpec { path: "/bulk", threads: 1, connections: 4, headers: &[], closes: false },
];

/// The rounds of one target, load by load (indexed as `LOADS`).
type Samples = [Vec<WrkFigures>; 3];

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
    if figures.non_2xx > 0 {
        return Err(format!("{}: {} of {} answers were not 2xx", load.url, figures.non_2xx, figures.requests));
    }
    figures.backend_cpu = rusage_cpu(UsageWho::RUSAGE_SELF).saturating_sub(backend_before);
    figures.client_cpu = rusage_cpu(UsageWho::RUSAGE_CHILDREN).saturating_sub(client_before);
    if let (Some(pid), Some(before)) = (proxy, before) {
        figures.proxy_cpu = cpu_time(pid).saturating_sub(before);
    }
    Ok(figures)
}

/// Measures every target, load by load and round by round, so that a change in the
/// machine's other load hits all targets alike: within a round the targets of one load run
/// back to back, first to last in even rounds and last to first in odd ones, so neither
/// proxy always follows the other. `targets` pairs each port with the pid of the proxy
/// behind it (none for the backend itself); `wrk_cpu` is wrk's own core, if it has one.
fn measure(
    targets: &[(u16, Option<u32>)],
    duration: Duration,
    rounds: usize,
    wrk_cpu: Option<usize>,
) -> Result<Vec<Samples>, String> {
    let mut out: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (l, spec) in LOADS.iter().enumerate() {
            for &i in &order {
                let (port, pid) = targets[i];
                let url = format!("http://127.0.0.1:{port}{}", spec.path);
                let (threads, connections, headers) = (spec.threads, spec.connections, spec.headers);
                let load = Load { threads, connections, duration, url: &url, headers, cpu: wrk_cpu };
                out[i][l].push(run_load(&load, pid)?);
                if spec.closes {
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
    }
    Ok(out)
}

/// Starts the backend and both proxies placed as `layout` says (out of `cpus`), measures,
/// and prints the layout's table.
fn run(duration: Duration, rounds: usize, layout: Layout, cpus: &[usize]) -> Result<(), String> {
    let wrk_cpu = layout.place(cpus)?;
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
    // The proxy's workers follow the cores it may use, so this is the same count.
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

    let placement = match wrk_cpu {
        Some(client) => format!(
            "wrk on CPU {client}, the proxies and the backend on CPUs {:?}",
            cpus.iter().filter(|&&c| c != client).collect::<Vec<_>>()
        ),
        None => format!("wrk, the proxies and the backend on CPUs {cpus:?}"),
    };
    println!(
        "\nproxy benchmark, {} layout: {placement}; {threads} {} each (Coracle's workers, haproxy's \
         nbthread); wrk on loopback, {}s per load, median of {rounds} {}; {haproxy_version}",
        layout.name(),
        if threads == 1 { "thread" } else { "threads" },
        duration.as_secs(),
        if rounds == 1 { "round" } else { "rounds" }
    );
    let targets =
        [(backend.addr.port(), None), (proxy_port, Some(coracle.0.id())), (haproxy_port, Some(haproxy.0.id()))];
    let samples = measure(&targets, duration, rounds, wrk_cpu)?;
    let (ours_peak, ours_rss) = memory_kib(coracle.0.id());
    let (theirs_peak, theirs_rss) = memory_kib(haproxy.0.id());
    drop(coracle);
    drop(haproxy);

    let rows = rows(&samples[0], &samples[1], &samples[2], duration);
    let memory = [("proxy peak RSS (MiB)", ours_peak, theirs_peak), ("proxy RSS at end (MiB)", ours_rss, theirs_rss)];
    let memory = memory.into_iter().map(|(name, ours, theirs)| Row {
        name,
        direct: Vec::new(),
        ours: vec![ours as f64 / 1024.0],
        theirs: vec![theirs as f64 / 1024.0],
        higher_is_better: Some(false),
    });
    table::print(&rows.into_iter().chain(memory).collect::<Vec<_>>());
    Ok(())
}

/// What a row reads from each round.
enum Figure {
    Of(fn(&WrkFigures) -> f64),
    /// Some CPU time per GiB moved, in ms.
    MsPerGib(fn(&WrkFigures) -> Duration),
}

impl Figure {
    fn of(&self, f: &WrkFigures, duration: Duration) -> f64 {
        match self {
            Figure::Of(read) => read(f),
            Figure::MsPerGib(cpu) => {
                let gib = (f.bytes_per_sec * duration.as_secs_f64() / f64::from(1u32 << 30)).max(f64::MIN_POSITIVE);
                cpu(f).as_secs_f64() * 1e3 / gib
            }
        }
    }
}

/// The proxy's CPU time over the requests it carried: less noisy than the rates on a
/// shared machine, since it does not depend on how much CPU the others left it.
fn proxy_us_per_request(f: &WrkFigures) -> f64 {
    f.proxy_cpu.as_secs_f64() * 1e6 / f.requests.max(1) as f64
}

/// The table's rows from the three targets' rounds.
fn rows(direct: &Samples, ours: &Samples, theirs: &Samples, duration: Duration) -> Vec<Row> {
    let (higher, lower) = (Some(true), Some(false));
    // (name, load, figure, has a direct value, which way is better)
    let rows: [(&'static str, usize, Figure, bool, Option<bool>); 9] = [
        ("keep-alive requests/s", KEEP_ALIVE, Figure::Of(|f| f.requests_per_sec), true, higher),
        ("new connections/s", NEW_CONNECTIONS, Figure::Of(|f| f.requests_per_sec), true, higher),
        ("bulk MiB/s", BULK, Figure::Of(|f| f.bytes_per_sec / (1024.0 * 1024.0)), true, higher),
        ("p99 latency keep-alive (ms)", KEEP_ALIVE, Figure::Of(|f| f.p99.as_secs_f64() * 1e3), true, lower),
        ("proxy CPU µs per request", KEEP_ALIVE, Figure::Of(proxy_us_per_request), false, lower),
        ("proxy CPU µs per connection", NEW_CONNECTIONS, Figure::Of(proxy_us_per_request), false, lower),
        ("proxy CPU ms per GiB bulk", BULK, Figure::MsPerGib(|f| f.proxy_cpu), false, lower),
        ("wrk CPU ms per GiB bulk", BULK, Figure::MsPerGib(|f| f.client_cpu), true, None),
        ("backend CPU ms per GiB bulk", BULK, Figure::MsPerGib(|f| f.backend_cpu), true, None),
    ];
    rows.into_iter()
        .map(|(name, load, figure, has_direct, higher_is_better)| {
            let of = |s: &Samples| s[load].iter().map(|f| figure.of(f, duration)).collect::<Vec<f64>>();
            let direct = if has_direct { of(direct) } else { Vec::new() };
            Row { name, direct, ours: of(ours), theirs: of(theirs), higher_is_better }
        })
        .collect()
}
