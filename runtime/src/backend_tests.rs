//! End-to-end tests of both runtime backends (builtin, and OCI through runc) against a busybox
//! rootfs: every test runs once per backend. They need root; the OCI variants also need runc.

use super::*;
use crate::shim::SHIM_ARG;
use crate::users;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Shims started by these tests are this test binary re-run with only this test selected and the
/// shim marker as an extra (matching nothing) filter; on an ordinary test run it does nothing.
#[test]
fn shim_entry() {
    if std::env::args().any(|a| a == SHIM_ARG) {
        std::process::exit(crate::shim::run());
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Builtin,
    Oci,
}

/// Generates one `#[test]` per backend for each listed test body `fn name(backend: Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod builtin {
            $( #[test] fn $name() { super::$name(super::Backend::Builtin) } )*
        }
        mod oci {
            $( #[test] fn $name() { super::$name(super::Backend::Oci) } )*
        }
    };
}

on_both_backends!(
    echo_lands_in_the_cri_log_and_the_exit_code_is_reported,
    a_missing_binary_is_a_start_error,
    httpd_answers_inside_the_sandbox_netns_and_sigkill_is_signal_9,
    hostname_user_and_capabilities_apply,
    readonly_rootfs_refuses_writes_but_volumes_stay_writable,
    a_fresh_runtime_readopts_a_running_container_and_its_log_keeps_growing,
    the_log_rotates_at_a_small_size,
    the_init_joins_its_cgroups_before_exec,
    cgroups_that_share_no_single_path_are_joined_too,
    a_host_network_sandbox_shares_the_host_netns,
    the_oom_score_adj_reaches_the_container,
    shims_are_forked_by_one_launcher_that_leaves_with_its_runtime,
    exec_runs_confined_exactly_as_the_container,
    exec_reports_missing_programs_timeouts_and_stopped_containers,
    exec_joins_the_containers_cgroups,
    a_confined_container_gets_the_whitelist_seccomp_and_its_own_cgroup_root,
);

