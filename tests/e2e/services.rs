//! Services on the board with real pods, in each network mode: three replicas, each
//! answering with its own hostname, reached through an allocated ClusterIP and NodePort by
//! the proxy; a pod reaching the Service by its environment variables and by its /etc/hosts
//! name; a LoadBalancer's EXTERNAL-IP; an Endpoints watch timing how fast a deleted pod
//! leaves. Modes: CNI (bridge), hostNetwork pods, loopback-only (`network.mode: none`).
//! Needs root and skips without it.

use coracle_e2e::{images, skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(90);
/// The bound on the endpoint-removal check: generous, as the figure itself is printed.
const REMOVAL_BOUND: Duration = Duration::from_secs(5);

/// The daemons of these tests bind the same ClusterIPs and node ports on the host: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Cni,
    HostNetwork,
    LoopbackOnly,
}

impl Mode {
    fn config(self) -> &'static str {
        match self {
            Mode::Cni => "network:\n  bridge: corae2e0\n  pod_cidr: 10.233.0.0/24\n",
            Mode::HostNetwork => "network:\n  mode: host\n",
            Mode::LoopbackOnly => "network:\n  mode: none\n",
        }
    }

    /// The port replica `i` listens on: host-network replicas share the host's ports.
    fn replica_port(self, i: usize) -> u16 {
        if self == Mode::HostNetwork {
            18081 + i as u16
        } else {
            8080
        }
    }
}

fn replica(mode: Mode, name: &str, i: usize) -> Value {
    let port = mode.replica_port(i);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "hello"}},
        "spec": {"terminationGracePeriodSeconds": 1, "hostNetwork": mode == Mode::HostNetwork, "containers": [{
            "name": "hello", "image": "busybox:latest", "imagePullPolicy": "Never",
            "command": ["sh", "-c", format!("while true; do echo {name} | nc -l -p {port}; done")],
            "ports": [{"name": "http", "containerPort": port}]
        }]}
    })
}

/// A pod that asks the `hello` Service once through its environment variables and once
/// through the address /etc/hosts gives its full name, printing both answers.
fn client(mode: Mode) -> Value {
    let script = "while true; do \
        h=$(busybox awk '/ hello.default.svc.cluster.local/ {print $1}' /etc/hosts); \
        echo \"env=$(nc -w 3 $HELLO_SERVICE_HOST $HELLO_SERVICE_PORT) hosts=$(nc -w 3 $h 80) ip=$h\"; \
        sleep 0.3; done";
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {"terminationGracePeriodSeconds": 1, "hostNetwork": mode == Mode::HostNetwork, "containers": [{
            "name": "client", "image": "busybox:latest", "imagePullPolicy": "Never",
            "command": ["sh", "-c", script]
        }]}
    })
}

/// One connection's whole answer, or None when nothing answered.
fn ask(ip: IpAddr, port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.trim().to_string()).filter(|a| !a.is_empty())
}

/// Every name answering at `ip:port`, once `want` have answered.
fn answers(ip: IpAddr, port: u16, want: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    wait_for(&format!("{want} replicas answering at {ip}:{port}"), LONG, || {
        if let Some(a) = ask(ip, port) {
            seen.insert(a);
        }
        (seen.len() >= want).then(|| seen.clone())
    })
}

/// The node address the proxy shows as EXTERNAL-IP: the source of the host's outward route.
fn node_address() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    probe.map(|a| a.ip()).ok().filter(|ip| !ip.is_unspecified()).unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

fn start(mode: Mode) -> (tempfile::TempDir, Daemon) {
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("config.yaml");
    std::fs::write(&path, mode.config()).unwrap();
    let mut daemon = Daemon::start_with(&["--config", path.to_str().unwrap()]);
    let archive = images::busybox_docker_archive(daemon.root(), "busybox:latest", &["sh"]);
    if !daemon.ctl(&["image", "load", archive.to_str().unwrap()]).status.success() {
        daemon.stop();
        let store = coracled::image::ImageStore::open(daemon.data_dir()).expect("opening the image store");
        store.load(&archive).expect("loading busybox");
        drop(store);
        daemon.restart();
    }
    (config, daemon)
}

