//! Coracle on a board: the systemd unit passes `systemd-analyze verify`, the daemon speaks
//! sd_notify (READY=1, STATUS=, WATCHDOG=1, STOPPING=1), gives its socket to the `coracle`
//! group, install.sh installs into an image and removes itself again, the tarballs ship
//! completions and the man page, and the cross-built binaries run under qemu-user.

use coracle_config::settings::DaemonSettings;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The directory holding the workspace's built binaries (target/debug beside this test's deps/).
fn built_bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("test binary lives in target/PROFILE/deps");
    for bin in ["coracled", "coracle"] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: build the binaries first (`cargo build --workspace --bins`, as tests/run does)",
            dir.join(bin).display()
        );
    }
    dir.to_path_buf()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn install_sh(root: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(repo_root().join("cross/install.sh")).arg("--root").arg(root).args(extra);
    run(&mut cmd)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// Every path under `root`, relative, sorted: the tree an install leaves.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

const INSTALLED_FILES: [&str; 7] = [
    "usr/local/bin/coracled",
    "usr/local/bin/coracle",
    "usr/local/lib/systemd/system/coracled.service",
    "usr/local/lib/sysusers.d/coracle.conf",
    "usr/local/lib/tmpfiles.d/coracle.conf",
    "etc/coracle/config.yaml",
    "etc/coracle/config.yaml.default",
];
const ENABLE_LINK: &str = "etc/systemd/system/multi-user.target.wants/coracled.service";

#[test]
fn unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        println!("SKIP unit_passes_systemd_analyze_verify: systemd-analyze not installed (Debian package `systemd`)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // verify resolves the unit's dependencies (sysinit.target, ...) and ExecStart inside --root.
    let systemd_dir = root.path().join("usr/lib/systemd");
    fs::create_dir_all(&systemd_dir).unwrap();
    run(Command::new("cp").arg("-a").arg("/usr/lib/systemd/system").arg(&systemd_dir));
    install_sh(root.path(), &["--bin-dir", built_bin_dir().to_str().unwrap()]);
    let unit = root.path().join("usr/local/lib/systemd/system/coracled.service");
    let out =
        run(Command::new("systemd-analyze").arg("verify").arg(format!("--root={}", root.path().display())).arg(&unit));
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.trim().is_empty(), "systemd-analyze verify warned:\n{warnings}");

    let unit_text = fs::read_to_string(&unit).unwrap();
    for setting in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "Restart=always",
        "Delegate=yes",
        "KillMode=process",
        "ExecStart=/usr/local/bin/coracled",
        "RuntimeDirectoryPreserve=yes",
    ] {
        assert!(unit_text.lines().any(|l| l.trim() == setting), "unit lacks {setting}");
    }
}

#[test]
fn tmpfiles_and_sysusers_entries_apply() {
    // The entries give directories to root and the coracle group: only root may chown.
    if coracle_e2e::skip_unless_root("systemd-tmpfiles chowns the directories it creates") {
        return;
    }
    if !have("systemd-tmpfiles") || !have("systemd-sysusers") {
        println!("SKIP tmpfiles_and_sysusers_entries_apply: systemd-tmpfiles/systemd-sysusers not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let units = repo_root().join("systemd");
    run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(units.join("coracle.tmpfiles")));
    for (dir, want) in [("run/coracle", 0o755), ("var/lib/coracle", 0o700), ("etc/coracle/manifests", 0o755)] {
        assert_eq!(mode(&root.path().join(dir)), want, "{dir}");
    }
    run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(units.join("coracle.sysusers")));
    let group = fs::read_to_string(root.path().join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l.starts_with("coracle:")), "no coracle group in {group}");
}