/// A busybox image layer: the static binary, its applets as symlinks, users and a web root.
fn busybox_layer(dir: &Path) {
    for d in ["bin", "etc", "www", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::write(dir.join("www/index.html"), "hello from the pod\n").unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    backend: Backend,
    runtime: Box<dyn ContainerRuntime>,
    sandbox: Sandbox,
}

fn shim_args() -> Vec<std::ffi::OsString> {
    ["backend_tests::shim_entry", SHIM_ARG, "--exact", "--nocapture", "--test-threads=1", "-q"]
        .iter()
        .map(Into::into)
        .collect()
}

/// A runtime of `backend` rooted at `run_dir`; `None` when the OCI backend has no runc here.
fn runtime_at(backend: Backend, run_dir: &Path) -> Option<Box<dyn ContainerRuntime>> {
    let shim = std::env::current_exe().unwrap();
    Some(match backend {
        Backend::Builtin => Box::new(BuiltinRuntime::with_shim(run_dir, shim, shim_args())),
        Backend::Oci => Box::new(OciRuntime::with_shim(run_dir, crate::oci::find_binary("runc")?, shim, shim_args())),
    })
}

/// A busybox image and a pod sandbox on `backend`; `None` (after saying why) when the test
/// cannot run here: not root, or no runc for the OCI backend.
fn fixture(backend: Backend, pod: &str, test: &str) -> Option<Fixture> {
    if !is_root() {
        eprintln!("skipping {test} ({backend:?}): needs root");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let Some(runtime) = runtime_at(backend, &base.join("run")) else {
        eprintln!("skipping {test} ({backend:?}): runc is not installed");
        return None;
    };
    busybox_layer(&base.join("image"));
    let sandbox = runtime
        .create_sandbox(&SandboxSpec {
            id: pod.into(),
            hostname: pod.into(),
            network: SandboxNetwork::New,
            resolv_conf: Some("nameserver 10.96.0.10\n".into()),
            sysctls: Vec::new(),
        })
        .unwrap();
    Some(Fixture { _tmp: tmp, base, backend, runtime, sandbox })
}

impl Fixture {
    fn spec(&self, id: &str, args: &[&str]) -> ContainerSpec {
        let c = self.base.join("containers").join(id);
        ContainerSpec {
            id: id.into(),
            sandbox: self.sandbox.clone(),
            rootfs: Rootfs {
                layers: vec![self.base.join("image")],
                upper_dir: c.join("upper"),
                work_dir: c.join("work"),
            },
            readonly_rootfs: false,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into(), "GREETING=hi".into()],
            cwd: "/".into(),
            user: UserSpec::default(),
            hostname: self.sandbox.id.clone(),
            mounts: self.sandbox.standard_mounts(),
            capabilities: CapabilityChanges::default(),
            no_new_privileges: true,
            // These tests place the container in no devices cgroup, or in test-made ones, so
            // the whitelist (which has its own tests below) could not be enforced.
            confinement: Confinement { devices: crate::devices::DeviceRule::everything(), ..Confinement::default() },
            cgroup_dirs: vec![],
            oom_score_adj: None,
            log_path: self.base.join("logs").join(id).join("0.log"),
            log_max_size: 10 * 1024 * 1024,
            log_max_files: 5,
        }
    }

    fn start(&self, spec: &ContainerSpec) -> ContainerHandle {
        let began = Instant::now();
        let handle = self.runtime.start(spec).unwrap_or_else(|e| panic!("start {}: {e}", spec.id));
        println!("spawn of {} took {:?} (start() call to exec)", spec.id, began.elapsed());
        handle
    }

    /// A second runtime over the same run directory, as a restarted daemon builds it.
    fn fresh_runtime(&self) -> Box<dyn ContainerRuntime> {
        runtime_at(self.backend, &self.base.join("run")).unwrap()
    }

    fn log(&self, spec: &ContainerSpec) -> String {
        std::fs::read_to_string(&spec.log_path).unwrap_or_default()
    }
}

impl Drop for Fixture {
    /// Whatever a test left running (or a failed test left behind) is killed and removed, so no
    /// process, mount or runc-made cgroup outlives it.
    fn drop(&mut self) {
        for id in self.runtime.list() {
            let _ = self.runtime.signal(&id, nix::sys::signal::Signal::SIGKILL);
            for _ in 0..500 {
                if !matches!(self.runtime.state(&id), ContainerState::Running { .. }) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Err(e) = self.runtime.remove(&id) {
                eprintln!("cleanup of {id}: {e}");
            }
        }
        let _ = self.runtime.remove_sandbox(&self.sandbox.id);
    }
}

/// Polls until the container has exited; the bound only keeps a broken test from hanging.
fn wait_exited(runtime: &dyn ContainerRuntime, id: &str) -> ContainerState {
    for _ in 0..1000 {
        let state = runtime.state(id);
        if matches!(state, ContainerState::Exited { .. }) {
            return state;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("container {id} did not exit: {:?}", runtime.state(id));
}

fn exit_code(state: &ContainerState) -> (i32, Option<i32>) {
    match state {
        ContainerState::Exited { code, signal, .. } => (*code, *signal),
        other => panic!("not exited: {other:?}"),
    }
}

fn echo_lands_in_the_cri_log_and_the_exit_code_is_reported(backend: Backend) {
    let Some(f) = fixture(backend, "pod-echo", "echo_lands_in_the_cri_log_and_the_exit_code_is_reported") else {
        return;
    };
    let spec = f.spec("echo", &["sh", "-c", "echo $GREETING; echo oops >&2; printf tail; exit 3"]);
    let handle = f.start(&spec);
    assert!(handle.pid > 0 && handle.shim_pid > 0);
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "echo")), (3, None));
    let log = f.log(&spec);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines.iter().any(|l| l.ends_with(" stdout F hi")), "{log}");
    assert!(lines.iter().any(|l| l.ends_with(" stderr F oops")), "{log}");
    assert!(lines.iter().any(|l| l.ends_with(" stdout F tail")), "{log}");
    assert!(lines[0].split(' ').next().unwrap().ends_with('Z'));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&f.base.join("run/containers").display().to_string()), "a container mount leaked");
    // Overlay options name their layers relatively: look for the mount point instead.
    let base = f.base.display().to_string();
    let mut overlays = mounts.lines().filter(|l| l.contains(" - overlay "));
    assert!(!overlays.any(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&base))), "an overlay leaked");
    assert!(!mounts.contains(&f.base.join("run/oci").display().to_string()), "a bundle root leaked");
    f.runtime.remove("echo").unwrap();
    assert_eq!(f.runtime.state("echo"), ContainerState::Unknown);
    assert!(!f.base.join("run/oci/echo").exists(), "the bundle outlived remove");
    assert!(f.runtime.list().is_empty());
}

