//! Deployments on the board with real containers: scaling and self-healing, rolling
//! updates that never dip below the desired Ready count nor exceed the surge (sampled
//! every 50 ms through the API, across a SIGKILL of the daemon), a stuck rollout that
//! hits its progress deadline and is undone, and the `rollout` verbs' exit codes.
//! Every test needs root and skips without it.

use coracle_e2e::{http, skip_unless_root, stderr, stdout, wait_for, Daemon};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REPLICASETS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const LONG: Duration = Duration::from_secs(120);
/// Fast restart backoff; no pod network (these tests never talk to the pods).
const CONFIG: &str = "backoff:\n  base_seconds: 1\n  cap_seconds: 4\n  reset_seconds: 600\nnetwork:\n  mode: none\n";

/// A daemon with the busybox image loaded as `busybox:1` and `busybox:2`.
struct Board {
    daemon: Daemon,
}

impl Board {
    fn start() -> Board {
        let daemon = Daemon::start_with_config(CONFIG);
        for reference in ["busybox:1", "busybox:2"] {
            daemon.load_busybox(reference, &["sh"]);
        }
        Board { daemon }
    }

    /// `coracle apply -f` of `manifest`, written to a file first as a user would.
    fn apply(&self, manifest: &Value) {
        let name = manifest["metadata"]["name"].as_str().unwrap();
        let path = self.daemon.root().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(manifest).unwrap()).unwrap();
        self.daemon.ctl_ok(&["apply", "-f", path.to_str().unwrap()]);
    }

    fn deployment(&self, name: &str) -> Value {
        self.daemon.get_json(&format!("{DEPLOYMENTS}/{name}"))
    }

    /// The deployment's ReplicaSets, oldest revision first.
    fn replica_sets(&self, app: &str) -> Vec<Value> {
        let mut sets = items(&self.daemon.get_json(&format!("{REPLICASETS}?labelSelector=app%3D{app}")));
        sets.sort_by_key(revision);
        sets
    }

    /// Pods of `app` that count (see `counted`).
    fn pods(&self, app: &str) -> Vec<Value> {
        items(&self.daemon.get_json(&format!("{PODS}?labelSelector=app%3D{app}"))).into_iter().filter(counted).collect()
    }

    /// Waits until `app` has exactly `n` counted pods, all Ready and all running `image`.
    fn wait_ready(&self, app: &str, n: usize, image: &str) -> Vec<Value> {
        wait_for(&format!("{n} Ready pods of {app} on {image}"), LONG, || {
            let pods = self.pods(app);
            let all = pods.len() == n && pods.iter().all(|p| ready(p) && image_of(p) == image);
            all.then_some(pods)
        })
    }

    /// `coracle rollout status` with a generous timeout: (exit code, stdout + stderr).
    fn rollout_status(&self, name: &str) -> (i32, String) {
        let out = self.daemon.ctl(&["rollout", "status", &format!("deployment/{name}"), "--timeout=150s"]);
        let text = stdout(&out) + &stderr(&out);
        (out.status.code().unwrap_or(-1), text)
    }
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn revision(rs: &Value) -> i64 {
    let r = &rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"];
    r.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// What the guarantees count: pods not terminating (no deletionTimestamp) and not
/// finished (phase neither Succeeded nor Failed), whatever their ReplicaSet.
fn counted(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn image_of(pod: &Value) -> &str {
    pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default()
}

/// A Deployment of `replicas` busybox pods labelled app=`name` on `image`, rolling out
/// one surge pod at a time with none unavailable. Pods turn Ready through an exec
/// readiness probe a moment after start, and exit promptly on SIGTERM.
fn deployment(name: &str, replicas: i32, image: &str) -> Value {
    let script = "trap 'exit 0' TERM; touch /tmp/ready; while :; do sleep 1; done";
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "app",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", script],
                        "readinessProbe": {
                            "exec": {"command": ["cat", "/tmp/ready"]},
                            "initialDelaySeconds": 1,
                            "periodSeconds": 1,
                        },
                    }],
                },
            },
        },
    })
}

