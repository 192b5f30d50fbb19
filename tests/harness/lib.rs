//! Test harness: start coracled on a temp dir, talk to it over its unix socket (raw HTTP,
//! curl, or the `coracle` ctl), kill and restart it.

pub mod bombs;
pub mod hostile;
pub mod http;
pub mod images;
pub mod isolation;
pub mod output;
pub mod python;
pub mod rawtar;

pub use http::{HttpResponse, WatchStream};
pub use isolation::Slot;
pub use output::{fails, ok, ok_stderr, stderr, stdout};

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The workspace root (the directory holding the root Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// `target/{debug|release}`, the directory holding the test executable's profile.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/debug/deps/test-hash → target/debug
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

static BUILD: Once = Once::new();

/// Builds the daemon and the ctl once per test process, with the test's own profile.
fn ensure_built() {
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = profile_dir().ends_with("release");
        for package in ["coracled", "coracle"] {
            let mut cmd = Command::new(&cargo);
            cmd.current_dir(workspace_root()).args(["build", "--quiet", "-p", package, "--bins"]);
            if release {
                cmd.arg("--release");
            }
            let out = match cmd.output() {
                Ok(out) => out,
                // A user without a toolchain of their own runs test binaries built earlier
                // (e.g. by `tests/run` as root): use the binaries that are there.
                Err(e) if profile_dir().join(package).exists() => {
                    eprintln!("warning: running {cargo} build -p {package}: {e}; using the binary already built");
                    continue;
                }
                Err(e) => panic!("running {cargo} build -p {package}: {e}"),
            };
            if !out.status.success() {
                let msg = format!("cargo build -p {package} failed:\n{}", String::from_utf8_lossy(&out.stderr));
                // The daemon is needed by every test; the ctl only by those that call it.
                assert!(package != "coracled", "{msg}");
                eprintln!("warning: {msg}");
            }
        }
    });
}

/// The path of a built binary of this workspace, e.g. `bin("coracled")`.
pub fn bin(name: &str) -> PathBuf {
    ensure_built();
    profile_dir().join(name)
}

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns true (after printing why) when the test must be skipped for lack of root.
pub fn skip_unless_root(why: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping: needs root ({why})");
    true
}

/// Returns true (after printing why) when the file system holding `path` has fewer than
/// `bytes` free: tests that must reach a size or ratio budget would otherwise meet the
/// free-space budget (or ENOSPC) first, which is the daemon right and the test not testing
/// what it names.
pub fn skip_unless_free_space(path: &Path, bytes: u64) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: an all-zero statvfs is a valid value for statvfs(3) to overwrite.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and s is a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut s) };
    assert_eq!(rc, 0, "statvfs {}: {}", path.display(), std::io::Error::last_os_error());
    // The casts widen on 32-bit targets and are identities on 64-bit ones.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(s.f_bavail).saturating_mul(u64::from(s.f_frsize));
    if free >= bytes {
        return false;
    }
    eprintln!("skipping: {} has {free} bytes free, this test needs {bytes}", path.display());
    true
}

/// A coracled running on its own temp directories, with a bridge, address blocks, run dir
/// and cgroup subpath of its own (see [`isolation`]): it never meets the installed daemon
/// nor another test's.
pub struct Daemon {
    dir: tempfile::TempDir,
    socket: PathBuf,
    data_dir: PathBuf,
    manifests_dir: PathBuf,
    log_path: PathBuf,
    args: Vec<String>,
    /// The `--config` file's text (the daemon never reads /etc/coracle/config.yaml).
    config_yaml: String,
    /// The daemon's own `cgroup_subpath`, so daemons side by side never see each other's pods.
    cgroup_subpath: String,
    /// Its bridge and address blocks, held until the daemon is dropped (kept across restarts).
    slot: Slot,
    child: Option<Child>,
}

/// The config of a daemon started without one: loopback-only pods (no bridge, no iptables
/// rules: cheaper, and what most tests need).
const DEFAULT_CONFIG: &str = "network:\n  mode: none\n";

/// Daemons started by this test process so far, for unique cgroup subpaths.
static DAEMONS: AtomicU32 = AtomicU32::new(0);

/// The directories of cgroup `subpath` beneath this process's own cgroup in every mounted
/// hierarchy (a daemon we start inherits our cgroup and roots its tree there).
fn cgroup_dirs(subpath: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let mount = match controllers {
            "" => ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .into_iter()
                .map(PathBuf::from)
                .find(|m| m.join("cgroup.controllers").exists()),
            c => Some(Path::new("/sys/fs/cgroup").join(c.trim_start_matches("name="))),
        };
        if let Some(mount) = mount {
            dirs.push(mount.join(path.trim_start_matches('/')).join(subpath));
        }
    }
    dirs
}