fn a_missing_binary_is_a_start_error(backend: Backend) {
    let Some(f) = fixture(backend, "pod-nope", "a_missing_binary_is_a_start_error") else { return };
    let err = f.runtime.start(&f.spec("nope", &["/bin/nope"])).unwrap_err();
    assert_eq!(err.reason, "StartError");
    assert_eq!(err.message, "exec: \"/bin/nope\": no such file or directory");
    match f.runtime.state("nope") {
        ContainerState::Exited { reason, message, .. } => {
            assert_eq!(reason.as_deref(), Some("StartError"));
            assert_eq!(message.as_deref(), Some("exec: \"/bin/nope\": no such file or directory"));
        }
        other => panic!("{other:?}"),
    }
    let err = f.runtime.start(&f.spec("nope2", &["nope"])).unwrap_err();
    assert_eq!(err.message, "exec: \"nope\": executable file not found in $PATH");
    let err = f.runtime.start(&f.spec("noexec", &["/etc/passwd"])).unwrap_err();
    assert_eq!(err.message, "exec: \"/etc/passwd\": permission denied");
}

fn httpd_answers_inside_the_sandbox_netns_and_sigkill_is_signal_9(backend: Backend) {
    let Some(f) = fixture(backend, "pod-web", "httpd_answers_inside_the_sandbox_netns_and_sigkill_is_signal_9") else {
        return;
    };
    let spec = f.spec("web", &["httpd", "-f", "-p", "8080", "-h", "/www"]);
    f.start(&spec);
    let netns = f.sandbox.netns_path.clone().unwrap();
    let body = std::thread::spawn(move || {
        let ns = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        for _ in 0..500 {
            if let Ok(mut conn) = std::net::TcpStream::connect("127.0.0.1:8080") {
                conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
                let mut text = String::new();
                conn.read_to_string(&mut text).unwrap();
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("httpd never listened in the sandbox netns");
    })
    .join()
    .unwrap();
    assert!(body.contains("hello from the pod"), "{body}");
    assert!(matches!(f.runtime.state("web"), ContainerState::Running { .. }));
    f.runtime.signal("web", nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "web")), (137, Some(9)));
    f.runtime.signal("web", nix::sys::signal::Signal::SIGKILL).unwrap();
}

fn hostname_user_and_capabilities_apply(backend: Backend) {
    let Some(f) = fixture(backend, "pod-who", "hostname_user_and_capabilities_apply") else { return };
    let script = "hostname; id; grep CapEff /proc/self/status; cat /etc/resolv.conf; pwd";
    let mut nobody = f.spec("nobody", &["sh", "-c", script]);
    nobody.user = users::resolve(&[f.base.join("image")], "65534").unwrap();
    nobody.cwd = "/home/nobody".into();
    f.start(&nobody);
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "nobody")), (0, None));
    let log = f.log(&nobody);
    assert!(log.contains("stdout F pod-who\n"), "{log}");
    assert!(log.contains("stdout F uid=65534(nobody) gid=65534(nogroup)"), "{log}");
    assert!(log.contains("CapEff:\t0000000000000000"), "non-root gets no effective caps: {log}");
    assert!(log.contains("stdout F nameserver 10.96.0.10\n"), "{log}");
    assert!(log.contains("stdout F /home/nobody\n"), "{log}");

    let mut root = f.spec("root", &["sh", "-c", script]);
    root.capabilities =
        CapabilityChanges { add: vec!["NET_ADMIN".into()], drop: vec!["NET_RAW".into(), "CHOWN".into()] };
    f.start(&root);
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "root")), (0, None));
    let log = f.log(&root);
    let want = (0xa80425fbu64 & !(1 << 13) & !1) | (1 << 12);
    assert!(log.contains(&format!("CapEff:\t{want:016x}")), "{log}");
}

