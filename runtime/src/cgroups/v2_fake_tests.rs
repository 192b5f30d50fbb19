//! The cgroup v2 paths against a fake cgroupfs in a tempdir: this machine's cgroup2 mount
//! has no controllers, so the real v2 run happens on the board VM. The fake plays the
//! kernel's part only where a test needs it (interface files appear on "mkdir").

use super::*;
use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const OWN_CONTROLLERS: &str = "cpu io memory pids";

struct FakeV2 {
    _tmp: tempfile::TempDir,
    mount: PathBuf,
    own: PathBuf,
}

impl FakeV2 {
    fn new(own_procs: &str) -> FakeV2 {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().join("cgroup");
        let own = mount.join("system.slice/coracled.service");
        kernel_mkdir(&mount, "cpuset cpu io memory hugetlb pids rdma misc");
        kernel_mkdir(&mount.join("system.slice"), OWN_CONTROLLERS);
        kernel_mkdir(&own, OWN_CONTROLLERS);
        fs::write(own.join("cgroup.procs"), own_procs).unwrap();
        FakeV2 { _tmp: tmp, mount, own }
    }

    fn cgroups(&self) -> Cgroups {
        Cgroups::with_roots(Roots::V2 { mount: self.mount.clone(), own: self.own.clone() }, "coracle").unwrap()
    }

    /// Makes every directory of `rel` under our own cgroup the way the kernel would.
    fn kernel_mkdirs(&self, rel: &str) -> PathBuf {
        let mut dir = self.own.clone();
        for component in rel.split('/') {
            dir.push(component);
            if !dir.exists() {
                kernel_mkdir(&dir, OWN_CONTROLLERS);
            }
        }
        dir
    }
}

/// A cgroup directory with the interface files a v2 kernel creates in it.
fn kernel_mkdir(dir: &Path, controllers: &str) {
    fs::create_dir_all(dir).unwrap();
    let files = [
        ("cgroup.controllers", controllers),
        ("cgroup.subtree_control", ""),
        ("cgroup.procs", ""),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("cgroup.freeze", "0"),
        ("cgroup.kill", ""),
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("memory.current", "0"),
        ("memory.stat", "anon 0\ninactive_file 0\n"),
        ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
        ("cpu.max", "max 100000"),
        ("cpu.weight", "100"),
        ("cpu.stat", "usage_usec 0\n"),
        ("pids.max", "max"),
        ("pids.current", "0"),
    ];
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

fn pod_limits() -> Limits {
    Limits {
        memory_bytes: Some(64 << 20),
        cpu_limit_millis: Some(500),
        cpu_request_millis: Some(250),
        pids_max: Some(64),
    }
}

#[test]
fn create_moves_the_daemon_into_a_leaf_and_enables_controllers_down_to_the_parent() {
    let fake = FakeV2::new("4242\n4243\n");
    fake.kernel_mkdirs("daemon");
    let leaf = fake.kernel_mkdirs("coracle/pods/u1/c1");

    let cgroup = fake.cgroups().create("pods/u1/c1", &pod_limits()).unwrap();

    assert_eq!(cgroup.dirs(), vec![leaf.clone()]);
    assert_eq!(read(fake.own.join("daemon/cgroup.procs")), "4242\n4243\n");
    for parent in ["", "coracle", "coracle/pods", "coracle/pods/u1"] {
        let control = read(fake.own.join(parent).join("cgroup.subtree_control"));
        assert_eq!(control, "+cpu +memory +pids", "subtree_control of {parent:?}");
    }
    assert_eq!(read(leaf.join("cgroup.subtree_control")), "", "a leaf must stay able to hold processes");
    assert_eq!(read(leaf.join("memory.max")), "67108864");
    assert_eq!(read(leaf.join("memory.swap.max")), "0");
    assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(leaf.join("cpu.weight")), shares_to_weight(256).to_string());
    assert_eq!(read(leaf.join("pids.max")), "64");
}

