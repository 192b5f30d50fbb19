//! The API beyond CRUD, as clients use it: every PATCH format, the scale, status and log
//! subresources, collection deletes, the images and metrics APIs, Tables, and real kubectl.

use coracle_e2e::images::busybox_docker_archive;
use coracle_e2e::{wait_for, Daemon};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const PODS: &str = "/api/v1/namespaces/default/pods";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"note": "x"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "web", "image": "busybox", "ports": [{"containerPort": 80}],
                 "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "busybox"}
            ]}},
        },
    })
}

fn pod(name: &str, containers: &[&str]) -> Value {
    let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c, "image": "busybox:latest"})).collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "logs"}},
           "spec": {"containers": containers}})
}

fn send(d: &Daemon, method: &str, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
    let text = body.to_string();
    let resp = d.request(method, path, &[("Content-Type", content_type)], Some(text.as_bytes()));
    let value = serde_json::from_str(&resp.body).unwrap_or(Value::String(resp.body.clone()));
    (resp.status, value)
}

fn create(d: &Daemon, collection: &str, body: &Value) -> Value {
    let (code, created) = send(d, "POST", collection, "application/json", body);
    assert_eq!(code, 201, "{created}");
    created
}

fn containers(object: &Value) -> Vec<(String, String)> {
    object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["image"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn strategic_merge_patch_merges_containers_by_name_in_the_given_order() {
    let d = Daemon::start();
    create(&d, DEPLOYMENTS, &deployment("web"));
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
        "containers": [{"name": "web", "image": "busybox:1.36"}]
    }}}});
    let (code, out) = send(&d, "PATCH", &format!("{DEPLOYMENTS}/web?fieldManager=kubectl-set"), STRATEGIC, &patch);
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        containers(&out),
        [("side".to_string(), "busybox".to_string()), ("web".to_string(), "busybox:1.36".to_string())]
    );
    let web = &out["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(web["ports"][0]["containerPort"], 80, "unpatched fields of a merged container stay: {web}");
    assert_eq!(web["env"][0]["name"], "A");
    assert!(!out.to_string().contains("$setElementOrder"), "directives are not stored");
    assert_eq!(out["metadata"]["generation"], 2);

    // Deleting an element by key, and a null deleting a map key.
    let patch = json!({"metadata": {"annotations": {"note": null}},
                       "spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}});
    let (code, out) = send(&d, "PATCH", &format!("{DEPLOYMENTS}/web"), STRATEGIC, &patch);
    assert_eq!(code, 200, "{out}");
    assert_eq!(containers(&out).len(), 1);
    assert!(out["metadata"]["annotations"].get("note").is_none(), "{out}");
}

#[test]
fn merge_and_json_patches_with_resource_versions_dry_run_and_validation() {
    let d = Daemon::start();
    let created = create(&d, DEPLOYMENTS, &deployment("web"));
    let url = format!("{DEPLOYMENTS}/web");

    let (code, out) = send(&d, "PATCH", &url, MERGE, &json!({"metadata": {"labels": {"tier": "front"}}}));
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["metadata"]["labels"]["tier"], "front");
    assert_eq!(out["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 2);

    // A merge patch replaces lists whole.
    let (code, out) = send(
        &d,
        "PATCH",
        &url,
        MERGE,
        &json!({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "busybox"}]}}}}),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(containers(&out), [("only".to_string(), "busybox".to_string())]);

    // A patch that carries a stale resourceVersion conflicts.
    let stale = created["metadata"]["resourceVersion"].clone();
    let (code, out) =
        send(&d, "PATCH", &url, MERGE, &json!({"metadata": {"resourceVersion": stale, "labels": {"x": "1"}}}));
    assert_eq!(code, 409, "{out}");

    // JSON patch, as `kubectl rollout undo` sends it, with escaped pointers.
    let ops = json!([
        {"op": "test", "path": "/spec/replicas", "value": 0},
        {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "2"}},
        {"op": "add", "path": "/metadata/labels/example.com~1role", "value": "db"},
        {"op": "copy", "from": "/spec/template/spec/containers/0", "path": "/spec/template/spec/containers/-"},
        {"op": "replace", "path": "/spec/template/spec/containers/1/name", "value": "copy"},
        {"op": "remove", "path": "/metadata/labels/tier"}
    ]);
    let (code, out) = send(&d, "PATCH", &url, JSON_PATCH, &ops);
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    assert_eq!(out["metadata"]["labels"]["example.com/role"], "db");
    assert!(out["metadata"]["labels"].get("tier").is_none());
    assert_eq!(containers(&out).len(), 2);
    let (code, out) =
        send(&d, "PATCH", &url, JSON_PATCH, &json!([{"op": "test", "path": "/spec/replicas", "value": 7}]));
    assert_eq!(code, 400, "{out}");

    // dryRun=All answers without storing.
    let (code, out) = send(&d, "PATCH", &format!("{url}?dryRun=All"), MERGE, &json!({"spec": {"replicas": 4}}));
    assert_eq!((code, out["spec"]["replicas"].as_i64()), (200, Some(4)), "{out}");
    let (_, live) = send(&d, "GET", &url, "application/json", &json!({}));
    assert_eq!(live["spec"]["replicas"], 0);
    let mut other = deployment("dry");
    let (code, _) = send(&d, "POST", &format!("{DEPLOYMENTS}?dryRun=All"), "application/json", &other);
    assert_eq!(code, 201);
    assert_eq!(d.http("GET", &format!("{DEPLOYMENTS}/dry"), None).0, 404);

    // Unknown fields: Strict refuses, Warn warns, Ignore is silent.
    other["spec"]["bogus"] = json!(1);
    let (code, out) = send(&d, "POST", &format!("{DEPLOYMENTS}?fieldValidation=Strict"), "application/json", &other);
    assert_eq!(code, 400, "{out}");
    assert!(out["message"].as_str().unwrap().contains("bogus"), "{out}");
    let text = other.to_string();
    let resp = d.request("POST", &format!("{DEPLOYMENTS}?fieldValidation=Warn"), &[], Some(text.as_bytes()));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert!(resp.header("Warning").is_some_and(|w| w.contains("bogus")), "{:?}", resp.headers);
    let (code, out) =
        send(&d, "PATCH", &format!("{DEPLOYMENTS}/dry?fieldValidation=Strict"), MERGE, &json!({"spec": {"nope": 1}}));
    assert_eq!(code, 400, "{out}");
    let protobuf =
        d.request("POST", DEPLOYMENTS, &[("Content-Type", "application/vnd.kubernetes.protobuf")], Some(b"k8s\0"));
    assert_eq!(protobuf.status, 415, "{}", protobuf.body);
}