fn readonly_rootfs_refuses_writes_but_volumes_stay_writable(backend: Backend) {
    let Some(f) = fixture(backend, "pod-ro", "readonly_rootfs_refuses_writes_but_volumes_stay_writable") else {
        return;
    };
    let volume = f.base.join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    let mut spec = f.spec(
        "ro",
        &["sh", "-c", "touch /x 2>/dev/null && echo root-writable || echo root-refused; echo v > /data/out; touch /scratch/t && echo tmpfs-ok; cat /proc/kcore | wc -c; touch /proc/sys/x 2>/dev/null || echo sys-ro"],
    );
    spec.readonly_rootfs = true;
    spec.mounts.push(MountSpec::bind(&volume, "/data", false));
    spec.mounts.push(MountSpec {
        source: PathBuf::new(),
        destination: "/scratch".into(),
        kind: MountKind::Tmpfs { size_bytes: 1 << 20 },
        read_only: false,
    });
    f.start(&spec);
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "ro")), (0, None));
    let log = f.log(&spec);
    assert!(log.contains("stdout F root-refused\n"), "{log}");
    assert!(log.contains("stdout F tmpfs-ok\n"), "{log}");
    assert!(log.contains("stdout F 0\n"), "/proc/kcore is masked: {log}");
    assert!(log.contains("stdout F sys-ro\n"), "{log}");
    assert_eq!(std::fs::read_to_string(volume.join("out")).unwrap(), "v\n");
}

fn a_fresh_runtime_readopts_a_running_container_and_its_log_keeps_growing(backend: Backend) {
    let Some(f) =
        fixture(backend, "pod-adopt", "a_fresh_runtime_readopts_a_running_container_and_its_log_keeps_growing")
    else {
        return;
    };
    let spec = f.spec("ticker", &["sh", "-c", "while true; do echo tick; sleep 0.05; done"]);
    let handle = f.start(&spec);
    let shim_stat = std::fs::read_to_string(format!("/proc/{}/stat", handle.shim_pid)).unwrap();
    let shim_ppid: i32 = shim_stat[shim_stat.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().parse().unwrap();
    assert_ne!(shim_ppid, std::process::id() as i32, "the shim is detached from whoever started it");
    let fresh = f.fresh_runtime();
    match fresh.state("ticker") {
        ContainerState::Running { pid, .. } => assert_eq!(pid, handle.pid),
        other => panic!("not re-adopted: {other:?}"),
    }
    assert_eq!(fresh.list(), vec!["ticker".to_string()]);
    let before = f.log(&spec).lines().count();
    let mut grown = false;
    for _ in 0..500 {
        if f.log(&spec).lines().count() > before {
            grown = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(grown, "log stopped growing");
    assert!(fresh.remove("ticker").unwrap_err().to_string().contains("still running"));
    fresh.signal("ticker", nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(exit_code(&wait_exited(&*fresh, "ticker")), (137, Some(9)));
    // The shim leaves once the exit is recorded (a zombie until its new parent reaps it).
    let shim_gone = (0..500).any(|_| {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", handle.shim_pid)).unwrap_or_default();
        let gone = stat.is_empty() || stat[stat.rfind(')').unwrap() + 2..].starts_with('Z');
        if !gone {
            std::thread::sleep(Duration::from_millis(10));
        }
        gone
    });
    assert!(shim_gone, "shim {} outlived its container", handle.shim_pid);
}

fn the_log_rotates_at_a_small_size(backend: Backend) {
    let Some(f) = fixture(backend, "pod-rotate", "the_log_rotates_at_a_small_size") else { return };
    let mut spec = f.spec("chatty", &["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"]);
    spec.log_max_size = 2000;
    spec.log_max_files = 3;
    f.start(&spec);
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "chatty")), (0, None));
    let dir = spec.log_path.parent().unwrap();
    assert!(dir.join("0.log.1").exists() && dir.join("0.log.2").exists());
    assert!(!dir.join("0.log.3").exists());
    assert!(std::fs::metadata(&spec.log_path).unwrap().len() <= 2000);
    assert!(f.log(&spec).ends_with("stdout F line-299\n"));
}

fn the_init_joins_its_cgroups_before_exec(backend: Backend) {
    let name = "the_init_joins_its_cgroups_before_exec";
    let Some(f) = fixture(backend, "pod-cg", name) else { return };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let Some(path) =
        own.lines().find_map(|l| l.strip_prefix("4:memory:").or_else(|| l.split_once(":memory:").map(|(_, p)| p)))
    else {
        eprintln!("skipping {name} ({backend:?}): no v1 memory cgroup");
        return;
    };
    let leaf = format!("coracle-runtime-test-{backend:?}-{}", std::process::id()).to_lowercase();
    let cgroup = PathBuf::from(format!("/sys/fs/cgroup/memory{}/{leaf}", path.trim_end_matches('/')));
    if std::fs::create_dir_all(&cgroup).is_err() {
        eprintln!("skipping {name} ({backend:?}): cannot create {}", cgroup.display());
        return;
    }
    let mut spec = f.spec("cg", &["sleep", "600"]);
    spec.cgroup_dirs = vec![cgroup.clone()];
    let handle = f.start(&spec);
    // The container's own view is its cgroup namespace's root: the host's shows where it is.
    let host_view = std::fs::read_to_string(format!("/proc/{}/cgroup", handle.pid)).unwrap();
    assert!(host_view.lines().any(|l| l.contains(":memory:") && l.ends_with(&leaf)), "{host_view}");
    f.runtime.signal("cg", nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_exited(&*f.runtime, "cg");
    f.runtime.remove("cg").unwrap();
    let _ = std::fs::remove_dir(&cgroup);
}

/// Our own directory in the v1 hierarchy of `controller`, if it is mounted at the usual place.
fn own_v1_dir(controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == controller).then_some(path)
    })?;
    let dir = PathBuf::from(format!("/sys/fs/cgroup/{controller}{}", path.trim_end_matches('/')));
    dir.is_dir().then_some(dir)
}