#[test]
fn install_sh_into_an_image_is_idempotent_and_uninstalls() {
    let bins = built_bin_dir();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let bin_dir = bins.to_str().unwrap();

    install_sh(r, &["--bin-dir", bin_dir]);
    for file in INSTALLED_FILES {
        assert!(r.join(file).is_file(), "{file} not installed");
    }
    assert_eq!(fs::read(r.join("usr/local/bin/coracled")).unwrap(), fs::read(bins.join("coracled")).unwrap());
    assert_eq!(mode(&r.join("usr/local/bin/coracle")), 0o755);
    assert_eq!(mode(&r.join("usr/local/lib/systemd/system/coracled.service")), 0o644);
    assert_eq!(mode(&r.join("var/lib/coracle")), 0o700);
    assert!(r.join("etc/coracle/manifests").is_dir());
    assert_eq!(
        fs::read_link(r.join(ENABLE_LINK)).unwrap(),
        Path::new("/usr/local/lib/systemd/system/coracled.service"),
        "enabled by a symlink valid inside the image"
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/coracle/config.yaml")).unwrap(),
        fs::read_to_string(repo_root().join("cross/config.yaml")).unwrap()
    );
    if have("systemd-sysusers") {
        let group = fs::read_to_string(r.join("etc/group")).unwrap();
        assert!(group.lines().any(|l| l.starts_with("coracle:")), "socket group missing: {group}");
    }

    // Again, with an admin's config and some data: same tree, config kept.
    let first = tree(r);
    fs::write(r.join("etc/coracle/config.yaml"), "node_name: board-7\n").unwrap();
    fs::create_dir_all(r.join("var/lib/coracle/objects")).unwrap();
    fs::write(r.join("var/lib/coracle/objects/rv"), "42").unwrap();
    install_sh(r, &["--bin-dir", bin_dir]);
    let mut second = tree(r);
    second.retain(|p| !p.starts_with("var/lib/coracle/"));
    assert_eq!(first, second, "a second install changes nothing");
    assert_eq!(fs::read_to_string(r.join("etc/coracle/config.yaml")).unwrap(), "node_name: board-7\n");

    // Uninstall keeps config and data, twice over.
    for _ in 0..2 {
        install_sh(r, &["--uninstall"]);
        for gone in INSTALLED_FILES.iter().filter(|f| **f != "etc/coracle/config.yaml").chain([&ENABLE_LINK]) {
            assert!(!r.join(gone).exists() && !r.join(gone).is_symlink(), "{gone} left behind");
        }
        assert_eq!(fs::read_to_string(r.join("etc/coracle/config.yaml")).unwrap(), "node_name: board-7\n");
        assert_eq!(fs::read_to_string(r.join("var/lib/coracle/objects/rv")).unwrap(), "42");
    }

    install_sh(r, &["--uninstall", "--purge"]);
    assert!(!r.join("etc/coracle").exists(), "--purge removes the config");
    assert!(!r.join("var/lib/coracle").exists(), "--purge removes the data");
    install_sh(r, &["--uninstall", "--purge"]);
}

#[test]
fn uninstall_removes_an_untouched_default_config() {
    let root = tempfile::tempdir().unwrap();
    install_sh(root.path(), &["--bin-dir", built_bin_dir().to_str().unwrap()]);
    install_sh(root.path(), &["--uninstall"]);
    assert!(!root.path().join("etc/coracle").exists(), "an unmodified, empty /etc/coracle goes");
}

/// Without systemd, `./setup` starts the installed coracled in the background; `--uninstall`
/// stops it (the daemon holds a lock in its run dir naming its pid) before removing its
/// binary, instead of leaving it running.
#[test]
fn uninstall_stops_a_daemon_running_outside_systemd() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    install_sh(r, &["--bin-dir", built_bin_dir().to_str().unwrap()]);
    let (run_dir, data_dir) = (r.join("run/coracle"), r.join("var/lib/coracle"));
    let env = [("CORACLE_RUN_DIR", run_dir.as_os_str()), ("CORACLE_DATA_DIR", data_dir.as_os_str())];
    let mut daemon = TestDaemon::spawn(&r.join("usr/local/bin/coracled"), &[], &env);
    daemon.wait_api("/healthz");
    let pid = daemon.child.id();
    let out = install_sh(r, &["--uninstall"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("stopping coracled (pid {pid})")), "{said}");
    // install.sh returns once the daemon let its lock go, i.e. as it exits.
    let give_up = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < give_up, "coracled still runs after --uninstall; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "stopped by SIGTERM, cleanly: {status}; log:\n{}", daemon.log());
    assert!(daemon.log().contains("SIGTERM received"), "{}", daemon.log());
    assert!(!r.join("usr/local/bin/coracled").exists());
    // Nothing left to stop: a second uninstall says nothing of a daemon.
    let again = install_sh(r, &["--uninstall"]);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("stopping"));
}