/// Kills every process in the cgroup trees at `dirs` and removes them, deepest first.
fn remove_cgroup_trees(dirs: &[PathBuf]) {
    fn subtree(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                subtree(&entry.path(), out);
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut all = Vec::new();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        subtree(dir, &mut all);
    }
    for _ in 0..50 {
        let mut left = false;
        for dir in &all {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<libc::pid_t>().ok()) {
                left = true;
                // SAFETY: kill(2) on pids read from our own test daemon's cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !left {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for dir in &all {
        for _ in 0..50 {
            match std::fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
    }
}

impl Daemon {
    /// Starts a daemon with fresh data, socket and manifests directories; waits for /healthz.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// As `start`, with extra command-line arguments.
    pub fn start_with(extra_args: &[&str]) -> Daemon {
        let mut daemon = Daemon::prepare(DEFAULT_CONFIG, extra_args);
        daemon.spawn();
        daemon
    }

    /// As `start`, reading `config_yaml` as its `--config` file (kept in the daemon's temp dir).
    pub fn start_with_config(config_yaml: &str) -> Daemon {
        Daemon::start_with_config_args(config_yaml, &[])
    }

    /// As `start_with_config`, with extra command-line arguments.
    pub fn start_with_config_args(config_yaml: &str, extra_args: &[&str]) -> Daemon {
        let mut daemon = Daemon::prepare(config_yaml, extra_args);
        daemon.spawn();
        daemon
    }

    /// Starts a daemon reading `config_yaml` that should refuse to start: its exit status and
    /// log once it exits within `timeout`, or None when it still runs then (it is killed).
    pub fn start_expecting_exit(config_yaml: &str, timeout: Duration) -> Option<(ExitStatus, String)> {
        let mut daemon = Daemon::prepare(config_yaml, &[]);
        daemon.launch();
        // Still running: dropping the daemon kills it.
        let status = wait_exit(daemon.child.as_mut().expect("a launched daemon"), timeout)?;
        daemon.child = None;
        Some((status, daemon.log()))
    }

    /// A daemon on fresh directories reading `config_yaml` (written to the temp dir and named
    /// by `--config`), not started yet.
    fn prepare(config_yaml: &str, extra_args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("coracle-e2e-").tempdir().expect("creating a temp dir");
        let root = dir.path().to_path_buf();
        let manifests_dir = root.join("manifests");
        std::fs::create_dir_all(&manifests_dir).expect("creating the manifests dir");
        let config = root.join("config.yaml");
        std::fs::write(&config, config_yaml).unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        Daemon {
            socket: root.join("run/coracle.sock"),
            data_dir: root.join("data"),
            manifests_dir,
            log_path: root.join("coracled.log"),
            args,
            config_yaml: config_yaml.to_string(),
            cgroup_subpath: format!("coracle-test-{}-{}", std::process::id(), DAEMONS.fetch_add(1, Ordering::Relaxed)),
            slot: Slot::claim(),
            dir,
            child: None,
        }
    }

    /// The API's unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The followed manifests directory.
    pub fn manifests_dir(&self) -> &Path {
        &self.manifests_dir
    }

    /// The temp directory everything lives under.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the daemon logged so far (every run of it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The daemon's `cgroup_subpath` (unique per daemon; kept across restarts).
    pub fn cgroup_subpath(&self) -> &str {
        &self.cgroup_subpath
    }

    /// The daemon's bridge, pod CIDR and Service CIDR where its config left the defaults.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The daemon's cgroup base directories, one per hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_dirs(&self.cgroup_subpath)
    }

    /// The running daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the daemon and waits until it answers /healthz.
    fn spawn(&mut self) {
        self.launch();
        self.wait_healthy();
    }

    /// Starts the daemon process, without waiting for it.
    fn launch(&mut self) {
        let log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("opening the daemon log");
        writeln!(&log, "----- coracled starting -----").ok();
        let isolated = self.slot.overrides(&self.config_yaml, &self.dir.path().join("run"), &self.cgroup_subpath);
        let child = Command::new(bin("coracled"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--manifests")
            .arg(&self.manifests_dir)
            .args(&self.args)
            // Only what the test and the harness say: no CORACLE_* of the shell running the
            // tests, no systemd unit's identity (its pod scope, its notify socket).
            .env_clear()
            .envs(std::env::vars_os().filter(|(name, _)| inherited(name)))
            .env("RUST_LOG", std::env::var("CORACLE_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .envs(isolated)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin("coracled").display()));
        self.child = Some(child);
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                panic!("coracled exited during start ({status}); log:\n{}", self.log());
            }
            if UnixStream::connect(&self.socket).is_ok() {
                if let Ok(resp) = http::request(&self.socket, "GET", "/healthz", &[], None) {
                    if resp.status == 200 {
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("coracled did not answer /healthz within 60 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the built `coracle --socket S ARGS…`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args).output().expect("running coracle")
    }

    /// Runs `coracle` with `stdin` as its standard input.
    pub fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .ctl_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning coracle");
        child.stdin.take().expect("piped stdin").write_all(stdin.as_bytes()).expect("writing coracle's stdin");
        child.wait_with_output().expect("waiting for coracle")
    }

    /// Runs `coracle ARGS…`, asserts that it succeeded and returns its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        output::succeeded(&format!("coracle {args:?}"), &self.ctl(args))
    }

    /// Loads a busybox image (entrypoint `cmd`) as `reference` through `coracle image load`.
    pub fn load_busybox(&self, reference: &str, cmd: &[&str]) {
        let archive = images::busybox_docker_archive(self.root(), reference, cmd);
        self.ctl_ok(&["image", "load", &archive.display().to_string()]);
    }

    fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("coracle"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    /// One HTTP request over the socket: `(status, body)`.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let resp = self.request(method, path, &[], body.map(str::as_bytes));
        (resp.status, resp.body)
    }

    /// GET `path` over the socket; asserts 200 and returns the body as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.http("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// One HTTP request with extra headers, the whole response returned.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
        http::request(&self.socket, method, path, headers, body.map(<[u8]>::to_vec).as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; daemon log:\n{}", self.log()))
    }

    /// Opens a watch (`path` should carry `watch=1`).
    pub fn watch(&self, path: &str) -> WatchStream {
        WatchStream::open(&self.socket, path).unwrap_or_else(|e| panic!("watch {path}: {e}"))
    }

    /// Runs `curl -sS --unix-socket S ARGS…` (give URLs as `http://localhost/…`).
    pub fn curl(&self, args: &[&str]) -> Output {
        Command::new("curl")
            .arg("-sS")
            .arg("--unix-socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running curl")
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon (if running) and starts it again on the same directories.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// SIGTERM, and wait for the exit (SIGKILL after 30 s); returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid; it has not been reaped, so the pid is ours.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        wait_exit(&mut child, Duration::from_secs(30)).or_else(|| {
            eprintln!("coracled ignored SIGTERM for 30 s; killing it. log:\n{}", self.log());
            let _ = child.kill();
            child.wait().ok()
        })
    }

    /// SIGTERM, and the exit status once the daemon exits within `bound`; None when it was
    /// still running then (it is killed) or was not running.
    pub fn stop_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid; it has not been reaped, so the pid is ours.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let status = wait_exit(&mut child, bound);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Writes a file into the manifests directory atomically (temp file + rename), as a
    /// careful tool would.
    pub fn write_manifest(&self, name: &str, text: &str) {
        let tmp = self.manifests_dir.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).expect("creating a manifest temp file");
        f.write_all(text.as_bytes()).expect("writing a manifest");
        drop(f);
        std::fs::rename(&tmp, self.manifests_dir.join(name)).expect("renaming a manifest into place");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Pods outlive a killed daemon (to be re-adopted); a finished test leaves none, nor
        // their cgroups and sandbox mounts.
        if is_root() {
            remove_cgroup_trees(&self.cgroup_dirs());
            unmount_below(self.dir.path());
            // Before the slot is let go: its bridge and route are still ours.
            self.slot.clean_up();
            // The daemon's claim on its cgroup subpath (daemon/src/board_claims.rs): the
            // subpath was this daemon's alone, and the daemon is gone.
            let _ = std::fs::remove_file(format!("/run/lock/coracle/cgroup-{}.lock", self.cgroup_subpath));
        }
        if std::thread::panicking() {
            eprintln!("coracled log ({}):\n{}", self.log_path.display(), self.log());
        }
    }
}

/// Whether a test daemon inherits the variable `name` from the test process: not the
/// `CORACLE_*` settings of whoever runs the tests, nor the identity of a systemd unit the
/// tests may run in (the daemon would put its pods in that unit's scope and notify it).
pub fn inherited(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    !(name.starts_with("CORACLE_")
        || [
            "INVOCATION_ID",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        ]
        .contains(&name.as_ref()))
}

/// `child`'s exit status once it exits within `timeout`; None if it still runs then.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lazily unmounts every mount point below `dir` (pod sandboxes' pinned namespaces).
fn unmount_below(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> =
        mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| Path::new(p).starts_with(dir)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let Ok(c) = std::ffi::CString::new(point) else { continue };
        // SAFETY: umount2(2) with a valid C string; the mount belongs to our test daemon.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Polls `f` every 50 ms until it returns Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
