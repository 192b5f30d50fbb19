//! Footprint: binary sizes for the boards, coracled's memory idle and supervising pods (shims
//! reported apart), the daemon's disk writes while idle with pods running, and the wall time
//! of `coracle get pods`; k3s's published figures beside ours.

mod k3s;
pub mod sizes;

use crate::daemon::BenchDaemon;
use crate::pods::{self, PodWatch};
use crate::procfs::{self, Memory};
use crate::stats::Summary;
use crate::table::{self, Table};
use crate::Binaries;
use sizes::BinarySizes;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
/// Daemon + ctl, stripped, static, aarch64.
const BINARIES_TARGET: u64 = 4 * MIB;
/// coracled RSS with no pods.
const IDLE_RSS_TARGET: u64 = 8 * MIB;
/// coracled RSS supervising 100 pods.
const PODS_RSS_TARGET: u64 = 24 * MIB;
/// How long a batch of pods may take to reach Running.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// How much to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FootprintConfig {
    /// Pods supervised for the memory figure (100).
    pub pods: usize,
    /// Pods running during the idle-writes window (20).
    pub idle_pods: usize,
    /// The idle-writes window (600 s; `--quick` 60 s).
    pub idle_window: Duration,
    /// Timed runs of `coracle get pods`.
    pub get_runs: usize,
    /// Pause before reading memory, so start-up work has finished.
    pub settle: Duration,
}

/// The daemon's and its shims' memory with some pods running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodsMemory {
    /// Pods running.
    pub pods: usize,
    /// coracled itself.
    pub daemon: Memory,
    /// Living shims found through the runtime's records.
    pub shims: usize,
    /// All shims together.
    pub shims_total: Memory,
    /// The largest shim RSS.
    pub shim_max_rss: u64,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FootprintResults {
    /// aarch64 binaries from dist/ or target/cross; `None` when neither exists.
    pub aarch64: Option<Result<BinarySizes, String>>,
    /// The host release binaries this run used.
    pub host: Result<BinarySizes, String>,
    /// coracled with no pods.
    pub idle: Memory,
    /// With `idle_pods` pods.
    pub few: PodsMemory,
    /// With `pods` pods.
    pub many: PodsMemory,
    /// Bytes coracled wrote to storage during the idle window.
    pub daemon_writes: u64,
    /// Bytes the shims wrote to storage during the idle window.
    pub shim_writes: u64,
    /// `coracle get pods` wall times with `pods` pods.
    pub get_pods: Vec<Duration>,
    /// `hyperfine` or `timed runs`.
    pub get_pods_tool: String,
}

/// Measures everything and returns the footprint and pod-memory tables.
pub fn run(config: &FootprintConfig, bins: &Binaries) -> Result<Vec<Table>, String> {
    let workspace = crate::workspace_root();
    let aarch64 = sizes::newest(&workspace, "aarch64", "aarch64-unknown-linux-musl");
    let host = bins.coracled.parent().map_or_else(|| Err("no bin dir".to_string()), sizes::from_dir);

    let image_dir = tempfile::Builder::new()
        .prefix("coracle-bench-image-")
        .tempdir_in("/var/tmp")
        .map_err(|e| format!("creating a temp dir in /var/tmp: {e}"))?;
    let archive = coracle_e2e::images::busybox_docker_archive(image_dir.path(), pods::IMAGE, &["sh"]);

    let daemon = BenchDaemon::start(&bins.coracled)?;
    std::thread::sleep(config.settle);
    let idle = procfs::memory(daemon.pid())?;
    daemon.load_image(&archive)?;
    let mut watch = PodWatch::open(&daemon)?;
    let mut names = BTreeSet::new();

    eprintln!("footprint: {} pods, then {} s idle …", config.idle_pods, config.idle_window.as_secs());
    start_pods(&daemon, &mut watch, &mut names, config.idle_pods)?;
    std::thread::sleep(config.settle);
    let few = pods_memory(&daemon, names.len())?;
    let (daemon_writes, shim_writes) = idle_writes(&daemon, config.idle_window)?;

    eprintln!("footprint: {} pods …", config.pods);
    start_pods(&daemon, &mut watch, &mut names, config.pods)?;
    std::thread::sleep(config.settle);
    let many = pods_memory(&daemon, names.len())?;
    eprintln!("footprint: `coracle get pods` × {} …", config.get_runs);
    let (get_pods_tool, get_pods) = time_get_pods(&bins.coracle, daemon.socket(), config.get_runs, names.len())?;

    for name in &names {
        pods::delete(&daemon, name)?;
    }
    watch.until_deleted(&names, BATCH_TIMEOUT)?;
    daemon.stop()?;
    let results =
        FootprintResults { aarch64, host, idle, few, many, daemon_writes, shim_writes, get_pods, get_pods_tool };
    Ok(vec![footprint_table(config, &results), pod_memory_table(&results)])
}

