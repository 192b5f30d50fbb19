//! The escape battery, inside real busybox pods on the builtin runtime and on runc: what an
//! attacker in a pod tries first — device nodes (made with mknod, or shipped in a volume),
//! mounts, a user namespace, keyctl, perf_event_open, kernel and cgroup files, reboot, setns,
//! ptrace of a host process — is denied, and the container sees Docker's capabilities,
//! `Seccomp: 2` and no host cgroup path. `seccompProfile: Unconfined`, a Localhost profile and
//! `privileged: true` each lift exactly what they should. Beside them: mountinfo names no host
//! data-dir path, a container reads its own memory limit at /sys/fs/cgroup, and safe sysctls
//! are set in the pod's namespaces only. Needs root; the runc half needs runc.

use coracle_e2e::{skip_unless_root, wait_for, Daemon};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runtime {
    Builtin,
    Oci,
}

#[test]
fn escape_battery_builtin() {
    battery(Runtime::Builtin);
}

#[test]
fn escape_battery_oci() {
    battery(Runtime::Oci);
}

/// tests/probe/escape.rs built once per test process as a static binary (it runs in busybox
/// pods, which have no C library).
fn probe_binary() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/escape.rs");
        let out = std::env::temp_dir().join(format!("coracle-escape-probe-{}", std::process::id()));
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let status = Command::new(rustc)
            .args(["--edition", "2021", "-C", "target-feature=+crt-static", "-C", "opt-level=1", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .expect("running rustc for the escape probe");
        assert!(status.success(), "building {} failed", source.display());
        out
    })
}

/// A directory holding the probe and device nodes "shipped" to the pod through a hostPath:
/// a 0666 node for the host's loop0 (a disk) and one for /dev/mem.
fn probe_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(probe_binary(), dir.path().join("escape")).unwrap();
    std::fs::set_permissions(dir.path().join("escape"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, kind, major, minor) in [("loop0", libc::S_IFBLK, 7, 0), ("mem", libc::S_IFCHR, 1, 1)] {
        let path = std::ffi::CString::new(dir.path().join(name).to_str().unwrap()).unwrap();
        // SAFETY: mknod(2) on a NUL-terminated path in our own temp dir.
        let rc = unsafe { libc::mknod(path.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
        assert_eq!(rc, 0, "mknod {name}: {}", std::io::Error::last_os_error());
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    dir
}

/// Everything the battery tries, in the order it reports.
fn script(daemon_pid: u32) -> String {
    let moves = [
        "grep -E '^(CapEff|Seccomp):' /proc/self/status",
        "cat /proc/self/cgroup",
        "sed 's/^/mountinfo: /' /proc/self/mountinfo",
        "busybox mknod /tmp/blk b 7 0 && echo 'mknod-b: ok'",
        "/probe/escape open /tmp/blk",
        "busybox mknod /tmp/chr c 1 1 && echo 'mknod-c: ok'",
        "/probe/escape open /tmp/chr",
        "/probe/escape open /probe/loop0",
        "/probe/escape open /probe/mem",
        "/probe/escape open /dev/null",
        "/probe/escape mount proc",
        "/probe/escape mount tmpfs",
        "/probe/escape mount cgroup2",
        "/probe/escape userns-mount",
        "/probe/escape keyctl",
        "/probe/escape perf",
        "/probe/escape write /proc/sys/kernel/hostname escaped",
        "/probe/escape write /sys/class/net/lo/mtu 65536",
        "/probe/escape cgroup-mkdir",
        "/probe/escape reboot",
        "/probe/escape setns",
        &format!("/probe/escape ptrace {daemon_pid}"),
        "/probe/escape mkdir /tmp/made",
        "echo 'battery: done'",
    ];
    moves.join("; ")
}

fn pod(name: &str, script: &str, security: Value, probe: &Path) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "probe", "image": "busybox:latest", "imagePullPolicy": "Never",
                "command": ["sh", "-c", script],
                "securityContext": security,
                "volumeMounts": [{"name": "probe", "mountPath": "/probe", "readOnly": true}],
            }],
            "volumes": [{"name": "probe", "hostPath": {"path": probe.to_str().unwrap()}}],
        }
    })
}

/// Runs the battery in a pod and returns what it printed, one line per entry.
fn run_pod(daemon: &Daemon, name: &str, security: Value, probe: &Path) -> Vec<String> {
    let body = pod(name, &script(daemon.pid().expect("a running daemon")), security, probe);
    finish(daemon, name, &body)
}

