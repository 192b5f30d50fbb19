//! The command line: which benchmark, how much of it (`--smoke` is a tiny run), and where the
//! built binaries are.

use crate::api_get::ApiGetConfig;
use crate::footprint::FootprintConfig;
use crate::pod_start::PodStartConfig;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// `coracle-bench [--bin-dir DIR] pod-start|footprint [OPTIONS]`
#[derive(Parser, Debug, PartialEq, Eq)]
#[command(
    name = "coracle-bench",
    about = "Coracle's speed and memory beside a peer measured in the same run (needs root)"
)]
pub struct Cli {
    /// Directory holding release builds of coracled and coracle [default: this program's directory]
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub bench: Bench,
}

/// The benchmarks.
#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum Bench {
    /// apply → Running over N pods, the runtime's spawn time, and runc run -d beside them
    PodStart {
        /// Pods created one at a time and timed
        #[arg(long, default_value_t = 50)]
        pods: usize,
        /// Containers started directly by the runtime, and by runc
        #[arg(long, default_value_t = 50)]
        spawns: usize,
        /// A tiny run (3 pods, 3 spawns) that checks the benchmark works
        #[arg(long)]
        smoke: bool,
    },
    /// Binary sizes, daemon and shim memory, idle disk writes, `coracle get pods` time, beside k3s
    Footprint {
        /// Pods supervised for the memory figure
        #[arg(long, default_value_t = 100)]
        pods: usize,
        /// Pods running during the idle-writes window
        #[arg(long, default_value_t = 20)]
        idle_pods: usize,
        /// Length of the idle-writes window, seconds
        #[arg(long, value_name = "SECONDS", conflicts_with = "quick")]
        idle_seconds: Option<u64>,
        /// A 60 s idle-writes window instead of 600 s
        #[arg(long)]
        quick: bool,
        /// Timed runs of `coracle get pods`
        #[arg(long, default_value_t = 30)]
        get_runs: usize,
        /// A tiny run (3 pods, 2 s window) that checks the benchmark works
        #[arg(long)]
        smoke: bool,
    },
    /// GET /api/v1/pods over TCP under wrk, beside nginx serving the same bytes
    ApiGet {
        /// Pods in the store
        #[arg(long, default_value_t = 100)]
        pods: usize,
        /// Length of each measured run, seconds
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// wrk threads
        #[arg(long, default_value_t = 2)]
        threads: u32,
        /// wrk connections (kept alive)
        #[arg(long, default_value_t = 16)]
        connections: u32,
        /// Measured runs per server (alternating); the median is reported
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// A tiny run (1 s, one round) that checks the benchmark works
        #[arg(long)]
        smoke: bool,
    },
}

impl Bench {
    /// The name bench/run knows it by.
    pub fn name(&self) -> &'static str {
        match self {
            Bench::PodStart { .. } => "pod-start",
            Bench::Footprint { .. } => "footprint",
            Bench::ApiGet { .. } => "api-get",
        }
    }
}

/// What to run, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The pod-start benchmark.
    PodStart(PodStartConfig),
    /// The footprint benchmark.
    Footprint(FootprintConfig),
    /// The API's GET beside nginx.
    ApiGet(ApiGetConfig),
}

fn at_least_one(flag: &str, value: usize) -> Result<usize, String> {
    if value == 0 {
        return Err(format!("--{flag} 0: must be at least 1"));
    }
    Ok(value)
}