/// Creates pods until `names` holds `total`, all at once, and waits for all to run.
fn start_pods(
    daemon: &BenchDaemon,
    watch: &mut PodWatch,
    names: &mut BTreeSet<String>,
    total: usize,
) -> Result<(), String> {
    let mut batch = BTreeSet::new();
    for i in names.len()..total {
        let name = format!("bench-{i}");
        pods::create(daemon, &name)?;
        batch.insert(name);
    }
    watch.until_running(&batch, BATCH_TIMEOUT)?;
    names.extend(batch);
    Ok(())
}

fn pods_memory(daemon: &BenchDaemon, pods: usize) -> Result<PodsMemory, String> {
    let mut shims_total = Memory::default();
    let mut shims = 0;
    let mut shim_max_rss = 0;
    for pid in daemon.shim_pids() {
        // A shim that exited in between is simply not counted.
        if let Ok(m) = procfs::memory(pid) {
            shims += 1;
            shim_max_rss = shim_max_rss.max(m.rss);
            shims_total = shims_total + m;
        }
    }
    Ok(PodsMemory { pods, daemon: procfs::memory(daemon.pid())?, shims, shims_total, shim_max_rss })
}

/// Storage bytes written by the daemon, and by the shims living throughout, over `window`.
fn idle_writes(daemon: &BenchDaemon, window: Duration) -> Result<(u64, u64), String> {
    let shims_before: BTreeMap<u32, u64> =
        daemon.shim_pids().into_iter().filter_map(|p| procfs::storage_writes(p).ok().map(|w| (p, w))).collect();
    let before = procfs::storage_writes(daemon.pid())?;
    std::thread::sleep(window);
    let after = procfs::storage_writes(daemon.pid())?;
    let shims: u64 = shims_before
        .iter()
        .filter_map(|(pid, was)| procfs::storage_writes(*pid).ok().map(|now| now.saturating_sub(*was)))
        .sum();
    Ok((after.saturating_sub(before), shims))
}