#[test]
fn server_side_apply_creates_then_merges() {
    let d = Daemon::start();
    let url = format!("{DEPLOYMENTS}/web?fieldManager=kubectl&fieldValidation=Strict&force=false");
    let manifest = deployment("web");
    let (code, out) = send(&d, "PATCH", &url, "application/apply-patch+yaml", &manifest);
    assert_eq!(code, 201, "{out}");
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    applied: \"yes\"\n";
    let resp = d.request("PATCH", &url, &[("Content-Type", "application/apply-patch+yaml")], Some(yaml.as_bytes()));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let out = resp.json();
    assert_eq!(out["metadata"]["labels"]["applied"], "yes");
    assert_eq!(containers(&out).len(), 2, "fields the manifest does not name stay");
}

#[test]
fn scale_subresource_reads_and_writes_replicas() {
    let d = Daemon::start();
    create(&d, DEPLOYMENTS, &deployment("web"));
    let url = format!("{DEPLOYMENTS}/web/scale");
    let (code, scale) = send(&d, "GET", &url, "application/json", &json!({}));
    assert_eq!(code, 200, "{scale}");
    assert_eq!((scale["kind"].as_str(), scale["apiVersion"].as_str()), (Some("Scale"), Some("autoscaling/v1")));
    assert_eq!(scale["spec"]["replicas"], 0);
    assert_eq!(scale["status"]["selector"], "app=web");

    let (code, out) = send(&d, "PATCH", &url, MERGE, &json!({"spec": {"replicas": 5}}));
    assert_eq!((code, out["spec"]["replicas"].as_i64()), (200, Some(5)), "{out}");
    let (_, live) = send(&d, "GET", &format!("{DEPLOYMENTS}/web"), "application/json", &json!({}));
    assert_eq!(live["spec"]["replicas"], 5);

    // A PUT carries the Scale's resourceVersion. The deployment controller writes status
    // meanwhile, so read-modify-write until the PUT lands, as a client does.
    let mut stale = out.clone();
    stale["spec"]["replicas"] = json!(2);
    let mut landed = None;
    for _ in 0..20 {
        let (_, mut fresh) = send(&d, "GET", &url, "application/json", &json!({}));
        fresh["spec"]["replicas"] = json!(2);
        let (code, out) = send(&d, "PUT", &url, "application/json", &fresh);
        match code {
            200 => {
                landed = Some(out);
                break;
            }
            409 => continue,
            other => panic!("PUT scale answered {other}: {out}"),
        }
    }
    let out = landed.expect("a PUT of a fresh Scale lands");
    assert_eq!(out["spec"]["replicas"].as_i64(), Some(2), "{out}");
    // A PUT carrying a resourceVersion that is no longer current conflicts.
    let (code, _) = send(&d, "PUT", &url, "application/json", &stale);
    assert_eq!(code, 409);
    let (code, out) = send(&d, "PATCH", &url, MERGE, &json!({"spec": {"replicas": -1}}));
    assert_eq!(code, 400, "{out}");
    assert_eq!(d.http("GET", &format!("{DEPLOYMENTS}/missing/scale"), None).0, 404);
}

