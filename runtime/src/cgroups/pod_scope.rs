//! Under systemd on cgroup v2, pods live in a delegated transient scope (`coracle-pods.scope`)
//! beside the service instead of beneath the service's own cgroup.
//!
//! Why: with `Delegate=yes` and `KillMode=process`, pods left beneath `coracled.service` make
//! it an inner cgroup with controllers enabled in its `cgroup.subtree_control`. systemd 252
//! (Debian 12) then cannot attach a restarted daemon's main process to the unit's cgroup (the
//! kernel's no-internal-process rule): `systemctl restart coracled` fails with 219/CGROUP.
//! `DelegateSubgroup=` (systemd ≥ 254) would let the daemon run in a sub-cgroup of its own
//! unit, but the boards we target ship 252. A scope registered through `systemd-run --scope
//! -p Delegate=yes` works on every systemd with cgroup v2: it outlives daemon restarts (the
//! restarted daemon finds and reuses it), systemd leaves its subtree to us, and it is stopped
//! kubelet-like at shutdown or uninstall: SIGTERM to every pod, SIGKILL after
//! [`STOP_TIMEOUT_SECS`]. A tiny keeper process (this binary, [`super::scope_keeper`]) keeps
//! the scope alive while no pod runs, from a leaf of its own so the scope may hand controllers
//! down. Without systemd nothing changes: pods stay beneath the daemon's own cgroup.

use super::{CgroupError, Roots};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scope's unit name.
pub const SCOPE_UNIT: &str = "coracle-pods.scope";
/// The leaf beneath the scope that holds the keeper, so the scope itself holds no process.
pub const KEEPER_LEAF: &str = "keeper";
/// How long pods get between SIGTERM and SIGKILL when the scope stops (shutdown, uninstall):
/// a container whose PID 1 ignores SIGTERM (busybox httpd, sleep) would otherwise hold a
/// poweroff for systemd's default 90 s.
pub const STOP_TIMEOUT_SECS: u32 = 15;
/// How long registering the scope and the keeper's move into its leaf may take (an emulated
/// board is slow).
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// Facts about how the daemon was started that decide where pods go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// Started by systemd as a unit (`INVOCATION_ID` is set).
    pub invocation_id: bool,
    /// systemd is PID 1 (`/run/systemd/system` exists).
    pub systemd_booted: bool,
}

impl Launch {
    /// Reads the environment and `/run/systemd/system`.
    pub fn detect() -> Launch {
        Launch {
            invocation_id: std::env::var_os("INVOCATION_ID").is_some_and(|v| !v.is_empty()),
            systemd_booted: Path::new("/run/systemd/system").is_dir(),
        }
    }
}

/// The service unit whose pods belong in the scope, when they do: pure cgroup v2, started by a
/// booted systemd as a `.service` (its cgroup's name). `None` keeps pods beneath the daemon.
pub fn service_needing_scope(roots: &Roots, launch: &Launch) -> Option<String> {
    let Roots::V2 { own, .. } = roots else { return None };
    if !(launch.invocation_id && launch.systemd_booted) {
        return None;
    }
    let name = own.file_name()?.to_str()?;
    name.ends_with(".service").then(|| name.to_string())
}

/// Where pods' cgroups are rooted: the scope's directory when [`service_needing_scope`] says
/// so (found, or registered now), else the daemon's own roots unchanged. A scope that cannot be
/// had is logged and the daemon falls back to its own cgroup: pods still run, but a restart
/// under systemd 252 will then fail as described above.
pub fn place(roots: Roots, launch: &Launch) -> Roots {
    let Some(service) = service_needing_scope(&roots, launch) else { return roots };
    let Roots::V2 { mount, own } = roots else { return roots };
    match existing(&mount).map_or_else(|| register(&mount, &service), Ok) {
        Ok(scope) => {
            log::info!("cgroups: pods live in {SCOPE_UNIT} ({})", scope.display());
            Roots::V2 { mount, own: scope }
        }
        Err(e) => {
            log::warn!("cgroups: {e}; pods stay beneath {} (a restart of {service} may fail)", own.display());
            Roots::V2 { mount, own }
        }
    }
}

/// The running scope's directory, when an earlier daemon registered it and its keeper lives.
fn existing(mount: &Path) -> Option<PathBuf> {
    let out = Command::new("systemctl")
        .args(["show", "--property=ActiveState,ControlGroup", SCOPE_UNIT])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='));
    if value("ActiveState") != Some("active") {
        return None;
    }
    let dir = cgroup_dir(mount, value("ControlGroup")?)?;
    dir.join(KEEPER_LEAF).is_dir().then_some(dir)
}

/// `mount` joined with a cgroup path as systemd or /proc print it (`/system.slice/x.scope`).
fn cgroup_dir(mount: &Path, cgroup: &str) -> Option<PathBuf> {
    let inside = cgroup.trim().strip_prefix('/')?;
    (!inside.is_empty() && !inside.split('/').any(|c| c == "..")).then(|| mount.join(inside))
}

