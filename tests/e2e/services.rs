//! Services on the board with real pods, in each network mode: three replicas, each
//! answering with its own hostname, reached through an allocated ClusterIP and NodePort by
//! the proxy; a pod reaching the Service by its environment variables and by its /etc/hosts
//! name; a LoadBalancer's EXTERNAL-IP; an Endpoints watch timing how fast a deleted pod
//! leaves. Modes: CNI (bridge), hostNetwork pods, loopback-only (`network.mode: none`).
//! Needs root and skips without it.

use coracle_e2e::{skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(90);
/// The bound on the endpoint-removal check: generous, as the figure itself is printed.
const REMOVAL_BOUND: Duration = Duration::from_secs(5);

/// The daemons of these tests serve Services on the host: one at a time. Their ClusterIPs
/// and node ports differ all the same: each has a Service CIDR and a node port range of its
/// own (the harness's).
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
            // The bridge, pod CIDR and Service CIDR are the harness's (`Daemon::slot`).
            Mode::Cni => "network:\n  mode: cni\n",
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

fn start(mode: Mode) -> Daemon {
    start_with(mode, &[])
}

/// `start` with more daemon arguments.
fn start_with(mode: Mode, extra: &[&str]) -> Daemon {
    let daemon = Daemon::start_with_config_args(mode.config(), extra);
    daemon.load_busybox("busybox:latest", &["sh"]);
    daemon
}

fn create(daemon: &Daemon, resource: &str, body: &Value) -> Value {
    let (status, text) =
        daemon.http("POST", &format!("/api/v1/namespaces/default/{resource}"), Some(&body.to_string()));
    assert_eq!(status, 201, "creating {resource}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `#[test] fn NAME()` running `scenario(mode)`, skipped without root.
macro_rules! mode_test {
    ($($name:ident: $scenario:ident($mode:expr);)*) => {$(
        #[test]
        fn $name() {
            if skip_unless_root(stringify!($name)) {
                return;
            }
            $scenario($mode);
        }
    )*};
}

mode_test! {
    services_with_cni_pods: exercise(Mode::Cni);
    services_with_host_network_pods: exercise(Mode::HostNetwork);
    services_with_loopback_only_pods: exercise(Mode::LoopbackOnly);
    port_forward_with_cni_pods: port_forward(Mode::Cni);
    port_forward_with_host_network_pods: port_forward(Mode::HostNetwork);
    port_forward_with_loopback_only_pods: port_forward(Mode::LoopbackOnly);
    // hostNetwork replicas of one Deployment would all bind the same host port: no surge pod
    // could start, as in Kubernetes, so the rolling update runs in the two other modes.
    rolling_update_under_load_with_cni_pods: rolling_update_under_load(Mode::Cni);
    rolling_update_under_load_with_loopback_only_pods: rolling_update_under_load(Mode::LoopbackOnly);
}

fn exercise(mode: Mode) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut daemon = start(mode);
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
    // From the daemon's own range (the harness's), never the installed daemon's default one.
    assert!(daemon.slot().node_ports().contains(&u32::from(node_port)), "{svc}");
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
    let range = daemon.slot().node_port_range();
    assert!(
        body.contains(&format!("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is {range}")),
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

/// A running `coracle port-forward`, killed when dropped; its stdout lines arrive on `lines`.
struct PortForward {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl PortForward {
    /// Starts `coracle GLOBAL… port-forward ARGS…`.
    fn start(global: &[&str], args: &[&str]) -> PortForward {
        let mut child = std::process::Command::new(coracle_e2e::bin("coracle"))
            .args(global)
            .arg("port-forward")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawning coracle port-forward");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        PortForward { child, lines }
    }

    /// The next stdout line within `LONG`.
    fn line(&self) -> String {
        self.lines.recv_timeout(LONG).expect("a line from coracle port-forward")
    }

    /// The local port of the first `Forwarding from 127.0.0.1:PORT -> REMOTE` line, checking REMOTE.
    fn local_port(&self, remote: u16) -> u16 {
        let line = self.line();
        let rest = line.strip_prefix("Forwarding from 127.0.0.1:").unwrap_or_else(|| panic!("{line}"));
        let (port, to) = rest.split_once(" -> ").unwrap_or_else(|| panic!("{line}"));
        assert_eq!(to, remote.to_string(), "{line}");
        port.parse().unwrap()
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET through `127.0.0.1:port` with curl: (status code, body), or None when curl failed.
fn try_get(port: u16, path: &str) -> Option<(String, Vec<u8>)> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("running curl");
    if !out.status.success() {
        eprintln!("curl :{port}{path}: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').expect("curl's status line");
    let code = String::from_utf8_lossy(&body[split + 1..]).to_string();
    body.truncate(split);
    Some((code, body))
}

/// `try_get` that must succeed.
fn http_get(port: u16, path: &str) -> (String, Vec<u8>) {
    try_get(port, path).unwrap_or_else(|| panic!("GET 127.0.0.1:{port}{path} failed"))
}

/// A busybox httpd pod serving its name at / and 1 MiB of zeros at /big.
fn web_pod(mode: Mode) -> Value {
    let port = mode.replica_port(0);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"terminationGracePeriodSeconds": 1, "hostNetwork": mode == Mode::HostNetwork, "containers": [{
            "name": "web", "image": "busybox:latest", "imagePullPolicy": "Never",
            "command": ["sh", "-c", format!("mkdir -p /tmp/www && echo web > /tmp/www/index.html && \
                dd if=/dev/zero of=/tmp/www/big bs=1024 count=1024 2>/dev/null && exec httpd -f -p {port} -h /tmp/www")],
            "ports": [{"name": "http", "containerPort": port}]
        }]}
    })
}

/// `coracle port-forward` to a busybox httpd through svc/ (unix socket) and pod/ (TCP with a
/// token), curl through both; kubectl's SPDY and WebSocket requests get a clear refusal, not a hang.
fn port_forward(mode: Mode) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "pf-token\n").unwrap();
    let api_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{api_port}");
    let mut daemon = start_with(mode, &["--listen", &listen, "--token-file", token_file.path().to_str().unwrap()]);
    let pod_port = mode.replica_port(0);
    create(&daemon, "pods", &web_pod(mode));
    create(
        &daemon,
        "services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "front", "port": 80, "targetPort": "http"}]}}),
    );
    wait_for("the web pod Ready", LONG, || {
        let pod = daemon.get_json("/api/v1/namespaces/default/pods/web");
        let ready =
            pod["status"]["conditions"].as_array()?.iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    });
    let socket = daemon.socket().to_str().unwrap().to_string();

    // svc/ over the unix socket: a free local port, the Service port mapped to the named targetPort.
    let forward = PortForward::start(&["--socket", &socket], &["svc/web", ":80"]);
    let local = forward.local_port(pod_port);
    let (code, body) = wait_for("httpd answering through port-forward svc/web", LONG, || {
        try_get(local, "/").filter(|got| got.0 == "200")
    });
    assert_eq!((code.as_str(), String::from_utf8_lossy(&body).trim()), ("200", "web"));
    let handled = (0..4).map(|_| forward.line()).find(|l| l.starts_with("Handling connection for "));
    assert_eq!(handled, Some(format!("Handling connection for {local}")));
    let (code, big) = http_get(local, "/big");
    assert_eq!((code.as_str(), big.len()), ("200", 1 << 20), "1 MiB through the forward");
    assert!(big.iter().all(|b| *b == 0));
    drop(forward);

    // pod/ over TCP with the token, a named container port and a chosen local port.
    let server = format!("http://{listen}");
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let forward =
        PortForward::start(&["--server", &server, "--token", "pf-token"], &["pod/web", &format!("{local}:http")]);
    assert_eq!(forward.local_port(pod_port), local);
    let (code, body) = http_get(local, "/");
    assert_eq!((code.as_str(), String::from_utf8_lossy(&body).trim()), ("200", "web"));
    drop(forward);

    // A port nothing listens on inside the pod: the connection closes, the error is printed.
    let forward = PortForward::start(&["--socket", &socket], &["pod/web", ":9"]);
    let local = forward.local_port(9);
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .arg(format!("http://127.0.0.1:{local}/"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "nothing listens on port 9 in the pod");
    drop(forward);

    // What stock kubectl sends (WebSocket first, then SPDY/3.1): a clear 400 at once, not a hang.
    let pf = "http://localhost/api/v1/namespaces/default/pods/web/portforward?ports=8080";
    for (method, upgrade, extra) in [
        ("GET", "websocket", ["Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: v2.portforward.k8s.io"]),
        ("POST", "SPDY/3.1", ["X-Stream-Protocol-Version: portforward.k8s.io", "Content-Length: 0"]),
    ] {
        let out = daemon.curl(&[
            "--max-time",
            "10",
            "-X",
            method,
            "-H",
            "Connection: Upgrade",
            "-H",
            &format!("Upgrade: {upgrade}"),
            "-H",
            extra[0],
            "-H",
            extra[1],
            "-w",
            "\n%{http_code}",
            pf,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {upgrade}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.ends_with("\n400"), "{upgrade}: {text}");
        assert!(
            text.contains(&format!(
                "port-forward over {upgrade} is not supported: coracled speaks coracle-portforward.v1"
            )),
            "{text}"
        );
    }

    // The pod goes: port-forward ends with an error, as kubectl's does.
    let mut forward = PortForward::start(&["--socket", &socket], &["pod/web", ":http"]);
    forward.local_port(pod_port);
    let out = daemon.curl(&["-s", "-X", "DELETE", "http://localhost/api/v1/namespaces/default/pods/web"]);
    assert!(out.status.success(), "deleting the pod: {}", String::from_utf8_lossy(&out.stderr));
    let status = wait_for("port-forward exiting once its pod is deleted", LONG, || forward.child.try_wait().ok()?);
    assert_eq!(status.code(), Some(1), "port-forward's exit status once its pod went");
    daemon.stop();
}

/// A daemon that has wired a pod into its bridge owns it: a second daemon configured with the
/// same bridge, or another bridge over an overlapping pod CIDR, exits at start naming the owner.
#[test]
fn a_second_daemon_on_an_owned_bridge_fails_at_start() {
    if skip_unless_root("a_second_daemon_on_an_owned_bridge_fails_at_start") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut daemon = start(Mode::Cni);
    create(&daemon, "pods", &web_pod(Mode::Cni));
    wait_for("the web pod Running on the bridge", LONG, || {
        let pod = daemon.get_json("/api/v1/namespaces/default/pods/web");
        (pod["status"]["phase"] == "Running" && pod["status"]["podIP"].is_string()).then_some(())
    });
    let owner =
        format!("owned by another coracled (pid {}, data dir {}", daemon.pid().unwrap(), daemon.data_dir().display());

    let (bridge, pod_cidr) = (daemon.slot().bridge(), daemon.slot().pod_cidr());
    let same = format!("network:\n  bridge: {bridge}\n  pod_cidr: {pod_cidr}\n");
    let (status, log) = Daemon::start_expecting_exit(&same, LONG).expect("the second daemon exits at start");
    assert!(!status.success(), "{log}");
    assert!(log.contains(&format!("network.bridge {bridge:?} is {owner}")), "{log}");

    // The upper half of the owner's /24, on a bridge of its own.
    let half = pod_cidr.replace(".0/24", ".128/25");
    let overlapping = format!("network:\n  bridge: {bridge}x\n  pod_cidr: {half}\n");
    let (status, log) =
        Daemon::start_expecting_exit(&overlapping, LONG).expect("the overlapping daemon exits at start");
    assert!(!status.success(), "{log}");
    assert!(log.contains(&format!("network.pod_cidr {half} overlaps {pod_cidr} of bridge {bridge:?}")), "{log}");

    let (status, body) = daemon.http("DELETE", "/api/v1/namespaces/default/pods/web", None);
    assert_eq!(status, 200, "{body}");
    wait_for("the web pod gone", LONG, || {
        (daemon.http("GET", "/api/v1/namespaces/default/pods/web", None).0 == 404).then_some(())
    });
    daemon.stop();
}

/// The rolling-update Deployment: busybox httpd answering `VERSION hostname`, Ready once it
/// serves.
fn rolling_deployment(version: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "roll"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "roll"}},
            "template": {
                "metadata": {"labels": {"app": "roll"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                    "name": "web", "image": "busybox:latest", "imagePullPolicy": "Never",
                    "env": [{"name": "VERSION", "value": version}],
                    "command": ["sh", "-c", "mkdir -p /tmp/www && echo $VERSION $(hostname) > /tmp/www/index.html && \
                        exec httpd -f -p 8080 -h /tmp/www"],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"exec": {"command": ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]},
                                       "periodSeconds": 1}
                }]}
            }
        }
    })
}

