//! The peer: `runc run --detach` of an OCI bundle on the same busybox rootfs. runc returns once
//! the container's process has been started, so the wall time of the command is its spawn time.
//! Like the builtin runtime's containers, runc's join the pod sandbox's network and IPC
//! namespaces instead of making their own, so both spawn times cover the same work.

use crate::procfs;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// runc with its state under a temp dir of ours, never the system's /run/runc.
struct Runc {
    binary: PathBuf,
    state_root: PathBuf,
}

impl Runc {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    /// Runs a runc subcommand to completion, its stderr in the error.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {} {}: {e}", self.binary.display(), args.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "{} {}: {}: {}",
                self.binary.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The namespaces a pod sandbox pins for its containers to join.
pub struct SandboxNamespaces<'a> {
    /// The pinned network namespace.
    pub net: &'a Path,
    /// The pinned IPC namespace.
    pub ipc: &'a Path,
}

/// `runc spec`'s config, adjusted: our rootfs (read-only, as runc's default), no terminal,
/// the same command the builtin runtime starts, and the sandbox's network and IPC namespaces.
fn bundle_config(mut config: Value, rootfs: &Path, sandbox: &SandboxNamespaces) -> Result<Value, String> {
    if !config["process"].is_object() || !config["root"].is_object() {
        return Err(format!("runc spec printed no process/root sections: {config}"));
    }
    let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() else {
        return Err(format!("runc spec printed no linux.namespaces: {config}"));
    };
    for ns in namespaces.iter_mut() {
        match ns["type"].as_str() {
            Some("network") => ns["path"] = json!(sandbox.net),
            Some("ipc") => ns["path"] = json!(sandbox.ipc),
            _ => {}
        }
    }
    config["root"]["path"] = json!(rootfs);
    config["root"]["readonly"] = json!(true);
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sleep", "86400"]);
    config["hostname"] = json!("bench-runc");
    Ok(config)
}

/// Runs `runs` detached runc containers of `rootfs` in `sandbox` one after another; returns
/// each `runc run -d` wall time.
pub fn measure(rootfs: &Path, sandbox: &SandboxNamespaces, runs: usize) -> Result<Vec<Duration>, String> {
    let binary = coracled::runtime::oci::find_binary("runc")
        .ok_or("runc not found in PATH (apt-get install runc): it is the peer this benchmark compares with")?;
    let tmp = tempfile::Builder::new()
        .prefix("coracle-bench-runc-")
        .tempdir_in("/var/tmp")
        .map_err(|e| format!("creating a temp dir in /var/tmp: {e}"))?;
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| format!("creating {}: {e}", bundle.display()))?;
    let runc = Runc { binary, state_root: tmp.path().join("state") };
    let bundle_arg = bundle.to_string_lossy().into_owned();
    runc.run(&["spec", "--bundle", &bundle_arg])?;
    let config_path = bundle.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| format!("reading {}: {e}", config_path.display()))?;
    let config = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", config_path.display()))?;
    let config = bundle_config(config, rootfs, sandbox)?;
    std::fs::write(&config_path, config.to_string()).map_err(|e| format!("writing {}: {e}", config_path.display()))?;

    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let id = format!("coracle-bench-{}-{i}", std::process::id());
        let stderr_path = tmp.path().join(format!("{id}.stderr"));
        let stderr =
            std::fs::File::create(&stderr_path).map_err(|e| format!("creating {}: {e}", stderr_path.display()))?;
        let started = Instant::now();
        let status = runc
            .command()
            .args(["run", "--detach", "--bundle", &bundle_arg, &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .map_err(|e| format!("running runc run: {e}"))?;
        let elapsed = started.elapsed();
        if !status.success() {
            let why = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let _ = runc.run(&["delete", "--force", &id]);
            return Err(format!("runc run -d {id}: {status}: {}", why.trim()));
        }
        samples.push(elapsed);
        let state: Value =
            serde_json::from_str(&runc.run(&["state", &id])?).map_err(|e| format!("runc state {id}: not JSON: {e}"))?;
        let pid = state["pid"].as_u64().unwrap_or(0) as u32;
        let alive = pid != 0 && procfs::exists(pid);
        runc.run(&["delete", "--force", &id])?;
        if !alive {
            return Err(format!("runc run -d {id} succeeded but its process ({pid}) does not exist: {state}"));
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_runs_our_command_on_our_rootfs_in_the_sandbox_without_a_terminal() {
        let sandbox = SandboxNamespaces { net: Path::new("/run/s/net"), ipc: Path::new("/run/s/ipc") };
        let spec = json!({
            "process": {"terminal": true, "args": ["sh"]},
            "root": {"path": "rootfs", "readonly": true},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "mount"}]},
        });
        let c = bundle_config(spec, Path::new("/tmp/rootfs"), &sandbox).unwrap();
        assert_eq!(c["root"]["path"], "/tmp/rootfs");
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["process"]["args"], json!(["sleep", "86400"]));
        assert_eq!(
            c["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "network", "path": "/run/s/net"}, {"type": "ipc", "path": "/run/s/ipc"}, {"type": "mount"}])
        );
        let no_process = bundle_config(json!({"root": {}}), Path::new("/r"), &sandbox).unwrap_err();
        assert!(no_process.contains("no process/root"), "{no_process}");
        let no_namespaces = json!({"process": {}, "root": {}});
        assert!(bundle_config(no_namespaces, Path::new("/r"), &sandbox).unwrap_err().contains("no linux.namespaces"));
    }
}
