//! ConfigMaps, Secrets and ServiceAccounts end to end: the ctl's `create configmap|secret`,
//! `get` and `describe`; Kubernetes' limits and immutability through the API; the store's
//! 0600 secret files; a namespace's `default` ServiceAccount and pods naming a missing one
//! refused; stock kubectl creating and listing config maps; and real busybox pods reading
//! ConfigMaps and Secrets as environment, waiting in CreateContainerConfigError until the
//! ConfigMap they name exists.

use coracle_e2e::{skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    let (code, text) = d.http("POST", path, Some(&body.to_string()));
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn config_maps_and_secrets_from_the_ctl_with_kubernetes_limits() {
    let d = Daemon::start();
    let file = d.root().join("game.properties");
    std::fs::write(&file, "enemies=aliens\nlives=3\n").unwrap();
    let out = d.ctl_ok(&[
        "create",
        "configmap",
        "game",
        "--from-literal=LEVEL=debug",
        &format!("--from-file={}", file.display()),
    ]);
    assert_eq!(out, "configmap/game created\n");
    let cm = d.get_json(&format!("{CONFIGMAPS}/game"));
    assert_eq!(cm["data"], json!({"LEVEL": "debug", "game.properties": "enemies=aliens\nlives=3\n"}));
    let table = d.ctl_ok(&["get", "cm"]);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "DATA", "AGE"], "{table}");
    assert_eq!(lines[1][..2], ["game", "2"], "{table}");

    let out = d.ctl_ok(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=s3cr3t!!",
        "--from-literal=user=admin",
    ]);
    assert_eq!(out, "secret/db created\n");
    let table = d.ctl_ok(&["get", "secrets"]);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        (lines[0].as_slice(), &lines[1][..3]),
        (&["NAME", "TYPE", "DATA", "AGE"][..], &["db", "Opaque", "2"][..])
    );
    let described = d.ctl_ok(&["describe", "secret", "db"]);
    assert!(described.contains("password:  8 bytes") && described.contains("user:      5 bytes"), "{described}");
    assert!(!described.contains("s3cr3t") && !described.contains("admin"), "values never printed:\n{described}");
    let stored = d.data_dir().join("objects/secrets/default/db.json");
    assert_eq!(std::fs::metadata(&stored).unwrap().mode() & 0o777, 0o600, "{}", stored.display());

    // stringData is folded into data; the type defaults to Opaque.
    let (code, s) = post(
        &d,
        SECRETS,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"},
                                             "stringData": {"token": "abc"}}),
    );
    assert_eq!(code, 201, "{s}");
    assert_eq!((&s["data"], &s["type"], s.get("stringData")), (&json!({"token": "YWJj"}), &json!("Opaque"), None));

    // Kubernetes' rules, as 422s naming the field.
    let tls = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "type": "kubernetes.io/tls",
                     "data": {"tls.crt": "eA=="}});
    let (code, status) = post(&d, SECRETS, &tls);
    assert_eq!(
        (code, status["message"].as_str().unwrap()),
        (422, "Secret \"t\" is invalid: data[tls.key]: Required value")
    );
    let both = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"},
                      "data": {"k": "v"}, "binaryData": {"k": "dg=="}});
    let (code, status) = post(&d, CONFIGMAPS, &both);
    assert_eq!(code, 422, "{status}");
    assert!(status["message"]
        .as_str()
        .unwrap()
        .contains("data[k]: Invalid value: \"k\": duplicate of key present in binaryData"));
    let big = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"},
                     "stringData": {"blob": "x".repeat((1 << 20) + 1)}});
    let (code, status) = post(&d, SECRETS, &big);
    assert_eq!(
        (code, status["message"].as_str().unwrap()),
        (422, "Secret \"big\" is invalid: data: Too long: may not be more than 1048576 bytes")
    );
    let token = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sa"},
                       "type": "kubernetes.io/service-account-token"});
    let (code, status) = post(&d, SECRETS, &token);
    assert_eq!(code, 422, "{status}");
    assert!(status["message"].as_str().unwrap().contains("not supported by Coracle"), "{status}");

    // Immutable: data stays, as Kubernetes words it.
    let frozen = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
                        "data": {"a": "1"}, "immutable": true});
    assert_eq!(post(&d, CONFIGMAPS, &frozen).0, 201);
    let mut changed = frozen.clone();
    changed["data"]["a"] = json!("2");
    let (code, text) = d.http("PUT", &format!("{CONFIGMAPS}/frozen"), Some(&changed.to_string()));
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("data: Forbidden: field is immutable when `immutable` is set"), "{text}");

    // Discovery lists the kinds.
    let core = d.get_json("/api/v1");
    let names: Vec<&str> = core["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    for plural in ["configmaps", "secrets", "serviceaccounts"] {
        assert!(names.contains(&plural), "{plural} in {names:?}");
    }
}