#[test]
fn install_sh_refuses_purge_without_uninstall() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(repo_root().join("cross/install.sh"))
        .args(["--purge", "--root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--purge"));
}

#[test]
fn shipped_config_parses_and_shows_the_real_defaults() {
    let text = fs::read_to_string(repo_root().join("cross/config.yaml")).unwrap();
    let defaults = DaemonSettings::default();
    assert_eq!(DaemonSettings::from_yaml(&text).unwrap(), defaults, "the file as shipped means the defaults");

    // Uncomment every key line (`#key:` and `#  nested:`), leaving the prose (`# text`).
    let uncommented: Vec<&str> = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if !rest.starts_with(' ') || rest.starts_with("  ") => rest,
            _ => line,
        })
        .collect();
    let mut shown = DaemonSettings::from_yaml(&uncommented.join("\n"))
        .unwrap_or_else(|e| panic!("cross/config.yaml with every key uncommented: {}", e.message));
    // These are examples: their defaults are "off", "no cap" and the hostname.
    assert_eq!(shown.listen.take().as_deref(), Some("0.0.0.0:6443"));
    assert!(shown.token_file.take().is_some());
    assert_eq!(shown.images.max_image_bytes.take(), Some(4 << 30));
    assert_eq!(shown.images.max_layer_bytes.take(), Some(2 << 30));
    shown.node_name.clone_from(&defaults.node_name);
    assert_eq!(shown, defaults, "every value shown in cross/config.yaml is the real default");
}

/// A coracled started on a temp dir with its own cgroup subpath, bridge and address blocks
/// (the harness's slot: the shipped config names the installed daemon's), killed (and its
/// cgroups removed) when dropped so no daemon outlives its test.
struct TestDaemon {
    child: Child,
    dir: tempfile::TempDir,
    cgroup_subpath: String,
    slot: coracle_e2e::Slot,
}

