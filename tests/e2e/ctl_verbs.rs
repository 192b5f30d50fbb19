//! The rest of kubectl's verbs through `coracle` against a real coracled: scale, autoscale,
//! expose, run, set image, rollout, logs, top, get -w and the image store, read back with
//! curl, with kubectl's output words and exit codes.

use coracle_e2e::{fails, images, ok, stderr, stdout, wait_for, Daemon};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WEB: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.14.2
        ports:
        - containerPort: 8080
      - name: side
        image: busybox
";

const WEB_PATH: &str = "/apis/apps/v1/namespaces/default/deployments/web";

fn with_web(d: &Daemon) {
    assert_eq!(ok(d.ctl_stdin(&["apply", "-f", "-"], WEB)), "deployment.apps/web created\n");
}

#[test]
fn scale_with_and_without_precondition() {
    let d = Daemon::start();
    with_web(&d);
    assert_eq!(ok(d.ctl(&["scale", "deploy/web", "--replicas=5"])), "deployment.apps/web scaled\n");
    assert_eq!(d.get_json(WEB_PATH)["spec"]["replicas"], 5);
    assert_eq!(
        ok(d.ctl(&["scale", "deployment", "web", "--replicas=2", "--current-replicas=5"])),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(d.get_json(WEB_PATH)["spec"]["replicas"], 2);
    assert_eq!(
        fails(d.ctl(&["scale", "deploy/web", "--replicas=4", "--current-replicas=3"])),
        "error: Expected replicas to be 3, was 2\n"
    );
    assert_eq!(d.get_json(WEB_PATH)["spec"]["replicas"], 2);
    let err = fails(d.ctl(&["scale", "deploy/nope", "--replicas=1"]));
    assert!(err.starts_with("Error from server (NotFound): "), "{err}");
    assert!(fails(d.ctl(&["scale", "svc/web", "--replicas=1"])).contains("cannot scale a Service"));
}

#[test]
fn autoscale_creates_a_v2_autoscaler() {
    let d = Daemon::start();
    with_web(&d);
    assert_eq!(
        ok(d.ctl(&["autoscale", "deploy/web", "--min=2", "--max=6", "--cpu-percent=70"])),
        "horizontalpodautoscaler.autoscaling/web autoscaled\n"
    );
    let hpa = d.get_json("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "web");
    assert_eq!((hpa["spec"]["minReplicas"].clone(), hpa["spec"]["maxReplicas"].clone()), (2.into(), 6.into()));
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
    let err = fails(d.ctl(&["autoscale", "deploy/web", "--max=3"]));
    assert!(err.starts_with("Error from server (AlreadyExists): "), "{err}");
    assert!(fails(d.ctl(&["autoscale", "deploy/ghost", "--max=3"])).contains("NotFound"));
}

#[test]
fn expose_and_run_build_kubectl_shaped_objects() {
    let d = Daemon::start();
    with_web(&d);
    assert_eq!(
        ok(d.ctl(&["expose", "deploy/web", "--port=80", "--target-port=8080", "--type=NodePort"])),
        "service/web exposed\n"
    );
    let svc = d.get_json("/api/v1/namespaces/default/services/web");
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "web"}));
    assert_eq!(svc["metadata"]["labels"]["tier"], "front");
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(
        (svc["spec"]["ports"][0]["port"].clone(), svc["spec"]["ports"][0]["targetPort"].clone()),
        (80.into(), 8080.into())
    );
    // No --port: the container's port is introspected.
    assert_eq!(ok(d.ctl(&["expose", "deployment", "web", "--name=web-direct"])), "service/web-direct exposed\n");
    assert_eq!(d.get_json("/api/v1/namespaces/default/services/web-direct")["spec"]["ports"][0]["port"], 8080);

    assert_eq!(
        ok(d.ctl(&[
            "run",
            "box",
            "--image=busybox",
            "--port=9000",
            "--env=MODE=test",
            "--restart=Never",
            "--",
            "sleep",
            "60"
        ])),
        "pod/box created\n"
    );
    let pod = d.get_json("/api/v1/namespaces/default/pods/box");
    assert_eq!(pod["metadata"]["labels"]["run"], "box");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["containers"][0]["args"], serde_json::json!(["sleep", "60"]));
    assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "test");
    assert!(fails(d.ctl(&["run", "box", "--image=busybox"])).contains("AlreadyExists"));
    assert_eq!(ok(d.ctl(&["expose", "pod/box", "--port=9000"])), "service/box exposed\n");
    assert_eq!(d.get_json("/api/v1/namespaces/default/services/box")["spec"]["selector"]["run"], "box");
}

