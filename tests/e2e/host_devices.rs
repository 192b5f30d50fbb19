//! A `hostPath` of type CharDevice is also allowed in the container's device cgroup, so the
//! device works without `privileged: true`, on the builtin runtime and on runc; the same
//! node mounted without the type stays closed, and a path that is not a character device
//! keeps the pod from starting with the kubelet's message. Needs root (mknod, pods).

use coracle_e2e::{skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";

/// A new node for the kernel log device (`/dev/kmsg`, 1:11), 0666, and a plain file beside
/// it. Not `null` (1:3): runc's default whitelist already opens that to every container, so
/// it could not show the grant. A line written to kmsg lands in the host's kernel log.
fn device_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("kmsg");
    let path = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: mknod(2) on a NUL-terminated path in our own temp dir.
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 11)) };
    assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(dir.path().join("plain"), "not a device").unwrap();
    dir
}

fn pod(name: &str, path: &Path, kind: Option<&str>, read_only: bool) -> Value {
    let mut host_path = json!({"path": path.to_str().unwrap()});
    if let Some(kind) = kind {
        host_path["type"] = json!(kind);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "c", "image": "busybox:latest", "imagePullPolicy": "Never",
                "command": ["sh", "-c", "echo coracle-e2e-host-devices > /mnt/dev && echo write: ok; echo done"],
                "volumeMounts": [{"name": "dev", "mountPath": "/mnt/dev", "readOnly": read_only}],
            }],
            "volumes": [{"name": "dev", "hostPath": host_path}],
        }
    })
}

/// Runs the pod to its end; returns its output lines.
fn run(daemon: &Daemon, body: &Value) -> Vec<String> {
    let name = body["metadata"]["name"].as_str().unwrap();
    let (status, text) = daemon.http("POST", PODS, Some(&body.to_string()));
    assert_eq!(status, 201, "creating pod {name}: {text}");
    let uid = serde_json::from_str::<Value>(&text).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    let pod = wait_for(&format!("pod {name} to finish"), Duration::from_secs(90), || {
        let v = daemon.get_json(&format!("{PODS}/{name}"));
        matches!(v["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(v)
    });
    let log = daemon.data_dir().join(format!("logs/default_{name}_{uid}/c/0.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains(" F done"), "pod {name} did not finish: {}\n{text}", pod["status"]);
    text.lines().filter_map(|l| l.split_once(" F ").map(|(_, line)| line.to_string())).collect()
}

fn check(runtime: &str) {
    if skip_unless_root("pods need namespaces, cgroups and mknod") {
        return;
    }
    if runtime == "oci" && coracled::runtime::oci::find_binary("runc").is_none() {
        eprintln!("skipping: the OCI half needs runc (apt-get install runc)");
        return;
    }
    let dir = device_dir();
    let daemon = Daemon::start_with_config(&format!(
        "runtime:\n  kind: {runtime}\n  oci_binary: runc\nnetwork:\n  mode: none\n"
    ));
    daemon.load_busybox("busybox:latest", &["sh"]);
    let node = dir.path().join("kmsg");
    let denied = |lines: &[String]| {
        !lines.iter().any(|l| l == "write: ok") && lines.iter().any(|l| l.contains("Operation not permitted"))
    };

    let lines = run(&daemon, &pod("granted", &node, Some("CharDevice"), false));
    assert!(lines.iter().any(|l| l == "write: ok"), "{lines:?}");

    // The same node without the type is a file like any other: the whitelist keeps it shut.
    let lines = run(&daemon, &pod("untyped", &node, None, false));
    assert!(denied(&lines), "{lines:?}");
    // A read-only mount grants reading only.
    let lines = run(&daemon, &pod("readonly", &node, Some("CharDevice"), true));
    assert!(denied(&lines), "{lines:?}");

    // Not a character device: the pod does not start, with the kubelet's message.
    let plain = dir.path().join("plain");
    let (status, text) =
        daemon.http("POST", PODS, Some(&pod("refused", &plain, Some("CharDevice"), false).to_string()));
    assert_eq!(status, 201, "{text}");
    let want = format!("hostPath type check failed: {} is not a character device", plain.display());
    wait_for("the type check's message", Duration::from_secs(60), || {
        let v = daemon.get_json(&format!("{PODS}/refused"));
        let waiting = &v["status"]["containerStatuses"][0]["state"]["waiting"];
        waiting["message"].as_str().is_some_and(|m| m.contains(&want)).then_some(())
    });
}

#[test]
fn char_device_host_path_works_unprivileged_builtin() {
    check("builtin");
}

#[test]
fn char_device_host_path_works_unprivileged_oci() {
    check("oci");
}
