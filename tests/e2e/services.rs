//! Services on the board: three replicas, each answering with its own hostname, reached
//! through a ClusterIP and a NodePort by the proxy, with Endpoints kept current. Needs root
//! (pods run in namespaces wired by CNI) and skips without it.

use coracle_e2e::{images, skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(90);
const CLUSTER_IP: &str = "10.96.77.7";
const NODE_PORT: u16 = 31777;

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "hello"}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "hello", "image": "busybox:latest", "imagePullPolicy": "Never",
            "command": ["sh", "-c", "while true; do hostname | nc -l -p 8080; done"],
            "ports": [{"name": "http", "containerPort": 8080}]
        }]}
    })
}

/// One connection's whole answer, or None when nothing answered.
fn ask(addr: (&str, u16)) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&format!("{}:{}", addr.0, addr.1).parse().ok()?, Duration::from_secs(2))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.trim().to_string()).filter(|a| !a.is_empty())
}

/// Every hostname answering at `addr`, once all three have answered.
fn all_three(addr: (&str, u16)) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    wait_for(&format!("three replicas answering at {}:{}", addr.0, addr.1), LONG, || {
        if let Some(a) = ask(addr) {
            seen.insert(a);
        }
        (seen.len() >= 3).then(|| seen.clone())
    })
}

#[test]
fn three_replicas_answer_through_cluster_ip_and_node_port() {
    if skip_unless_root("three_replicas_answer_through_cluster_ip_and_node_port") {
        return;
    }
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("config.yaml");
    std::fs::write(&path, "network:\n  bridge: corae2e0\n  pod_cidr: 10.233.0.0/24\n").unwrap();
    let mut daemon = Daemon::start_with(&["--config", path.to_str().unwrap()]);
    let archive = images::busybox_docker_archive(daemon.root(), "busybox:latest", &["sh"]);
    if !daemon.ctl(&["image", "load", archive.to_str().unwrap()]).status.success() {
        daemon.stop();
        let store = coracled::image::ImageStore::open(daemon.data_dir()).expect("opening the image store");
        store.load(&archive).expect("loading busybox");
        drop(store);
        daemon.restart();
    }
    for name in ["hello-a", "hello-b", "hello-c"] {
        let (status, body) = daemon.http("POST", "/api/v1/namespaces/default/pods", Some(&pod(name).to_string()));
        assert_eq!(status, 201, "creating {name}: {body}");
    }
    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
        "spec": {"type": "NodePort", "clusterIP": CLUSTER_IP, "selector": {"app": "hello"},
                 "ports": [{"port": 80, "targetPort": "http", "nodePort": NODE_PORT}]}
    });
    let (status, body) = daemon.http("POST", "/api/v1/namespaces/default/services", Some(&svc.to_string()));
    assert_eq!(status, 201, "creating the service: {body}");
    let ep = wait_for("Endpoints listing three Ready addresses", LONG, || {
        let (status, body) = daemon.http("GET", "/api/v1/namespaces/default/endpoints/hello", None);
        let v: Value = serde_json::from_str(&body).ok()?;
        let n = v["subsets"][0]["addresses"].as_array().map_or(0, Vec::len);
        (status == 200 && n == 3).then_some(v)
    });
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080, "the named targetPort resolves: {ep}");
    let want: BTreeSet<String> = ["hello-a", "hello-b", "hello-c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(all_three((CLUSTER_IP, 80)), want);
    assert_eq!(all_three(("127.0.0.1", NODE_PORT)), want);
    // A deleted replica leaves the Endpoints.
    let (status, body) = daemon.http("DELETE", "/api/v1/namespaces/default/pods/hello-a", None);
    assert_eq!(status, 200, "{body}");
    wait_for("hello-a to leave the Endpoints", LONG, || {
        let (_, body) = daemon.http("GET", "/api/v1/namespaces/default/endpoints/hello", None);
        (!body.contains("hello-a")).then_some(())
    });
    daemon.stop();
    let _ = std::process::Command::new("ip").args(["link", "del", "corae2e0"]).status();
}
