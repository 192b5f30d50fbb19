//! Pod start: apply of a one-container pod → Running through a real coracled (p50/p99 over
//! N pods, timed with a watch), the runtime's own spawn time, and `runc run -d` of the same
//! rootfs measured in the same run.

mod runc;
mod spawn;

use crate::daemon::BenchDaemon;
use crate::pods::{self, PodWatch};
use crate::stats::Summary;
use crate::table::{self, Table};
use crate::Binaries;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Target: apply → Running under 50 ms at p50.
const APPLY_TARGET: Duration = Duration::from_millis(50);
/// Target: the runtime's spawn under 5 ms (p50).
const SPAWN_TARGET: Duration = Duration::from_millis(5);
/// How long one pod may take to reach Running before the benchmark gives up.
const POD_TIMEOUT: Duration = Duration::from_secs(60);

/// How much to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStartConfig {
    /// Pods created one at a time and timed to Running.
    pub pods: usize,
    /// Containers started by the builtin runtime, and by runc.
    pub spawns: usize,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStartResults {
    /// The first pod, which also unpacks the image.
    pub first_pod: Duration,
    /// Each later pod's apply → Running.
    pub apply_to_running: Vec<Duration>,
    /// `BuiltinRuntime::start` times.
    pub spawn: Vec<Duration>,
    /// `runc run -d` times, or why runc could not be measured.
    pub runc: Result<Vec<Duration>, String>,
}

/// Measures everything and returns the table.
pub fn run(config: &PodStartConfig, bins: &Binaries) -> Result<Table, String> {
    let image_dir = tempfile::Builder::new()
        .prefix("coracle-bench-image-")
        .tempdir_in("/var/tmp")
        .map_err(|e| format!("creating a temp dir in /var/tmp: {e}"))?;
    let rootfs = image_dir.path().join("rootfs");
    coracle_e2e::images::busybox_rootfs(&rootfs);
    let archive = coracle_e2e::images::busybox_docker_archive(image_dir.path(), pods::IMAGE, &["sh"]);

    eprintln!("pod-start: {} pods through coracled …", config.pods + 1);
    let (first_pod, apply_to_running) = apply_to_running(bins, &archive, config.pods)?;
    // One pod sandbox for both runtimes' containers, as a pod's containers share one.
    let rig = spawn::Rig::new(&bins.coracled)?;
    eprintln!("pod-start: {} spawns with BuiltinRuntime …", config.spawns);
    let spawn = spawn::measure(&rig, &rootfs, config.spawns)?;
    eprintln!("pod-start: {} runs of runc run -d …", config.spawns);
    let runc = rig.namespaces().and_then(|sandbox| runc::measure(&rootfs, &sandbox, config.spawns));
    Ok(table(config, &PodStartResults { first_pod, apply_to_running, spawn, runc }))
}

/// Creates one warm-up pod and then `count` pods one at a time, each timed from the create
/// request to the watch event that shows it Running; then deletes them all.
fn apply_to_running(
    bins: &Binaries,
    archive: &std::path::Path,
    count: usize,
) -> Result<(Duration, Vec<Duration>), String> {
    let daemon = BenchDaemon::start(&bins.coracled)?;
    daemon.load_image(archive)?;
    let mut watch = PodWatch::open(&daemon)?;
    let mut names = BTreeSet::new();
    let mut times = Vec::with_capacity(count + 1);
    for i in 0..=count {
        let name = format!("bench-{i}");
        let started = Instant::now();
        pods::create(&daemon, &name)?;
        names.insert(name.clone());
        watch.until_running(&BTreeSet::from([name]), POD_TIMEOUT)?;
        times.push(started.elapsed());
    }
    for name in &names {
        pods::delete(&daemon, name)?;
    }
    watch.until_deleted(&names, POD_TIMEOUT)?;
    daemon.stop()?;
    let first = times.remove(0);
    Ok((first, times))
}

/// The results as one table: ours beside runc's, with the targets.
pub fn table(config: &PodStartConfig, r: &PodStartResults) -> Table {
    let mut t = Table::new(
        format!("pod start: {} pods, {} spawns, busybox rootfs", config.pods, config.spawns),
        &["measure", "n", "p50", "p99", "min", "max", "target", "verdict"],
    );
    let row = |t: &mut Table, name: &str, samples: &[Duration], target: Option<Duration>| match Summary::of(samples) {
        Some(s) => t.row(vec![
            name.into(),
            s.count.to_string(),
            table::duration(s.p50),
            table::duration(s.p99),
            table::duration(s.min),
            table::duration(s.max),
            target.map_or("-".into(), |d| format!("p50 < {}", table::duration(d))),
            target.map_or("-".into(), |d| table::verdict(s.p50 < d)),
        ]),
        None => t.row(vec![name.into(), "0".into()]),
    };
    row(&mut t, "coracle apply → Running", &r.apply_to_running, Some(APPLY_TARGET));
    row(&mut t, "coracle first pod (image unpack)", &[r.first_pod], None);
    row(&mut t, "coracle runtime spawn", &r.spawn, Some(SPAWN_TARGET));
    match &r.runc {
        Ok(samples) => row(&mut t, "runc run -d (peer)", samples, None),
        Err(e) => {
            t.row(vec!["runc run -d (peer)".into(), "0".into()]);
            t.note(format!("runc not measured: {e}"));
        }
    }
    t.note("apply → Running: POST of the pod to the watch event showing phase Running (coracled over its socket)");
    t.note(
        "runtime spawn: BuiltinRuntime::start → handle (shim forked by the coracled shim launcher; cgroup made beforehand, as the node \
         does; the init joins it itself)",
    );
    t.note("runc: `runc run --detach` wall time (returns after start) in the same sandbox's net and ipc namespaces; runc also makes the cgroup");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn the_table_puts_ours_beside_runc_with_verdicts() {
        let config = PodStartConfig { pods: 3, spawns: 2 };
        let results = PodStartResults {
            first_pod: Duration::from_millis(120),
            apply_to_running: ms(&[30, 40, 70]),
            spawn: ms(&[6, 8]),
            runc: Ok(ms(&[25, 30])),
        };
        let t = table(&config, &results);
        let rows = t.rows();
        assert_eq!(rows[0][..4], ["coracle apply → Running", "3", "40.00 ms", "70.00 ms"]);
        assert_eq!(rows[0][6..], ["p50 < 50.00 ms", "ok"]);
        assert_eq!(rows[1][..3], ["coracle first pod (image unpack)", "1", "120.00 ms"]);
        assert_eq!(rows[2][7], "MISSED");
        assert_eq!(rows[3][..3], ["runc run -d (peer)", "2", "25.00 ms"]);
        assert!(t.render().starts_with("== pod start: 3 pods, 2 spawns"));
    }

    #[test]
    fn a_missing_runc_is_reported_not_fatal() {
        let results = PodStartResults {
            first_pod: Duration::from_millis(1),
            apply_to_running: ms(&[1]),
            spawn: ms(&[1]),
            runc: Err("runc not found in PATH".into()),
        };
        let text = table(&PodStartConfig { pods: 1, spawns: 1 }, &results).render();
        assert!(text.contains("runc not measured: runc not found in PATH"), "{text}");
    }
}