/// Different leaf names per hierarchy: no one OCI cgroupsPath fits, so the OCI shim moves the
/// process between `create` and `start`; the builtin shim always joins the directories itself.
fn cgroups_that_share_no_single_path_are_joined_too(backend: Backend) {
    let name = "cgroups_that_share_no_single_path_are_joined_too";
    let Some(f) = fixture(backend, "pod-cg2", name) else { return };
    let (Some(memory), Some(pids)) = (own_v1_dir("memory"), own_v1_dir("pids")) else {
        eprintln!("skipping {name} ({backend:?}): no v1 memory and pids hierarchies");
        return;
    };
    let tag = format!("{backend:?}-{}", std::process::id()).to_lowercase();
    let dirs = vec![memory.join(format!("coracle-mem-{tag}")), pids.join(format!("coracle-pids-{tag}"))];
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut spec = f.spec("cg2", &["sleep", "600"]);
    spec.cgroup_dirs = dirs.clone();
    let handle = f.start(&spec);
    let host_view = std::fs::read_to_string(format!("/proc/{}/cgroup", handle.pid)).unwrap();
    let joined = |controller: &str, leaf: String| {
        host_view.lines().any(|l| l.contains(&format!(":{controller}:")) && l.ends_with(&leaf))
    };
    assert!(joined("memory", format!("coracle-mem-{tag}")), "{host_view}");
    assert!(joined("pids", format!("coracle-pids-{tag}")), "{host_view}");
    f.runtime.signal("cg2", nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_exited(&*f.runtime, "cg2");
    f.runtime.remove("cg2").unwrap();
    for dir in &dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

fn a_host_network_sandbox_shares_the_host_netns(backend: Backend) {
    let Some(mut f) = fixture(backend, "pod-hostnet", "a_host_network_sandbox_shares_the_host_netns") else { return };
    f.runtime.remove_sandbox("pod-hostnet").unwrap();
    f.sandbox = f
        .runtime
        .create_sandbox(&SandboxSpec {
            id: "pod-hostnet".into(),
            hostname: "pod-hostnet".into(),
            network: SandboxNetwork::Host,
            resolv_conf: None,
            sysctls: Vec::new(),
        })
        .unwrap();
    assert_eq!(f.sandbox.netns_path, None);
    let spec = f.spec("hostnet", &["sh", "-c", "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate"]);
    f.start(&spec);
    assert_eq!(exit_code(&wait_exited(&*f.runtime, "hostnet")), (0, None));
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let log = f.log(&spec);
    assert!(log.contains(&format!("stdout F {}\n", own.display())), "{log}");
    assert!(log.contains("stdout F unknown\n") || log.contains("stdout F up\n"), "{log}");
}

/// BestEffort's 1000 is always reachable; Guaranteed's -997 only as far as the daemon's caps allow.
fn the_oom_score_adj_reaches_the_container(backend: Backend) {
    let Some(f) = fixture(backend, "pod-oom", "the_oom_score_adj_reaches_the_container") else { return };
    for (id, score) in [("best-effort", 1000), ("guaranteed", -997)] {
        let mut spec = f.spec(id, &["cat", "/proc/self/oom_score_adj"]);
        spec.oom_score_adj = Some(score);
        f.start(&spec);
        assert_eq!(exit_code(&wait_exited(&*f.runtime, id)), (0, None));
        let expected = super::placement::achievable_oom_score_adj(score).unwrap();
        let log = f.log(&spec);
        assert!(log.ends_with(&format!("stdout F {expected}\n")), "{id}: want {expected}: {log}");
        f.runtime.remove(id).unwrap();
    }
}

/// The parent pid of `pid` (field 4 of /proc/PID/stat).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

fn shims_are_forked_by_one_launcher_that_leaves_with_its_runtime(backend: Backend) {
    let name = "shims_are_forked_by_one_launcher_that_leaves_with_its_runtime";
    let Some(f) = fixture(backend, "pod-launcher", name) else { return };
    let runtime = f.fresh_runtime();
    let mut launchers = Vec::new();
    for id in ["l1", "l2"] {
        let handle = runtime.start(&f.spec(id, &["sleep", "600"])).unwrap_or_else(|e| panic!("start {id}: {e}"));
        launchers.push(parent_of(handle.shim_pid).expect("the shim's parent"));
    }
    assert_eq!(launchers[0], launchers[1], "one launcher forks every shim");
    let launcher = launchers[0];
    let environ = std::fs::read(format!("/proc/{launcher}/environ")).unwrap();
    let marker = format!("{}=1", super::launcher::LAUNCHER_ENV);
    assert!(environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()), "pid {launcher} is not the launcher");
    drop(runtime);
    // Dropping the runtime closes the launcher's socket and waits for it: it is gone, the shims stay.
    assert!(!Path::new(&format!("/proc/{launcher}")).exists(), "the launcher outlived its runtime");
    for id in ["l1", "l2"] {
        assert!(matches!(f.runtime.state(id), ContainerState::Running { .. }), "{id} stopped with its launcher");
        f.runtime.signal(id, nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_exited(&*f.runtime, id);
        f.runtime.remove(id).unwrap();
    }
}

fn exec(f: &Fixture, id: &str, command: &[&str], env: &[&str]) -> Result<ExecOutput, ExecError> {
    let mut request =
        ExecRequest::captured(command.iter().map(|s| s.to_string()).collect(), Some(Duration::from_secs(10)));
    request.env = env.iter().map(|s| s.to_string()).collect();
    f.runtime.exec(id, &request)
}

/// The namespace link (`pid:[4026…]`) of `pid`'s namespace `ns`, as the host sees it.
fn ns_link(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap().display().to_string()
}

/// Whether a process that is not a zombie runs `cmdline` in the pid namespace `pidns`.
fn living_with_cmdline(pidns: &str, cmdline: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).any(|pid| {
        let same_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l.display().to_string() == pidns);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat.rfind(')').is_some_and(|at| stat[at + 1..].trim_start().starts_with('Z'));
        same_ns && !zombie && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline)
    })
}