impl TestDaemon {
    /// Runs `program` (coracled, or qemu with coracled as its first argument) with `env`.
    fn spawn(program: &Path, args: &[&Path], env: &[(&str, &std::ffi::OsStr)]) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let cgroup_subpath =
            format!("coracle-device-test-{}-{}", std::process::id(), dir.path().display()).replace(['/', '.'], "-");
        let log = fs::File::create(dir.path().join("coracled.log")).unwrap();
        // The config shipped in the tarballs, as installed.
        let config = repo_root().join("cross/config.yaml");
        let slot = coracle_e2e::Slot::claim();
        let isolated = slot.overrides(&fs::read_to_string(&config).unwrap(), &dir.path().join("run"), &cgroup_subpath);
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(std::env::vars_os().filter(|(name, _)| coracle_e2e::inherited(name)))
            .env("RUST_LOG", "info")
            .env("CORACLE_DATA_DIR", dir.path().join("data"))
            .env("CORACLE_SOCKET", dir.path().join("coracle.sock"))
            .env("CORACLE_MANIFESTS", dir.path().join("manifests"))
            .env("CORACLE_CONFIG", config)
            .envs(isolated)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            // A file, not a pipe: an unread pipe that fills up would wedge the daemon.
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        TestDaemon { child, dir, cgroup_subpath, slot }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("coracle.sock")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("coracled.log")).unwrap_or_default()
    }

    /// Fails with the log if the daemon has exited.
    fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("coracled exited ({status}) before {what}; log:\n{}", self.log());
        }
    }

    /// Waits until the API answers `GET path` with 200 and returns the answer.
    fn wait_api(&mut self, path: &str) -> String {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            self.assert_running("its API answered");
            if let Ok(reply) = http_get(&self.socket(), path) {
                if reply.starts_with("HTTP/1.1 200") {
                    return reply;
                }
            }
            assert!(Instant::now() < give_up, "coracled's API never answered GET {path}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's cgroups, beneath this process's own in every hierarchy.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        let mut dirs = Vec::new();
        for line in own.lines() {
            let Some(path) = line.splitn(3, ':').nth(2) else { continue };
            for mount in mounts.iter().chain([&PathBuf::from("/sys/fs/cgroup")]) {
                let dir = mount.join(path.trim_start_matches('/')).join(&self.cgroup_subpath);
                if dir.is_dir() && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        dirs
    }
}

/// Removes an empty cgroup tree, children first (cgroupfs refuses recursive removal).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for dir in self.cgroup_dirs() {
            remove_cgroup_tree(&dir);
        }
        if is_root() {
            self.slot.clean_up();
            // Its claim on the cgroup subpath, which was its alone (daemon/src/board_claims.rs).
            let _ = fs::remove_file(format!("/run/lock/coracle/cgroup-{}.lock", self.cgroup_subpath));
        }
        if std::thread::panicking() {
            eprintln!("coracled log:\n{}", self.log());
        }
    }
}

/// `GET path` over a unix socket; the whole answer, head and body.
fn http_get(socket: &Path, path: &str) -> std::io::Result<String> {
    let mut api = UnixStream::connect(socket)?;
    api.set_read_timeout(Some(Duration::from_secs(30)))?;
    api.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut reply = String::new();
    api.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Collects sd_notify datagrams until `done` holds or the daemon exits.
struct NotifyListener {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl NotifyListener {
    fn wait_for(&mut self, daemon: &mut TestDaemon, what: &str, done: impl Fn(&[String]) -> bool) {
        // A generous bound against a hang, not a timing assertion.
        let give_up = Instant::now() + Duration::from_secs(60);
        self.socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 4096];
        while !done(&self.seen) {
            daemon.assert_running(what);
            assert!(Instant::now() < give_up, "no {what} from coracled; notifications so far: {:?}", self.seen);
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                self.seen.extend(text.lines().map(str::to_string));
            }
        }
    }
}

#[test]
fn daemon_notifies_ready_status_watchdog_and_stopping() {
    if !is_root() {
        println!("SKIP daemon_notifies_ready_status_watchdog_and_stopping: coracled needs root");
        return;
    }
    let notify_dir = tempfile::tempdir().unwrap();
    let notify_path = notify_dir.path().join("notify.sock");
    let mut listener = NotifyListener { socket: UnixDatagram::bind(&notify_path).unwrap(), seen: Vec::new() };
    let mut daemon = TestDaemon::spawn(
        &built_bin_dir().join("coracled"),
        &[],
        &[
            ("NOTIFY_SOCKET", notify_path.as_os_str()),
            // Two seconds: pings every second, so WATCHDOG=1 arrives soon after READY=1.
            ("WATCHDOG_USEC", "2000000".as_ref()),
        ],
    );

    listener.wait_for(&mut daemon, "READY=1", |seen| seen.iter().any(|l| l == "READY=1"));
    // READY=1 promises the API serves.
    let reply = http_get(&daemon.socket(), "/version").expect("the API answers after READY=1");
    assert!(reply.starts_with("HTTP/1.1 200"), "GET /version after READY=1: {reply}");

    // The first ping is free (a new liveness source counts as alive); the next ones come
    // only while the daemon's loops, its API among them, keep making progress.
    listener.wait_for(&mut daemon, "STATUS= and three WATCHDOG=1", |seen| {
        seen.iter().any(|l| l.starts_with("STATUS=")) && seen.iter().filter(|l| *l == "WATCHDOG=1").count() >= 3
    });

    // SAFETY: kill on our own child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(daemon.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    listener.wait_for(&mut daemon, "STOPPING=1", |seen| seen.iter().any(|l| l == "STOPPING=1"));
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "coracled exits cleanly on SIGTERM: {status}");
}

