//! Pods on the board: the node runs them as supervised containers with the kubelet's
//! semantics (restarts, backoff, probes, termination), keeps them across a daemon restart
//! and brings them back after a power cut. Every test needs root and skips without it.

use coracle_e2e::{images, skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";
const LONG: Duration = Duration::from_secs(60);

/// A daemon with a fast restart backoff and the busybox image loaded.
struct Board {
    daemon: Daemon,
    _config: tempfile::TempDir,
}

impl Board {
    fn start() -> Board {
        let config = tempfile::tempdir().expect("config dir");
        let path = config.path().join("config.yaml");
        std::fs::write(&path, "backoff:\n  base_seconds: 1\n  cap_seconds: 4\n  reset_seconds: 600\n").unwrap();
        let daemon = Daemon::start_with(&["--config", path.to_str().unwrap()]);
        let mut board = Board { daemon, _config: config };
        board.load_busybox("busybox:latest");
        board
    }

    /// Loads a busybox image: through `coracle image load` when the daemon serves it, else
    /// straight into the stopped daemon's image store.
    fn load_busybox(&mut self, reference: &str) {
        let archive = images::busybox_docker_archive(self.daemon.root(), reference, &["sh"]);
        let out = self.daemon.ctl(&["image", "load", archive.to_str().unwrap()]);
        if out.status.success() {
            return;
        }
        self.daemon.stop();
        let store = coracled::image::ImageStore::open(self.daemon.data_dir()).expect("opening the image store");
        store.load(&archive).expect("loading the busybox archive");
        drop(store);
        self.daemon.restart();
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

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// GET / on 127.0.0.1:port from inside the network namespace at `netns`.
fn http_in_netns(netns: PathBuf, port: u16) -> String {
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("entering the pod's netns");
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting to the web server");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    })
    .join()
    .unwrap()
}

#[test]
fn web_server_answers_in_its_namespace_and_survives_a_daemon_restart() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let mut board = Board::start();
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

#[test]
fn a_failing_container_reaches_crash_loop_backoff_with_growing_delays() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
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
    let status = &last["status"]["containerStatuses"][0];
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert!(status["restartCount"].as_i64().unwrap() >= 2, "{status}");
    assert_eq!(last["status"]["phase"], "Running");
}

#[test]
fn a_killed_process_is_restarted_and_counted() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
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

#[test]
fn a_pod_over_its_memory_limit_is_oom_killed() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
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

#[test]
fn a_liveness_probe_failure_restarts_the_container() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
    let mut app = busybox("app", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600");
    app["livenessProbe"] =
        json!({"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 2});
    board.create(pod("live", json!([app])));
    board.wait("restarted by its liveness probe", "live", |p| {
        p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
    });
    let (_, events) = board.daemon.http("GET", "/api/v1/namespaces/default/events", None);
    assert!(events.contains("Unhealthy") && events.contains("failed liveness probe"), "events: {events}");
}

#[test]
fn a_readiness_probe_toggles_ready() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
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

#[test]
fn deleting_a_pod_leaves_nothing_behind_even_across_a_daemon_restart() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let mut board = Board::start();
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

#[test]
fn a_power_cut_brings_every_pod_back() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let mut board = Board::start();
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

#[test]
fn an_absent_image_waits_with_err_image_never_pull_until_loaded() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let mut board = Board::start();
    let mut c = busybox("app", "exec sleep 600");
    c["image"] = json!("later:1");
    board.create(pod("later", json!([c])));
    let p = board.wait("waiting for its image", "later", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    });
    let message = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap();
    assert!(message.contains("later:1"), "{message}");
    assert_eq!(p["status"]["phase"], "Pending");
    board.load_busybox("later:1");
    board.wait_running("later");
}

#[test]
fn init_containers_run_in_order_before_the_app() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
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
    let order =
        std::fs::read_to_string(board.daemon.data_dir().join("pods").join(&uid).join("volumes/work/order")).unwrap();
    assert_eq!(order, "first\nsecond\napp\n");
    let log_path = board.daemon.data_dir().join(format!("logs/default_init_{uid}/app/0.log"));
    let log = wait_for("the app's log", LONG, || std::fs::read_to_string(&log_path).ok().filter(|l| l.contains("app")));
    assert!(log.contains("stdout F first"), "{log}");
}

#[test]
fn restart_policies_end_in_succeeded_or_failed() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
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