#[test]
fn create_is_idempotent_and_moves_the_daemon_only_once() {
    let fake = FakeV2::new("4242\n");
    fake.kernel_mkdirs("daemon");
    fake.kernel_mkdirs("coracle/pods/u1");
    let cgroups = fake.cgroups();
    cgroups.create("pods/u1", &pod_limits()).unwrap();
    // The kernel lists enabled controllers without '+'.
    fs::write(fake.own.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
    let again = cgroups.create("pods/u1", &pod_limits()).unwrap();
    assert_eq!(read(fake.own.join("daemon/cgroup.procs")), "4242\n");
    assert_eq!(read(fake.own.join("cgroup.subtree_control")), "cpu memory pids\n");
    assert_eq!(cgroups.open("pods/u1"), Some(again));
    assert_eq!(cgroups.list("pods"), vec!["pods/u1"]);
    assert_eq!(cgroups.list(""), vec!["pods"]);
    assert_eq!(cgroups.open("pods/u2"), None);
}

#[test]
fn update_with_no_limits_lifts_every_limit() {
    let fake = FakeV2::new("");
    let leaf = fake.kernel_mkdirs("coracle/c");
    let cgroup = fake.cgroups().create("c", &pod_limits()).unwrap();
    cgroup.update(&Limits::default()).unwrap();
    assert_eq!(read(leaf.join("memory.max")), "max");
    assert_eq!(read(leaf.join("memory.swap.max")), "max");
    assert_eq!(read(leaf.join("cpu.max")), "max 100000");
    assert_eq!(read(leaf.join("cpu.weight")), "100");
    assert_eq!(read(leaf.join("pids.max")), "max");
}

#[test]
fn a_daemon_in_the_root_cgroup_is_not_moved() {
    let fake = FakeV2::new("");
    fs::write(fake.mount.join("cgroup.procs"), "1\n").unwrap();
    let cgroups =
        Cgroups::with_roots(Roots::V2 { mount: fake.mount.clone(), own: fake.mount.clone() }, "coracle").unwrap();
    kernel_mkdir(&fake.mount.join("coracle"), OWN_CONTROLLERS);
    cgroups.create("", &Limits::default()).unwrap();
    assert!(!fake.mount.join("daemon").exists());
    assert_eq!(read(fake.mount.join("cgroup.subtree_control")), "+cpu +memory +pids");
}

#[test]
fn a_limit_without_its_controller_fails_before_anything_is_made() {
    let fake = FakeV2::new("");
    fs::write(fake.own.join("cgroup.controllers"), "cpu pids").unwrap();
    let err = fake.cgroups().create("pods/u1", &pod_limits()).unwrap_err();
    assert!(matches!(err, CgroupError::ControllerMissing { controller: "memory", .. }), "{err}");
    assert!(!fake.own.join("coracle").exists());
}

#[test]
fn a_missing_interface_file_is_named_in_the_error() {
    let fake = FakeV2::new("");
    fake.kernel_mkdirs("coracle/pods");
    // The leaf becomes a plain directory, as if the kernel had given it no pids controller.
    let limits = Limits { pids_max: Some(10), ..Limits::default() };
    let err = fake.cgroups().create("pods/u1", &limits).unwrap_err();
    assert!(err.to_string().contains("pids.max"), "{err}");
    assert!(fake.own.join("coracle/pods/u1").is_dir(), "create makes the directories");
}

#[test]
fn stats_read_the_v2_files() {
    let fake = FakeV2::new("");
    let leaf = fake.kernel_mkdirs("coracle/c");
    fs::write(leaf.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n").unwrap();
    fs::write(leaf.join("memory.current"), "10000\n").unwrap();
    fs::write(leaf.join("memory.stat"), "anon 6000\nactive_file 10\ninactive_file 4000\n").unwrap();
    fs::write(leaf.join("memory.events"), "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n").unwrap();
    fs::write(leaf.join("pids.current"), "3\n").unwrap();
    let stats = fake.cgroups().open("c").unwrap().stats().unwrap();
    assert_eq!(stats, Stats { cpu_usage_nanos: 1_500_000, memory_bytes: 6000, oom_kills: 2, pids: 3 });
}

#[test]
fn kill_all_uses_cgroup_kill_when_the_kernel_has_it() {
    let fake = FakeV2::new("");
    let leaf = fake.kernel_mkdirs("coracle/c");
    fake.cgroups().open("c").unwrap().kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(read(leaf.join("cgroup.kill")), "1");
    assert_eq!(read(leaf.join("cgroup.freeze")), "0");
}

#[test]
fn kill_all_without_cgroup_kill_freezes_kills_and_thaws() {
    let fake = FakeV2::new("");
    let leaf = fake.kernel_mkdirs("coracle/c");
    fs::remove_file(leaf.join("cgroup.kill")).unwrap();
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(leaf.join("cgroup.procs"), format!("{}\n", child.id())).unwrap();

    // The fake kernel: report the freezer state asked for, and drop the pid once it died.
    let stop = Arc::new(AtomicBool::new(false));
    let kernel = {
        let (leaf, stop) = (leaf.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let frozen = fs::read_to_string(leaf.join("cgroup.freeze")).unwrap_or_default();
                let _ = fs::write(leaf.join("cgroup.events.tmp"), format!("populated 1\nfrozen {}\n", frozen.trim()));
                let _ = fs::rename(leaf.join("cgroup.events.tmp"), leaf.join("cgroup.events"));
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let reaper = {
        let leaf = leaf.clone();
        std::thread::spawn(move || {
            let status = child.wait().unwrap();
            fs::write(leaf.join("cgroup.procs"), "").unwrap();
            status
        })
    };

    let result = fake.cgroups().open("c").unwrap().kill_all(Signal::SIGKILL);
    let status = reaper.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    kernel.join().unwrap();

    result.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(read(leaf.join("cgroup.freeze")), "0", "thawed afterwards");
}

#[test]
fn a_daemon_restarted_inside_its_leaf_still_finds_its_pods() {
    let fake = FakeV2::new("");
    fake.kernel_mkdirs("coracle/pods");
    let leaf = fake.kernel_mkdirs("daemon");
    let cgroups = Cgroups::with_roots(Roots::V2 { mount: fake.mount.clone(), own: leaf }, "coracle").unwrap();
    assert_eq!(cgroups.base_dirs(), vec![fake.own.join("coracle")]);
    assert_eq!(cgroups.list(""), vec!["pods"]);
}

#[test]
fn a_daemon_leaf_under_a_cgroup_that_delegates_nothing_is_taken_as_it_is() {
    let fake = FakeV2::new("");
    let leaf = fake.kernel_mkdirs("daemon");
    let cgroups = Cgroups::with_roots(Roots::V2 { mount: fake.mount.clone(), own: leaf.clone() }, "coracle").unwrap();
    assert_eq!(cgroups.base_dirs(), vec![leaf.join("coracle")]);
}