fn create(daemon: &Daemon, resource: &str, body: &Value) -> Value {
    let (status, text) =
        daemon.http("POST", &format!("/api/v1/namespaces/default/{resource}"), Some(&body.to_string()));
    assert_eq!(status, 201, "creating {resource}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn exercise(mode: Mode) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (_config, mut daemon) = start(mode);
    let names = ["hello-a", "hello-b", "hello-c"];
    for (i, name) in names.iter().enumerate() {
        create(&daemon, "pods", &replica(mode, name, i));
    }
    // No clusterIP, no nodePort: both are allocated in the create call.
    let svc = create(
        &daemon,
        "services",
        &json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
            "spec": {"type": "NodePort", "selector": {"app": "hello"}, "ports": [{"port": 80, "targetPort": "http"}]}
        }),
    );
    let cluster_ip: IpAddr = svc["spec"]["clusterIP"].as_str().expect("an allocated clusterIP").parse().unwrap();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().expect("an allocated nodePort") as u16;
    assert!((30000..=32767).contains(&node_port), "{svc}");
    let ep = wait_for("Endpoints listing three Ready addresses", LONG, || {
        let (status, body) = daemon.http("GET", "/api/v1/namespaces/default/endpoints/hello", None);
        let v: Value = serde_json::from_str(&body).ok()?;
        let n: usize = v["subsets"].as_array()?.iter().map(|s| s["addresses"].as_array().map_or(0, Vec::len)).sum();
        (status == 200 && n == 3).then_some(v)
    });
    let ports: BTreeSet<u64> =
        ep["subsets"].as_array().unwrap().iter().filter_map(|s| s["ports"][0]["port"].as_u64()).collect();
    let want_ports: BTreeSet<u64> = (0..3).map(|i| u64::from(mode.replica_port(i))).collect();
    assert_eq!(ports, want_ports, "the named targetPort resolves per pod: {ep}");
    let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(answers(cluster_ip, 80, 3), want, "through the ClusterIP");
    assert_eq!(answers(IpAddr::from([127, 0, 0, 1]), node_port, 3), want, "through the NodePort");

    // A pod started after the Service finds it by environment and by /etc/hosts name.
    create(&daemon, "pods", &client(mode));
    let line = wait_for("the client pod reaching hello by env and by name", LONG, || {
        let (status, log) = daemon.http("GET", "/api/v1/namespaces/default/pods/client/log", None);
        (status == 200).then_some(())?;
        log.lines().find(|l| l.starts_with("env=hello-") && l.contains(" hosts=hello-")).map(str::to_string)
    });
    assert!(line.ends_with(&format!(" ip={cluster_ip}")), "/etc/hosts names the ClusterIP: {line}");

    // A LoadBalancer: EXTERNAL-IP is the node address, served on the service port there.
    create(
        &daemon,
        "services",
        &json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello-lb"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "hello"}, "ports": [{"port": 8090, "targetPort": "http"}]}
        }),
    );
    let external: IpAddr = wait_for("the LoadBalancer's EXTERNAL-IP", LONG, || {
        let (_, body) = daemon.http("GET", "/api/v1/namespaces/default/services/hello-lb", None);
        let v: Value = serde_json::from_str(&body).ok()?;
        v["status"]["loadBalancer"]["ingress"][0]["ip"].as_str()?.parse().ok()
    });
    assert_eq!(external, node_address());
    if !external.is_loopback() {
        assert_eq!(answers(external, 8090, 3), want, "through the EXTERNAL-IP");
    }

    // A deleted pod leaves the Endpoints as soon as it starts terminating; timed by a watch.
    let (_, body) = daemon.http("GET", "/api/v1/namespaces/default/endpoints/hello", None);
    let rv = serde_json::from_str::<Value>(&body).unwrap()["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut watch = daemon.watch(&format!(
        "/api/v1/namespaces/default/endpoints?watch=true&fieldSelector=metadata.name=hello&resourceVersion={rv}"
    ));
    let started = Instant::now();
    let (status, body) = daemon.http("DELETE", "/api/v1/namespaces/default/pods/hello-a", None);
    assert_eq!(status, 200, "{body}");
    let removed = loop {
        let event = watch.next_event(REMOVAL_BOUND).expect("an Endpoints event without hello-a");
        let addresses = event["object"]["subsets"].to_string();
        if !addresses.contains("hello-a") {
            break started.elapsed();
        }
    };
    eprintln!("{mode:?}: the deleted pod left the Endpoints after {removed:?}");
    assert!(removed < REMOVAL_BOUND, "{removed:?}");
    let rest: BTreeSet<String> = ["hello-b", "hello-c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(answers(cluster_ip, 80, 2), rest, "only the remaining replicas answer");

    // Deleting the Service frees its ClusterIP: asking for it again succeeds.
    let (status, body) = daemon.http("DELETE", "/api/v1/namespaces/default/services/hello", None);
    assert_eq!(status, 200, "{body}");
    create(
        &daemon,
        "services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "again"},
                "spec": {"clusterIP": cluster_ip.to_string(), "ports": [{"port": 80}]}}),
    );
    daemon.stop();
    if mode == Mode::Cni {
        let _ = std::process::Command::new("ip").args(["link", "del", "corae2e0"]).status();
    }
}