/// The `systemd-run` arguments that register the scope around the keeper `program`.
pub fn register_args(program: &Path, service: &str) -> Vec<String> {
    vec![
        "--quiet".into(),
        "--scope".into(),
        "--collect".into(),
        format!("--unit={SCOPE_UNIT}"),
        format!("--description=Coracle pods (cgroups delegated to {service})"),
        "--property=Delegate=yes".into(),
        format!("--property=TimeoutStopSec={STOP_TIMEOUT_SECS}s"),
        // Stopped after the daemon (reverse start order), so a stopping daemon never sees its
        // pods die and restarts them into a scope that is being emptied.
        format!("--property=Before={service}"),
        "--".into(),
        program.display().to_string(),
        super::scope_keeper::KEEPER_ARG.into(),
    ]
}

/// Registers the scope with the keeper as its first process and waits until the keeper sits in
/// the scope's keeper leaf; returns the scope's directory.
fn register(mount: &Path, service: &str) -> Result<PathBuf, CgroupError> {
    let program = std::fs::read_link("/proc/self/exe").map_err(|e| CgroupError::io("readlink", "/proc/self/exe", e))?;
    let fail = |why: String| CgroupError::Scope(format!("registering {SCOPE_UNIT}: {why}"));
    let mut child = Command::new("systemd-run")
        .args(register_args(&program, service))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("running systemd-run: {e}")))?;
    let pid = child.id();
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| fail(format!("waiting for systemd-run: {e}")))? {
            let mut message = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut message);
            }
            return Err(fail(format!("systemd-run exited with {status}: {}", message.trim())));
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if let Some(scope) = keeper_scope(&cgroup) {
            // The keeper runs for as long as the scope does; reap it if it ever ends.
            std::thread::spawn(move || child.wait());
            return cgroup_dir(mount, scope).ok_or_else(|| fail(format!("unusable cgroup path {scope:?}")));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("the keeper was not in {SCOPE_UNIT}/{KEEPER_LEAF} after {REGISTER_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The scope's cgroup path when a `/proc/PID/cgroup` text shows the keeper in its leaf.
fn keeper_scope(proc_cgroup: &str) -> Option<&str> {
    let path = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let scope = path.strip_suffix(KEEPER_LEAF)?.strip_suffix('/')?;
    scope.ends_with(SCOPE_UNIT).then_some(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(own: &str) -> Roots {
        Roots::V2 { mount: "/sys/fs/cgroup".into(), own: own.into() }
    }

    const SYSTEMD: Launch = Launch { invocation_id: true, systemd_booted: true };

    #[test]
    fn only_a_systemd_service_on_pure_v2_moves_its_pods_to_the_scope() {
        let service = v2("/sys/fs/cgroup/system.slice/coracled.service");
        assert_eq!(service_needing_scope(&service, &SYSTEMD).as_deref(), Some("coracled.service"));
        let by_hand = Launch { invocation_id: false, systemd_booted: true };
        assert_eq!(service_needing_scope(&service, &by_hand), None, "started from a shell");
        let no_systemd = Launch { invocation_id: true, systemd_booted: false };
        assert_eq!(service_needing_scope(&service, &no_systemd), None, "INVOCATION_ID leaked, no systemd");
        assert_eq!(service_needing_scope(&v2("/sys/fs/cgroup/user.slice/session-1.scope"), &SYSTEMD), None);
        let hybrid = Roots::V1 { hierarchies: Vec::new(), unified: Some("/sys/fs/cgroup/unified/x.service".into()) };
        assert_eq!(service_needing_scope(&hybrid, &SYSTEMD), None, "v1 controllers have no such rule");
    }

    #[test]
    fn roots_stay_unchanged_where_no_scope_is_needed() {
        let roots = v2("/sys/fs/cgroup/user.slice/session-1.scope");
        assert_eq!(place(roots.clone(), &SYSTEMD), roots);
        let service = v2("/sys/fs/cgroup/system.slice/coracled.service");
        assert_eq!(place(service.clone(), &Launch::default()), service);
    }

    #[test]
    fn the_keeper_is_found_only_in_the_scopes_leaf() {
        assert_eq!(
            keeper_scope("0::/system.slice/coracle-pods.scope/keeper\n"),
            Some("/system.slice/coracle-pods.scope")
        );
        assert_eq!(keeper_scope("0::/system.slice/coracle-pods.scope\n"), None, "not moved yet");
        assert_eq!(keeper_scope("0::/system.slice/coracled.service/keeper\n"), None, "not in the scope yet");
        assert_eq!(keeper_scope("1:name=systemd:/x\n"), None);
    }

    #[test]
    fn cgroup_paths_map_under_the_mount_and_cannot_climb_out() {
        let mount = Path::new("/sys/fs/cgroup");
        assert_eq!(
            cgroup_dir(mount, "/system.slice/coracle-pods.scope\n"),
            Some(PathBuf::from("/sys/fs/cgroup/system.slice/coracle-pods.scope"))
        );
        for bad in ["", "/", "relative", "/a/../../etc"] {
            assert_eq!(cgroup_dir(mount, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_scope_is_delegated_bounded_and_ordered_before_the_service() {
        let args = register_args(Path::new("/usr/local/bin/coracled"), "coracled.service");
        for want in [
            "--scope",
            "--unit=coracle-pods.scope",
            "--property=Delegate=yes",
            "--property=TimeoutStopSec=15s",
            "--property=Before=coracled.service",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing from {args:?}");
        }
        let dashes = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dashes + 1..], ["/usr/local/bin/coracled", super::super::scope_keeper::KEEPER_ARG]);
    }
}