fn exec_runs_confined_exactly_as_the_container(backend: Backend) {
    let Some(f) = fixture(backend, "pod-exec", "exec_runs_confined_exactly_as_the_container") else { return };
    let mut spec = f.spec("target", &["sleep", "600"]);
    spec.user = users::resolve(&[f.base.join("image")], "65534").unwrap();
    spec.cwd = "/home/nobody".into();
    spec.capabilities = CapabilityChanges { add: vec![], drop: vec!["ALL".into()] };
    let handle = f.start(&spec);
    let script = "id; echo $GREETING $EXTRA; pwd; grep -E 'CapBnd|NoNewPrivs' /proc/self/status; hostname; \
                  for ns in pid net ipc uts mnt; do readlink /proc/self/ns/$ns; done; echo $$; tr '\\0' ' ' < /proc/1/cmdline; \
                  echo; grep Seccomp: /proc/self/status; cat /proc/self/cgroup";
    let out = exec(&f, "target", &["sh", "-c", script], &["EXTRA=there"]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.exit_code, 0, "{text} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("uid=65534(nobody) gid=65534(nogroup)"), "{text}");
    assert_eq!(lines[1], "hi there", "the container's environment with the request's on top");
    assert_eq!(lines[2], "/home/nobody", "the container's working directory");
    assert_eq!(lines[3], "CapBnd:\t0000000000000000", "the container's bounding set: {text}");
    assert_eq!(lines[4], "NoNewPrivs:\t1", "{text}");
    assert_eq!(lines[5], "pod-exec", "the container's hostname");
    for (i, ns) in ["pid", "net", "ipc", "uts", "mnt"].iter().enumerate() {
        assert_eq!(lines[6 + i], ns_link(handle.pid, ns), "the container's {ns} namespace");
    }
    let own_pid: i32 = lines[11].parse().unwrap();
    assert!(own_pid > 1 && own_pid < 100, "a pid of the container's pid namespace: {own_pid}");
    assert_eq!(lines[12], "sleep 600 ", "its /proc is the container's, whose pid 1 is the container's init");
    assert_eq!(lines[13], "Seccomp:\t2", "the container's seccomp filter: {text}");
    let cgroups = &lines[14..];
    assert!(!cgroups.is_empty() && cgroups.iter().all(|l| l.ends_with(":/")), "its cgroup namespace: {text}");
    let stderr = exec(&f, "target", &["sh", "-c", "echo oops >&2; exit 4"], &[]).unwrap();
    assert_eq!((stderr.exit_code, stderr.stderr.as_slice()), (4, &b"oops\n"[..]));
    // A restarted daemon's runtime knows how the container was started: it execs the same way.
    let request = ExecRequest::captured(vec!["sh".into(), "-c".into(), "id -u; echo $GREETING; pwd".into()], None);
    let again = f.fresh_runtime().exec("target", &request).unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), "65534\nhi\n/home/nobody\n");
}