#[test]
fn every_namespace_has_a_default_service_account_and_pods_must_name_an_existing_one() {
    let d = Daemon::start();
    wait_for("the default ServiceAccount", LONG, || {
        d.ctl_ok(&["get", "sa"]).lines().any(|l| l.starts_with("default ")).then_some(())
    });
    let out = d.ctl_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("team's default ServiceAccount", LONG, || {
        let (code, _) = d.http("GET", "/api/v1/namespaces/team/serviceaccounts/default", None);
        (code == 200).then_some(())
    });

    let pod = |account: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"serviceAccountName": account, "containers": [{"name": "c", "image": "busybox"}]}})
    };
    let dry = format!("{PODS}?dryRun=All");
    let (code, status) = post(&d, &dry, &pod("robot"));
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"p\" is forbidden: error looking up service account default/robot: serviceaccount \"robot\" not found"
    );
    assert_eq!(post(&d, &dry, &pod("default")).0, 201);
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}});
    assert_eq!(post(&d, "/api/v1/namespaces/default/serviceaccounts", &sa).0, 201);
    assert_eq!(post(&d, &dry, &pod("robot")).0, 201, "accepted once the account exists");
}

/// A kubectl with an empty home, reaching the daemon's socket through a loopback port (kubectl
/// sends no token over plain HTTP; the socket needs none).
fn kubectl(d: &Daemon, home: &Path, server: &str, args: &[&str]) -> Output {
    let out = Command::new("/usr/bin/kubectl")
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .args(["--server", server, "--token", "t0ken", "--insecure-skip-tls-verify", "--request-timeout", "20s"])
        .args(args)
        .output()
        .expect("running kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    out
}

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

#[test]
fn stock_kubectl_creates_lists_and_describes_config_maps_and_secrets() {
    if !Path::new("/usr/bin/kubectl").exists() {
        eprintln!("skipping: /usr/bin/kubectl is not installed");
        return;
    }
    let d = Daemon::start();
    let home = tempfile::tempdir().unwrap();
    let server = forward_to_socket(d.socket());
    let run = |args: &[&str]| String::from_utf8_lossy(&kubectl(&d, home.path(), &server, args).stdout).into_owned();
    assert_eq!(
        run(&["create", "configmap", "app", "--from-literal=color=blue", "--from-literal=size=L"]),
        "configmap/app created\n"
    );
    let table = run(&["get", "cm"]);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "DATA", "AGE"], "{table}");
    assert_eq!(lines[1][..2], ["app", "2"], "{table}");
    assert_eq!(d.get_json(&format!("{CONFIGMAPS}/app"))["data"], json!({"color": "blue", "size": "L"}));
    assert_eq!(run(&["create", "secret", "generic", "pw", "--from-literal=password=hunter22"]), "secret/pw created\n");
    let described = run(&["describe", "secret", "pw"]);
    assert!(described.contains("password:  8 bytes") && !described.contains("hunter22"), "{described}");
    let table = run(&["get", "secret", "pw"]);
    assert!(table.lines().nth(1).is_some_and(|l| l.split_whitespace().take(3).eq(["pw", "Opaque", "1"])), "{table}");
}

