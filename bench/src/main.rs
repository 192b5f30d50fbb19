//! coracle-bench: Coracle's speed and memory targets measured beside a peer in the same run,
//! printed as tables. Run through `bench/run [NAME…]`; every benchmark needs root.

mod api_get;
mod cli;
mod daemon;
mod footprint;
mod pod_start;
mod pods;
mod procfs;
mod stats;
mod table;
/// wrk's runner and report reader, shared with the proxy benchmark (which reads the CPU and
/// transfer figures this one leaves alone).
#[allow(dead_code)]
#[path = "../proxy/wrk.rs"]
mod wrk;

use clap::Parser;
use cli::{Cli, Plan};
use std::path::{Path, PathBuf};

/// Exit status when the benchmark cannot run here (not root, binaries missing).
const CANNOT_RUN: i32 = 2;

/// The release binaries under test.
pub struct Binaries {
    /// The daemon (also the shim).
    pub coracled: PathBuf,
    /// The ctl.
    pub coracle: PathBuf,
}

impl Binaries {
    /// `coracled` and `coracle` in `dir`, both required.
    fn in_dir(dir: &Path) -> Result<Binaries, String> {
        let bins = Binaries { coracled: dir.join("coracled"), coracle: dir.join("coracle") };
        for bin in [&bins.coracled, &bins.coracle] {
            if !bin.is_file() {
                return Err(format!(
                    "{} not found: build it with `cargo build --release -p coracled -p coracle` (or pass --bin-dir)",
                    bin.display()
                ));
            }
        }
        Ok(bins)
    }
}

/// The workspace this benchmark was built in (dist/ and target/cross live there).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn main() {
    let cli = Cli::parse();
    let name = cli.bench.name();
    let plan = match cli.bench.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("coracle-bench {name}: {e}");
            std::process::exit(CANNOT_RUN);
        }
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "coracle-bench {name}: needs root (it starts containers: namespaces, mounts, cgroups); run it as root"
        );
        std::process::exit(CANNOT_RUN);
    }
    let bin_dir = cli.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default()
    });
    let bins = match Binaries::in_dir(&bin_dir) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("coracle-bench {name}: {e}");
            std::process::exit(CANNOT_RUN);
        }
    };
    let tables = match &plan {
        Plan::PodStart(config) => pod_start::run(config, &bins).map(|t| vec![t]),
        Plan::Footprint(config) => footprint::run(config, &bins),
        Plan::ApiGet(config) => api_get::run(config, &bins).map(|t| vec![t]),
    };
    match tables {
        Ok(tables) => {
            for t in tables {
                println!("{}", t.render());
            }
        }
        Err(e) => {
            eprintln!("coracle-bench {name}: {e}");
            std::process::exit(1);
        }
    }
}