fn exec_reports_missing_programs_timeouts_and_stopped_containers(backend: Backend) {
    let name = "exec_reports_missing_programs_timeouts_and_stopped_containers";
    let Some(f) = fixture(backend, "pod-exec-err", name) else { return };
    f.start(&f.spec("app", &["sleep", "600"]));
    let missing = exec(&f, "app", &["nope"], &[]).unwrap_err();
    assert_eq!(missing, ExecError::Start("exec: \"nope\": executable file not found in $PATH".into()));
    let mut slow = ExecRequest::captured(vec!["sh".into(), "-c".into(), "echo begun; exec sleep 30".into()], None);
    slow.timeout = Some(Duration::from_millis(500));
    match f.runtime.exec("app", &slow) {
        Err(ExecError::TimedOut { output, .. }) => assert_eq!(output.stdout, b"begun\n"),
        other => panic!("not timed out: {other:?}"),
    }
    let init = match f.runtime.state("app") {
        ContainerState::Running { pid, .. } => pid,
        other => panic!("{other:?}"),
    };
    let killed = (0..500).any(|_| {
        let alive = living_with_cmdline(&ns_link(init, "pid"), b"sleep\x0030\x00");
        if alive {
            std::thread::sleep(Duration::from_millis(10));
        }
        !alive
    });
    assert!(killed, "the timed-out command was killed");
    f.runtime.signal("app", nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_exited(&*f.runtime, "app");
    assert_eq!(exec(&f, "app", &["true"], &[]).unwrap_err(), ExecError::NotRunning { id: "app".into() });
    assert_eq!(exec(&f, "never", &["true"], &[]).unwrap_err(), ExecError::NotRunning { id: "never".into() });
}

fn exec_joins_the_containers_cgroups(backend: Backend) {
    let name = "exec_joins_the_containers_cgroups";
    let Some(f) = fixture(backend, "pod-exec-cg", name) else { return };
    let Some(memory) = own_v1_dir("memory") else {
        eprintln!("skipping {name} ({backend:?}): no v1 memory cgroup");
        return;
    };
    let leaf = format!("coracle-exec-test-{backend:?}-{}", std::process::id()).to_lowercase();
    let cgroup = memory.join(&leaf);
    std::fs::create_dir_all(&cgroup).unwrap();
    let mut spec = f.spec("cg", &["sleep", "600"]);
    spec.cgroup_dirs = vec![cgroup.clone()];
    f.start(&spec);
    // Inside, the container's cgroup is the root of its cgroup namespace: a process that had
    // not joined it would see a path above that root ("/..").
    let out = exec(&f, "cg", &["cat", "/proc/self/cgroup"], &[]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.lines().any(|l| l.contains(":memory:") && l.ends_with(":/")), "{text}");
    // From the host: while an exec'd command runs, the container's cgroup holds it beside
    // the container's own process.
    let procs = cgroup.join("cgroup.procs");
    let members = || std::fs::read_to_string(&procs).unwrap_or_default().lines().count();
    let before = members();
    std::thread::scope(|s| {
        let running = s.spawn(|| exec(&f, "cg", &["sleep", "3"], &[]).unwrap());
        let joined = (0..300).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            members() > before
        });
        assert!(joined, "no exec'd process in {}", procs.display());
        assert_eq!(running.join().unwrap().exit_code, 0);
    });
    f.runtime.signal("cg", nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_exited(&*f.runtime, "cg");
    f.runtime.remove("cg").unwrap();
    let _ = std::fs::remove_dir(&cgroup);
}