/// What the sampler saw: the fewest Ready and the most counted pods in one sample, and
/// how many samples held unfinished pods (terminating ones included) of two templates.
#[derive(Debug, Default, Clone, Copy)]
struct Extremes {
    samples: u32,
    skipped: u32,
    min_ready: usize,
    max_total: usize,
    mixed_templates: u32,
}

/// Lists `app`'s pods through the API every 50 ms until stopped. A sample that fails
/// (the daemon is down for a restart) is skipped, not counted.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Extremes, Vec<String>)>,
}

impl Sampler {
    fn start(socket: PathBuf, app: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = format!("{PODS}?labelSelector=app%3D{app}");
        let thread = std::thread::spawn(move || {
            let mut seen = Extremes { min_ready: usize::MAX, ..Extremes::default() };
            let mut worst = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match http::request(&socket, "GET", &path, &[], None) {
                    Ok(resp) if resp.status == 200 => {
                        let list: Value = serde_json::from_str(&resp.body).expect("a pod list");
                        let mut hashes: Vec<String> = items(&list)
                            .iter()
                            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
                            .map(|p| p["metadata"]["labels"]["pod-template-hash"].to_string())
                            .collect();
                        hashes.sort();
                        hashes.dedup();
                        if hashes.len() > 1 {
                            seen.mixed_templates += 1;
                        }
                        let pods: Vec<Value> = items(&list).into_iter().filter(counted).collect();
                        let ready_now = pods.iter().filter(|p| ready(p)).count();
                        seen.samples += 1;
                        if ready_now < seen.min_ready || pods.len() > seen.max_total {
                            worst.push(format!("sample {}: {} counted, {ready_now} Ready", seen.samples, pods.len()));
                        }
                        seen.min_ready = seen.min_ready.min(ready_now);
                        seen.max_total = seen.max_total.max(pods.len());
                    }
                    _ => seen.skipped += 1,
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (seen, worst)
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> (Extremes, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the sampler thread")
    }
}

/// Asserts the rolling-update guarantees for `replicas` with maxSurge 1, maxUnavailable 0.
fn assert_guarantees(seen: Extremes, history: &[String], replicas: usize) {
    eprintln!("sampled: {seen:?}");
    assert!(seen.samples > 20, "too few samples to judge: {seen:?}");
    assert!(seen.mixed_templates > 0, "the sampler saw the rollout under way: {seen:?}");
    assert!(seen.min_ready >= replicas, "Ready dropped below {replicas}: {seen:?}; {history:?}");
    assert!(seen.max_total <= replicas + 1, "more than {} pods: {seen:?}; {history:?}", replicas + 1);
}

/// After a finished rollout: only the newest set has replicas, and every pod is on `image`.
fn assert_rolled_out(board: &Board, app: &str, replicas: usize, image: &str) {
    board.wait_ready(app, replicas, image);
    let sets = wait_for("old ReplicaSets at 0", LONG, || {
        let sets = board.replica_sets(app);
        let (newest, old) = sets.split_last()?;
        let old_empty =
            old.iter().all(|rs| rs["spec"]["replicas"] == 0 && rs["status"]["replicas"].as_i64() == Some(0));
        (old_empty && newest["spec"]["replicas"] == replicas).then_some(sets)
    });
    assert!(sets.len() >= 2, "a new ReplicaSet was made: {sets:?}");
}

#[test]
fn a_deployment_scales_and_replaces_a_deleted_pod() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
    board.apply(&deployment("web", 3, "busybox:1"));
    board.wait_ready("web", 3, "busybox:1");
    let d = wait_for("deployment status to report 3 available", LONG, || {
        let d = board.deployment("web");
        (d["status"]["availableReplicas"] == 3).then_some(d)
    });
    assert_eq!(d["status"]["readyReplicas"], 3, "{}", d["status"]);

    board.daemon.ctl_ok(&["scale", "deployment/web", "--replicas=5"]);
    let pods = board.wait_ready("web", 5, "busybox:1");
    let sets = board.replica_sets("web");
    assert_eq!(sets.len(), 1, "scaling makes no new ReplicaSet: {sets:?}");
    assert_eq!(sets[0]["spec"]["replicas"], 5);

    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    board.daemon.ctl_ok(&["delete", "pod", &victim]);
    let after = wait_for("a replacement pod", LONG, || {
        let pods = board.pods("web");
        let replaced =
            pods.len() == 5 && pods.iter().all(ready) && pods.iter().all(|p| p["metadata"]["name"] != victim);
        replaced.then_some(pods)
    });
    assert_eq!(after.len(), 5);
}

#[test]
fn an_image_then_env_rollout_keeps_five_ready_and_at_most_six_pods() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
    let mut manifest = deployment("roll", 5, "busybox:1");
    board.apply(&manifest);
    board.wait_ready("roll", 5, "busybox:1");
    let (code, text) = board.rollout_status("roll");
    assert_eq!(code, 0, "rollout status of the first revision: {text}");

    // An image change.
    let sampler = Sampler::start(board.daemon.socket().to_path_buf(), "roll");
    board.daemon.ctl_ok(&["set", "image", "deployment/roll", "app=busybox:2"]);
    let (code, text) = board.rollout_status("roll");
    assert_eq!(code, 0, "rollout status after set image: {text}");
    assert!(text.contains("successfully rolled out"), "{text}");
    assert_rolled_out(&board, "roll", 5, "busybox:2");
    let (seen, history) = sampler.finish();
    assert_guarantees(seen, &history, 5);

    // An env change, applied.
    let sampler = Sampler::start(board.daemon.socket().to_path_buf(), "roll");
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "COLOUR", "value": "blue"}]);
    board.apply(&manifest);
    let (code, text) = board.rollout_status("roll");
    assert_eq!(code, 0, "rollout status after the env change: {text}");
    assert_rolled_out(&board, "roll", 5, "busybox:2");
    let (seen, history) = sampler.finish();
    assert_guarantees(seen, &history, 5);
    for pod in board.pods("roll") {
        assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "blue", "{}", pod["metadata"]["name"]);
    }

    let sets = board.replica_sets("roll");
    assert_eq!(sets.iter().map(revision).collect::<Vec<_>>(), [1, 2, 3], "one set per revision");
    let history = board.daemon.ctl_ok(&["rollout", "history", "deployment/roll"]);
    for rev in ["1", "2", "3"] {
        assert!(history.lines().any(|l| l.split_whitespace().next() == Some(rev)), "revision {rev} in:\n{history}");
    }
}