#[test]
fn set_image_changes_only_the_named_container() {
    let d = Daemon::start();
    with_web(&d);
    assert_eq!(ok(d.ctl(&["set", "image", "deploy/web", "web=nginx:1.25"])), "deployment.apps/web image updated\n");
    let live = d.get_json(WEB_PATH);
    let containers = &live["spec"]["template"]["spec"]["containers"];
    assert_eq!((containers[0]["name"].clone(), containers[0]["image"].clone()), ("web".into(), "nginx:1.25".into()));
    assert_eq!((containers[1]["name"].clone(), containers[1]["image"].clone()), ("side".into(), "busybox".into()));
    assert_eq!(containers[0]["ports"][0]["containerPort"], 8080, "the strategic merge kept the port");
    assert_eq!(
        fails(d.ctl(&["set", "image", "deploy/web", "nope=x"])),
        "error: unable to find container named \"nope\"\n"
    );
}

#[test]
fn rollout_pause_resume_restart() {
    let d = Daemon::start();
    with_web(&d);
    assert_eq!(ok(d.ctl(&["rollout", "pause", "deploy/web"])), "deployment.apps/web paused\n");
    assert_eq!(d.get_json(WEB_PATH)["spec"]["paused"], true);
    assert_eq!(
        fails(d.ctl(&["rollout", "pause", "deploy/web"])),
        "error: deployments.apps \"web\" is already paused\n"
    );
    assert!(fails(d.ctl(&["rollout", "undo", "deploy/web"])).contains("you cannot rollback a paused deployment"));
    assert_eq!(ok(d.ctl(&["rollout", "resume", "deployment", "web"])), "deployment.apps/web resumed\n");
    assert_ne!(d.get_json(WEB_PATH)["spec"]["paused"], true);
    assert_eq!(ok(d.ctl(&["rollout", "restart", "deploy/web"])), "deployment.apps/web restarted\n");
    let live = d.get_json(WEB_PATH);
    let stamp = &live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
    assert!(stamp.as_str().is_some_and(|s| s.ends_with('Z')), "{live}");
    assert!(fails(d.ctl(&["rollout", "status", "rs/web"]))
        .contains("no status viewer has been implemented for ReplicaSet.apps"));
}

/// Creates a replica set of `web` at `revision` with `image`, controlled by the deployment,
/// as the deployment controller would have.
fn revision_rs(d: &Daemon, uid: &str, revision: u32, image: &str, cause: Option<&str>) {
    let mut annotations = serde_json::json!({"deployment.kubernetes.io/revision": revision.to_string()});
    if let Some(c) = cause {
        annotations["kubernetes.io/change-cause"] = c.into();
    }
    let rs = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("web-rev{revision}"), "labels": {"app": "web", "pod-template-hash": format!("h{revision}")},
                     "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid,
                                          "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web", "pod-template-hash": format!("h{revision}")}},
                 "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": format!("h{revision}")}},
                              "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]},
                                                      {"name": "side", "image": "busybox"}]}}}
    });
    let (status, body) = d.http("POST", "/apis/apps/v1/namespaces/default/replicasets", Some(&rs.to_string()));
    assert_eq!(status, 201, "{body}");
}

