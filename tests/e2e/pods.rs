//! Pods on the board: the node runs them as supervised containers with the kubelet's
//! semantics (restarts, backoff, probes, termination), keeps them across a daemon restart
//! and brings them back after a power cut. Every test needs root and skips without it.

use coracle_e2e::{skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";
const LONG: Duration = Duration::from_secs(60);

/// The container runtime a test's daemon uses (`runtime.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runtime {
    Builtin,
    /// runc from Debian.
    Oci,
}

/// Declares every listed test twice: `builtin::NAME` on the builtin runtime and `oci::NAME`
/// on runc ("the same suite passes in OCI runtime mode").
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod builtin {
            $(#[test] fn $name() { super::$name(super::Runtime::Builtin) })*
        }
        mod oci {
            $(#[test] fn $name() { super::$name(super::Runtime::Oci) })*
        }
    };
}

/// A daemon with a fast restart backoff and the busybox image loaded.
struct Board {
    daemon: Daemon,
}

impl Board {
    /// A daemon on `rt` with the `network:` keys in `network` (indented lines); None (after
    /// saying why) when the test cannot run here: not root, or no runc for the OCI runtime.
    ///
    /// Tests run in parallel, and a daemon's pod bridge, pod addresses and Service block are
    /// host-wide: two daemons on the same bridge would each lease its first address from their
    /// own lease store, and a Service would reach whichever pod answered ARP. The harness gives
    /// every daemon a bridge, pod CIDR and Service CIDR of its own (`coracle_e2e::isolation`),
    /// and removes them when the test's daemon goes.
    fn start(rt: Runtime, network: &str) -> Option<Board> {
        if skip_unless_root("containers need namespaces and cgroups") {
            return None;
        }
        if rt == Runtime::Oci && coracled::runtime::oci::find_binary("runc").is_none() {
            eprintln!("skipping: the OCI runtime variant needs runc (apt-get install runc)");
            return None;
        }
        let kind = if rt == Runtime::Oci { "oci" } else { "builtin" };
        let network = if network.is_empty() { String::new() } else { format!("network:\n{network}") };
        let yaml = format!(
            "backoff:\n  base_seconds: 1\n  cap_seconds: 4\n  reset_seconds: 600\nruntime:\n  kind: {kind}\n  oci_binary: runc\n{network}"
        );
        let daemon = Daemon::start_with_config(&yaml);
        let board = Board { daemon };
        board.daemon.load_busybox("busybox:latest", &["sh"]);
        Some(board)
    }

    fn run_dir(&self) -> PathBuf {
        self.daemon.root().join("run")
    }

