//! The real thing, as root on this machine's cgroups (hybrid here, pure v2 on the board
//! VM): every test works under its own sub-path of our own cgroup and removes it after,
//! pass or fail.

use super::*;
use nix::sys::signal::Signal;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A per-test base `<own>/coracle-test-<pid>-<name>` that is removed on drop.
struct LiveBase {
    cgroups: Cgroups,
}

impl LiveBase {
    fn new(test: &str) -> Option<LiveBase> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping {test}: needs root");
            return None;
        }
        // Detected once per process: on v2 the first create moves this process into a
        // leaf, and later tests must still root themselves where the first one did.
        static ROOTS: OnceLock<Result<Roots, String>> = OnceLock::new();
        let roots = match ROOTS.get_or_init(|| Roots::detect().map_err(|e| e.to_string())) {
            Ok(roots) => roots.clone(),
            Err(e) => {
                eprintln!("skipping {test}: no usable cgroup filesystem: {e}");
                return None;
            }
        };
        if let Roots::V1 { hierarchies, .. } = &roots {
            for needed in ["memory", "cpu", "cpuacct", "pids", "freezer"] {
                if !hierarchies.iter().any(|h| h.has(needed)) {
                    eprintln!("skipping {test}: cgroup v1 controller {needed} is not mounted");
                    return None;
                }
            }
        }
        let subpath = format!("coracle-test-{}-{test}", std::process::id());
        Some(LiveBase { cgroups: Cgroups::with_roots(roots, &subpath).unwrap() })
    }
}

impl Drop for LiveBase {
    fn drop(&mut self) {
        if let Some(base) = self.cgroups.open("") {
            if let Err(e) = base.remove() {
                eprintln!("cleanup of {:?} failed: {e}", base.dirs());
            }
        }
    }
}