#[test]
fn a_stuck_rollout_exceeds_its_deadline_keeps_old_pods_and_is_undone() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
    let mut manifest = deployment("stuck", 3, "busybox:1");
    manifest["spec"]["progressDeadlineSeconds"] = json!(6);
    board.apply(&manifest);
    let first = board.wait_ready("stuck", 3, "busybox:1");
    let first_template = board.deployment("stuck")["spec"]["template"].clone();

    // Revision 2's pods never pass their readiness probe.
    let mut broken = manifest.clone();
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"] = json!(["false"]);
    board.apply(&broken);
    let d = wait_for("ProgressDeadlineExceeded", LONG, || {
        let d = board.deployment("stuck");
        let conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded")
            .then_some(d)
    });
    let (code, text) = board.rollout_status("stuck");
    assert_eq!(code, 1, "rollout status on a stuck rollout: {text}");
    assert!(text.contains("exceeded its progress deadline"), "{text}");

    // Stopped at the surge: the three old pods serve, one new pod waits unready.
    let sets = board.replica_sets("stuck");
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[0]["spec"]["replicas"], 3, "old set kept: {}", sets[0]["spec"]);
    assert_eq!(sets[1]["spec"]["replicas"], 1, "new set at the surge: {}", sets[1]["spec"]);
    let pods = board.pods("stuck");
    let old_names: Vec<&Value> = first.iter().map(|p| &p["metadata"]["name"]).collect();
    let old_ready = pods.iter().filter(|p| old_names.contains(&&p["metadata"]["name"]) && ready(p)).count();
    assert_eq!(old_ready, 3, "the old pods still serve: {pods:?}");
    assert_eq!(pods.len(), 4, "3 old + 1 surge pod: {pods:?}");
    assert_eq!(d["status"]["updatedReplicas"], 1, "{}", d["status"]);
    assert_eq!(d["status"]["availableReplicas"], 3, "{}", d["status"]);

    board.daemon.ctl_ok(&["rollout", "undo", "deployment/stuck"]);
    let (code, text) = board.rollout_status("stuck");
    assert_eq!(code, 0, "rollout status after undo: {text}");
    let restored = board.deployment("stuck");
    assert_eq!(restored["spec"]["template"]["spec"], first_template["spec"], "undo brings back revision 1's template");
    let survivors = wait_for("the broken set emptied", LONG, || {
        let sets = board.replica_sets("stuck");
        let pods = board.pods("stuck");
        let done = sets.iter().any(|rs| rs["spec"]["replicas"] == 3) && pods.len() == 3 && pods.iter().all(ready);
        done.then_some(pods)
    });
    let mut names: Vec<&str> = survivors.iter().map(|p| p["metadata"]["name"].as_str().unwrap()).collect();
    let mut before: Vec<&str> = first.iter().map(|p| p["metadata"]["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    before.sort_unstable();
    assert_eq!(names, before, "rolling back to the serving template keeps its pods");
    let sets = board.replica_sets("stuck");
    assert_eq!(revision(sets.last().unwrap()), 3, "the restored set takes the next revision: {sets:?}");
    assert_eq!(sets.last().unwrap()["spec"]["replicas"], 3);
    let history = board.daemon.ctl_ok(&["rollout", "history", "deployment/stuck"]);
    for rev in ["2", "3"] {
        assert!(history.lines().any(|l| l.split_whitespace().next() == Some(rev)), "revision {rev} in:\n{history}");
    }
}

#[test]
fn a_rollout_survives_sigkill_of_the_daemon_with_the_same_guarantees() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let mut board = Board::start();
    let mut manifest = deployment("crash", 5, "busybox:1");
    // Slower readiness stretches the rollout so the kill lands in its middle.
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"] = json!(3);
    board.apply(&manifest);
    board.wait_ready("crash", 5, "busybox:1");

    let sampler = Sampler::start(board.daemon.socket().to_path_buf(), "crash");
    board.daemon.ctl_ok(&["set", "image", "deployment/crash", "app=busybox:2"]);
    wait_for("the rollout under way (a new pod Ready, old pods left)", LONG, || {
        let pods = board.pods("crash");
        let new_ready = pods.iter().filter(|p| image_of(p) == "busybox:2" && ready(p)).count();
        let old = pods.iter().filter(|p| image_of(p) == "busybox:1").count();
        (new_ready >= 1 && old >= 2).then_some(())
    });
    let before: Vec<String> =
        board.pods("crash").iter().map(|p| p["metadata"]["uid"].as_str().unwrap().to_string()).collect();
    board.daemon.kill9();
    std::thread::sleep(Duration::from_secs(1));
    board.daemon.restart();

    let (code, text) = board.rollout_status("crash");
    assert_eq!(code, 0, "rollout status after the restart: {text}");
    assert_rolled_out(&board, "crash", 5, "busybox:2");
    let (seen, history) = sampler.finish();
    assert!(seen.skipped > 0, "the sampler ran across the restart: {seen:?}");
    assert_guarantees(seen, &history, 5);
    let after = board.pods("crash");
    let kept = after.iter().filter(|p| before.iter().any(|u| p["metadata"]["uid"] == u.as_str())).count();
    assert!(kept >= 1, "new pods made before the kill were kept, not recreated: {after:?}");
    for pod in &after {
        assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0, "{}", pod["metadata"]["name"]);
    }
}