/// Creates the pod `body` named `name`, waits for it to succeed and returns what it printed;
/// its script must end by printing `battery: done`.
fn finish(daemon: &Daemon, name: &str, body: &Value) -> Vec<String> {
    let (status, text) = daemon.http("POST", PODS, Some(&body.to_string()));
    assert_eq!(status, 201, "creating pod {name}: {text}");
    let uid = serde_json::from_str::<Value>(&text).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    let pod = wait_for(&format!("pod {name} to finish"), Duration::from_secs(90), || {
        let (status, text) = daemon.http("GET", &format!("{PODS}/{name}"), None);
        let v: Value = serde_json::from_str(&text).ok()?;
        (status == 200 && matches!(v["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))).then_some(v)
    });
    let log = daemon.data_dir().join(format!("logs/default_{name}_{uid}/probe/0.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<String> =
        text.lines().filter_map(|l| l.split_once(" F ").map(|(_, line)| line.to_string())).collect();
    assert_eq!(pod["status"]["phase"], "Succeeded", "pod {name}: {}\n{text}", pod["status"]);
    assert!(lines.iter().any(|l| l == "battery: done"), "pod {name} did not finish the battery:\n{text}");
    lines
}

/// Asserts that the battery's output has each of `want` as a line.
fn expect(pod: &str, lines: &[String], want: &[&str]) {
    for w in want {
        assert!(lines.iter().any(|l| l == w), "pod {pod}: no line {w:?} in\n{}", lines.join("\n"));
    }
}

/// Asserts that no line of the output is any of `unwanted`.
fn refuse(pod: &str, lines: &[String], unwanted: &[&str]) {
    for u in unwanted {
        assert!(!lines.iter().any(|l| l == u), "pod {pod}: line {u:?} in\n{}", lines.join("\n"));
    }
}

/// Mountinfo names no path under the daemon's data dir where it can be avoided: the overlay
/// root's options name its layers relative to their common parent. Only the fourth field
/// may: a bind mount's root within its filesystem (the pod's /etc/hosts, a volume), which
/// the kernel prints whatever the mounter does, as for runc under Docker.
fn no_data_dir_in_mountinfo(daemon: &Daemon, lines: &[String]) {
    // Without its leading slash: a path made relative to `/` would still name it.
    let data = daemon.data_dir().display().to_string().trim_start_matches('/').to_string();
    let mountinfo: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("mountinfo: ")).collect();
    let root = mountinfo
        .iter()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in mountinfo:\n{}", mountinfo.join("\n")));
    assert!(root.contains(" - overlay overlay ") && root.contains("lowerdir="), "/ is not the overlay: {root}");
    for line in &mountinfo {
        let without_root: Vec<&str> = line.split(' ').enumerate().filter(|(i, _)| *i != 3).map(|(_, f)| f).collect();
        let shown = without_root.join(" ");
        assert!(!shown.contains(&data), "mountinfo names the data dir {data}: {line}");
    }
}

/// A container reads its own memory limit where Kubernetes workloads look for it (a JVM,
/// Go's automaxprocs): the cgroup filesystem at /sys/fs/cgroup, rooted at its own cgroup.
fn reads_own_memory_limit(daemon: &Daemon) {
    let script = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                  echo 'battery: done'";
    let body = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "limits"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "probe", "image": "busybox:latest", "imagePullPolicy": "Never",
                "command": ["sh", "-c", script],
                "resources": {"limits": {"memory": "64Mi"}},
            }],
        }
    });
    let lines = finish(daemon, "limits", &body);
    expect("limits", &lines, &["67108864"]);
}

/// The safe sysctls a pod names are set in its own network and IPC namespaces, and only there.
fn sets_safe_sysctls_in_the_pods_namespaces(daemon: &Daemon) {
    let host = |name: &str| std::fs::read_to_string(format!("/proc/sys/{name}")).unwrap();
    let before = (host("net/ipv4/ip_unprivileged_port_start"), host("kernel/shm_rmid_forced"));
    let script = "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced \
                  /proc/sys/net/ipv4/ip_local_port_range; echo 'battery: done'";
    let body = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sysctls"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"sysctls": [
                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"},
                {"name": "kernel/shm_rmid_forced", "value": "1"},
                {"name": "net.ipv4.ip_local_port_range", "value": "40000 50000"},
            ]},
            "containers": [{
                "name": "probe", "image": "busybox:latest", "imagePullPolicy": "Never",
                "command": ["sh", "-c", script],
            }],
        }
    });
    let lines = finish(daemon, "sysctls", &body);
    expect("sysctls", &lines, &["80", "1", "40000\t50000"]);
    assert_eq!(
        (host("net/ipv4/ip_unprivileged_port_start"), host("kernel/shm_rmid_forced")),
        before,
        "the host's own changed"
    );
}

/// The capabilities a privileged container gets: all that this (root) test process holds.
fn own_bounding_set() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim().to_string()
}

