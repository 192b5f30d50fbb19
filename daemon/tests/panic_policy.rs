//! The panic policy (docs/ARCHITECTURE.md): a panic in any of the daemon's threads ends the
//! whole process, in the debug builds the tests run as in release, instead of leaving a
//! daemon alive with one of its loops dead.
//!
//! The test runs itself again as a child that installs the daemon's policy and starts the
//! node's pod pool with a pass that panics on a pool thread; the child must die by SIGABRT.
//! Without the policy the pool thread would end alone and the child would live on.

use coracle_config::core::Pod;
use coracled::node::pod_worker::Next;
use coracled::node::pool::{Leftovers, PodPool, PodTask, PoolLimits};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the child's environment: run the panicking pool instead of checking a child.
const CHILD: &str = "CORACLE_PANIC_POLICY_CHILD";
/// How long the child outlives its panic if the process does not end: long enough that the
/// abort, when it comes, comes first on any machine.
const LIVE_ON: Duration = Duration::from_secs(60);

struct Panics;

impl PodTask for Panics {
    fn sync(&mut self, pod: &Pod) -> Next {
        panic!("a pass over pod {} failed", pod.metadata.name);
    }

    fn remove_now(&mut self, _: &Pod) {}
}

fn run_child() {
    coracled::panic_policy::install();
    let make = |_: &Pod, _: Leftovers| Panics;
    let pool = PodPool::new(Box::new(make), PoolLimits::default(), None);
    let mut pod = Pod::default();
    pod.metadata.name = "doomed".into();
    pod.metadata.uid = "uid-doomed".into();
    pool.add(pod, Vec::new());
    let until = Instant::now() + LIVE_ON;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("still alive after the panic");
    std::process::exit(0);
}

#[test]
fn a_panic_on_a_pool_thread_ends_the_process() {
    if std::env::var_os(CHILD).is_some() {
        return run_child();
    }
    let me = std::env::current_exe().expect("the test executable");
    let out = Command::new(me)
        .args(["--exact", "a_panic_on_a_pool_thread_ends_the_process", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .output()
        .expect("running the test executable again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(nix::libc::SIGABRT),
        "the child ends by abort ({}); stdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stderr.contains("a pass over pod doomed failed"), "the panic is reported first:\n{stderr}");
    assert!(!stdout.contains("still alive"), "{stdout}");
}
