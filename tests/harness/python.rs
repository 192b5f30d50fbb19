//! The Python tools some tests drive (schemathesis, openapi-spec-validator), in a virtual
//! environment made once per machine at pinned versions: `/var/cache/coracle-tests/venv` as
//! root, `target/coracle-tests-venv` otherwise, or `$CORACLE_TEST_VENV`. `tests/run`
//! installs python3 and python3-venv; PyPI must be reachable the first time.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What the environment holds; a change makes it anew.
const REQUIREMENTS: &[&str] = &["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"];

/// A virtual environment with [`REQUIREMENTS`] installed.
#[derive(Debug)]
pub struct PythonTools {
    dir: PathBuf,
}

impl PythonTools {
    /// A program of the environment: `python`, `st`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }
}

fn venv_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORACLE_TEST_VENV") {
        return PathBuf::from(dir);
    }
    if crate::is_root() {
        PathBuf::from("/var/cache/coracle-tests/venv")
    } else {
        crate::workspace_root().join("target/coracle-tests-venv")
    }
}

fn marker(dir: &Path) -> PathBuf {
    dir.join("coracle-requirements.txt")
}

/// Made with [`REQUIREMENTS`], and its interpreter still there to run them.
fn ready(dir: &Path) -> bool {
    let wanted = REQUIREMENTS.join("\n");
    std::fs::read_to_string(marker(dir)).is_ok_and(|m| m == wanted)
        && dir.join("bin/st").exists()
        && Command::new(dir.join("bin/python"))
            .args(["-c", "import schemathesis, openapi_spec_validator"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Debian's interpreter (the one `tests/run` installs python3-venv for), else whichever
/// `python3` is on the PATH.
fn python3() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("python3")
    }
}

/// Holds an exclusive lock on `path` (test processes may make the environment at once)
/// for as long as the file stays open.
struct Lock(#[allow(dead_code)] File);

impl Lock {
    fn take(path: &Path) -> Lock {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        // SAFETY: flock(2) on a descriptor we own; it stays open while the lock is held.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "locking {}: {}", path.display(), std::io::Error::last_os_error());
        Lock(file)
    }
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn make(dir: &Path) -> Result<(), String> {
    let parent = dir.parent().expect("the environment has a parent folder");
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let _lock = Lock::take(&parent.join(".coracle-tests-venv.lock"));
    if ready(dir) {
        return Ok(());
    }
    eprintln!("making the Python test environment in {} ({})", dir.display(), REQUIREMENTS.join(", "));
    run("python3 -m venv", Command::new(python3()).args(["-m", "venv", "--clear"]).arg(dir))?;
    let pip = dir.join("bin/pip");
    run(
        "pip install",
        Command::new(&pip).args(["install", "--quiet", "--disable-pip-version-check"]).args(REQUIREMENTS),
    )?;
    std::fs::write(marker(dir), REQUIREMENTS.join("\n")).map_err(|e| format!("writing the marker: {e}"))
}

/// The environment, made if needed. None (after saying why) only when it cannot be made
/// and the test does not run as root: as root, `tests/run` installed what it needs, so a
/// failure is the test's.
pub fn tools() -> Option<&'static PythonTools> {
    static TOOLS: OnceLock<Result<PythonTools, String>> = OnceLock::new();
    let made = TOOLS.get_or_init(|| {
        let dir = venv_dir();
        make(&dir).map(|()| PythonTools { dir })
    });
    match made {
        Ok(tools) => Some(tools),
        Err(why) if !crate::is_root() => {
            eprintln!("skipping: no Python test environment (apt-get install python3-venv): {why}");
            None
        }
        Err(why) => panic!("the Python test environment: {why}"),
    }
}