#[test]
fn pods_read_config_maps_and_secrets_as_environment_once_they_exist() {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    let d = Daemon::start_with_config("backoff:\n  base_seconds: 1\n  cap_seconds: 4\n  reset_seconds: 600\n");
    d.load_busybox("busybox:latest", &["sh"]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "env"}, "spec": {"containers": [{
        "name": "app", "image": "busybox:latest", "imagePullPolicy": "Never",
        "command": ["sh", "-c", "env | sort; sleep 3600"],
        "env": [
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "ABSENT", "valueFrom": {"configMapKeyRef": {"name": "nowhere", "key": "k", "optional": true}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ],
        "envFrom": [
            {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
            {"secretRef": {"name": "creds"}},
            {"configMapRef": {"name": "settings"}}
        ]
    }]}});
    let (code, body) = post(&d, PODS, &pod);
    assert_eq!(code, 201, "{body}");
    let waiting = wait_for("CreateContainerConfigError", LONG, || {
        let p = d.get_json(&format!("{PODS}/env"));
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CreateContainerConfigError").then_some(w)
    });
    assert_eq!(waiting["message"], "configmap \"settings\" not found");

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                    "data": {"level": "debug", "mode": "fast", "1bad": "skipped"}});
    assert_eq!(post(&d, CONFIGMAPS, &cm).0, 201);
    let waiting = wait_for("the missing secret's turn", LONG, || {
        let p = d.get_json(&format!("{PODS}/env"));
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["message"] == "secret \"creds\" not found").then_some(w)
    });
    assert_eq!(waiting["reason"], "CreateContainerConfigError");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                        "stringData": {"password": "pw1", "user": "me"}});
    assert_eq!(post(&d, SECRETS, &secret).0, 201);
    wait_for("the pod to run by itself", LONG, || {
        let p = d.get_json(&format!("{PODS}/env"));
        (p["status"]["phase"] == "Running").then_some(())
    });
    let logs = wait_for("the environment in the logs", LONG, || {
        let out = d.ctl(&["logs", "env"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("PASSWORD=").then_some(text)
    });
    for line in
        ["LEVEL=debug", "PASSWORD=pw1", "POD=env", "CFG_level=debug", "CFG_mode=fast", "password=pw1", "user=me"]
    {
        assert!(logs.lines().any(|l| l == line), "{line} in:\n{logs}");
    }
    assert!(!logs.contains("ABSENT=") && !logs.lines().any(|l| l.starts_with("1bad")), "{logs}");
    let events = d.http("GET", "/api/v1/namespaces/default/events", None).1;
    assert!(
        events.contains("InvalidEnvironmentVariableNames")
            && events.contains("Keys [1bad] from the EnvFrom configmap default/settings"),
        "{events}"
    );
}

/// A pod on `runtime` ("builtin" or "oci") mounting a ConfigMap (items, modes, a subPath) and
/// a Secret (defaultMode) reads their files, with their modes, inside the container; the
/// Secret's files live under the run dir, not the data dir.
fn config_and_secret_volumes_hold_their_files_with_their_modes(runtime: &str) {
    if skip_unless_root("containers need namespaces and cgroups") {
        return;
    }
    if runtime == "oci" && !Path::new("/usr/sbin/runc").exists() && !Path::new("/usr/bin/runc").exists() {
        eprintln!("skipping: the OCI runtime variant needs runc");
        return;
    }
    let d = Daemon::start_with_config(&format!("runtime:\n  kind: {runtime}\n  oci_binary: runc\n"));
    d.load_busybox("busybox:latest", &["sh"]);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                    "data": {"index.html": "hello", "app.conf": "port=80"}});
    assert_eq!(post(&d, CONFIGMAPS, &cm).0, 201);
    let secret =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "key"}, "stringData": {"key.pem": "KEY"}});
    assert_eq!(post(&d, SECRETS, &secret).0, 201);
    let script =
        "stat -L -c '%a %n' /cfg/conf/app /secret/key.pem; cat /cfg/conf/app /secret/key.pem /one.html; echo; \
                  ls /cfg; (echo x > /cfg/w) 2>/dev/null || echo read-only; echo \"all=$(cat /all/key.pem)+$(cat /all/app)\"; \
                  while :; do echo \"app=$(cat /cfg/conf/app) one=$(cat /one.html) all=$(cat /all/app)\"; sleep 1; done";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vols"}, "spec": {
    "containers": [{"name": "app", "image": "busybox:latest", "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"},
                                     {"name": "sec", "mountPath": "/secret"},
                                     {"name": "whole", "mountPath": "/one.html", "subPath": "index.html"},
                                     {"name": "all", "mountPath": "/all"}]}],
    "volumes": [
        {"name": "cfg", "configMap": {"name": "web", "items": [{"key": "app.conf", "path": "conf/app", "mode": 0o600}]}},
        {"name": "sec", "secret": {"secretName": "key", "defaultMode": 0o400}},
        {"name": "whole", "configMap": {"name": "web"}},
        {"name": "all", "projected": {"sources": [
            {"secret": {"name": "key"}},
            {"configMap": {"name": "web", "items": [{"key": "app.conf", "path": "app"}]}}
        ]}}
    ]}});
    let (code, body) = post(&d, PODS, &pod);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["volumes"][0]["configMap"]["defaultMode"], 0o644, "defaulted as Kubernetes does");
    let logs = wait_for("the files in the logs", LONG, || {
        let text = String::from_utf8_lossy(&d.ctl(&["logs", "vols"]).stdout).into_owned();
        text.contains("all=").then_some(text)
    });
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[..3], ["600 /cfg/conf/app", "400 /secret/key.pem", "port=80KEYhello"], "{logs}");
    assert_eq!(lines[3], "conf", "only the listed item: {logs}");
    assert_eq!(lines[4..6], ["read-only", "all=KEY+port=80"], "read-only, and a projected volume of both: {logs}");
    let uid = d.get_json(&format!("{PODS}/vols"))["metadata"]["uid"].as_str().unwrap().to_string();
    let secret_file = d.root().join("run/sandboxes").join(&uid).join("volumes/sec/key.pem");
    assert_eq!(std::fs::read(&secret_file).unwrap(), b"KEY", "under the run dir: {}", secret_file.display());

    // An update reaches the running container's files; the subPath file keeps its version.
    let mut changed = cm.clone();
    changed["data"] = json!({"index.html": "bye", "app.conf": "port=8080"});
    let (code, text) = d.http("PUT", &format!("{CONFIGMAPS}/web"), Some(&changed.to_string()));
    assert_eq!(code, 200, "{text}");
    wait_for("the update inside the pod", LONG, || {
        let text = String::from_utf8_lossy(&d.ctl(&["logs", "vols"]).stdout).into_owned();
        text.lines().any(|l| l == "app=port=8080 one=hello all=port=8080").then_some(())
    });
}

#[test]
fn config_and_secret_volumes_on_the_builtin_runtime() {
    config_and_secret_volumes_hold_their_files_with_their_modes("builtin");
}

#[test]
fn config_and_secret_volumes_on_runc() {
    config_and_secret_volumes_hold_their_files_with_their_modes("oci");
}