    fn create(&self, pod: Value) -> String {
        let (status, body) = self.daemon.http("POST", PODS, Some(&pod.to_string()));
        assert_eq!(status, 201, "creating pod: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["metadata"]["uid"].as_str().unwrap().to_string()
    }

    fn get(&self, name: &str) -> Option<Value> {
        let (status, body) = self.daemon.http("GET", &format!("{PODS}/{name}"), None);
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    fn wait(&self, what: &str, name: &str, mut f: impl FnMut(&Value) -> bool) -> Value {
        wait_for(&format!("pod {name}: {what}"), LONG, || self.get(name).filter(|p| f(p)))
    }

    fn wait_running(&self, name: &str) -> Value {
        self.wait("Running and Ready", name, |p| p["status"]["phase"] == "Running" && ready(p))
    }

    fn delete(&self, name: &str) {
        let (status, body) = self.daemon.http("DELETE", &format!("{PODS}/{name}"), None);
        assert_eq!(status, 200, "deleting pod {name}: {body}");
        wait_for(&format!("pod {name} to be gone"), LONG, || self.get(name).is_none().then_some(()));
    }

    /// Every event in the default namespace, as JSON text.
    fn events(&self) -> String {
        self.daemon.http("GET", "/api/v1/namespaces/default/events", None).1
    }

    /// Waits until an event's message contains `message`.
    fn wait_event(&self, message: &str) {
        let needle = serde_json::to_string(message).unwrap();
        let needle = needle.trim_matches('"').to_string();
        wait_for(&format!("an event saying {message:?}"), LONG, || self.events().contains(&needle).then_some(()));
    }

    /// The host pid of the pod's first container, from the runtime's record.
    fn container_pid(&self, pod: &Value) -> i32 {
        let id = container_id(pod, 0);
        let record = std::fs::read_to_string(self.run_dir().join("containers").join(&id).join("state.json")).unwrap();
        let v: Value = serde_json::from_str(&record).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }
}

fn pod(name: &str, containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": containers}})
}

fn busybox(name: &str, script: &str) -> Value {
    json!({"name": name, "image": "busybox:latest", "imagePullPolicy": "Never", "command": ["sh", "-c", script]})
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn container_id(pod: &Value, i: usize) -> String {
    let uri = pod["status"]["containerStatuses"][i]["containerID"].as_str().expect("a containerID");
    uri.strip_prefix("coracle://").unwrap().to_string()
}

/// The status of container `name` in `pod`.
fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    let statuses = pod["status"]["containerStatuses"].as_array().expect("containerStatuses");
    statuses.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no status of container {name}: {pod}"))
}

/// The host pid of container `name`'s init, from the runtime's record.
fn pid_of(board: &Board, pod: &Value, name: &str) -> i32 {
    let uri = container_status(pod, name)["containerID"].as_str().expect("a containerID");
    let id = uri.strip_prefix("coracle://").unwrap();
    let record = std::fs::read_to_string(board.run_dir().join("containers").join(id).join("state.json")).unwrap();
    serde_json::from_str::<Value>(&record).unwrap()["pid"].as_i64().unwrap() as i32
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// GET / on 127.0.0.1:port from inside the network namespace at `netns`.
fn http_in_netns(netns: PathBuf, port: u16) -> String {
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("entering the pod's netns");
        // Running means the process started, not that it listens yet: a refused connection
        // is retried until the server is up (a loaded machine can take a while to get there).
        let mut s =
            wait_for("the web server to listen", LONG, || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    })
    .join()
    .unwrap()
}

fn web_server_answers_in_its_namespace_and_survives_a_daemon_restart(rt: Runtime) {
    let Some(mut board) = Board::start(rt, "") else { return };
    let uid = board.create(pod(
        "web",
        json!([busybox("httpd", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www")]),
    ));
    let running = board.wait_running("web");
    let netns = board.run_dir().join("sandboxes").join(&uid).join("net");
    let answer = http_in_netns(netns.clone(), 8080);
    assert!(answer.starts_with("HTTP/1") && answer.contains("hello"), "web server answered: {answer:?}");
    let pid = board.container_pid(&running);
    board.daemon.restart();
    let after = board.wait_running("web");
    assert_eq!(board.container_pid(&after), pid, "the web server was re-adopted, not restarted");
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0);
    assert!(alive(pid));
    assert!(http_in_netns(netns, 8080).contains("hello"), "still answering after the restart");
}

fn a_failing_container_reaches_crash_loop_backoff_with_growing_delays(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    board.create(pod("crash", json!([busybox("app", "echo dying; exit 1")])));
    let mut delays: Vec<String> = Vec::new();
    let last = wait_for("back-off to reach the 4s cap", LONG, || {
        let p = board.get("crash")?;
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        if waiting["reason"] == "CrashLoopBackOff" {
            let message = waiting["message"].as_str().unwrap_or_default();
            let delay = message.split_whitespace().nth(1).unwrap_or_default().to_string();
            assert!(
                message
                    .ends_with(&format!("container=app pod=crash_default({})", p["metadata"]["uid"].as_str().unwrap())),
                "{message}"
            );
            if delays.last() != Some(&delay) {
                delays.push(delay);
            }
        }
        (delays.last().map(String::as_str) == Some("4s")).then_some(p)
    });
    assert_eq!(&delays[..3], ["1s", "2s", "4s"], "delays double: {delays:?}");
    let uid = last["metadata"]["uid"].as_str().unwrap();
    board.wait_event(&format!("Back-off restarting failed container app in pod crash_default({uid})"));
    let status = &last["status"]["containerStatuses"][0];
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert!(status["restartCount"].as_i64().unwrap() >= 2, "{status}");
    assert_eq!(last["status"]["phase"], "Running");
}

fn a_killed_process_is_restarted_and_counted(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    board.create(pod("sleeper", json!([busybox("app", "exec sleep 600")])));
    let running = board.wait_running("sleeper");
    let pid = board.container_pid(&running);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let after = board.wait("restarted", "sleeper", |p| {
        p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
            && p["status"]["phase"] == "Running"
            && ready(p)
    });
    let last = &after["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{last}");
    assert_ne!(board.container_pid(&after), pid);
}

fn a_pod_over_its_memory_limit_is_oom_killed(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut hog = busybox("hog", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done");
    hog["resources"] = json!({"limits": {"memory": "32Mi"}});
    let mut p = pod("hog", json!([hog]));
    p["spec"]["restartPolicy"] = json!("Never");
    board.create(p);
    let done =
        board.wait("terminated", "hog", |p| !p["status"]["containerStatuses"][0]["state"]["terminated"].is_null());
    let t = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{t}");
    assert_eq!(t["exitCode"], 137);
    assert_eq!(done["status"]["phase"], "Failed");
}

fn a_liveness_probe_failure_restarts_the_container(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut app = busybox("app", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600");
    app["livenessProbe"] =
        json!({"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 2});
    board.create(pod("live", json!([app])));
    board.wait("restarted by its liveness probe", "live", |p| {
        p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
    });
    board.wait_event("Liveness probe failed: command [\"cat\", \"/tmp/healthy\"] exited with 1");
    let events = board.events();
    assert!(events.contains("Unhealthy") && events.contains("failed liveness probe"), "events: {events}");
}

fn a_readiness_probe_toggles_ready(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut app = busybox("app", "sleep 2; touch /tmp/ready; sleep 4; rm /tmp/ready; exec sleep 600");
    app["readinessProbe"] =
        json!({"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1});
    board.create(pod("ready", json!([app])));
    board.wait("Running but not Ready", "ready", |p| p["status"]["phase"] == "Running" && !ready(p));
    board.wait("Ready", "ready", ready);
    let after = board.wait("not Ready again", "ready", |p| !ready(p));
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0, "readiness never restarts");
}

/// Every trace of pod `uid` outside the store: processes, mounts, cgroups, directories.
fn traces(board: &Board, uid: &str, pids: &[i32]) -> Vec<String> {
    let mut found: Vec<String> = pids.iter().filter(|p| alive(**p)).map(|p| format!("process {p}")).collect();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(mounts.lines().filter(|l| l.contains(uid)).map(|l| format!("mount {l}")));
    let out = std::process::Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "12", "-type", "d", "-name", uid])
        .output()
        .unwrap();
    found.extend(String::from_utf8_lossy(&out.stdout).lines().map(|l| format!("cgroup {l}")));
    for dir in [board.run_dir().join("sandboxes").join(uid), board.daemon.data_dir().join("pods").join(uid)] {
        if dir.exists() {
            found.push(format!("directory {}", dir.display()));
        }
    }
    found
}

fn deleting_a_pod_leaves_nothing_behind_even_across_a_daemon_restart(rt: Runtime) {
    let Some(mut board) = Board::start(rt, "") else { return };
    let mut cases = Vec::new();
    for name in ["gone-now", "gone-later"] {
        let mut p = pod(name, json!([busybox("app", "sleep 600 & sleep 600 & exec sleep 600")]));
        p["spec"]["terminationGracePeriodSeconds"] = json!(1);
        let uid = board.create(p);
        cases.push((name, uid));
    }
    let mut pids = Vec::new();
    for (name, _) in &cases {
        let p = board.wait_running(name);
        pids.push(board.container_pid(&p));
    }
    board.delete(cases[0].0);
    assert_eq!(traces(&board, &cases[0].1, &pids[..1]), Vec::<String>::new());
    board.daemon.restart();
    board.wait_running(cases[1].0);
    board.delete(cases[1].0);
    assert_eq!(traces(&board, &cases[1].1, &pids[1..]), Vec::<String>::new());
}

fn a_power_cut_brings_every_pod_back(rt: Runtime) {
    let Some(mut board) = Board::start(rt, "") else { return };
    let names = ["one", "two"];
    for name in names {
        board.create(pod(name, json!([busybox("app", "exec sleep 600")])));
    }
    let mut uids = Vec::new();
    for name in names {
        let p = board.wait_running(name);
        uids.push(p["metadata"]["uid"].as_str().unwrap().to_string());
    }
    // The cut: the daemon and every pod process die, mounts and cgroups vanish, the
    // runtime directory (a tmpfs on a board) is empty.
    board.daemon.kill9();
    let run = board.run_dir();
    for entry in std::fs::read_dir(run.join("containers")).unwrap().flatten() {
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.path().join("state.json")).unwrap()).unwrap();
        for key in ["shim_pid", "pid"] {
            let pid = nix::unistd::Pid::from_raw(state[key].as_i64().unwrap() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    for uid in &uids {
        let out = std::process::Command::new("find")
            .args(["/sys/fs/cgroup", "-maxdepth", "12", "-type", "d", "-name", uid])
            .output()
            .unwrap();
        for dir in String::from_utf8_lossy(&out.stdout).lines() {
            let procs = std::fs::read_to_string(Path::new(dir).join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.parse().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        // Children before parents.
        let out = std::process::Command::new("find")
            .args(["/sys/fs/cgroup", "-depth", "-path", &format!("*{uid}*"), "-type", "d"])
            .output()
            .unwrap();
        for dir in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = std::fs::remove_dir(dir);
        }
        for ns in ["net", "ipc"] {
            let _ = nix::mount::umount2(&run.join("sandboxes").join(uid).join(ns), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    for entry in std::fs::read_dir(&run).unwrap().flatten() {
        let path = entry.path();
        let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
    board.daemon.restart();
    for name in names {
        board.wait_running(name);
    }
}

fn an_absent_image_waits_with_err_image_never_pull_until_loaded(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut c = busybox("app", "exec sleep 600");
    c["image"] = json!("later:1");
    board.create(pod("later", json!([c])));
    let p = board.wait("waiting for its image", "later", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    });
    let message = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap();
    assert!(message.contains("later:1"), "{message}");
    assert_eq!(p["status"]["phase"], "Pending");
    board.daemon.load_busybox("later:1", &["sh"]);
    board.wait_running("later");
}

fn init_containers_run_in_order_before_the_app(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mount = json!([{"name": "work", "mountPath": "/work"}]);
    let mut first = busybox("first", "sleep 1; echo first >> /work/order");
    let mut second = busybox("second", "echo second >> /work/order");
    let mut app = busybox("app", "echo app >> /work/order; cat /work/order; exec sleep 600");
    for c in [&mut first, &mut second, &mut app] {
        c["volumeMounts"] = mount.clone();
    }
    let mut p = pod("init", json!([app]));
    p["spec"]["initContainers"] = json!([first, second]);
    p["spec"]["volumes"] = json!([{"name": "work", "emptyDir": {}}]);
    let uid = board.create(p);
    let running = board.wait_running("init");
    for s in running["status"]["initContainerStatuses"].as_array().unwrap() {
        assert_eq!(s["state"]["terminated"]["reason"], "Completed", "{s}");
    }
    // Running means the app started; its own line may follow a moment later.
    let order_path = board.daemon.data_dir().join("pods").join(&uid).join("volumes/work/order");
    let order = wait_for("the app's line in the order file", LONG, || {
        std::fs::read_to_string(&order_path).ok().filter(|o| o.lines().count() >= 3)
    });
    assert_eq!(order, "first\nsecond\napp\n");
    let log_path = board.daemon.data_dir().join(format!("logs/default_init_{uid}/app/0.log"));
    let log = wait_for("the app's log", LONG, || std::fs::read_to_string(&log_path).ok().filter(|l| l.contains("app")));
    assert!(log.contains("stdout F first"), "{log}");
}

fn restart_policies_end_in_succeeded_or_failed(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let cases = [
        ("never-ok", "Never", "exit 0", "Succeeded"),
        ("never-bad", "Never", "exit 3", "Failed"),
        ("onfail-ok", "OnFailure", "exit 0", "Succeeded"),
    ];
    for (name, policy, script, _) in cases {
        let mut p = pod(name, json!([busybox("app", script)]));
        p["spec"]["restartPolicy"] = json!(policy);
        board.create(p);
    }
    for (name, _, _, phase) in cases {
        let p = board.wait(phase, name, |p| p["status"]["phase"] == phase);
        let s = &p["status"]["containerStatuses"][0];
        assert_eq!(s["restartCount"], 0, "{s}");
        let reason = if phase == "Succeeded" { "Completed" } else { "Error" };
        assert_eq!(s["state"]["terminated"]["reason"], reason, "{s}");
    }
}

/// The logged lines of the pod's container `container`, once one contains `marker`.
fn log_with(board: &Board, uid: &str, pod: &str, container: &str, marker: &str) -> String {
    let path = board.daemon.data_dir().join(format!("logs/default_{pod}_{uid}/{container}/0.log"));
    wait_for(&format!("{pod}'s log to show {marker:?}"), LONG, || {
        std::fs::read_to_string(&path).ok().filter(|l| l.contains(marker))
    })
}

fn create_service(board: &Board, name: &str, port: u16) -> Value {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": 8080}]}});
    let (status, body) = board.daemon.http("POST", "/api/v1/namespaces/default/services", Some(&svc.to_string()));
    assert_eq!(status, 201, "creating service {name}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn service_links_and_dollar_references_fill_the_environment(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let svc = create_service(&board, "db", 5432);
    let ip = svc["spec"]["clusterIP"].as_str().expect("an allocated clusterIP").to_string();
    let mut app = busybox("app", "echo \"url=$URL literal=$LITERAL host=$DB_SERVICE_HOST own=$DB_SERVICE_PORT\"; echo \"args=$0 $1\"; exec sleep 600");
    app["env"] = json!([
        {"name": "URL", "value": "pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"},
        {"name": "DB_SERVICE_PORT", "value": "mine"},
        {"name": "LITERAL", "value": "$$(URL)-$(NOPE)"},
    ]);
    app["args"] = json!(["$(URL)", "$$(URL)"]);
    let uid = board.create(pod("linked", json!([app.clone()])));
    let line = log_with(&board, &uid, "linked", "app", "url=");
    assert!(line.contains(&format!("url=pg://{ip}:5432 literal=$(URL)-$(NOPE) host={ip} own=mine")), "{line}");
    let line = log_with(&board, &uid, "linked", "app", "args=");
    assert!(line.contains(&format!("args=pg://{ip}:5432 $(URL)")), "{line}");
    let mut unlinked = pod("unlinked", json!([app]));
    unlinked["spec"]["enableServiceLinks"] = json!(false);
    let uid = board.create(unlinked);
    let line = log_with(&board, &uid, "unlinked", "app", "url=");
    assert!(
        line.contains("url=pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT) literal=$(URL)-$(NOPE) host= own=mine"),
        "{line}"
    );
}

fn pre_stop_runs_before_sigterm_within_the_grace_period(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let out = tempfile::tempdir().unwrap();
    let mut app = busybox("app", "trap 'echo term >> /out/order; exit 0' TERM; while true; do sleep 0.1; done");
    app["lifecycle"] = json!({"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /out/order; sleep 1"]}}});
    app["volumeMounts"] = json!([{"name": "out", "mountPath": "/out"}]);
    let mut slow = busybox("slow", "exec sleep 600");
    slow["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 1}}});
    let mut p = pod("stopping", json!([app, slow]));
    p["spec"]["volumes"] = json!([{"name": "out", "hostPath": {"path": out.path().to_str().unwrap()}}]);
    p["spec"]["terminationGracePeriodSeconds"] = json!(10);
    board.create(p);
    board.wait_running("stopping");
    board.delete("stopping");
    let order = std::fs::read_to_string(out.path().join("order")).unwrap();
    assert_eq!(order, "prestop\nterm\n", "preStop ran first, then SIGTERM reached the container");
    board.wait_event("Stopping container app");
    board.wait_event("Stopping container slow");
}

fn exec_probes_run_in_the_containers_pid_namespace(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut app = busybox("app", "exec sleep 600");
    // Outside the container's pid namespace, $$ is a host pid its /proc does not show.
    app["readinessProbe"] =
        json!({"exec": {"command": ["sh", "-c", "test -d /proc/$$ && test $$ -lt 1000"]}, "periodSeconds": 1});
    board.create(pod("pidns", json!([app])));
    board.wait_running("pidns");
}

fn kubelet_events_name_each_step(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut p = pod("web", json!([busybox("web", "exec sleep 600")]));
    p["spec"]["terminationGracePeriodSeconds"] = json!(1);
    board.create(p);
    board.wait_running("web");
    board.wait_event("Container image \"busybox:latest\" already present on machine");
    board.wait_event("Created container web");
    board.wait_event("Started container web");
    board.delete("web");
    board.wait_event("Stopping container web");
    let events: Value = serde_json::from_str(&board.events()).unwrap();
    let reasons: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    for want in ["Pulled", "Created", "Started", "Killing"] {
        assert!(reasons.contains(&want), "{want} in {reasons:?}");
    }
}

/// One HTTP GET / at `ip:port` from the host; the response, or None when nothing answered.
fn http_get(ip: &str, port: u16) -> Option<String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text).filter(|t| !t.is_empty())
}

const HTTPD: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www";

#[test]
fn a_stopping_pod_leaves_its_services_before_sigterm() {
    let Some(board) = Board::start(Runtime::Builtin, "") else { return };
    let svc = create_service(&board, "web", 80);
    let ip = svc["spec"]["clusterIP"].as_str().expect("an allocated clusterIP").to_string();
    let mut web = busybox("httpd", HTTPD);
    web["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 5}}});
    let mut p = pod("web", json!([web]));
    p["metadata"]["labels"] = json!({"app": "web"});
    p["spec"]["terminationGracePeriodSeconds"] = json!(10);
    let uid = board.create(p);
    board.wait_running("web");
    wait_for("the Service to answer", LONG, || http_get(&ip, 80).filter(|a| a.contains("hello")));
    let (status, body) = board.daemon.http("DELETE", &format!("{PODS}/web"), None);
    assert_eq!(status, 200, "{body}");
    wait_for("the Service to stop sending to the stopping pod", LONG, || http_get(&ip, 80).is_none().then_some(()));
    // The pod itself still serves: SIGTERM has not reached it (its preStop hook sleeps).
    let netns = board.run_dir().join("sandboxes").join(&uid).join("net");
    assert!(http_in_netns(netns, 8080).contains("hello"), "the container still runs after its withdrawal");
    wait_for("pod web to be gone", LONG, || board.get("web").is_none().then_some(()));
}

#[test]
fn active_deadline_fails_the_pod() {
    let Some(board) = Board::start(Runtime::Builtin, "") else { return };
    let mut p = pod("deadline", json!([busybox("app", "exec sleep 600")]));
    p["spec"]["activeDeadlineSeconds"] = json!(2);
    p["spec"]["terminationGracePeriodSeconds"] = json!(1);
    board.create(p);
    let failed = board.wait("Failed", "deadline", |p| p["status"]["phase"] == "Failed");
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded", "{}", failed["status"]);
    let done = board.wait("its container terminated", "deadline", |p| {
        !p["status"]["containerStatuses"][0]["state"]["terminated"].is_null()
    });
    assert_eq!(done["status"]["containerStatuses"][0]["restartCount"], 0, "a failed pod is not restarted");
    board.wait_event("Pod was active on the node longer than the specified deadline");
}

#[test]
fn host_network_mode_puts_every_pod_on_the_host_network() {
    let Some(board) = Board::start(Runtime::Builtin, "  mode: host\n") else { return };
    let host_devices = std::fs::read_to_string("/proc/net/dev").unwrap();
    let iface = host_devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(str::trim))
        .find(|name| *name != "lo")
        .expect("a host interface besides lo")
        .to_string();
    let uid = board.create(pod("onhost", json!([busybox("app", "cat /proc/net/dev; exec sleep 600")])));
    let running = board.wait_running("onhost");
    assert!(!board.run_dir().join("sandboxes").join(&uid).join("net").exists(), "no network namespace of its own");
    assert_eq!(running["status"]["podIP"], running["status"]["hostIP"], "{}", running["status"]);
    log_with(&board, &uid, "onhost", "app", &format!("{iface}:"));
}

#[test]
fn hosts_files_follow_services_after_a_daemon_restart() {
    let Some(mut board) = Board::start(Runtime::Builtin, "") else { return };
    let running = {
        board.create(pod("reader", json!([busybox("app", "exec sleep 600")])));
        board.wait_running("reader")
    };
    if running["status"]["podIP"].is_null() {
        eprintln!("skipping the rest: no CNI plugins here, so the node writes no pod address into /etc/hosts");
        return;
    }
    let pid = board.container_pid(&running);
    board.daemon.restart();
    board.wait_running("reader");
    create_service(&board, "late", 80);
    let hosts = format!("/proc/{pid}/root/etc/hosts");
    wait_for("the running container's /etc/hosts to name the new Service", LONG, || {
        std::fs::read_to_string(&hosts).ok().filter(|t| t.contains("late.default.svc.cluster.local"))
    });
}

/// The device target: coracled supervising 100 pods, each with an exec readiness probe and
/// a tcpSocket liveness probe, stays within 24 MiB of RSS (shims excluded: they are
/// processes of their own). The budget is a release binary's; a debug build maps ~10 MiB
/// more code, so there only the memory the daemon allocates (RssAnon) is held to it.
#[test]
fn a_hundred_pods_keep_the_daemon_small() {
    let Some(board) = Board::start(Runtime::Builtin, "  mode: none\n") else { return };
    for i in 0..100 {
        let mut app = busybox("app", "exec httpd -f -p 8080");
        app["readinessProbe"] = json!({"exec": {"command": ["true"]}, "periodSeconds": 2});
        app["livenessProbe"] = json!({"tcpSocket": {"port": 8080}, "periodSeconds": 5});
        let mut p = pod(&format!("p{i}"), json!([app]));
        p["spec"]["terminationGracePeriodSeconds"] = json!(1);
        board.create(p);
    }
    wait_for("100 pods Ready", Duration::from_secs(600), || {
        let (_, body) = board.daemon.http("GET", PODS, None);
        let list: Value = serde_json::from_str(&body).ok()?;
        (list["items"].as_array()?.iter().filter(|p| ready(p)).count() == 100).then_some(())
    });
    // A few probe periods: every probe has run again since the pods became Ready.
    std::thread::sleep(Duration::from_secs(6));
    let pid = board.daemon.pid().unwrap();
    let field = |file: &str, key: &str| -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
        let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in {file}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (rss, pss) = (field("status", "VmRSS:"), field("smaps_rollup", "Pss:"));
    let (anon, file) = (field("status", "RssAnon:"), field("status", "RssFile:"));
    let threads = field("status", "Threads:");
    eprintln!("coracled with 100 pods: VmRSS {rss} KiB (anon {anon}, file {file}), Pss {pss} KiB, {threads} threads");
    let (what, kib) = if cfg!(debug_assertions) { ("RssAnon", anon) } else { ("VmRSS", rss) };
    assert!(kib <= 24 * 1024, "{what} {kib} KiB over the 24 MiB target");
    let restarted: Vec<Value> = {
        let (_, body) = board.daemon.http("GET", PODS, None);
        let list: Value = serde_json::from_str(&body).unwrap();
        let items = list["items"].as_array().unwrap().clone();
        items.into_iter().filter(|p| p["status"]["containerStatuses"][0]["restartCount"] != 0).collect()
    };
    assert!(restarted.is_empty(), "probes passing, yet containers restarted: {restarted:?}");
}

/// Exec probes run as the container does: its user, environment and working directory.
fn exec_probes_run_as_the_container(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let mut app = busybox("app", "exec sleep 600");
    app["securityContext"] = json!({"runAsUser": 65534, "runAsGroup": 65534});
    app["env"] = json!([{"name": "GREETING", "value": "hi"}]);
    app["workingDir"] = json!("/tmp");
    let check = "test $(id -u) = 65534 && test $(id -g) = 65534 && test \"$GREETING\" = hi && test $(pwd) = /tmp";
    app["readinessProbe"] = json!({"exec": {"command": ["sh", "-c", check]}, "periodSeconds": 1});
    app["livenessProbe"] = json!({"exec": {"command": ["sh", "-c", check]}, "periodSeconds": 1});
    board.create(pod("as-app", json!([app])));
    board.wait_running("as-app");
    std::thread::sleep(Duration::from_secs(3));
    let p = board.get("as-app").unwrap();
    assert!(ready(&p), "still Ready after more probe periods: {}", p["status"]);
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0, "the liveness probe passed every time");
}

/// A postStart hook runs in the container (as the container) right after it starts; a
/// failing one kills the container, which its restart policy then restarts.
fn post_start_hooks_run_in_the_container_and_a_failure_kills_it(rt: Runtime) {
    let Some(board) = Board::start(rt, "") else { return };
    let out = tempfile::tempdir().unwrap();
    let mut app = busybox("app", "exec sleep 600");
    let hook = "echo \"post $(id -u) $GREETING $(cat /proc/1/cmdline | tr '\\0' ' ')\" > /out/post";
    app["lifecycle"] = json!({"postStart": {"exec": {"command": ["sh", "-c", hook]}}});
    app["env"] = json!([{"name": "GREETING", "value": "hi"}]);
    app["securityContext"] = json!({"runAsUser": 0});
    app["volumeMounts"] = json!([{"name": "out", "mountPath": "/out"}]);
    let mut p = pod("hooked", json!([app]));
    p["spec"]["volumes"] = json!([{"name": "out", "hostPath": {"path": out.path().to_str().unwrap()}}]);
    board.create(p);
    board.wait_running("hooked");
    let written = std::fs::read_to_string(out.path().join("post")).expect("the hook wrote its file");
    assert_eq!(written, "post 0 hi sleep 600 \n", "the hook ran as the container, seeing its pid 1");

    let mut failing = busybox("app", "exec sleep 600");
    failing["lifecycle"] = json!({"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}});
    let mut p = pod("bad-hook", json!([failing]));
    p["spec"]["terminationGracePeriodSeconds"] = json!(1);
    board.create(p);
    board.wait_event("PostStartHook failed: command [\"sh\", \"-c\", \"exit 3\"] exited with 3");
    board.wait("restarted after its failed hook", "bad-hook", |p| {
        p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
    });
}

on_both_runtimes!(
    exec_probes_run_as_the_container,
    post_start_hooks_run_in_the_container_and_a_failure_kills_it,
    web_server_answers_in_its_namespace_and_survives_a_daemon_restart,
    a_failing_container_reaches_crash_loop_backoff_with_growing_delays,
    a_killed_process_is_restarted_and_counted,
    a_pod_over_its_memory_limit_is_oom_killed,
    a_liveness_probe_failure_restarts_the_container,
    a_readiness_probe_toggles_ready,
    deleting_a_pod_leaves_nothing_behind_even_across_a_daemon_restart,
    a_power_cut_brings_every_pod_back,
    an_absent_image_waits_with_err_image_never_pull_until_loaded,
    init_containers_run_in_order_before_the_app,
    restart_policies_end_in_succeeded_or_failed,
    service_links_and_dollar_references_fill_the_environment,
    pre_stop_runs_before_sigterm_within_the_grace_period,
    exec_probes_run_in_the_containers_pid_namespace,
    kubelet_events_name_each_step,
);

/// The pod as stored, to be changed and PUT back.
fn live(board: &Board, name: &str) -> Value {
    board.get(name).unwrap_or_else(|| panic!("pod {name} is gone"))
}

fn put(board: &Board, pod: &Value) -> (u16, Value) {
    let name = pod["metadata"]["name"].as_str().unwrap();
    let (status, body) = board.daemon.http("PUT", &format!("{PODS}/{name}"), Some(&pod.to_string()));
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("PUT answered no JSON ({e}): {body}")))
}

fn merge_patch(board: &Board, name: &str, patch: &Value) -> (u16, Value) {
    let headers = [("Content-Type", "application/merge-patch+json")];
    let resp = board.daemon.request("PATCH", &format!("{PODS}/{name}"), &headers, Some(patch.to_string().as_bytes()));
    (resp.status, serde_json::from_str(&resp.body).unwrap_or_else(|e| panic!("PATCH answered no JSON ({e})")))
}

/// Issue 23's reproducer 7: a PUT replacing a pod's containers aborted the daemon (its pod
/// worker indexed containers by position). Now it is refused as Kubernetes refuses it, and
/// the daemon and the pod carry on untouched.
#[test]
fn a_put_that_replaces_containers_is_refused_and_the_daemon_serves_on() {
    let Some(board) = Board::start(Runtime::Builtin, "") else { return };
    board.create(pod("keep", json!([busybox("app", "exec sleep 600")])));
    let before = board.wait_running("keep");
    let pid = board.container_pid(&before);

    let mut replaced = live(&board, "keep");
    replaced["spec"]["containers"] = json!([busybox("other", "exec sleep 700")]);
    let (status, body) = put(&board, &replaced);
    assert_eq!(status, 422, "{body}");
    assert_eq!((body["reason"].as_str(), body["code"].as_i64()), (Some("Invalid"), Some(422)), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Pod \"keep\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"),
        "{message}"
    );
    assert!(message.contains("- spec.containers[0].name: \"app\"\n+ spec.containers[0].name: \"other\""), "{message}");
    assert_eq!(body["details"]["causes"][0]["field"], "spec", "{body}");

    let mut added = live(&board, "keep");
    let first = added["spec"]["containers"][0].clone();
    added["spec"]["containers"] = json!([first, busybox("second", "exec sleep 600")]);
    let (status, body) = put(&board, &added);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("spec.containers: Forbidden: pod updates may not add or remove containers"),
        "{body}"
    );

    let (status, body) = merge_patch(&board, "keep", &json!({"spec": {"hostNetwork": true, "restartPolicy": "Never"}}));
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("+ spec.hostNetwork: true") && message.contains("+ spec.restartPolicy: \"Never\""),
        "{message}"
    );

    // Still serving, and the pod is exactly what it was.
    let (status, _) = board.daemon.http("GET", "/api/v1/pods", None);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(2));
    let after = board.wait_running("keep");
    assert_eq!(after["spec"], before["spec"], "nothing of the refused updates was stored");
    assert_eq!(board.container_pid(&after), pid, "the container was never touched");
    assert!(alive(pid));
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0);
    assert!(board.daemon.pid().is_some_and(|p| alive(p as i32)), "the daemon is alive");
}

/// An image change (which Kubernetes allows) restarts that container with the new image at
/// once, whatever the restart policy, as the kubelet does; the pod's other container runs on.
#[test]
fn an_image_change_restarts_that_container_with_the_new_image() {
    let Some(board) = Board::start(Runtime::Builtin, "") else { return };
    board.daemon.load_busybox("busybox:2", &["sh"]);
    let mut p = pod("images", json!([busybox("app", "exec sleep 600"), busybox("side", "exec sleep 600")]));
    p["spec"]["restartPolicy"] = json!("Never");
    p["spec"]["terminationGracePeriodSeconds"] = json!(1);
    board.create(p);
    let before = board.wait_running("images");
    let (app_pid, side_pid) = (pid_of(&board, &before, "app"), pid_of(&board, &before, "side"));

    let mut changed = live(&board, "images");
    changed["spec"]["containers"][0]["image"] = json!("busybox:2");
    changed["metadata"]["labels"] = json!({"updated": "yes"});
    let (status, body) = put(&board, &changed);
    assert_eq!(status, 200, "{body}");
    let after = board.wait("app restarted with busybox:2", "images", |p| {
        let app = container_status(p, "app");
        app["image"] == "busybox:2" && app["restartCount"] == 1 && !app["state"]["running"].is_null() && ready(p)
    });
    let app = container_status(&after, "app");
    assert_eq!(app["lastState"]["terminated"]["exitCode"], 137, "the old instance was stopped: {app}");
    assert_ne!(pid_of(&board, &after, "app"), app_pid);
    assert!(!alive(app_pid), "the old instance's process is gone");
    let side = container_status(&after, "side");
    assert_eq!((side["image"].as_str(), side["restartCount"].as_i64()), (Some("busybox:latest"), Some(0)));
    assert_eq!(pid_of(&board, &after, "side"), side_pid, "the other container runs on");
    assert_eq!(after["metadata"]["labels"]["updated"], "yes");
    board.wait_event("Container app definition changed, will be restarted");
}

/// An `activeDeadlineSeconds` set by an update is honoured like one given at creation.
#[test]
fn a_deadline_set_by_an_update_is_honoured() {
    let Some(board) = Board::start(Runtime::Builtin, "") else { return };
    let mut p = pod("late-deadline", json!([busybox("app", "exec sleep 600")]));
    p["spec"]["terminationGracePeriodSeconds"] = json!(1);
    board.create(p);
    board.wait_running("late-deadline");
    let (status, body) = merge_patch(&board, "late-deadline", &json!({"spec": {"activeDeadlineSeconds": 3}}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = merge_patch(&board, "late-deadline", &json!({"spec": {"activeDeadlineSeconds": 30}}));
    assert_eq!(status, 422, "a deadline may only go down: {body}");
    let failed = board.wait("Failed", "late-deadline", |p| p["status"]["phase"] == "Failed");
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded", "{}", failed["status"]);
}

/// A pod a finalizer holds after its deletion stays Terminating, and its status says that
/// nothing of it runs any more (it used to show 1/1 Running with no process).
#[test]
fn a_terminating_pod_held_by_a_finalizer_shows_its_containers_stopped() {
    let Some(board) = Board::start(Runtime::Builtin, "") else { return };
    let mut p = pod("held", json!([busybox("app", "exec sleep 600")]));
    p["metadata"]["finalizers"] = json!(["example.com/hold"]);
    p["spec"]["terminationGracePeriodSeconds"] = json!(1);
    board.create(p);
    let running = board.wait_running("held");
    let pid = board.container_pid(&running);
    let (status, body) = board.daemon.http("DELETE", &format!("{PODS}/held"), None);
    assert_eq!(status, 200, "{body}");
    let stopped = board.wait("its container shown stopped", "held", |p| {
        !p["status"]["containerStatuses"][0]["state"]["terminated"].is_null()
    });
    assert!(!stopped["metadata"]["deletionTimestamp"].is_null());
    let c = &stopped["status"]["containerStatuses"][0];
    assert_eq!((c["ready"].as_bool(), c["state"]["terminated"]["exitCode"].as_i64()), (Some(false), Some(137)), "{c}");
    assert_eq!(stopped["status"]["phase"], "Failed", "{}", stopped["status"]);
    assert!(!ready(&stopped));
    assert!(!alive(pid), "no process is left");
    let (status, body) = merge_patch(&board, "held", &json!({"metadata": {"finalizers": null}}));
    assert_eq!(status, 200, "{body}");
    wait_for("pod held to be gone once released", LONG, || board.get("held").is_none().then_some(()));
}