/// A group this machine has, other than root's: (name, gid).
fn some_system_group() -> (String, u32) {
    let groups = fs::read_to_string("/etc/group").expect("/etc/group");
    groups
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .find(|(_, gid)| *gid != 0)
        .expect("a group other than root in /etc/group")
}

#[test]
fn the_socket_belongs_to_the_socket_group_when_it_exists() {
    if coracle_e2e::skip_unless_root("coracled runs as root") {
        return;
    }
    let (group, gid) = some_system_group();
    let absent = format!("coracle-absent-{}", std::process::id());
    for (name, want_gid) in [(group.as_str(), gid), (absent.as_str(), 0)] {
        let mut daemon = TestDaemon::spawn(
            &built_bin_dir().join("coracled"),
            &[],
            &[("CORACLE_SOCKET_GROUP", name.as_ref()), ("CORACLE_NETWORK", "none".as_ref())],
        );
        daemon.wait_api("/healthz");
        let meta = fs::metadata(daemon.socket()).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (0, want_gid, 0o660), "socket_group {name}");
        let log = daemon.log();
        if want_gid == 0 {
            assert!(log.contains(&format!("is root-only (0660): no group {name} in /etc/group")), "{log}");
        } else {
            assert!(log.contains(&format!("is root:{name} (gid {gid}) 0660")), "{log}");
        }
    }
}

/// Checks an unpacked tarball ships coracle's completions and man page under share/.
fn assert_ships_docs(pkg: &Path) {
    for (file, marker) in [
        ("share/bash-completion/completions/coracle", "complete -F"),
        ("share/zsh/site-functions/_coracle", "#compdef coracle"),
        ("share/fish/vendor_completions.d/coracle.fish", "complete -c coracle"),
        ("share/man/man1/coracle.1", ".TH coracle 1"),
    ] {
        let path = pkg.join(file);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains(marker), "{file} lacks {marker:?}");
        assert_eq!(mode(&path), 0o644, "{file}");
    }
    let man = fs::read_to_string(pkg.join("share/man/man1/coracle.1")).unwrap();
    for verb in ["CORACLE APPLY", "CORACLE GET", "CORACLE ROLLOUT UNDO"] {
        assert!(man.contains(verb), "the man page has no section {verb}");
    }
}

#[test]
fn x86_64_tarball_ships_completions_and_man_page() {
    if std::env::var("CORACLE_CROSS_TESTS").as_deref() != Ok("1") {
        println!("SKIP x86_64_tarball_ships_completions_and_man_page: set CORACLE_CROSS_TESTS=1 (release build)");
        return;
    }
    let root = repo_root();
    run(Command::new(root.join("cross/build")).arg("x86_64").current_dir(&root));
    let version = workspace_version();
    let name = format!("coracle-{version}-x86_64");
    let tarball = root.join(format!("dist/{name}.tar.gz"));
    let unpacked = tempfile::tempdir().unwrap();
    run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(unpacked.path()));
    let pkg = unpacked.path().join(&name);
    let mut files: Vec<String> = tree(&pkg).into_iter().filter(|p| pkg.join(p).is_file()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "bin/coracle",
            "bin/coracled",
            "config.yaml",
            "install.sh",
            "share/bash-completion/completions/coracle",
            "share/fish/vendor_completions.d/coracle.fish",
            "share/man/man1/coracle.1",
            "share/zsh/site-functions/_coracle",
            "systemd/coracle.sysusers",
            "systemd/coracle.tmpfiles",
            "systemd/coracled.service",
        ]
    );
    assert_ships_docs(&pkg);
    // The host can run this target: the shipped completion matches the shipped binary.
    let out = run(Command::new(pkg.join("bin/coracle")).args(["version", "--client"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&version));
}

