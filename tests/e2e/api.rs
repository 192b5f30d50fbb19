//! The HTTP API as a client sees it: CRUD over raw HTTP, every error code, watches, the TCP
//! listener's token, unknown-field warnings and the manifests folder.

use coracle_e2e::{wait_for, Daemon};
use serde_json::{json, Value};
use std::time::Duration;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const SERVICES: &str = "/api/v1/namespaces/default/services";

fn service(name: &str, port: u16) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"ports": [{"port": port}]},
    })
    .to_string()
}

fn deployment(name: &str, image: Option<&str>) -> Value {
    let mut container = json!({"name": "main"});
    if let Some(image) = image {
        container["image"] = json!(image);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
        },
    })
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn create_get_list_replace_delete() {
    let d = Daemon::start();
    let (code, body) = d.http("POST", SERVICES, Some(&service("web", 80)));
    assert_eq!(code, 201, "{body}");
    let created = parse(&body);
    assert_eq!(created["kind"], "Service");
    assert!(!created["metadata"]["uid"].as_str().unwrap_or("").is_empty());

    let (code, body) = d.http("GET", &format!("{SERVICES}/web"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(parse(&body)["spec"]["ports"][0]["port"], 80);

    d.http("POST", SERVICES, Some(&service("db", 5432)));
    let (code, body) = d.http("GET", &format!("{SERVICES}?labelSelector=app%3Dweb"), None);
    assert_eq!(code, 200);
    let list = parse(&body);
    assert_eq!(list["kind"], "ServiceList");
    assert!(list["metadata"]["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()));
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web"]);
    let (_, body) = d.http("GET", "/api/v1/services?labelSelector=app+in+(web,db)", None);
    assert_eq!(parse(&body)["items"].as_array().unwrap().len(), 2);
    let (_, body) = d.http("GET", "/api/v1/services?fieldSelector=metadata.name!%3Dweb", None);
    let items = parse(&body)["items"].clone();
    assert!(items.as_array().unwrap().iter().all(|i| i["metadata"]["name"] != "web"), "{items}");

    let mut replacement = created.clone();
    replacement["spec"]["ports"][0]["port"] = json!(8080);
    let (code, body) = d.http("PUT", &format!("{SERVICES}/web"), Some(&replacement.to_string()));
    assert_eq!(code, 200, "{body}");
    assert_eq!(parse(&body)["spec"]["ports"][0]["port"], 8080);

    let (code, body) = d.http("DELETE", &format!("{SERVICES}/web"), None);
    assert_eq!(code, 200, "{body}");
    let (code, _) = d.http("GET", &format!("{SERVICES}/web"), None);
    assert_eq!(code, 404);
}

#[test]
fn yaml_bodies_and_unknown_field_warnings() {
    let d = Daemon::start();
    let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: y\nspec:\n  foo: 1\n  ports:\n  - port: 81\n";
    let resp = d.request("POST", SERVICES, &[("Content-Type", "application/yaml")], Some(yaml.as_bytes()));
    assert_eq!(resp.status, 201, "{}", resp.body);
    let warnings = resp.headers_named("Warning");
    assert!(warnings.iter().any(|w| w.starts_with("299 - ") && w.contains("spec.foo")), "{warnings:?}");
    assert!(resp.json()["spec"].get("foo").is_none());
}

#[test]
fn every_error_has_its_code_and_status() {
    let d = Daemon::start();
    let status_of = |code: u16, body: &str, reason: &str| {
        let s = parse(body);
        assert_eq!((s["kind"].as_str(), s["code"].as_u64()), (Some("Status"), Some(code as u64)), "{body}");
        assert_eq!(s["reason"], reason, "{body}");
        s
    };

    let (code, body) = d.http("POST", SERVICES, Some("{not json"));
    assert_eq!(code, 400);
    status_of(400, &body, "BadRequest");

    let (code, body) = d.http("GET", &format!("{DEPLOYMENTS}/web"), None);
    assert_eq!(code, 404);
    let s = status_of(404, &body, "NotFound");
    assert_eq!(s["message"], "deployments.apps \"web\" not found");
    assert_eq!(s["details"], json!({"name": "web", "group": "apps", "kind": "deployments"}));

    let (code, body) = d.http("POST", "/api/v1/namespaces/nowhere/services", Some(&service("x", 80)));
    assert_eq!(code, 404);
    assert_eq!(status_of(404, &body, "NotFound")["message"], "namespaces \"nowhere\" not found");

    assert_eq!(d.http("POST", SERVICES, Some(&service("dup", 80))).0, 201);
    let (code, body) = d.http("POST", SERVICES, Some(&service("dup", 80)));
    assert_eq!(code, 409);
    status_of(409, &body, "AlreadyExists");

    let (_, body) = d.http("GET", &format!("{SERVICES}/dup"), None);
    let mut stale = parse(&body);
    stale["spec"]["ports"][0]["port"] = json!(81);
    assert_eq!(d.http("PUT", &format!("{SERVICES}/dup"), Some(&stale.to_string())).0, 200);
    stale["spec"]["ports"][0]["port"] = json!(82);
    let (code, body) = d.http("PUT", &format!("{SERVICES}/dup"), Some(&stale.to_string()));
    assert_eq!(code, 409);
    let s = status_of(409, &body, "Conflict");
    assert!(s["message"].as_str().unwrap().starts_with("Operation cannot be fulfilled on services \"dup\""), "{s}");

    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 22));
    let resp = d.request("POST", SERVICES, &[], Some(big.as_bytes()));
    assert_eq!(resp.status, 413);

    let resp = d.request("POST", SERVICES, &[("Content-Type", "application/vnd.kubernetes.protobuf")], Some(b"k8s\0"));
    assert_eq!(resp.status, 415);

    let (code, body) = d.http("POST", DEPLOYMENTS, Some(&deployment("web", None).to_string()));
    assert_eq!(code, 422, "{body}");
    let s = status_of(422, &body, "Invalid");
    assert_eq!(
        s["message"],
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
    );
    let causes = s["details"]["causes"].as_array().unwrap();
    assert!(
        causes
            .iter()
            .any(|c| c["reason"] == "FieldValueRequired" && c["field"] == "spec.template.spec.containers[0].image"),
        "{causes:?}"
    );

    // A PATCH must name its patch type; plain JSON is not one (Kubernetes answers 415).
    let (code, _) = d.http("PATCH", &format!("{SERVICES}/dup"), Some("{}"));
    assert_eq!(code, 415);
    let (code, _) = d.http("POST", &format!("{SERVICES}/dup"), Some("{}"));
    assert_eq!(code, 405);
    assert_eq!(d.http("GET", "/apis/batch/v1/jobs", None).0, 404);
}

#[test]
fn watch_streams_events_in_order_and_expires_old_versions() {
    let d = Daemon::start();
    let (_, body) = d.http("GET", SERVICES, None);
    let rv = parse(&body)["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut watch = d.watch(&format!("{SERVICES}?watch=1&resourceVersion={rv}"));
    assert_eq!(watch.status, 200);
    assert_eq!(d.http("POST", SERVICES, Some(&service("a", 80))).0, 201);
    assert_eq!(d.http("POST", SERVICES, Some(&service("b", 80))).0, 201);
    assert_eq!(d.http("DELETE", &format!("{SERVICES}/a"), None).0, 200);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = watch.next_event(Duration::from_secs(20)).expect("a watch event");
        seen.push(format!(
            "{} {}",
            event["type"].as_str().unwrap(),
            event["object"]["metadata"]["name"].as_str().unwrap()
        ));
    }
    assert_eq!(seen, ["ADDED a", "ADDED b", "DELETED a"]);

    // Without a resourceVersion the stream opens with the current state.
    let mut fresh = d.watch(&format!("{SERVICES}?watch=true&timeoutSeconds=1"));
    let first = fresh.next_event(Duration::from_secs(20)).expect("the initial ADDED event");
    assert_eq!((first["type"].as_str(), first["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("b")));
    assert!(fresh.next_event(Duration::from_secs(20)).is_none());
    assert!(fresh.ended(), "timeoutSeconds ends the stream");

    // Churn until the first version leaves the store's window, then ask for it.
    let svc = SERVICES;
    let mut expired = None;
    for i in 0..5000 {
        let (_, body) = d.http("GET", &format!("{svc}/b"), None);
        let mut obj = parse(&body);
        obj["spec"]["ports"][0]["port"] = json!(1000 + (i % 50000));
        d.http("PUT", &format!("{svc}/b"), Some(&obj.to_string()));
        if i % 100 == 99 {
            let mut w = d.watch(&format!("{svc}?watch=1&resourceVersion=1"));
            let event = w.next_event(Duration::from_secs(20)).expect("an event");
            if event["type"] == "ERROR" {
                expired = Some(event);
                break;
            }
        }
    }
    let event = expired.expect("resourceVersion 1 expires after enough writes");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}

#[test]
fn discovery_and_version() {
    let d = Daemon::start();
    let (code, body) = d.http("GET", "/version", None);
    assert_eq!(code, 200);
    assert_eq!(parse(&body)["minor"], "32");
    let (_, body) = d.http("GET", "/apis/apps/v1", None);
    let doc = parse(&body);
    assert!(doc["resources"].as_array().unwrap().iter().any(|r| r["name"] == "deployments/scale"));
    for path in ["/api", "/apis", "/api/v1", "/apis/autoscaling/v1", "/apis/autoscaling/v2", "/readyz", "/livez"] {
        assert_eq!(d.http("GET", path, None).0, 200, "{path}");
    }
    let out = d.curl(&["-f", "http://localhost/healthz"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
}

#[test]
fn tcp_listener_requires_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    // Find a free port, then hand it to the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&["--listen", &listen, "--token-file", token_file.to_str().unwrap()]);
    let url = format!("http://{listen}/api/v1/namespaces/default/services");
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(curl(&[]), "401");
    assert_eq!(curl(&["-H", "Authorization: Bearer wrong"]), "401");
    assert_eq!(curl(&["-H", "Authorization: Bearer s3cret"]), "200");
    // The unix socket needs no token.
    assert_eq!(d.http("GET", SERVICES, None).0, 200);
}

#[test]
fn manifests_folder_is_applied_and_followed() {
    let d = Daemon::start();
    let get = |name: &str| {
        let (code, body) = d.http("GET", &format!("{SERVICES}/{name}"), None);
        (code == 200).then(|| parse(&body))
    };
    let two = format!("{}\n---\n{}", service_yaml("m1", 80), service_yaml("m2", 81));
    d.write_manifest("app.yaml", &two);
    let m1 = wait_for("m1 from the manifest", Duration::from_secs(20), || get("m1"));
    assert_eq!(m1["metadata"]["annotations"]["coracle.io/manifest-file"], "app.yaml");
    wait_for("m2 from the manifest", Duration::from_secs(20), || get("m2"));

    // Changed: m1 updated, m2 left the file and goes.
    d.write_manifest("app.yaml", &service_yaml("m1", 90));
    wait_for("m1 updated", Duration::from_secs(20), || get("m1").filter(|o| o["spec"]["ports"][0]["port"] == 90));
    wait_for("m2 deleted", Duration::from_secs(20), || get("m2").is_none().then_some(()));

    // A bad file leaves what exists alone.
    d.write_manifest("app.yaml", "kind: Service\nmetadata: [broken\n");
    std::thread::sleep(Duration::from_secs(3));
    assert!(get("m1").is_some(), "a bad file must not delete its objects");

    // Applied again at start, and a file removed while the daemon was down is noticed.
    let mut d = d;
    d.write_manifest("other.json", &service("m3", 83));
    wait_for("m3 from other.json", Duration::from_secs(20), || {
        let (code, _) = d.http("GET", &format!("{SERVICES}/m3"), None);
        (code == 200).then_some(())
    });
    d.stop();
    std::fs::remove_file(d.manifests_dir().join("other.json")).unwrap();
    d.restart();
    let (code, _) = d.http("GET", &format!("{SERVICES}/m3"), None);
    assert_eq!(code, 404, "objects of a file removed while down are deleted at start");
    // Removed while running.
    std::fs::remove_file(d.manifests_dir().join("app.yaml")).unwrap();
    wait_for("m1 deleted with its file", Duration::from_secs(20), || {
        let (code, _) = d.http("GET", &format!("{SERVICES}/m1"), None);
        (code == 404).then_some(())
    });
}

fn service_yaml(name: &str, port: u16) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: {port}\n")
}

#[test]
fn sigterm_stops_cleanly_and_objects_survive() {
    let mut d = Daemon::start();
    assert_eq!(d.http("POST", SERVICES, Some(&service("kept", 80))).0, 201);
    let status = d.stop().expect("the daemon was running");
    assert!(status.success(), "exit status {status}; log:\n{}", d.log());
    assert!(!d.socket().exists(), "the socket is removed on shutdown");
    d.restart();
    let (code, body) = d.http("GET", &format!("{SERVICES}/kept"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(d.http("GET", "/api/v1/namespaces/default", None).0, 200, "namespace default exists");
}
