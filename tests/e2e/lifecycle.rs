//! The daemon's life on the board: it stops promptly on SIGTERM however many Services it
//! serves, leaving its pods running; a second daemon on the same data dir, run dir or cgroup
//! subpath refuses to start, naming the first, and leaves the first one's pods alone; a pod
//! whose readiness flaps every second does not cost a disk write per flip. Every test needs
//! root (containers, ClusterIP listeners) and skips without it.

use coracle_e2e::{bin, inherited, skip_unless_root, wait_for, Daemon, Slot};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const LONG: Duration = Duration::from_secs(90);

/// A daemon with the busybox image loaded, on `config_yaml`.
fn board(config_yaml: &str) -> Daemon {
    let daemon = Daemon::start_with_config(config_yaml);
    daemon.load_busybox("busybox:latest", &["sh"]);
    daemon
}

fn busybox_pod(name: &str, script: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:latest", "imagePullPolicy": "Never",
                                 "command": ["sh", "-c", script]}]}
    })
}

fn create(daemon: &Daemon, path: &str, body: &Value) -> Value {
    let (status, text) = daemon.http("POST", path, Some(&body.to_string()));
    assert_eq!(status, 201, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn get_pod(daemon: &Daemon, name: &str) -> Option<Value> {
    let (status, body) = daemon.http("GET", &format!("{PODS}/{name}"), None);
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Waits until pod `name` runs; returns it.
fn wait_running(daemon: &Daemon, name: &str) -> Value {
    wait_for(&format!("pod {name} Running"), LONG, || {
        get_pod(daemon, name).filter(|p| p["status"]["containerStatuses"][0]["state"]["running"].is_object())
    })
}

/// The host pid of the pod's container, from the runtime's record in `run_dir`.
fn container_pid(run_dir: &Path, pod: &Value) -> i32 {
    let uri = pod["status"]["containerStatuses"][0]["containerID"].as_str().expect("a containerID");
    let id = uri.strip_prefix("coracle://").unwrap();
    let record = std::fs::read_to_string(run_dir.join("containers").join(id).join("state.json")).unwrap();
    serde_json::from_str::<Value>(&record).unwrap()["pid"].as_i64().unwrap() as i32
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A Service block of its own for the 300 Services (a slot's /24 holds 254): apart from the
/// harness's slots (10.200–10.215), the defaults and the other tests' fixed blocks.
const MANY_SERVICES_CIDR: &str = "10.216.0.0/23";
const MANY: usize = 300;

/// With 300 Services (a ClusterIP listener each), SIGTERM used to leave the daemon waiting a
/// second per listener for proxy workers that had already stopped: it never finished in any
/// reasonable time. It must exit, cleanly, and its pod must keep running.
#[test]
fn sigterm_ends_the_daemon_with_300_services_and_its_pod_keeps_running() {
    if skip_unless_root("ClusterIP listeners and containers") {
        return;
    }
    let mut daemon = board(&format!("network:\n  service_cidr: {MANY_SERVICES_CIDR}\n"));
    let run_dir = daemon.root().join("run");
    create(&daemon, PODS, &busybox_pod("kept", "exec sleep 600"));
    let pid = container_pid(&run_dir, &wait_running(&daemon, "kept"));
    let mut addresses = Vec::new();
    for i in 0..MANY {
        let name = format!("svc-{i}");
        let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                          "spec": {"selector": {"app": name}, "ports": [{"port": 8000 + i}]}});
        let svc = create(&daemon, SERVICES, &body);
        let ip: std::net::IpAddr = svc["spec"]["clusterIP"].as_str().expect("a ClusterIP").parse().unwrap();
        addresses.push(std::net::SocketAddr::new(ip, 8000 + i as u16));
    }
    // Every listener bound (a connection is accepted, then closed for lack of endpoints).
    for addr in &addresses {
        wait_for(&format!("the proxy listening on {addr}"), LONG, || {
            std::net::TcpStream::connect_timeout(addr, Duration::from_secs(2)).ok()
        });
    }
    let asked = Instant::now();
    let status = daemon.stop_within(Duration::from_secs(120));
    eprintln!("SIGTERM with {MANY} Services: {:?} until the exit (a figure, not asserted)", asked.elapsed());
    let log = daemon.log();
    let _ =
        Command::new("ip").args(["route", "del", "local", MANY_SERVICES_CIDR, "dev", "lo", "table", "local"]).status();
    let status =
        status.unwrap_or_else(|| panic!("coracled still ran 120 s after SIGTERM with {MANY} Services; log:\n{log}"));
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(log.contains("coracled stopped"), "{log}");
    assert!(alive(pid), "the pod's container kept running across the stop");
}

/// A second coracled sharing exactly one resource with `first`: `data_dir`, `run_dir` or
/// `cgroup_subpath` taken from it, everything else its own. Its exit status and log once it
/// exits; panics if it is still running after a generous bound.
fn second_daemon(first: &Daemon, shared: &str) -> (ExitStatus, String) {
    let dir = tempfile::Builder::new().prefix("coracle-e2e-second-").tempdir().unwrap();
    let own = dir.path();
    let data_dir = if shared == "data_dir" { first.data_dir().to_path_buf() } else { own.join("data") };
    let run_dir = if shared == "run_dir" { first.root().join("run") } else { own.join("run") };
    let subpath = if shared == "cgroup_subpath" {
        first.cgroup_subpath().to_string()
    } else {
        format!("coracle-test-second-{}", std::process::id())
    };
    let slot = Slot::claim();
    let log_path = own.join("coracled.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(bin("coracled"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--socket")
        .arg(own.join("coracle.sock"))
        .arg("--manifests")
        .arg(own.join("manifests"))
        .env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| inherited(name)))
        .env("RUST_LOG", "info")
        .envs(slot.overrides("", &run_dir, &subpath))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second daemon on the same {shared} still runs; log:\n{}", read(&log_path));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    slot.clean_up();
    (status, read(&log_path))
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_second_daemon_on_the_same_data_dir_run_dir_or_cgroup_subpath_refuses_to_start() {
    if skip_unless_root("containers, and the cgroup subpath's host-wide lock") {
        return;
    }
    let daemon = board("");
    let run_dir = daemon.root().join("run");
    create(&daemon, PODS, &busybox_pod("mine", "exec sleep 600"));
    let before = wait_running(&daemon, "mine");
    let pid = container_pid(&run_dir, &before);
    let owner = format!("another coracled (pid {}, data dir {}", daemon.pid().unwrap(), daemon.data_dir().display());
    for (shared, value) in [
        ("data_dir", daemon.data_dir().display().to_string()),
        ("run_dir", run_dir.display().to_string()),
        ("cgroup_subpath", daemon.cgroup_subpath().to_string()),
    ] {
        let (status, log) = second_daemon(&daemon, shared);
        assert!(!status.success(), "{shared}: {log}");
        assert!(log.contains(&format!("{shared} {value:?} is in use by {owner}")), "{shared}: {log}");
        // It stopped before looking at anything: the first daemon's pod is as it was.
        assert!(!log.contains("cleaning up") && !log.contains("removing container"), "{shared}: {log}");
        assert!(alive(pid), "the first daemon's container survived a second daemon on its {shared}");
    }
    let after = get_pod(&daemon, "mine").expect("the pod is still there");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0, "{after}");
    assert_eq!(container_pid(&run_dir, &after), pid);
    assert!(after["status"]["containerStatuses"][0]["state"]["running"].is_object(), "{after}");
}

/// Bytes the process has caused to be written to storage (`/proc/PID/io`).
fn write_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("reading /proc/PID/io");
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap()
}

