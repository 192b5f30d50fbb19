//! Numbers from outside that once aborted coracled (release builds abort on any panic), each
//! sent to a real daemon, which must answer as Kubernetes does and go on serving: grace
//! periods in a DELETE's query and body and in a stored pod, an active deadline passing
//! with such a grace period (once an abort on every restart), a watch's `timeoutSeconds`,
//! a log's `sinceSeconds`, `tailLines` and `limitBytes`, and a list's `limit` and `continue`.

use coracle_e2e::{skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";
const LONG: Duration = Duration::from_secs(60);
/// The largest int64, as the reproducers sent it.
const HUGE: &str = "9223372036854775807";
/// 2^31-1: what the daemon bounds grace periods to (`coracle_config::time::MAX_SPAN_SECONDS`).
const BOUND: i64 = i32::MAX as i64;

/// The daemon still runs and answers.
fn assert_serving(d: &Daemon) {
    let pid = d.pid().expect("the daemon was started");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(!stat.is_empty() && !stat.contains(") Z "), "coracled has exited; log:\n{}", d.log());
    let (status, body) = d.http("GET", PODS, None);
    assert_eq!(status, 200, "listing pods: {body}");
}

fn create_pod(d: &Daemon, pod: Value) -> Value {
    let (status, body) = d.http("POST", PODS, Some(&pod.to_string()));
    assert_eq!(status, 201, "creating a pod: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A pod whose image is never loaded: it never has a container, so a graceful delete
/// finishes as soon as the node looks at it, whatever the grace period.
fn imageless_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "app", "image": "never-loaded:1"}]}})
}

fn get_pod(d: &Daemon, name: &str) -> Option<Value> {
    let (status, body) = d.http("GET", &format!("{PODS}/{name}"), None);
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

fn wait_gone(d: &Daemon, name: &str) {
    wait_for(&format!("pod {name} to be gone"), LONG, || get_pod(d, name).is_none().then_some(()));
}

/// The stored file of pod `name`.
fn pod_file(d: &Daemon, name: &str) -> PathBuf {
    d.data_dir().join("objects/pods/default").join(format!("{name}.json"))
}

/// Rewrites fields of the stored pod `name` (the daemon must be stopped), as an older daemon
/// that accepted any number would have stored them.
fn edit_stored_pod(d: &Daemon, name: &str, edit: impl FnOnce(&mut Value)) {
    let path = pod_file(d, name);
    let mut pod: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut pod);
    std::fs::write(&path, pod.to_string()).unwrap();
}

#[test]
fn enormous_grace_periods_in_a_delete_are_bounded() {
    if skip_unless_root("graceful pod deletion needs the node, which needs root") {
        return;
    }
    let d = Daemon::start();
    // In the query: once "overflow when adding duration to instant" under the writer lock.
    create_pod(&d, imageless_pod("by-query"));
    let (status, body) = d.http("DELETE", &format!("{PODS}/by-query?gracePeriodSeconds={HUGE}"), None);
    assert_eq!(status, 200, "{body}");
    let marked: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], BOUND, "{body}");
    let due = marked["metadata"]["deletionTimestamp"].as_str().unwrap();
    assert!(coracle_config::time::parse(due).is_some(), "{due}");
    assert_serving(&d);
    wait_gone(&d, "by-query");

    // In the body.
    create_pod(&d, imageless_pod("by-body"));
    let body = format!("{{\"gracePeriodSeconds\": {HUGE}}}");
    let (status, text) = d.http("DELETE", &format!("{PODS}/by-body"), Some(&body));
    assert_eq!(status, 200, "{text}");
    assert_serving(&d);
    wait_gone(&d, "by-body");

    // Beyond int64: not a number Kubernetes decodes. Negative: one second, as Kubernetes.
    create_pod(&d, imageless_pod("odd"));
    let (status, text) = d.http("DELETE", &format!("{PODS}/odd?gracePeriodSeconds=99999999999999999999"), None);
    assert_eq!(status, 400, "{text}");
    let (status, text) = d.http("DELETE", &format!("{PODS}/odd?gracePeriodSeconds=-5"), None);
    assert_eq!(status, 200, "{text}");
    let marked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 1, "{text}");
    wait_gone(&d, "odd");
    assert_serving(&d);
}

#[test]
fn a_pod_stored_with_an_enormous_grace_period_is_repaired_at_load_and_deletes() {
    if skip_unless_root("graceful pod deletion needs the node, which needs root") {
        return;
    }
    let mut d = Daemon::start();
    create_pod(&d, imageless_pod("old"));
    d.stop();
    edit_stored_pod(&d, "old", |p| p["spec"]["terminationGracePeriodSeconds"] = json!(i64::MAX));
    d.restart();
    let pod = get_pod(&d, "old").expect("the stored pod is loaded, not dropped");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], BOUND);
    let (_, events) = d.http("GET", "/api/v1/namespaces/default/events", None);
    let events: Value = serde_json::from_str(&events).unwrap();
    let repaired = events["items"].as_array().unwrap().iter().find(|e| e["reason"] == "RepairedAtLoad");
    let repaired = repaired.unwrap_or_else(|| panic!("no RepairedAtLoad event: {events}"));
    assert_eq!(
        (repaired["type"].as_str(), repaired["involvedObject"]["name"].as_str()),
        (Some("Warning"), Some("old"))
    );
    assert!(repaired["message"].as_str().unwrap().contains("spec.terminationGracePeriodSeconds: 9223372036854775807"));
    // A plain delete (the daemon's default grace: the pod's own) once aborted on every try.
    let (status, body) = d.http("DELETE", &format!("{PODS}/old"), None);
    assert_eq!(status, 200, "{body}");
    assert_serving(&d);
    wait_gone(&d, "old");
}