/// What the confinement test's container reports: seccomp mode, capabilities, its cgroups, a
/// block node it made, unshare, /dev/null.
const CONFINEMENT_PROBE: &str = "grep -E '^(Seccomp|CapEff):' /proc/self/status; cat /proc/self/cgroup; \
    mknod /tmp/blk b 7 0 && echo mknod-ok; head -c 1 /tmp/blk >/dev/null 2>/tmp/err || cat /tmp/err; \
    unshare -m true 2>&1 || echo unshare-refused; head -c 0 /dev/null && echo null-ok";

fn a_confined_container_gets_the_whitelist_seccomp_and_its_own_cgroup_root(backend: Backend) {
    let name = "a_confined_container_gets_the_whitelist_seccomp_and_its_own_cgroup_root";
    let Some(f) = fixture(backend, "pod-confined", name) else { return };
    let Some(devices) = own_v1_dir("devices") else {
        eprintln!("skipping {name} ({backend:?}): no v1 devices hierarchy");
        return;
    };
    let tag = format!("{backend:?}-{}", std::process::id()).to_lowercase();
    let mut dirs = Vec::new();
    for (id, confinement, caps) in [
        ("confined", Confinement::default(), CapabilityChanges::default()),
        ("privileged", Confinement::privileged(), CapabilityChanges { add: vec!["ALL".into()], drop: vec![] }),
    ] {
        let dir = devices.join(format!("coracle-{id}-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        dirs.push(dir.clone());
        let mut spec = f.spec(id, &["sh", "-c", CONFINEMENT_PROBE]);
        spec.confinement = confinement;
        spec.capabilities = caps;
        spec.cgroup_dirs = vec![dir];
        f.start(&spec);
        assert_eq!(exit_code(&wait_exited(&*f.runtime, id)), (0, None), "{}", f.log(&spec));
        let log = f.log(&spec);
        let lines: Vec<&str> = log.lines().filter_map(|l| l.split_once(" F ").map(|(_, text)| text)).collect();
        let cgroups: Vec<&&str> =
            lines.iter().filter(|l| l.split(':').count() == 3 && l.starts_with(char::is_numeric)).collect();
        assert!(!cgroups.is_empty() && cgroups.iter().all(|l| l.ends_with(":/")), "no host path: {log}");
        assert!(lines.contains(&"mknod-ok") && lines.contains(&"null-ok"), "{log}");
        if id == "confined" {
            assert!(lines.contains(&"Seccomp:\t2"), "{log}");
            assert!(lines.contains(&"CapEff:\t00000000a80425fb"), "{log}");
            assert!(lines.iter().any(|l| l.contains("/tmp/blk") && l.contains("Operation not permitted")), "{log}");
            assert!(lines.contains(&"unshare-refused"), "{log}");
        } else {
            assert!(lines.contains(&"Seccomp:\t0"), "{log}");
            assert!(!log.contains("Operation not permitted") && !lines.contains(&"unshare-refused"), "{log}");
        }
        f.runtime.remove(id).unwrap();
    }
    for dir in &dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

/// runc's bundle rootfs is the image mounted on the host, set-id files and all: only root may
/// reach it, as only root may reach the image store.
#[test]
fn oci_bundles_are_reachable_by_root_only() {
    use std::os::unix::fs::PermissionsExt;
    let name = "oci_bundles_are_reachable_by_root_only";
    let Some(f) = fixture(Backend::Oci, "pod-private", name) else { return };
    f.start(&f.spec("app", &["sleep", "600"]));
    let bundles = f.base.join("run/oci");
    assert!(bundles.join("app/rootfs/bin/busybox").exists(), "the rootfs is mounted in the bundle");
    let mode = std::fs::metadata(&bundles).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} is {mode:o}", bundles.display());
    f.runtime.signal("app", nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_exited(&*f.runtime, "app");
    f.runtime.remove("app").unwrap();
}