fn battery(rt: Runtime) {
    if skip_unless_root("pods need namespaces, cgroups and mknod") {
        return;
    }
    if rt == Runtime::Oci && coracled::runtime::oci::find_binary("runc").is_none() {
        eprintln!("skipping: the OCI half of the escape battery needs runc (apt-get install runc)");
        return;
    }
    let probe = probe_dir();
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("deny-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let kind = if rt == Runtime::Oci { "oci" } else { "builtin" };
    let daemon = Daemon::start_with_config(&format!(
        "runtime:\n  kind: {kind}\n  oci_binary: runc\n  seccomp_profile_root: {}\nnetwork:\n  mode: none\n",
        profiles.path().display()
    ));
    daemon.load_busybox("busybox:latest", &["sh"]);

    // The default: Docker's capabilities, RuntimeDefault, the device whitelist, a cgroup namespace.
    let lines = run_pod(&daemon, "confined", json!({}), probe.path());
    let denied = [
        "CapEff:\t00000000a80425fb",
        "Seccomp:\t2",
        // mknod itself is allowed, as in runc and Docker; opening the node is not.
        "mknod-b: ok",
        "open /tmp/blk: EPERM",
        "mknod-c: ok",
        "open /tmp/chr: EPERM",
        "open /probe/loop0: EPERM",
        "open /probe/mem: EPERM",
        "open /dev/null: ok",
        "mount-proc: EPERM",
        "mount-tmpfs: EPERM",
        "mount-cgroup2: EPERM",
        "userns-unshare: EPERM",
        "keyctl: EPERM",
        "perf: EPERM",
        "write /proc/sys/kernel/hostname: EROFS",
        "write /sys/class/net/lo/mtu: EROFS",
        "reboot: EPERM",
        "setns: EPERM",
        // The host's processes are not in the pod's pid namespace.
        "ptrace: ESRCH",
        "mkdir /tmp/made: ok",
    ];
    expect("confined", &lines, &denied);
    // The cgroup tree: both runtimes mount the container's own, read-only.
    let cgroup_writes: Vec<&String> = lines.iter().filter(|l| l.starts_with("cgroup-mkdir")).collect();
    assert!(!cgroup_writes.is_empty(), "{lines:?}");
    for line in &cgroup_writes {
        assert!(line.ends_with(": EROFS"), "the pod could write to the cgroup tree: {line}");
    }
    no_data_dir_in_mountinfo(&daemon, &lines);
    let cgroups: Vec<&String> =
        lines.iter().filter(|l| l.split(':').count() == 3 && l.starts_with(char::is_numeric)).collect();
    assert!(!cgroups.is_empty(), "{lines:?}");
    for line in cgroups {
        assert!(line.ends_with(":/"), "a host cgroup path leaks into the pod: {line}");
    }

    reads_own_memory_limit(&daemon);
    sets_safe_sysctls_in_the_pods_namespaces(&daemon);

    // Unconfined lifts seccomp, and only seccomp: keyctl, perf_event_open and a user namespace
    // are the kernel's to judge now; devices, capabilities and read-only files stay.
    let lines = run_pod(&daemon, "unconfined", json!({"seccompProfile": {"type": "Unconfined"}}), probe.path());
    expect(
        "unconfined",
        &lines,
        &[
            "CapEff:\t00000000a80425fb",
            "Seccomp:\t0",
            "open /probe/loop0: EPERM",
            "open /tmp/blk: EPERM",
            "userns-unshare: ok",
            "userns-mount: ok",
            "mount-tmpfs: EPERM",
            "write /proc/sys/kernel/hostname: EROFS",
            "reboot: EPERM",
            "setns: EPERM",
        ],
    );
    refuse("unconfined", &lines, &["keyctl: EPERM", "perf: EPERM"]);

    // A Localhost profile is applied as written: mkdir fails with its errnoRet (EACCES).
    let localhost = json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "deny-mkdir.json"}});
    let lines = run_pod(&daemon, "localhost", localhost, probe.path());
    expect("localhost", &lines, &["Seccomp:\t2", "mkdir /tmp/made: EACCES", "open /probe/loop0: EPERM"]);
    refuse("localhost", &lines, &["keyctl: EPERM"]);

    // privileged: every capability the daemon holds, every device, no seccomp, /proc/sys and /sys writable.
    let lines = run_pod(&daemon, "privileged", json!({"privileged": true}), probe.path());
    expect(
        "privileged",
        &lines,
        &[
            &format!("CapEff:\t{}", own_bounding_set()),
            "Seccomp:\t0",
            "mount-tmpfs: ok",
            "write /proc/sys/kernel/hostname: ok",
            "write /sys/class/net/lo/mtu: ok",
        ],
    );
    refuse(
        "privileged",
        &lines,
        &[
            "open /tmp/blk: EPERM",
            "open /tmp/chr: EPERM",
            "open /probe/loop0: EPERM",
            "open /probe/mem: EPERM",
            "keyctl: EPERM",
            "reboot: EPERM",
            "setns: EPERM",
        ],
    );
}