/// Replica sets the deployment owns, by revision (whoever made them: the test or a
/// deployment controller).
fn owned_revisions(d: &Daemon, uid: &str) -> Vec<(i64, String)> {
    let list = d.get_json("/apis/apps/v1/namespaces/default/replicasets");
    let mut out: Vec<(i64, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rs| rs["metadata"]["ownerReferences"].as_array().is_some_and(|o| o.iter().any(|o| o["uid"] == uid)))
        .filter_map(|rs| {
            let r = rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()?.parse().ok()?;
            Some((r, rs["spec"]["template"]["spec"]["containers"][0]["image"].as_str()?.to_string()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn rollout_history_and_undo() {
    let d = Daemon::start();
    with_web(&d);
    let uid = d.get_json(WEB_PATH)["metadata"]["uid"].as_str().unwrap().to_string();
    // A deployment controller, when running, makes revision 1 itself; otherwise make the
    // history a controller would have left.
    std::thread::sleep(Duration::from_millis(500));
    if owned_revisions(&d, &uid).is_empty() {
        revision_rs(&d, &uid, 1, "nginx:1.14.2", Some("first"));
    }
    assert_eq!(ok(d.ctl(&["set", "image", "deploy/web", "web=nginx:1.25"])), "deployment.apps/web image updated\n");
    std::thread::sleep(Duration::from_millis(500));
    if owned_revisions(&d, &uid).len() < 2 {
        revision_rs(&d, &uid, 2, "nginx:1.25", None);
    }
    let revisions = owned_revisions(&d, &uid);
    assert_eq!(revisions.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), ["nginx:1.14.2", "nginx:1.25"]);

    let history = ok(d.ctl(&["rollout", "history", "deploy/web"]));
    assert!(history.starts_with("deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         "), "{history}");
    assert!(history.contains("\n2         <none>\n"), "{history}");
    let one = ok(d.ctl(&["rollout", "history", "deploy/web", "--revision=1"]));
    assert!(one.starts_with("deployment.apps/web with revision #1\nPod Template:\n"), "{one}");
    assert!(one.contains("nginx:1.14.2"), "{one}");
    assert_eq!(
        fails(d.ctl(&["rollout", "undo", "deploy/web", "--to-revision=9"])),
        "error: unable to find specified revision 9 in history\n"
    );

    assert_eq!(ok(d.ctl(&["rollout", "undo", "deploy/web"])), "deployment.apps/web rolled back\n");
    let live = d.get_json(WEB_PATH);
    let template = &live["spec"]["template"];
    assert_eq!(template["spec"]["containers"][0]["image"], "nginx:1.14.2");
    assert!(template["metadata"]["labels"].get("pod-template-hash").is_none(), "{template}");
}

/// Writes the deployment's status through the status subresource, as its controller would.
fn put_status(d: &Daemon, status: Value) {
    let mut live = d.get_json(WEB_PATH);
    let generation = live["metadata"]["generation"].clone();
    live["status"] = status;
    live["status"]["observedGeneration"] = generation;
    let (code, body) = d.http("PUT", &format!("{WEB_PATH}/status"), Some(&live.to_string()));
    assert_eq!(code, 200, "{body}");
}

/// Runs coracle in the background, its stdout lines arriving on the channel.
fn spawn_ctl(d: &Daemon, args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(coracle_e2e::bin("coracle"))
        .arg("--socket")
        .arg(d.socket())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning coracle");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn next_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no line for {what}"))
}

#[test]
fn rollout_status_waits_for_a_real_rollout() {
    if coracle_e2e::skip_unless_root("the node runs the deployment's pods") {
        return;
    }
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = images::busybox_docker_archive(dir.path(), "busybox:latest", &["sleep", "120"]);
    ok(d.ctl(&["image", "load", archive.to_str().unwrap()]));
    let manifest = WEB
        .replace("replicas: 3", "replicas: 2")
        .replace("image: nginx:1.14.2", "image: busybox:latest")
        .replace("      - name: side\n        image: busybox\n", "");
    ok(d.ctl_stdin(&["apply", "-f", "-"], &manifest));
    let out = ok(d.ctl(&["rollout", "status", "deploy/web", "--timeout=120s"]));
    assert!(out.ends_with("deployment \"web\" successfully rolled out\n"), "{out}");
    for line in out.lines().filter(|l| l.starts_with("Waiting")) {
        assert!(
            line.starts_with("Waiting for deployment \"web\" rollout to finish: ")
                || line.starts_with("Waiting for deployment spec"),
            "{line}"
        );
    }
    stop_pods(&d, &["deploy/web"]);
}

/// Deletes what runs containers and waits (softly) for the pods to go, so the test leaves
/// no containers behind once its daemon is killed.
fn stop_pods(d: &Daemon, objects: &[&str]) {
    for o in objects {
        ok(d.ctl(&["delete", o, "--grace-period=1"]));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let pods = d.get_json("/api/v1/namespaces/default/pods");
        if pods["items"].as_array().is_none_or(|p| p.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("warning: pods still present after deleting {objects:?}");
}

#[test]
#[ignore = "writes the deployment's status itself, racing the running deployment controller; run with --ignored on a quiet machine to pin the watch path message by message"]
fn rollout_status_follows_the_watch_until_done() {
    let d = Daemon::start();
    with_web(&d);
    put_status(&d, serde_json::json!({"replicas": 3, "updatedReplicas": 1}));
    let (mut child, rx) = spawn_ctl(&d, &["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert_eq!(
        next_line(&rx, "first status"),
        "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated..."
    );
    put_status(&d, serde_json::json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}));
    assert_eq!(
        next_line(&rx, "second status"),
        "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available..."
    );
    put_status(&d, serde_json::json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}));
    assert_eq!(next_line(&rx, "done"), "deployment \"web\" successfully rolled out");
    assert!(child.wait().unwrap().success());

    put_status(
        &d,
        serde_json::json!({"replicas": 3, "updatedReplicas": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]}),
    );
    assert_eq!(
        fails(d.ctl(&["rollout", "status", "deploy/web"])),
        "error: deployment \"web\" exceeded its progress deadline\n"
    );
}

