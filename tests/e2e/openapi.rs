//! The daemon's own OpenAPI documents, checked by tools that read them: every document
//! validates (openapi-spec-validator), and schemathesis, driven by the Swagger 2.0 document,
//! gets no server error from a real daemon and leaves it serving. The schemathesis run is
//! bounded (a few thousand cases, about two minutes) so it stays in the suite.

use coracle_e2e::python::{tools, PythonTools};
use coracle_e2e::{wait_for, Daemon};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The longest schemathesis may run before the test fails.
const SCHEMATHESIS_BOUND: Duration = Duration::from_secs(600);

fn validate(tools: &PythonTools, files: &[std::path::PathBuf]) {
    let script = "import json, sys\n\
                  from openapi_spec_validator import validate\n\
                  for path in sys.argv[1:]:\n    validate(json.load(open(path)))\n    print('valid:', path)\n";
    let out = Command::new(tools.bin("python")).arg("-c").arg(script).args(files).output().expect("running python");
    assert!(
        out.status.success(),
        "openapi-spec-validator:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_openapi_document_is_valid() {
    let Some(tools) = tools() else { return };
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let root = d.get_json("/openapi/v3");
    let mut files = Vec::new();
    for (name, entry) in root["paths"].as_object().expect("the v3 index names its documents") {
        let url = entry["serverRelativeURL"].as_str().unwrap();
        let doc = d.get_json(url);
        assert_eq!(doc["openapi"], "3.0.0", "{name}");
        let file = dir.path().join(format!("v3-{}.json", name.replace('/', "_")));
        std::fs::write(&file, doc.to_string()).unwrap();
        files.push(file);
    }
    assert!(files.len() >= 4, "{root}");
    let resp = d.request("GET", "/openapi/v2", &[("Accept", "application/json")], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let file = dir.path().join("v2.json");
    std::fs::write(&file, &resp.body).unwrap();
    files.push(file);
    validate(tools, &files);
    // kubectl 1.27/1.28 ask for protobuf only, and fall back on a 406.
    let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    assert_eq!(d.request("GET", "/openapi/v2", &[("Accept", pb)], None).status, 406);
}

/// Objects for the generated requests to find (names from the run's dictionary), each held
/// by a finalizer so deletes mark them and later requests still reach them.
fn fixtures(d: &Daemon) {
    let keep = json!(["example.com/keep"]);
    let create = |path: &str, object: Value| {
        let (status, body) = d.http("POST", path, Some(&object.to_string()));
        assert_eq!(status, 201, "creating a fixture at {path}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keep", "finalizers": keep}});
    create("/api/v1/namespaces", namespace);
    let pod = create(
        "/api/v1/namespaces/default/pods",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "logger", "finalizers": keep},
               "spec": {"containers": [{"name": "app", "image": "never-loaded:1"}]}}),
    );
    // Its log as the node writes it (no container needed).
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let logs = d.data_dir().join("logs").join(format!("default_logger_{uid}")).join("app");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("0.log"), "2024-01-01T00:00:00Z stdout F one\n2024-01-01T00:00:01Z stderr F two\n")
        .unwrap();
    let template = json!({"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "never-loaded:1"}]}});
    create(
        "/api/v1/namespaces/default/pods",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "victim", "finalizers": keep},
               "spec": {"containers": [{"name": "app", "image": "never-loaded:1"}]}}),
    );
    create(
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": keep},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
    );
    create(
        "/api/v1/namespaces/default/services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "finalizers": keep},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    );
    create(
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "keep", "finalizers": keep},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "minReplicas": 1, "maxReplicas": 2}}),
    );
}

/// The run's settings: path parameters often name the fixtures, and the log operation
/// always names the pod with a log (until a generated delete reaches it: the node removes
/// a deleted pod's log with it). Watches mostly end within a second (one without lasts
/// until the request times out).
const CONFIG: &str = r#"
[parameters]
"path.namespace" = { dictionary = "namespaces", probability = 0.7 }
"path.name" = { dictionary = "names", probability = 0.5 }
"query.timeoutSeconds" = { dictionary = "short", probability = 0.9 }

[dictionaries]
namespaces = { values = ["default"] }
names = { values = ["web", "keep", "victim", "logger"] }
short = { values = [0, 1] }

[[operations]]
include-operation-id = "readCoreV1NamespacedPodLog"
parameters = { "path.namespace" = "default", "path.name" = "logger" }
"#;

/// What a run's NDJSON report says: the scenarios run (operation, cases), the failing ones,
/// and the errors besides watches that outlived the request timeout.
#[derive(Debug, Default)]
struct Report {
    operations: BTreeSet<String>,
    /// Operations answered 2xx at least once, and how often.
    succeeded: BTreeMap<String, usize>,
    cases: usize,
    failures: Vec<String>,
    errors: Vec<String>,
    /// Errors inside schemathesis (generating a case), not of a request.
    tool_errors: Vec<String>,
    finished: bool,
}

/// Exceptions raised inside Python while schemathesis builds a case (CPython 3.11 raises
/// SystemError "AST constructor recursion depth mismatch" on some generated patterns).
const TOOL_ERRORS: &[&str] = &["SystemError", "RecursionError"];

fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut report = Report::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("report line ({e}): {line}"));
        if let Some(s) = event.get("ScenarioFinished") {
            let label = s["recorder"]["label"].as_str().unwrap_or_default().to_string();
            report.cases += s["recorder"]["cases"].as_object().map_or(0, |c| c.len());
            let interactions = s["recorder"]["interactions"].as_object().into_iter().flat_map(|i| i.values());
            let ok = interactions.filter(|i| i["response"]["status_code"].as_u64().is_some_and(|c| c / 100 == 2));
            let ok = ok.count();
            if ok > 0 {
                *report.succeeded.entry(label.clone()).or_default() += ok;
            }
            if s["status"] == "failure" {
                let checks = s["recorder"]["checks"].to_string();
                report.failures.push(format!("{label}: {}", &checks[..checks.len().min(2000)]));
            }
            report.operations.insert(label);
        } else if let Some(e) = event.get("NonFatalError") {
            let label = e["label"].as_str().unwrap_or_default();
            let message = e["value"]["message"].as_str().unwrap_or_default();
            let kind = e["value"]["type"].as_str().unwrap_or_default();
            // A GET of a list (a watch: `watch=true` without a short timeout) or of a log
            // (`follow=true`) may stream past the request timeout.
            let streaming = label.starts_with("GET ") && (!label.ends_with("{name}") || label.ends_with("/log"));
            if streaming && message.contains("Read timed out") {
                continue;
            }
            // Python's own failures while generating a case are the tool's, not the server's.
            if TOOL_ERRORS.contains(&kind) {
                report.tool_errors.push(format!("{label}: {kind}: {message}"));
                continue;
            }
            report.errors.push(format!("{label}: {}", e["value"]));
        } else if event.get("EngineFinished").is_some() {
            report.finished = true;
        }
    }
    report
}

#[test]
fn schemathesis_over_the_daemons_own_document_finds_no_server_error() {
    let Some(tools) = tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let token = "schemathesis-t0ken";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&["--listen", &listen, "--token-file", token_file.to_str().unwrap()]);
    fixtures(&d);
    std::fs::write(dir.path().join("schemathesis.toml"), CONFIG).unwrap();
    let report_path = dir.path().join("report.ndjson");
    let mut st = Command::new(tools.bin("st"));
    st.current_dir(dir.path())
        .args(["run", &format!("http://{listen}/openapi/v2")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error", "--phases", "coverage,fuzzing"])
        // 5 s: a write's fsync can take seconds on a disk busy with builds; watches and
        // followed logs stream until it and are not counted.
        .args(["--max-examples", "5", "--request-timeout", "5", "--workers", "2", "--no-color"])
        .args(["--report", "ndjson", "--report-ndjson-path", report_path.to_str().unwrap()])
        .stdout(std::fs::File::create(dir.path().join("st.out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("st.err")).unwrap());
    if let Ok(seed) = std::env::var("CORACLE_SCHEMATHESIS_SEED") {
        st.args(["--seed", &seed]);
    }
    let started = Instant::now();
    let mut child = st.spawn().expect("running schemathesis");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > SCHEMATHESIS_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let summary = std::fs::read_to_string(dir.path().join("st.out")).unwrap_or_default();
    let lines: Vec<&str> = summary.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    eprintln!("schemathesis ({:.0} s):\n{tail}", started.elapsed().as_secs_f64());
    let Some(status) = status else { panic!("schemathesis ran past its {SCHEMATHESIS_BOUND:?} bound") };

    // For a look at every request and response: CORACLE_SCHEMATHESIS_KEEP=<folder>.
    if let Some(keep) = std::env::var_os("CORACLE_SCHEMATHESIS_KEEP") {
        for file in ["report.ndjson", "st.out", "st.err", "schemathesis.toml"] {
            let _ = std::fs::copy(dir.path().join(file), Path::new(&keep).join(file));
        }
        let _ = std::fs::write(Path::new(&keep).join("coracled.log"), d.log());
    }
    let report = read_report(&report_path);
    let stderr = std::fs::read_to_string(dir.path().join("st.err")).unwrap_or_default();
    assert!(report.finished, "schemathesis did not finish ({status}):\n{tail}\n{stderr}");
    assert!(report.failures.is_empty(), "server errors:\n{}", report.failures.join("\n"));
    assert!(
        report.errors.is_empty(),
        "errors (a dropped connection is a crashed request):\n{}",
        report.errors.join("\n")
    );
    if !report.tool_errors.is_empty() {
        eprintln!("schemathesis's own errors (not the server's):\n{}", report.tool_errors.join("\n"));
    }
    assert!(report.cases >= 2000, "only {} cases ran", report.cases);
    // Each was reached, and the log, the lists and watches and deletes were answered
    // 2xx at least once (so their parameters were read, not only refused).
    for operation in [
        "GET /api/v1/namespaces/{namespace}/pods/{name}/log",
        "DELETE /api/v1/namespaces/{namespace}/pods",
        "GET /api/v1/pods",
        "GET /api/v1/namespaces/{namespace}/pods",
        "DELETE /api/v1/namespaces/{namespace}/pods/{name}",
        "PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    ] {
        assert!(report.operations.contains(operation), "{operation} was not exercised: {:?}", report.operations);
    }
    for operation in [
        "GET /api/v1/namespaces/{namespace}/pods/{name}/log",
        "DELETE /api/v1/namespaces/{namespace}/pods",
        "GET /api/v1/pods",
    ] {
        assert!(report.succeeded.contains_key(operation), "{operation} never succeeded: {:?}", report.succeeded);
    }
    eprintln!("2xx answers by operation: {:?}", report.succeeded);

    // The daemon is alive and serving.
    let pid = d.pid().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(!stat.is_empty() && !stat.contains(") Z "), "coracled has exited; log:\n{}", d.log());
    wait_for("the daemon to answer", Duration::from_secs(30), || {
        (d.http("GET", "/healthz", None).0 == 200).then_some(())
    });
    assert_eq!(d.http("GET", "/api/v1/pods", None).0, 200);
}