#[test]
fn status_subresource_writes_only_status() {
    // A ClusterIP Service: no controller writes its status, so what the test writes stays.
    let d = Daemon::start();
    let services = "/api/v1/namespaces/default/services";
    create(
        &d,
        services,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    );
    let url = format!("{services}/web/status");
    let ingress = |ip: &str| json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
    let patch = json!({"spec": {"ports": [{"port": 81}]}, "status": ingress("192.0.2.1")});
    let (code, out) = send(&d, "PATCH", &url, MERGE, &patch);
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"], ingress("192.0.2.1"));
    assert_eq!(out["spec"]["ports"][0]["port"], 80, "spec changes through /status are ignored");
    let (code, mut live) = send(&d, "GET", &url, "application/json", &json!({}));
    assert_eq!((code, &live["status"]), (200, &ingress("192.0.2.1")));
    live["status"] = ingress("192.0.2.2");
    let (code, out) = send(&d, "PUT", &url, "application/json", &live);
    assert_eq!((code, &out["status"]), (200, &ingress("192.0.2.2")), "{out}");
}

#[test]
fn delete_collection_by_label() {
    let d = Daemon::start();
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let mut p = pod(name, &["main"]);
        p["metadata"]["labels"]["app"] = json!(app);
        create(&d, PODS, &p);
    }
    let resp = d.request("DELETE", &format!("{PODS}?labelSelector=app%3Dx&gracePeriodSeconds=0"), &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["items"].as_array().unwrap().len(), 2);
    let list = d.request("GET", PODS, &[], None).json();
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|p| p["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["c"]);
}