impl Bench {
    /// The configuration to run with; `--smoke` overrides the sizes.
    pub fn plan(&self) -> Result<Plan, String> {
        match *self {
            Bench::PodStart { smoke: true, .. } => Ok(Plan::PodStart(PodStartConfig { pods: 3, spawns: 3 })),
            Bench::PodStart { pods, spawns, smoke: false } => Ok(Plan::PodStart(PodStartConfig {
                pods: at_least_one("pods", pods)?,
                spawns: at_least_one("spawns", spawns)?,
            })),
            Bench::ApiGet { pods, smoke: true, .. } => Ok(Plan::ApiGet(ApiGetConfig {
                pods: at_least_one("pods", pods)?,
                duration: Duration::from_secs(1),
                threads: 1,
                connections: 4,
                rounds: 1,
            })),
            Bench::ApiGet { pods, seconds, threads, connections, rounds, smoke: false } => {
                if seconds == 0 {
                    return Err("--seconds 0: a run must last at least 1 s".into());
                }
                let threads = u32::try_from(at_least_one("threads", threads as usize)?).unwrap_or(1);
                if connections < threads {
                    return Err(format!("--connections {connections}: fewer than --threads {threads}"));
                }
                Ok(Plan::ApiGet(ApiGetConfig {
                    pods: at_least_one("pods", pods)?,
                    duration: Duration::from_secs(seconds),
                    threads,
                    connections,
                    rounds: at_least_one("rounds", rounds)?,
                }))
            }
            Bench::Footprint { smoke: true, .. } => Ok(Plan::Footprint(FootprintConfig {
                pods: 3,
                idle_pods: 2,
                idle_window: Duration::from_secs(2),
                get_runs: 3,
                settle: Duration::from_millis(200),
            })),
            Bench::Footprint { pods, idle_pods, idle_seconds, quick, get_runs, smoke: false } => {
                let pods = at_least_one("pods", pods)?;
                if idle_pods > pods {
                    return Err(format!("--idle-pods {idle_pods}: more than --pods {pods}"));
                }
                let window = idle_seconds.unwrap_or(if quick { 60 } else { 600 });
                if window == 0 {
                    return Err("--idle-seconds 0: the idle window must be at least 1 s".into());
                }
                Ok(Plan::Footprint(FootprintConfig {
                    pods,
                    idle_pods,
                    idle_window: Duration::from_secs(window),
                    get_runs: at_least_one("get-runs", get_runs)?,
                    settle: Duration::from_secs(2),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut argv = vec!["coracle-bench"];
        argv.extend(args);
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.bench.plan()
    }

    #[test]
    fn defaults_are_the_published_targets_sizes() {
        assert_eq!(plan(&["pod-start"]).unwrap(), Plan::PodStart(PodStartConfig { pods: 50, spawns: 50 }));
        let Plan::Footprint(f) = plan(&["footprint"]).unwrap() else { panic!("not footprint") };
        assert_eq!((f.pods, f.idle_pods, f.idle_window, f.get_runs), (100, 20, Duration::from_secs(600), 30));
        let Plan::Footprint(f) = plan(&["footprint", "--quick"]).unwrap() else { panic!("not footprint") };
        assert_eq!(f.idle_window, Duration::from_secs(60));
        let Plan::Footprint(f) =
            plan(&["footprint", "--idle-seconds", "5", "--pods", "10", "--idle-pods", "4"]).unwrap()
        else {
            panic!("not footprint")
        };
        assert_eq!((f.pods, f.idle_pods, f.idle_window), (10, 4, Duration::from_secs(5)));
    }

    #[test]
    fn smoke_mode_is_tiny_whatever_else_is_given() {
        assert_eq!(
            plan(&["pod-start", "--smoke", "--pods", "500"]).unwrap(),
            Plan::PodStart(PodStartConfig { pods: 3, spawns: 3 })
        );
        let Plan::Footprint(f) = plan(&["footprint", "--smoke"]).unwrap() else { panic!("not footprint") };
        assert_eq!((f.pods, f.idle_pods, f.idle_window), (3, 2, Duration::from_secs(2)));
    }

    #[test]
    fn bad_arguments_are_refused_with_the_flag_named() {
        assert!(plan(&["pod-start", "--pods", "0"]).unwrap_err().contains("--pods 0"));
        assert!(plan(&["footprint", "--idle-pods", "30", "--pods", "10"]).unwrap_err().contains("--idle-pods 30"));
        assert!(plan(&["footprint", "--idle-seconds", "0"]).unwrap_err().contains("--idle-seconds 0"));
        assert!(plan(&["footprint", "--quick", "--idle-seconds", "5"]).unwrap_err().contains("cannot be used with"));
        assert!(plan(&["pod-start", "--pods", "many"]).unwrap_err().contains("many"));
        assert!(plan(&["nosuch"]).is_err());
        assert_eq!(Cli::try_parse_from(["b", "footprint"]).unwrap().bench.name(), "footprint");
        assert!(plan(&["api-get", "--seconds", "0"]).unwrap_err().contains("--seconds 0"));
        assert!(plan(&["api-get", "--threads", "4", "--connections", "2"]).unwrap_err().contains("--connections 2"));
        let Plan::ApiGet(a) = plan(&["api-get"]).unwrap() else { panic!("not api-get") };
        assert_eq!((a.pods, a.duration, a.connections, a.rounds), (100, Duration::from_secs(10), 16, 3));
    }
}