#[test]
fn rollout_status_once_and_timeout() {
    let d = Daemon::start();
    with_web(&d);
    let once = ok(d.ctl(&["rollout", "status", "deploy/web", "--watch=false"]));
    assert!(once.starts_with("Waiting for deployment") || once.starts_with("deployment \"web\""), "{once}");
    // Without running pods the rollout cannot finish: the timeout ends the wait.
    let o = d.ctl(&["rollout", "status", "deploy/web", "--timeout=2s"]);
    if !o.status.success() {
        assert_eq!(fails(o), "error: timed out waiting for the condition\n");
    }
}

#[test]
fn get_watch_prints_rows_as_objects_change() {
    let d = Daemon::start();
    let (mut child, rx) = spawn_ctl(&d, &["get", "pods", "-w"]);
    ok(d.ctl(&["run", "w1", "--image=busybox"]));
    let header = next_line(&rx, "the header");
    assert!(header.starts_with("NAME ") && header.contains("STATUS"), "{header}");
    let row = next_line(&rx, "the new pod");
    assert!(row.starts_with("w1 "), "{row}");
    ok(d.ctl(&["delete", "pod", "w1", "--wait=false", "--grace-period=0", "--force"]));
    let row = next_line(&rx, "the deletion");
    assert!(row.starts_with("w1 "), "{row}");
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn logs_of_a_pod_and_of_a_deployment() {
    let d = Daemon::start();
    ok(d.ctl(&["run", "talker", "--image=busybox"]));
    let pod = d.get_json("/api/v1/namespaces/default/pods/talker");
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    // The CRI log file the node writes for the container's first run.
    let dir = d.data_dir().join(format!("logs/default_talker_{uid}/talker"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0.log"),
        "2024-05-01T12:00:00.000000001Z stdout F hello\n2024-05-01T12:00:01.000000001Z stderr F world\n",
    )
    .unwrap();
    assert_eq!(ok(d.ctl(&["logs", "talker"])), "hello\nworld\n");
    assert_eq!(ok(d.ctl(&["logs", "pod/talker", "--tail=1"])), "world\n");
    assert_eq!(ok(d.ctl(&["logs", "talker", "--timestamps", "--tail=1"])), "2024-05-01T12:00:01.000000001Z world\n");
    assert!(fails(d.ctl(&["logs", "nobody"])).starts_with("Error from server (NotFound): "));
    assert!(fails(d.ctl(&["logs", "talker", "-c", "ghost"])).starts_with("Error from server"));

    // logs deploy/NAME: the first pod its selector finds. No replicas, so the only pod is
    // the one made here (the controller's replica set selects on pod-template-hash too).
    ok(d.ctl_stdin(&["apply", "-f", "-"], &WEB.replace("replicas: 3", "replicas: 0")));
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-x", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}});
    let (code, body) = d.http("POST", "/api/v1/namespaces/default/pods", Some(&pod.to_string()));
    assert_eq!(code, 201, "{body}");
    let puid = d.get_json("/api/v1/namespaces/default/pods/web-x")["metadata"]["uid"].as_str().unwrap().to_string();
    let dir = d.data_dir().join(format!("logs/default_web-x_{puid}/web"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0.log"), "2024-05-01T12:00:00.000000001Z stdout F from web\n").unwrap();
    let o = d.ctl(&["logs", "deploy/web"]);
    assert!(stderr(&o).contains("Defaulted container \"web\" out of: web, side"), "{}", stderr(&o));
    assert_eq!(ok(o), "from web\n");
}

#[test]
fn top_reads_the_metrics_api() {
    let d = Daemon::start();
    let o = d.ctl(&["top", "pods"]);
    if o.status.success() {
        let out = stdout(&o);
        assert!(out.is_empty() || out.starts_with("NAME "), "{out}");
        if out.is_empty() {
            assert_eq!(stderr(&o), "No resources found in default namespace.\n");
        }
    } else {
        assert_eq!(fails(o), "error: Metrics API not available\n");
    }
    let o = d.ctl(&["top", "node"]);
    if o.status.success() && !stdout(&o).is_empty() {
        assert!(stdout(&o).starts_with("NAME "), "{}", stdout(&o));
    }
}

#[test]
fn top_shows_running_pods_usage() {
    if coracle_e2e::skip_unless_root("the node runs the pod whose usage is shown") {
        return;
    }
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = images::busybox_docker_archive(dir.path(), "busybox:latest", &["sleep", "120"]);
    ok(d.ctl(&["image", "load", archive.to_str().unwrap()]));
    ok(d.ctl(&["run", "sleeper", "--image=busybox:latest"]));
    let out = wait_for("usage of the running pod", Duration::from_secs(60), || {
        let o = d.ctl(&["top", "pods"]);
        let text = stdout(&o);
        text.contains("sleeper").then_some(text)
    });
    assert!(out.starts_with("NAME      CPU(cores)   MEMORY(bytes)"), "{out}");
    let o = ok(d.ctl(&["top", "pods", "--containers"]));
    assert!(o.starts_with("POD "), "{o}");
    stop_pods(&d, &["pod/sleeper"]);
}

#[test]
fn image_load_list_and_remove() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = images::busybox_docker_archive(dir.path(), "busybox:latest", &["sh"]);
    assert_eq!(
        ok(d.ctl(&["image", "load", archive.to_str().unwrap()])),
        "Loaded image: docker.io/library/busybox:latest\n"
    );
    // From stdin, streamed chunked.
    let oci = images::busybox_oci_archive(&dir.path().join("oci"), "example.com/tools/box:1.0", &["sh"]);
    let from_stdin = Command::new(coracle_e2e::bin("coracle"))
        .arg("--socket")
        .arg(d.socket())
        .args(["image", "load"])
        .stdin(std::fs::File::open(&oci).unwrap())
        .output()
        .unwrap();
    assert_eq!(ok(from_stdin), "Loaded image: example.com/tools/box:1.0\n");

    let list = ok(d.ctl(&["image", "ls"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY ") && lines[0].ends_with("SIZE"), "{list}");
    assert!(lines.iter().any(|l| l.starts_with("docker.io/library/busybox  ") && l.contains(" latest ")), "{list}");
    assert!(
        lines.iter().any(|l| l.starts_with("example.com/tools/box ") && l.contains("sha256:") && l.ends_with(" MB")),
        "{list}"
    );
    let quiet = ok(d.ctl(&["image", "ls", "-q"]));
    assert!(quiet.lines().any(|l| l == "example.com/tools/box:1.0"), "{quiet}");

    // In use by a pod: refused with the server's message.
    ok(d.ctl(&["run", "user", "--image=busybox:latest"]));
    let err = fails(d.ctl(&["image", "rm", "busybox:latest"]));
    assert!(err.starts_with("Error from server (Conflict): "), "{err}");
    ok(d.ctl(&["delete", "pod", "user", "--grace-period=0", "--force"]));
    let removed = ok(d.ctl(&["image", "rm", "busybox:latest"]));
    assert!(removed.starts_with("Untagged: docker.io/library/busybox:latest\n"), "{removed}");
    assert!(removed.contains("Deleted: sha256:"), "{removed}");
    assert!(fails(d.ctl(&["image", "rm", "busybox:latest"])).starts_with("Error from server (NotFound): "));
    assert!(fails(d.ctl(&["image", "load", "/nonexistent.tar"])).contains("opening the archive \"/nonexistent.tar\""));
}

#[test]
fn image_import_of_a_rootfs_directory() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    images::busybox_rootfs(dir.path());
    let out = ok(d.ctl(&["image", "import", dir.path().to_str().unwrap(), "local/rootfs:1"]));
    assert!(out.starts_with("Imported image: ") && out.contains("local/rootfs:1"), "{out}");
    assert!(ok(d.ctl(&["image", "ls", "-q"])).contains("local/rootfs:1"));
}