/// How long the flapping pod is watched: three checkpoint periods.
const FLAPPING: Duration = Duration::from_secs(30);

/// A readiness probe that flips every second changes the pod's status every second. Watchers
/// see each flip, but the disk gets the status at most once per checkpoint (10 s): over 30 s,
/// a few writes, not thirty. Measured from /proc/PID/io's write_bytes (each write of the pod's
/// file dirties at least a page); the daemon's own log lines land in pages already dirty.
#[test]
fn a_flapping_readiness_probe_costs_at_most_one_status_write_per_checkpoint() {
    if skip_unless_root("containers") {
        return;
    }
    let mut daemon = board("");
    let mut pod = busybox_pod("flapping", "exec sleep 600");
    pod["spec"]["containers"][0]["readinessProbe"] = json!({
        "exec": {"command": ["sh", "-c", "[ $(( $(date +%s) % 2 )) = 0 ]"]},
        "periodSeconds": 1, "successThreshold": 1, "failureThreshold": 1
    });
    create(&daemon, PODS, &pod);
    wait_running(&daemon, "flapping");
    // Settled: the pod has been written once at least, and flaps.
    let mut last = wait_for("the pod Ready once", LONG, || get_pod(&daemon, "flapping").filter(ready).map(|_| true));
    let pid = daemon.pid().unwrap();
    let start = write_bytes(pid);
    let until = Instant::now() + FLAPPING;
    let (mut flips, mut newest) = (0, 0u64);
    while Instant::now() < until {
        if let Some(p) = get_pod(&daemon, "flapping") {
            newest = newest.max(version(&p));
            if ready(&p) != last {
                flips += 1;
                last = !last;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = write_bytes(pid) - start;
    let pages = written.div_ceil(4096);
    eprintln!("{flips} readiness flips seen through the API in {FLAPPING:?}; the daemon wrote {written} bytes ({pages} pages)");
    // The probe did flap, and the API showed it at once.
    assert!(flips >= 10, "only {flips} flips seen: the probe did not flap");
    // Three checkpoints, and slack for log pages (6 pages measured on a quiet machine, 11
    // under a load of 17): far below one write per flip, which was 45 pages for 29 flips.
    assert!(pages <= 16, "{pages} pages written for {flips} flips in {FLAPPING:?}");
    // A clean stop writes what is still in memory: the file holds at least the newest status
    // the API showed (a checkpoint alone would leave it up to 10 s, some ten flips, behind).
    for _ in 0..20 {
        if let Some(p) = get_pod(&daemon, "flapping") {
            newest = newest.max(version(&p));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = daemon.stop().expect("the daemon was running");
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
    let file = daemon.data_dir().join("objects/pods/default/flapping.json");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        version(&stored) >= newest,
        "the file holds version {} after the stop; the API showed {newest}",
        version(&stored)
    );
}

fn version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Node ports come from `network.node_port_range`: each test daemon has a range of its own
/// (the harness's slot), apart from the default one an installed daemon uses, so no test
/// daemon ever joins another daemon's NodePort listener. A range that is not one is refused
/// at start, naming the setting.
#[test]
fn each_daemon_allocates_node_ports_from_its_own_range() {
    let daemons = [Daemon::start(), Daemon::start()];
    let mut ports = Vec::new();
    for daemon in &daemons {
        let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
                          "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let svc = create(daemon, SERVICES, &body);
        let port = svc["spec"]["ports"][0]["nodePort"].as_u64().expect("a nodePort") as u32;
        assert!(daemon.slot().node_ports().contains(&port), "{port} outside {}", daemon.slot().node_port_range());
        assert!(!(30000..=32767).contains(&port), "{port} is in the installed daemon's range");
        ports.push(port);
    }
    assert_ne!(ports[0], ports[1]);
    let (status, log) =
        Daemon::start_expecting_exit("network:\n  node_port_range: 40000-30000\n", LONG).expect("refused at start");
    assert!(!status.success(), "{log}");
    assert!(log.contains("network.node_port_range \"40000-30000\": the first port is above the last"), "{log}");
}