/// A board target: name for cross/build, rust triple, and the qemu-user binary to run it.
struct Board {
    name: &'static str,
    triple: &'static str,
    qemu: &'static str,
}

const BOARDS: [Board; 3] = [
    Board { name: "aarch64", triple: "aarch64-unknown-linux-musl", qemu: "qemu-aarch64-static" },
    Board { name: "armv7", triple: "armv7-unknown-linux-gnueabihf", qemu: "qemu-arm-static" },
    Board { name: "riscv64", triple: "riscv64gc-unknown-linux-gnu", qemu: "qemu-riscv64-static" },
];

const MANIFEST: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: [httpd, -f, -p, '8080']
";

fn workspace_version() -> String {
    let cargo = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let package = cargo.split("[workspace.package]").nth(1).expect("[workspace.package] in Cargo.toml");
    let line = package.lines().find(|l| l.trim_start().starts_with("version")).expect("workspace version");
    line.split('"').nth(1).expect("quoted version").to_string()
}

/// Lets the kernel run the board's binaries through qemu-user (binfmt_misc), as
/// Debian's qemu-user-static package sets up when binfmt_misc is mounted.
fn enable_binfmt(board: &Board) {
    let entry = format!("/proc/sys/fs/binfmt_misc/{}", board.qemu.trim_end_matches("-static"));
    if fs::read_to_string(&entry).map(|t| t.starts_with("enabled")).unwrap_or(false) {
        return;
    }
    if !Path::new("/proc/sys/fs/binfmt_misc/register").exists() {
        run(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"]));
    }
    run(Command::new("update-binfmts").args(["--enable", board.qemu.trim_end_matches("-static")]));
}

/// Cross-compiles the store's and the runtime's library tests for every board in one cargo run
/// (each ends in a long single-threaded LTO step, which the other core spends on the next
/// board) and returns each board's two test executables, in `BOARDS` order.
fn cross_test_binaries() -> Vec<(PathBuf, PathBuf)> {
    let root = repo_root();
    let mut cmd = Command::new("nice");
    cmd.args(["cargo", "test", "--release", "--lib", "--no-run", "--message-format=json"]);
    cmd.args(["-p", "coracle-store", "-p", "coracle-runtime"]);
    for board in &BOARDS {
        cmd.args(["--target", board.triple]);
    }
    let out = run(cmd.env("CARGO_TARGET_DIR", root.join("target/cross")).current_dir(&root));
    let artifacts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .collect();
    // target/cross/TRIPLE/release/deps/NAME-HASH
    let executable = |name: &str, board: &Board| {
        let found: Vec<PathBuf> = artifacts
            .iter()
            .filter(|m| m["target"]["name"] == name)
            .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
            .collect();
        found
            .iter()
            .find(|exe| exe.components().any(|c| c.as_os_str() == board.triple))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} test executable for {} in {found:?}", board.triple))
    };
    BOARDS.iter().map(|board| (executable("coracle_store", board), executable("coracle_runtime", board))).collect()
}