#[test]
fn images_load_list_and_delete_with_in_use_conflict() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = busybox_docker_archive(dir.path(), "busybox:latest", &["sh"]);
    let bytes = std::fs::read(&archive).unwrap();
    let images = "/apis/images.coracle.io/v1/images";
    let resp = d.request("POST", images, &[("Content-Type", "application/x-tar")], Some(&bytes));
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert!(resp.body.contains("busybox"), "{}", resp.body);

    let list = d.request("GET", images, &[], None).json();
    assert_eq!(list["kind"], "ImageList");
    let item = &list["items"][0];
    assert_eq!(item["repository"], "docker.io/library/busybox");
    assert_eq!(item["tag"], "latest");
    assert!(item["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(item["size"].as_u64().unwrap() > 0);

    // A pod naming the image by its short name keeps it.
    create(&d, PODS, &pod("user", &["main"]));
    let by_name = format!("{images}/docker.io%2Flibrary%2Fbusybox%3Alatest");
    let resp = d.request("DELETE", &by_name, &[], None);
    assert_eq!(resp.status, 409, "{}", resp.body);
    assert_eq!(d.request("DELETE", &format!("{PODS}/user?gracePeriodSeconds=0"), &[], None).status, 200);
    let resp = d.request("DELETE", &by_name, &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(d.request("GET", images, &[], None).json()["items"], json!([]));
    assert_eq!(d.request("DELETE", &by_name, &[], None).status, 404);

    // Import of a root filesystem directory.
    let rootfs = dir.path().join("rootfs");
    coracle_e2e::images::busybox_rootfs(&rootfs);
    let url = format!("{images}?import={}&name=localhost/tools:1", rootfs.display());
    let resp = d.request("POST", &url, &[], None);
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert!(d.request("GET", images, &[], None).body.contains("localhost/tools"));
}

fn write_log(d: &Daemon, pod: &Value, container: &str, file: &str, text: &str) {
    let meta = &pod["metadata"];
    let dir = d.data_dir().join("logs").join(format!(
        "default_{}_{}",
        meta["name"].as_str().unwrap(),
        meta["uid"].as_str().unwrap()
    ));
    let dir = dir.join(container);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

#[test]
fn pod_logs_from_cri_files() {
    let d = Daemon::start();
    let web = create(&d, PODS, &pod("web", &["a", "b"]));
    write_log(&d, &web, "a", "0.log.1", "2024-01-01T00:00:00.1Z stdout F first run, rotated\n");
    write_log(&d, &web, "a", "0.log", "2024-01-01T00:00:01.1Z stdout F first run\n");
    write_log(
        &d,
        &web,
        "a",
        "1.log",
        "2024-01-01T00:00:02.1Z stdout F hello\n2024-01-01T00:00:03.1Z stderr P wor\n2024-01-01T00:00:03.2Z stderr F ld\n",
    );
    let log = |query: &str| d.request("GET", &format!("{PODS}/web/log?{query}"), &[], None);

    let resp = log("container=a");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.header("Content-Type").unwrap().starts_with("text/plain"));
    assert_eq!(resp.body, "hello\nworld\n");
    assert_eq!(log("container=a&tailLines=1").body, "world\n");
    assert_eq!(log("container=a&timestamps=true&limitBytes=37").body, "2024-01-01T00:00:02.1Z hello\n2024-01-");
    assert_eq!(log("container=a&previous=true").body, "first run, rotated\nfirst run\n");

    let resp = log("");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["message"], "a container name must be specified for pod web, choose one of: [a b]");
    assert_eq!(log("container=b&previous=true").status, 400);
    assert_eq!(d.request("GET", &format!("{PODS}/nope/log"), &[], None).status, 404);
    // Following a container that is not running returns what there is and ends.
    let resp = log("container=a&follow=true");
    assert_eq!((resp.status, resp.body.as_str()), (200, "hello\nworld\n"));
}

/// The first `{"type":…}` line of a watch response (the harness' watch sends no Accept).
fn first_event(stream: &mut UnixStream) -> Value {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let event =
            text.lines().filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok()).find(|v| v.get("type").is_some());
        if let Some(event) = event {
            return event;
        }
        let n = stream.read(&mut buf).expect("reading the watch");
        assert!(n > 0, "watch ended without an event: {text}");
        raw.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn tables_for_lists_objects_and_watches() {
    let d = Daemon::start();
    create(&d, DEPLOYMENTS, &deployment("web"));
    let resp = d.request("GET", &format!("{DEPLOYMENTS}?limit=500"), &[("Accept", TABLE)], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let table = resp.json();
    assert_eq!(table["kind"], "Table");
    assert!(table["metadata"]["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()));
    let names: Vec<&str> =
        table["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]);
    assert_eq!(table["columnDefinitions"][0]["format"], "name");
    assert_eq!(table["rows"][0]["cells"][0], "web");
    assert_eq!(table["rows"][0]["cells"][1], "0/0");
    assert_eq!(table["rows"][0]["cells"][5], "web,side");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let one = d.request("GET", &format!("{DEPLOYMENTS}/web"), &[("Accept", TABLE)], None).json();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    let plain = d.request("GET", &format!("{DEPLOYMENTS}/web"), &[("Accept", "application/json")], None).json();
    assert_eq!(plain["kind"], "Deployment");

    let rv = table["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut watch = UnixStream::connect(d.socket()).unwrap();
    write!(watch, "GET {PODS}?watch=true&resourceVersion={rv} HTTP/1.1\r\nHost: x\r\nAccept: {TABLE}\r\n\r\n").unwrap();
    create(&d, PODS, &pod("w1", &["main"]));
    let event = first_event(&mut watch);
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["kind"], "Table");
    assert_eq!(event["object"]["rows"][0]["cells"][0], "w1");
    assert_eq!(event["object"]["rows"][0]["cells"][1], "0/1");
}

#[test]
fn discovery_metrics_and_openapi() {
    let d = Daemon::start();
    let groups = d.request("GET", "/apis", &[], None).json();
    assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == "metrics.k8s.io"));
    let pods = d.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", &[], None).json();
    assert_eq!(pods["kind"], "PodMetricsList");
    let root = d.request("GET", "/openapi/v3", &[], None).json();
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap().to_string();
    let doc = d.request("GET", &url, &[], None).json();
    assert!(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"].is_object());
    let v2 = d.request("GET", "/openapi/v2", &[], None);
    assert_eq!((v2.status, v2.json()["swagger"].as_str()), (200, Some("2.0")));
    let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    assert_eq!(d.request("GET", "/openapi/v2", &[("Accept", pb)], None).status, 406);
}

/// A daemon and a kubectl with an empty home (fresh discovery cache). kubectl (client-go)
/// sends no bearer token over plain HTTP, so it reaches the daemon through a loopback TCP
/// port forwarded byte for byte to the unix socket, which needs none.
struct Kubectl {
    daemon: Daemon,
    home: tempfile::TempDir,
    server: String,
}

/// Accepts on a loopback port and pipes each connection to the daemon's unix socket.
fn forward_to_socket(socket: &Path) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(unix) = UnixStream::connect(&socket) else { return };
            let (mut tcp_in, mut unix_out) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut tcp_in, &mut unix_out);
                let _ = unix_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut unix_in, mut tcp_out) = (unix, tcp);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut unix_in, &mut tcp_out);
                let _ = tcp_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    format!("http://{addr}")
}