#[test]
fn a_paused_rollout_scales_proportionally_and_finishes_when_resumed() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
    let mut manifest = deployment("pause", 4, "busybox:1");
    // Slower readiness stretches the rollout so the pause lands in its middle.
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"] = json!(3);
    board.apply(&manifest);
    board.wait_ready("pause", 4, "busybox:1");

    board.daemon.ctl_ok(&["set", "image", "deployment/pause", "app=busybox:2"]);
    wait_for("the rollout under way (both sets active)", LONG, || {
        let sets = board.replica_sets("pause");
        (sets.len() == 2
            && sets[0]["spec"]["replicas"].as_i64() >= Some(2)
            && sets[1]["spec"]["replicas"].as_i64() >= Some(1))
        .then_some(())
    });
    board.daemon.ctl_ok(&["rollout", "pause", "deployment/pause"]);
    wait_for("the Progressing condition to note the pause", LONG, || {
        let d = board.deployment("pause");
        let conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conditions.iter().any(|c| c["type"] == "Progressing" && c["reason"] == "DeploymentPaused").then_some(())
    });
    let sizes = |sets: &[Value]| sets.iter().map(|rs| rs["spec"]["replicas"].as_i64().unwrap()).collect::<Vec<_>>();
    let paused = sizes(&board.replica_sets("pause"));
    assert_eq!(paused.iter().sum::<i64>(), 5, "4 replicas + 1 surge while rolling: {paused:?}");

    // Scaling while paused spreads the new total (8 + 1 surge) over both sets by size.
    board.daemon.ctl_ok(&["scale", "deployment/pause", "--replicas=8"]);
    let scaled = wait_for("both sets scaled proportionally", LONG, || {
        let now = sizes(&board.replica_sets("pause"));
        (now.iter().sum::<i64>() == 9).then_some(now)
    });
    for (before, after) in paused.iter().zip(&scaled) {
        let expected = ((*before as f64) * 9.0 / 5.0).round() as i64;
        assert!(*after == expected || *after == expected + 1 || *after == expected - 1, "{paused:?} → {scaled:?}");
        assert!(after > before, "each set grew: {paused:?} → {scaled:?}");
    }
    assert_eq!(board.replica_sets("pause").len(), 2, "pausing made no further set");

    board.daemon.ctl_ok(&["rollout", "resume", "deployment/pause"]);
    let (code, text) = board.rollout_status("pause");
    assert_eq!(code, 0, "rollout status after resume: {text}");
    assert_rolled_out(&board, "pause", 8, "busybox:2");
}

#[test]
fn a_recreate_rollout_never_runs_old_and_new_pods_together() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let board = Board::start();
    let mut manifest = deployment("again", 3, "busybox:1");
    manifest["spec"]["strategy"] = json!({"type": "Recreate"});
    board.apply(&manifest);
    board.wait_ready("again", 3, "busybox:1");

    let sampler = Sampler::start(board.daemon.socket().to_path_buf(), "again");
    board.daemon.ctl_ok(&["set", "image", "deployment/again", "app=busybox:2"]);
    let (code, text) = board.rollout_status("again");
    assert_eq!(code, 0, "rollout status after set image: {text}");
    assert_rolled_out(&board, "again", 3, "busybox:2");
    let (seen, history) = sampler.finish();
    eprintln!("sampled: {seen:?}");
    assert!(seen.samples > 20, "too few samples to judge: {seen:?}");
    assert_eq!(seen.mixed_templates, 0, "old pods (terminating included) outlived the new ones' start: {history:?}");
    assert!(seen.max_total <= 3, "never more than replicas: {seen:?}");
}