#[test]
fn services_with_cni_pods() {
    if skip_unless_root("services_with_cni_pods") {
        return;
    }
    exercise(Mode::Cni);
}

#[test]
fn services_with_host_network_pods() {
    if skip_unless_root("services_with_host_network_pods") {
        return;
    }
    exercise(Mode::HostNetwork);
}

#[test]
fn services_with_loopback_only_pods() {
    if skip_unless_root("services_with_loopback_only_pods") {
        return;
    }
    exercise(Mode::LoopbackOnly);
}

/// Allocation through every write path: taken or out-of-range requests are 422 naming the
/// field; `coracle apply` and server-side apply of the same manifest twice change nothing.
#[test]
fn allocation_errors_and_repeated_applies() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut daemon = Daemon::start();
    let manifest =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n";
    for round in 1..=2 {
        let out = daemon.ctl_stdin(&["apply", "-f", "-"], manifest);
        assert!(out.status.success(), "coracle apply #{round}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (_, body) = daemon.http("GET", "/api/v1/namespaces/default/services/web", None);
    let web: Value = serde_json::from_str(&body).unwrap();
    let ip = web["spec"]["clusterIP"].as_str().expect("an allocated clusterIP").to_string();
    let node_port = web["spec"]["ports"][0]["nodePort"].as_u64().expect("an allocated nodePort");
    let taken = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "copy"},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    let (status, body) = daemon.http("POST", "/api/v1/namespaces/default/services", Some(&taken.to_string()));
    assert_eq!(status, 422, "{body}");
    let want = format!("Service \\\"copy\\\" is invalid: spec.clusterIP: Invalid value: \\\"{ip}\\\": provided IP is already allocated");
    assert!(body.contains(&want), "{body}");
    let low = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "low"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}});
    let (status, body) = daemon.http("POST", "/api/v1/namespaces/default/services", Some(&low.to_string()));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{body}"
    );
    let same = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}});
    let (status, body) = daemon.http("POST", "/api/v1/namespaces/default/services", Some(&same.to_string()));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains(&format!(
            "spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
        )),
        "{body}"
    );
    // Server-side apply, twice, of a manifest that names neither.
    let ssa = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ssa"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 81}]}});
    let mut seen = Vec::new();
    for round in 1..=2 {
        let resp = daemon.request(
            "PATCH",
            "/api/v1/namespaces/default/services/ssa?fieldManager=e2e",
            &[("Content-Type", "application/apply-patch+yaml")],
            Some(ssa.to_string().as_bytes()),
        );
        assert!(resp.status == 200 || resp.status == 201, "server-side apply #{round}: {} {}", resp.status, resp.body);
        let v = resp.json();
        seen.push((v["spec"]["clusterIP"].clone(), v["spec"]["ports"][0]["nodePort"].clone()));
    }
    assert!(seen[0].0.is_string() && seen[0].1.is_u64(), "{seen:?}");
    assert_eq!(seen[0], seen[1], "the second apply keeps the allocations");
    // The manifests folder: allocated at create, kept when the file changes.
    let file = |label: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: from-file\n  labels: {{rev: \"{label}\"}}\nspec:\n  type: NodePort\n  ports:\n  - port: 82\n")
    };
    let stored = |rev: &'static str| {
        let daemon = &daemon;
        move || {
            let (status, body) = daemon.http("GET", "/api/v1/namespaces/default/services/from-file", None);
            let v: Value = serde_json::from_str(&body).ok()?;
            (status == 200 && v["metadata"]["labels"]["rev"] == rev).then_some(v)
        }
    };
    daemon.write_manifest("svc.yaml", &file("1"));
    let first = wait_for("the manifest's Service", LONG, stored("1"));
    daemon.write_manifest("svc.yaml", &file("2"));
    let second = wait_for("the manifest's Service updated", LONG, stored("2"));
    assert!(first["spec"]["clusterIP"].is_string() && first["spec"]["ports"][0]["nodePort"].is_u64(), "{first}");
    assert_eq!(
        (&first["spec"]["clusterIP"], &first["spec"]["ports"][0]["nodePort"]),
        (&second["spec"]["clusterIP"], &second["spec"]["ports"][0]["nodePort"])
    );
    daemon.stop();
}