#[test]
fn cross_binaries_run_under_qemu() {
    if std::env::var("CORACLE_CROSS_TESTS").as_deref() != Ok("1") {
        println!("SKIP cross_binaries_run_under_qemu: set CORACLE_CROSS_TESTS=1 (builds three targets, slow)");
        return;
    }
    if !is_root() {
        println!("SKIP cross_binaries_run_under_qemu: the board's coracled needs root");
        return;
    }
    let root = repo_root();
    let names: Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
    run(Command::new(root.join("cross/build")).args(&names).current_dir(&root));
    let version = workspace_version();
    let test_binaries = cross_test_binaries();

    for (board, (tests, runtime_tests)) in BOARDS.iter().zip(&test_binaries) {
        assert!(have(board.qemu), "{} missing: apt-get install qemu-user-static", board.qemu);
        let unpacked = tempfile::tempdir().unwrap();
        let tarball = root.join(format!("dist/coracle-{version}-{}.tar.gz", board.name));
        run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(unpacked.path()));
        let pkg = unpacked.path().join(format!("coracle-{version}-{}", board.name));
        assert_ships_docs(&pkg);
        let ctl = pkg.join("bin/coracle");

        let out = run(Command::new(board.qemu).arg(&ctl).args(["version", "--client"]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&version), "{}: `coracle version --client` printed {text}", board.name);

        // The board's daemon, under qemu too, serves the board's ctl.
        let mut daemon = TestDaemon::spawn(
            Path::new(board.qemu),
            &[&pkg.join("bin/coracled")],
            &[("CORACLE_NETWORK", "none".as_ref())],
        );
        daemon.wait_api("/healthz");
        let ctl_env = [("CORACLE_SOCKET", daemon.socket())];
        let manifest = unpacked.path().join("web.yaml");
        fs::write(&manifest, MANIFEST).unwrap();
        let out =
            run(Command::new(board.qemu).arg(&ctl).args(["apply", "-f"]).arg(&manifest).envs(ctl_env.iter().cloned()));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("deployment.apps/web created"), "{}: apply printed {text}", board.name);
        let out = run(Command::new(board.qemu)
            .arg(&ctl)
            .args(["get", "deployment", "web", "-o", "json"])
            .envs(ctl_env.iter().cloned()));
        let stored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(stored["spec"]["replicas"], 2, "{}: the stored deployment", board.name);
        fs::write(&manifest, MANIFEST.replace("replicas: 2", "replicas: two")).unwrap();
        let out = Command::new(board.qemu)
            .arg(&ctl)
            .args(["apply", "--dry-run=client", "-f"])
            .arg(&manifest)
            .envs(ctl_env.iter().cloned())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}: a bad manifest was accepted", board.name);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("spec.replicas"),
            "{}: error names the field",
            board.name
        );
        drop(daemon);

        // The tarball's own install.sh installs the board's binaries into an image.
        let image = tempfile::tempdir().unwrap();
        run(Command::new("sh").arg(pkg.join("install.sh")).arg("--root").arg(image.path()));
        assert_eq!(
            fs::read(image.path().join("usr/local/bin/coracled")).unwrap(),
            fs::read(pkg.join("bin/coracled")).unwrap()
        );

        // The store's tests, durability included, on the board's architecture. The durability
        // test re-executes itself, so the kernel must hand foreign binaries to qemu (binfmt).
        enable_binfmt(board);
        let data = tempfile::tempdir().unwrap();
        let out = run(Command::new(tests).env("TMPDIR", data.path()));
        let text = String::from_utf8_lossy(&out.stdout);
        let passed = text.lines().filter(|l| l.starts_with("test ") && l.ends_with(" ok")).count();
        assert!(passed > 0, "{}: no store test ran:\n{text}", board.name);

        // The seccomp filters the board's build compiles (its own architecture's and its compat
        // one's, retargeted for 32-bit ARM) judged on synthetic calls by the runtime's BPF
        // interpreter. Not installed: qemu-user refuses a guest's seccomp(2) and
        // PR_SET_SECCOMP (the filter would judge qemu's host calls, not the guest's), so the
        // test that installs a filter for real runs on the host only.
        let out = run(Command::new(runtime_tests).args(["seccomp::", "--skip", "a_process_under_runtime_default"]));
        let text = String::from_utf8_lossy(&out.stdout);
        for test in
            ["the_filters_this_build_installs_decide_as_dockers_profile", "the_tables_are_sorted_and_agree_with_libc"]
        {
            assert!(
                text.lines().any(|l| l.starts_with("test seccomp::") && l.contains(test) && l.ends_with(" ok")),
                "{}: seccomp test {test} did not pass:\n{text}",
                board.name
            );
        }
    }
}