/// One request over a new connection: the answer's body, or why it failed.
fn request_once(addr: std::net::SocketAddr) -> Result<String, String> {
    use std::io::Write;
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: roll\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| format!("read: {e}"))?;
    if !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {answer:?}"));
    }
    Ok(answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string())
}

/// What the steady client saw.
#[derive(Default)]
struct Load {
    ok: usize,
    failures: Vec<String>,
    versions: BTreeSet<String>,
}

/// A 3-replica Deployment behind a NodePort Service, rolled to a new env while a steady
/// client (three new connections every 10 ms: ClusterIP, NodePort, ClusterIP) counts failed
/// requests: there must be none, and the rollout must complete.
fn rolling_update_under_load(mode: Mode) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut daemon = start(mode);
    let (status, body) = daemon.http(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        Some(&rolling_deployment("v1").to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let svc = create(
        &daemon,
        "services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "roll"},
                "spec": {"type": "NodePort", "selector": {"app": "roll"}, "ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    let cluster_ip: IpAddr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;
    let targets = [
        std::net::SocketAddr::new(cluster_ip, 80),
        std::net::SocketAddr::new(IpAddr::from([127, 0, 0, 1]), node_port),
        std::net::SocketAddr::new(cluster_ip, 80),
    ];
    let rolled_out = |version: &'static str| {
        let daemon = &daemon;
        move || {
            let d = daemon.get_json("/apis/apps/v1/namespaces/default/deployments/roll");
            let s = &d["status"];
            let done = d["metadata"]["generation"].as_i64() <= s["observedGeneration"].as_i64()
                && s["updatedReplicas"] == 3
                && s["replicas"] == 3
                && s["availableReplicas"] == 3
                && d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == version;
            done.then_some(())
        }
    };
    wait_for("the v1 rollout complete", LONG, rolled_out("v1"));
    answers_matching(targets[0], "v1 ");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut load = Load::default();
            // Bounded: the test stops it once the rollout is done, and it never outlives 3 minutes.
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                for addr in targets {
                    match request_once(addr) {
                        Ok(body) => {
                            load.ok += 1;
                            load.versions.insert(body.split(' ').next().unwrap_or_default().to_string());
                        }
                        Err(e) => load.failures.push(format!("{addr}: {e}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            load
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "VERSION", "value": "v2"}]}]}}}});
    let resp = daemon.request(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/roll",
        &[("Content-Type", "application/strategic-merge-patch+json")],
        Some(patch.to_string().as_bytes()),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let started = Instant::now();
    wait_for("the v2 rollout complete", Duration::from_secs(150), rolled_out("v2"));
    let took = started.elapsed();
    // Old pods drain after the rollout counts them gone: keep the load on until they are.
    wait_for("the v1 pods gone", LONG, || {
        let pods = daemon.get_json("/api/v1/namespaces/default/pods?labelSelector=app%3Droll");
        (pods["items"].as_array()?.len() == 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let load = client.join().unwrap();
    eprintln!(
        "{mode:?}: rollout took {took:?}; {} requests answered, {} failed; versions seen {:?}",
        load.ok,
        load.failures.len(),
        load.versions
    );
    assert!(
        load.failures.is_empty(),
        "{} failed requests, first: {:?}",
        load.failures.len(),
        &load.failures[..load.failures.len().min(10)]
    );
    assert!(load.ok > 100, "the client kept asking: {}", load.ok);
    assert_eq!(load.versions, ["v1", "v2"].iter().map(|s| s.to_string()).collect(), "both versions answered");
    answers_matching(targets[1], "v2 ");

    let (status, body) = daemon.http("DELETE", "/apis/apps/v1/namespaces/default/deployments/roll", None);
    assert_eq!(status, 200, "{body}");
    wait_for("the roll pods gone", LONG, || {
        let pods = daemon.get_json("/api/v1/namespaces/default/pods?labelSelector=app%3Droll");
        pods["items"].as_array()?.is_empty().then_some(())
    });
    daemon.stop();
}

/// Waits until answers at `addr` start with `prefix` (every replica of one version serving).
fn answers_matching(addr: std::net::SocketAddr, prefix: &str) {
    wait_for(&format!("answers at {addr} starting with {prefix:?}"), LONG, || {
        let got: Vec<_> = (0..6).map(|_| request_once(addr)).collect();
        got.iter().all(|r| r.as_ref().is_ok_and(|b| b.starts_with(prefix))).then_some(()).or_else(|| {
            eprintln!("answers at {addr}: {got:?}");
            None
        })
    });
}