/// `sh -c SCRIPT` that waits for a line on stdin first, so it can be put in its cgroup
/// before it does anything.
fn spawn_gated(script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _ || exit 1; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn release(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

fn pid(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap()
}

/// The content of `file` in whichever of the cgroup's directories has it.
fn limit_file(cgroup: &Cgroup, file: &str) -> String {
    let dir = cgroup.dirs().into_iter().find(|d| d.join(file).exists()).unwrap_or_else(|| panic!("no {file}"));
    std::fs::read_to_string(dir.join(file)).unwrap().trim().to_string()
}

#[test]
fn live_limits_are_written_read_back_and_lifted() {
    let Some(live) = LiveBase::new("limits") else { return };
    let cgroups = &live.cgroups;
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        cpu_limit_millis: Some(500),
        cpu_request_millis: Some(250),
        pids_max: Some(64),
    };
    let cgroup = cgroups.create("pods/u1/c1", &limits).unwrap();
    assert_eq!(cgroups.create("pods/u1/c1", &limits).unwrap(), cgroup, "create is idempotent");
    for dir in cgroup.dirs() {
        assert!(dir.is_dir(), "{} was not created", dir.display());
        assert!(cgroups.base_dirs().iter().any(|base| dir.starts_with(base)));
    }
    if cgroups.kind() == "v2" {
        assert_eq!(limit_file(&cgroup, "memory.max"), "67108864");
        assert_eq!(limit_file(&cgroup, "cpu.max"), "50000 100000");
        assert_eq!(limit_file(&cgroup, "cpu.weight"), shares_to_weight(256).to_string());
    } else {
        assert_eq!(limit_file(&cgroup, "memory.limit_in_bytes"), "67108864");
        assert_eq!(limit_file(&cgroup, "cpu.cfs_period_us"), "100000");
        assert_eq!(limit_file(&cgroup, "cpu.cfs_quota_us"), "50000");
        assert_eq!(limit_file(&cgroup, "cpu.shares"), "256");
    }
    assert_eq!(limit_file(&cgroup, "pids.max"), "64");

    cgroup.update(&Limits::default()).unwrap();
    assert_eq!(limit_file(&cgroup, "pids.max"), "max");
    if cgroups.kind() == "v2" {
        assert_eq!(limit_file(&cgroup, "memory.max"), "max");
        assert_eq!(limit_file(&cgroup, "cpu.max"), "max 100000");
    } else {
        assert!(limit_file(&cgroup, "memory.limit_in_bytes").parse::<u64>().unwrap() > 1 << 62);
        assert_eq!(limit_file(&cgroup, "cpu.cfs_quota_us"), "-1");
        assert_eq!(limit_file(&cgroup, "cpu.shares"), "1024");
    }

    assert_eq!(cgroups.list("pods"), vec!["pods/u1"]);
    assert_eq!(cgroups.list("pods/u1"), vec!["pods/u1/c1"]);
    assert!(cgroups.open("pods/u2").is_none());
    cgroups.open("pods/u1").unwrap().remove().unwrap();
    assert!(cgroups.list("pods").is_empty());
    for dir in cgroup.dirs() {
        assert!(!dir.exists(), "{} survived remove", dir.display());
    }
}

#[test]
fn live_process_is_counted_signalled_and_removed() {
    let Some(live) = LiveBase::new("process") else { return };
    let cgroup = live.cgroups.create("c", &Limits { pids_max: Some(16), ..Limits::default() }).unwrap();
    // Burn some CPU inside the cgroup, then sit still.
    let mut child = spawn_gated("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 60");
    cgroup.add_pid(pid(&child)).unwrap();
    release(&mut child);
    let comm = format!("/proc/{}/comm", child.id());
    while std::fs::read_to_string(&comm).unwrap().trim() != "sleep" {
        std::thread::sleep(Duration::from_millis(20));
    }

    assert_eq!(cgroup.pids().unwrap(), vec![pid(&child)]);
    let stats = cgroup.stats().unwrap();
    assert!(stats.cpu_usage_nanos > 0, "{stats:?}");
    assert!(stats.memory_bytes > 0, "{stats:?}");
    assert_eq!((stats.pids, stats.oom_kills), (1, 0), "{stats:?}");

    cgroup.kill_all(Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    cgroup.remove().unwrap();
    assert!(cgroup.dirs().iter().all(|d| !d.exists()));
    assert!(live.cgroups.open("c").is_none());
}

#[test]
fn live_memory_hog_is_oom_killed_and_counted() {
    let Some(live) = LiveBase::new("oom") else { return };
    let limits = Limits { memory_bytes: Some(32 << 20), pids_max: Some(16), ..Limits::default() };
    let cgroup = live.cgroups.create("hog", &limits).unwrap();
    // tail keeps an endless line in memory until the limit is hit.
    let mut child = spawn_gated("exec tail /dev/zero");
    cgroup.add_pid(pid(&child)).unwrap();
    release(&mut child);
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    let stats = cgroup.stats().unwrap();
    assert!(stats.oom_kills >= 1, "{stats:?}");
    cgroup.remove().unwrap();
}

#[test]
fn live_fork_bomb_is_held_by_pids_max_and_fully_killed() {
    let Some(live) = LiveBase::new("forkbomb") else { return };
    let cgroup = live.cgroups.create("bomb", &Limits { pids_max: Some(32), ..Limits::default() }).unwrap();
    let mut child = spawn_gated("bomb() { bomb | bomb & }; bomb; wait");
    cgroup.add_pid(pid(&child)).unwrap();
    release(&mut child);
    let mut most = 0;
    for _ in 0..50 {
        let tasks = cgroup.stats().unwrap().pids;
        assert!(tasks <= 32, "pids.max 32 let {tasks} tasks in");
        most = most.max(tasks);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(most > 1, "the bomb never forked");

    cgroup.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(cgroup.pids().unwrap(), Vec::<i32>::new());
    child.wait().unwrap();
    // pids.current still counts zombies until their new parent (init) reaps them.
    let mut tasks = cgroup.stats().unwrap().pids;
    for _ in 0..500 {
        if tasks == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        tasks = cgroup.stats().unwrap().pids;
    }
    assert_eq!(tasks, 0, "tasks left after kill_all");
    cgroup.remove().unwrap();
    assert!(cgroup.dirs().iter().all(|d| !d.exists()));
}

#[test]
fn live_removal_clears_what_an_oci_runtime_mirrored_into_the_hybrid_cgroup2_tree() {
    let Some(live) = LiveBase::new("unified") else { return };
    let cgroups = &live.cgroups;
    let Some(unified_base) = cgroups.unified_dir(Path::new("")) else {
        eprintln!("skipping the unified-tree check: not a hybrid layout ({})", cgroups.kind());
        return;
    };
    let pod = cgroups.create("pods/u1", &Limits::default()).unwrap();
    // What runc does with cgroupsPath `<subpath>/pods/u1/c1`: the same path in cgroup2, with
    // the container's process in it; `runc delete` then leaves the parents behind.
    let mirrored = unified_base.join("pods/u1/c1");
    std::fs::create_dir_all(&mirrored).unwrap();
    let mut child = spawn_gated("exec sleep 600");
    std::fs::write(mirrored.join("cgroup.procs"), pid(&child).to_string()).unwrap();
    assert_eq!(pod.pids().unwrap(), vec![pid(&child)], "the mirror's processes count as the pod's");
    pod.remove().unwrap();
    assert!(child.wait().unwrap().signal() == Some(libc::SIGKILL));
    assert!(!unified_base.join("pods/u1").exists(), "{} left behind", unified_base.join("pods/u1").display());
    // A daemon restarted after only the mirror survived still finds it, and removes it.
    std::fs::create_dir_all(unified_base.join("pods/u2")).unwrap();
    assert_eq!(cgroups.list("pods"), vec!["pods/u2".to_string()]);
    cgroups.open("pods/u2").expect("the leftover mirror is found").remove().unwrap();
    assert!(!unified_base.join("pods/u2").exists());
}

#[test]
fn live_detect_roots_every_hierarchy_beneath_our_own_cgroup() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping live_detect: needs root");
        return;
    }
    let Ok(roots) = Roots::detect() else {
        eprintln!("skipping live_detect: no usable cgroup filesystem");
        return;
    };
    let cgroups = Cgroups::detect(DEFAULT_SUBPATH).unwrap();
    let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let cgroup2_mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(" - cgroup2 ");
    match roots {
        Roots::V1 { hierarchies, unified } => {
            assert_eq!(unified.is_some(), cgroup2_mounted);
            assert_eq!(cgroups.kind(), if cgroup2_mounted { "hybrid" } else { "v1" });
            for (hierarchy, base) in hierarchies.iter().zip(cgroups.base_dirs()) {
                assert_eq!(base, hierarchy.own.join(DEFAULT_SUBPATH));
                // Our own path in this hierarchy, as /proc/self/cgroup has it, ends the own dir.
                let ours = self_cgroup
                    .lines()
                    .find_map(|l| {
                        l.splitn(3, ':')
                            .nth(2)
                            .filter(|_| l.split(':').nth(1) == Some(&hierarchy.controllers.join(",")))
                    })
                    .unwrap();
                assert!(hierarchy.own.ends_with(ours.trim_start_matches('/')), "{hierarchy:?} vs {ours}");
            }
        }
        Roots::V2 { own, .. } => {
            assert_eq!(cgroups.kind(), "v2");
            // Once a create moved this process into its `daemon` leaf, the base stays above.
            let base = cgroups.base_dirs().remove(0);
            assert!(base.ends_with(DEFAULT_SUBPATH) && own.starts_with(base.parent().unwrap()), "{base:?}");
        }
    }
}