impl Kubectl {
    fn start() -> Option<Kubectl> {
        if !Path::new("/usr/bin/kubectl").exists() {
            eprintln!("skipping: /usr/bin/kubectl is not installed");
            return None;
        }
        let home = tempfile::tempdir().unwrap();
        let daemon = Daemon::start();
        let server = forward_to_socket(daemon.socket());
        Some(Kubectl { daemon, home, server })
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(Path::new("/usr/bin/kubectl"), args)
    }

    /// `run` with another kubectl binary (`kubectl.1.27` beside the default one).
    fn run_with(&self, kubectl: &Path, args: &[&str]) -> Output {
        Command::new(kubectl)
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .args([
                "--server",
                &self.server,
                "--token",
                "t0ken",
                "--insecure-skip-tls-verify",
                "--request-timeout",
                "20s",
            ])
            .args(args)
            .output()
            .expect("running kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log()
        );
        stdout
    }
}

#[test]
fn kubectl_create_apply_get_scale_describe_and_delete() {
    let Some(k) = Kubectl::start() else { return };
    let manifest = k.home.path().join("web.json");
    std::fs::write(&manifest, deployment("web").to_string()).unwrap();
    let out = k.ok(&["create", "-f", manifest.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web created"), "{out}");

    let mut changed = deployment("web");
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:1.36");
    std::fs::write(&manifest, changed.to_string()).unwrap();
    let out = k.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web"), "{out}");
    let live = k.daemon.request("GET", &format!("{DEPLOYMENTS}/web"), &[], None).json();
    assert_eq!(containers(&live)[0], ("web".to_string(), "busybox:1.36".to_string()));

    let out = k.ok(&["get", "deployments"]);
    assert!(
        out.contains("NAME") && out.contains("READY") && out.contains("UP-TO-DATE") && out.contains("web"),
        "{out}"
    );
    let out = k.ok(&["get", "deploy", "web", "-o", "wide"]);
    assert!(out.contains("SELECTOR") && out.contains("app=web"), "{out}");

    let out = k.ok(&["scale", "deployment", "web", "--replicas=3"]);
    assert!(out.contains("scaled"), "{out}");
    wait_for("replicas 3", Duration::from_secs(5), || {
        let live = k.daemon.request("GET", &format!("{DEPLOYMENTS}/web"), &[], None).json();
        (live["spec"]["replicas"] == 3).then_some(())
    });
    let out = k.ok(&["set", "image", "deployment/web", "side=busybox:1.35"]);
    assert!(out.contains("image updated"), "{out}");

    let out = k.ok(&["describe", "deployment", "web"]);
    assert!(out.contains("Name:") && out.contains("web"), "{out}");
    k.ok(&["rollout", "history", "deployment/web"]);

    let out = k.ok(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]);
    assert!(out.contains("serverside-applied") || out.contains("web"), "{out}");

    let out = k.ok(&["delete", "deployment", "web", "--wait=false"]);
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(k.daemon.request("GET", &format!("{DEPLOYMENTS}/web"), &[], None).status, 404);
}

/// Stock kubectl sends `fieldValidation=Strict` by default: a manifest with a misspelt field,
/// or with a field of Kubernetes' API that Coracle does not implement, is refused naming the
/// field; `--validate=false` (Ignore) applies the misspelt one without it, `--validate=warn`
/// applies with a warning. Checked with the default kubectl and kubectl 1.33 (1.27 and 1.28
/// validate against protobuf OpenAPI v2, which is not served: they need `--validate=false`).
#[test]
fn kubectl_field_validation_refuses_unknown_and_unsupported_fields() {
    let Some(k) = Kubectl::start() else { return };
    let sdk = Path::new("/usr/lib/google-cloud-sdk/bin");
    let mut kubectls = vec![PathBuf::from("/usr/bin/kubectl")];
    kubectls.extend(Some(sdk.join("kubectl.1.33")).filter(|path| path.exists()));
    for (i, kubectl) in kubectls.iter().enumerate() {
        let stderr_of = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();
        let name = format!("strict{i}");
        let manifest = k.home.path().join(format!("{name}.json"));

        let mut misspelt = deployment(&name);
        misspelt["spec"]["replica"] = json!(2);
        std::fs::write(&manifest, misspelt.to_string()).unwrap();
        let out = k.run_with(kubectl, &["apply", "-f", manifest.to_str().unwrap()]);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{kubectl:?} applied a misspelt field: {err}");
        assert!(err.contains(r#"strict decoding error: unknown field "spec.replica""#), "{kubectl:?}: {err}");
        assert_eq!(k.daemon.request("GET", &format!("{DEPLOYMENTS}/{name}"), &[], None).status, 404);

        let mut unsupported = deployment(&name);
        unsupported["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {}});
        std::fs::write(&manifest, unsupported.to_string()).unwrap();
        let out = k.run_with(kubectl, &["create", "-f", manifest.to_str().unwrap()]);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{kubectl:?} created an unsupported field: {err}");
        assert!(err.contains("spec.template.spec.affinity: Forbidden: not supported by Coracle"), "{kubectl:?}: {err}");
        assert!(err.contains(&format!(r#"The Deployment "{name}" is invalid"#)), "{kubectl:?}: {err}");

        // --validate=warn stores it without the field and says so.
        let out = k.run_with(kubectl, &["create", "--validate=warn", "-f", manifest.to_str().unwrap()]);
        let err = stderr_of(&out);
        assert!(out.status.success(), "{kubectl:?}: {err}");
        assert!(err.contains("spec.template.spec.affinity: not supported by Coracle"), "{kubectl:?}: {err}");
        k.ok(&["delete", "deployment", &name, "--wait=false"]);

        // --validate=false: the misspelt field is dropped silently, as Kubernetes does.
        std::fs::write(&manifest, misspelt.to_string()).unwrap();
        let out = k.run_with(kubectl, &["apply", "--validate=false", "-f", manifest.to_str().unwrap()]);
        assert!(out.status.success(), "{kubectl:?}: {}", stderr_of(&out));
        let live = k.daemon.request("GET", &format!("{DEPLOYMENTS}/{name}"), &[], None).json();
        assert!(live["spec"].get("replica").is_none(), "{live}");
    }
}