#[test]
fn an_active_deadline_passing_with_an_enormous_grace_period_fails_the_pod_across_restarts() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let mut d = Daemon::start();
    d.load_busybox("busybox:latest", &["sh"]);
    // Ends on SIGTERM (a shell as PID 1 ignores it without a trap).
    let script = "trap 'exit 0' TERM; while true; do sleep 1; done";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deadline"},
        "spec": {"activeDeadlineSeconds": 3600, "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "app", "image": "busybox:latest", "command": ["sh", "-c", script]}]}});
    create_pod(&d, pod);
    wait_for("pod deadline to run", LONG, || {
        get_pod(&d, "deadline").filter(|p| p["status"]["phase"] == "Running").map(|_| ())
    });
    // Stored as an older daemon took it; the deadline has passed by the next start. The
    // daemon used to abort computing the grace period's end, then again on every restart.
    d.stop();
    edit_stored_pod(&d, "deadline", |p| {
        p["spec"]["activeDeadlineSeconds"] = json!(2);
        p["spec"]["terminationGracePeriodSeconds"] = json!(i64::MAX);
    });
    std::thread::sleep(Duration::from_secs(3));
    d.restart();
    let failed =
        wait_for("pod deadline to fail", LONG, || get_pod(&d, "deadline").filter(|p| p["status"]["phase"] == "Failed"));
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded", "{failed}");
    assert_serving(&d);
    d.restart();
    assert_serving(&d);
    let pod = get_pod(&d, "deadline").unwrap();
    assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
    let (status, body) = d.http("DELETE", &format!("{PODS}/deadline"), None);
    assert_eq!(status, 200, "{body}");
    wait_gone(&d, "deadline");
    assert_serving(&d);
}

#[test]
fn a_watch_timeout_beyond_any_clock_is_cut_to_the_longest_watch() {
    let d = Daemon::start();
    // Once "overflow when adding duration to instant" (handlers/watch.rs).
    let mut watch = d.watch("/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=18446744073709551615");
    create_pod(&d, imageless_pod("seen"));
    let event = watch.next_event(LONG).expect("the watch stays open and streams");
    assert_eq!((event["type"].as_str(), event["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("seen")));
    let (status, body) = d.http("GET", "/api/v1/pods?watch=true&timeoutSeconds=184467440737095516150", None);
    assert_eq!(status, 400, "{body}");
    assert_serving(&d);
}

#[test]
fn log_and_list_numbers_are_checked_as_kubernetes_checks_them() {
    let d = Daemon::start();
    let pod = create_pod(&d, imageless_pod("logger"));
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    // The log as the node writes it (CRI format), so no container is needed.
    let dir = d.data_dir().join("logs").join(format!("default_logger_{uid}")).join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let log = "2024-01-01T00:00:00.000000001Z stdout F one\n2024-01-01T00:00:01Z stdout F two\n";
    std::fs::write(dir.join("0.log"), log).unwrap();
    let url = |query: &str| format!("{PODS}/logger/log?{query}");

    // Once "overflow when subtracting duration from instant" (handlers/logs.rs): no int64.
    let (status, body) = d.http("GET", &url("sinceSeconds=18446744073709551615"), None);
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.http("GET", &url(&format!("sinceSeconds={HUGE}")), None);
    assert_eq!((status, body.as_str()), (200, "one\ntwo\n"));
    let (status, body) = d.http("GET", &url(&format!("tailLines={HUGE}&limitBytes={HUGE}")), None);
    assert_eq!((status, body.as_str()), (200, "one\ntwo\n"));
    let (status, body) = d.http("GET", &url("tailLines=1&limitBytes=2"), None);
    assert_eq!((status, body.as_str()), (200, "tw"));
    // ValidatePodLogOptions' bounds: a 422 naming each field.
    let (status, body) = d.http("GET", &url("sinceSeconds=0&tailLines=-1&limitBytes=0"), None);
    assert_eq!(status, 422, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["kind"], "PodLogOptions");
    let fields: Vec<&str> =
        s["details"]["causes"].as_array().unwrap().iter().filter_map(|c| c["field"].as_str()).collect();
    assert_eq!(fields, ["tailLines", "sinceSeconds", "limitBytes"]);

    // Lists come whole: `limit` must be a number; a `continue` token was never issued.
    assert_eq!(d.http("GET", "/api/v1/pods?limit=500", None).0, 200);
    assert_eq!(d.http("GET", "/api/v1/pods?limit=99999999999999999999", None).0, 400);
    assert_eq!(d.http("GET", "/api/v1/pods?limit=5&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", None).0, 400);
    assert_serving(&d);
}

#[test]
fn an_unknown_field_named_with_any_characters_is_warned_about() {
    let d = Daemon::start();
    // Found by schemathesis: the Warning header quoting such a name panicked (an abort in a
    // release build).
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd-field"},
        "spec": {"containers": [{"name": "app", "image": "never-loaded:1"}], "\u{1c}é\r\n": 1}});
    let body = pod.to_string();
    let resp = d.request("POST", PODS, &[("Content-Type", "application/json")], Some(body.as_bytes()));
    assert_eq!(resp.status, 201, "{}", resp.body);
    let warning = resp.header("Warning").unwrap_or_else(|| panic!("no Warning header: {:?}", resp.headers));
    assert!(warning.starts_with(r#"299 - "unknown field \"spec."#) && warning.contains("%C3%A9"), "{warning}");
    assert_serving(&d);
}