/// Wall times of `coracle --socket S get pods`: hyperfine when installed, else timed runs.
fn time_get_pods(coracle: &Path, socket: &Path, runs: usize, pods: usize) -> Result<(String, Vec<Duration>), String> {
    let out = Command::new(coracle)
        .arg("--socket")
        .arg(socket)
        .args(["get", "pods"])
        .output()
        .map_err(|e| format!("running {}: {e}", coracle.display()))?;
    let listed = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("bench-")).count();
    if !out.status.success() || listed != pods {
        return Err(format!(
            "coracle get pods: {} and {listed} of {pods} pods listed: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let command = format!("{} --socket {} get pods", coracle.display(), socket.display());
    if let Some(times) = hyperfine(&command, runs)? {
        return Ok(("hyperfine".into(), times));
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new(coracle)
            .arg("--socket")
            .arg(socket)
            .args(["get", "pods"])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("running {}: {e}", coracle.display()))?;
        times.push(started.elapsed());
        if !status.success() {
            return Err(format!("coracle get pods: {status}"));
        }
    }
    Ok(("timed runs".into(), times))
}

/// `hyperfine`'s individual run times for `command`; `None` when hyperfine is not installed.
fn hyperfine(command: &str, runs: usize) -> Result<Option<Vec<Duration>>, String> {
    if coracled::runtime::oci::find_binary("hyperfine").is_none() {
        return Ok(None);
    }
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let json_path = tmp.path().join("hyperfine.json");
    let out = Command::new("hyperfine")
        .args(["-N", "--warmup", "3", "--style", "none", "--runs", &runs.max(2).to_string(), "--export-json"])
        .arg(&json_path)
        .arg(command)
        .output()
        .map_err(|e| format!("running hyperfine: {e}"))?;
    if !out.status.success() {
        return Err(format!("hyperfine {command:?}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = std::fs::read_to_string(&json_path).map_err(|e| format!("reading {}: {e}", json_path.display()))?;
    parse_hyperfine(&text).map(Some)
}

/// The `times` (seconds) of the first result of a hyperfine JSON export.
fn parse_hyperfine(text: &str) -> Result<Vec<Duration>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("hyperfine JSON: {e}"))?;
    let times = v["results"][0]["times"].as_array().ok_or("hyperfine JSON: no results[0].times")?;
    times
        .iter()
        .map(|t| {
            t.as_f64().map(Duration::from_secs_f64).ok_or_else(|| format!("hyperfine JSON: time {t} is not a number"))
        })
        .collect()
}

fn memory_cell(m: Memory) -> String {
    format!("{} (Pss {})", table::bytes(m.rss), table::bytes(m.pss))
}

/// Sizes, daemon memory, idle writes and `get pods`, beside k3s's published figures.
pub fn footprint_table(config: &FootprintConfig, r: &FootprintResults) -> Table {
    let mut t = Table::new("footprint", &["measure", "coracle", "k3s (published)", "target", "verdict"]);
    let sizes_cell = |s: &BinarySizes| {
        format!("{} ({} + {})", table::bytes(s.total()), table::bytes(s.coracled), table::bytes(s.coracle))
    };
    match &r.aarch64 {
        Some(Ok(s)) => {
            t.row(vec![
                "binaries aarch64, stripped static (daemon + ctl)".into(),
                sizes_cell(s),
                k3s::BINARY.into(),
                format!("≤ {}", table::bytes(BINARIES_TARGET)),
                table::verdict(s.total() <= BINARIES_TARGET),
            ]);
            t.note(format!("aarch64 sizes from {}", s.source.display()));
        }
        Some(Err(e)) => {
            t.row(vec!["binaries aarch64 (daemon + ctl)".into(), "unreadable".into()]);
            t.note(format!("aarch64 sizes: {e}"));
        }
        None => {
            t.row(vec!["binaries aarch64 (daemon + ctl)".into(), "no build".into()]);
            t.note("aarch64 sizes: no dist/coracle-*-aarch64.tar.gz or target/cross build; run cross/build aarch64");
        }
    }
    if let Ok(s) = &r.host {
        t.row(vec!["binaries host release, as measured (daemon + ctl)".into(), sizes_cell(s)]);
    }
    t.row(vec![
        "coracled RSS idle, 0 pods".into(),
        memory_cell(r.idle),
        k3s::AGENT_RAM.into(),
        format!("≤ {}", table::bytes(IDLE_RSS_TARGET)),
        table::verdict(r.idle.rss <= IDLE_RSS_TARGET),
    ]);
    t.row(vec![
        format!("coracled RSS, {} pods", r.many.pods),
        memory_cell(r.many.daemon),
        k3s::SERVER_WITH_WORKLOAD_RAM.into(),
        format!("≤ {} (100 pods)", table::bytes(PODS_RSS_TARGET)),
        table::verdict(r.many.daemon.rss <= PODS_RSS_TARGET),
    ]);
    t.row(vec![
        format!("coracled disk writes, {} s idle, {} pods", config.idle_window.as_secs(), r.few.pods),
        table::bytes(r.daemon_writes),
        k3s::NOT_PUBLISHED.into(),
        "0 B".into(),
        table::verdict(r.daemon_writes == 0),
    ]);
    t.row(vec![
        format!("shims' disk writes, same window ({} shims)", r.few.shims),
        table::bytes(r.shim_writes),
        k3s::NOT_PUBLISHED.into(),
    ]);
    match Summary::of(&r.get_pods) {
        Some(s) => t.row(vec![
            format!("`coracle get pods`, {} pods: p50 / max", r.many.pods),
            format!("{} / {}", table::duration(s.p50), table::duration(s.max)),
            k3s::NOT_PUBLISHED.into(),
        ]),
        None => t.row(vec!["`coracle get pods`".into(), "not measured".into()]),
    }
    t.note("RSS = VmRSS of /proc/PID/status; Pss from /proc/PID/smaps_rollup; writes = write_bytes of /proc/PID/io");
    t.note(format!("`coracle get pods`: {} runs via {}", r.get_pods.len(), r.get_pods_tool));
    t.note(k3s::SOURCES);
    t
}

/// The daemon's own memory beside its shims' (one per container).
pub fn pod_memory_table(r: &FootprintResults) -> Table {
    let mut t = Table::new(
        "pod memory: daemon vs shims",
        &["pods", "coracled RSS", "coracled Pss", "shims", "shims RSS sum", "shims Pss sum", "RSS/shim avg", "max"],
    );
    for m in [&r.few, &r.many] {
        let avg = m.shims_total.rss.checked_div(m.shims as u64).unwrap_or(0);
        t.row(vec![
            m.pods.to_string(),
            table::bytes(m.daemon.rss),
            table::bytes(m.daemon.pss),
            m.shims.to_string(),
            table::bytes(m.shims_total.rss),
            table::bytes(m.shims_total.pss),
            table::bytes(avg),
            table::bytes(m.shim_max_rss),
        ]);
    }
    t.note("shims: the re-exec'd coracled supervising each container, found through the runtime's state records");
    t.note("Pss splits the shims' shared text pages among them: the sum is what they really cost together");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(rss_mib: u64, pss_mib: u64) -> Memory {
        Memory { rss: rss_mib * MIB, pss: pss_mib * MIB }
    }

    fn results() -> FootprintResults {
        FootprintResults {
            aarch64: Some(Ok(BinarySizes { source: "dist/x.tar.gz".into(), coracled: 3 * MIB, coracle: MIB / 2 })),
            host: Err("none".into()),
            idle: mem(5, 4),
            few: PodsMemory { pods: 2, daemon: mem(6, 5), shims: 2, shims_total: mem(4, 1), shim_max_rss: 2 * MIB },
            many: PodsMemory { pods: 3, daemon: mem(30, 25), shims: 3, shims_total: mem(6, 2), shim_max_rss: 2 * MIB },
            daemon_writes: 4096,
            shim_writes: 0,
            get_pods: vec![Duration::from_millis(4), Duration::from_millis(6)],
            get_pods_tool: "hyperfine".into(),
        }
    }

    fn smoke() -> FootprintConfig {
        FootprintConfig {
            pods: 3,
            idle_pods: 2,
            idle_window: Duration::from_secs(2),
            get_runs: 2,
            settle: Duration::ZERO,
        }
    }

    #[test]
    fn the_footprint_table_judges_each_target() {
        let t = footprint_table(&smoke(), &results());
        let rows = t.rows();
        assert_eq!(rows[0][1], "3.50 MiB (3.00 MiB + 512.0 KiB)");
        assert_eq!(rows[0][4], "ok");
        assert_eq!(rows[1][..2], ["coracled RSS idle, 0 pods", "5.00 MiB (Pss 4.00 MiB)"]);
        assert_eq!(rows[1][4], "ok");
        assert_eq!(rows[2][4], "MISSED", "30 MiB > 24 MiB");
        assert_eq!(rows[3][..2], ["coracled disk writes, 2 s idle, 2 pods", "4.0 KiB"]);
        assert_eq!(rows[3][4], "MISSED");
        assert_eq!(rows[5][1], "4.00 ms / 6.00 ms");
        assert!(t.render().contains("resource-profiling"));
    }

    #[test]
    fn a_missing_aarch64_build_says_how_to_make_one() {
        let r = FootprintResults { aarch64: None, ..results() };
        assert!(footprint_table(&smoke(), &r).render().contains("run cross/build aarch64"));
    }

    #[test]
    fn shims_are_reported_apart_from_the_daemon() {
        let t = pod_memory_table(&results());
        assert_eq!(t.rows()[1], ["3", "30.00 MiB", "25.00 MiB", "3", "6.00 MiB", "2.00 MiB", "2.00 MiB", "2.00 MiB"]);
    }

    #[test]
    fn hyperfine_exports_parse() {
        let times = parse_hyperfine(r#"{"results":[{"command":"x","times":[0.004,0.0055]}]}"#).unwrap();
        assert_eq!(times, vec![Duration::from_millis(4), Duration::from_micros(5500)]);
        assert!(parse_hyperfine(r#"{"results":[]}"#).unwrap_err().contains("results[0].times"));
    }
}
