//! Running a command inside a running container ([`ContainerRuntime::exec`]): what is asked,
//! what comes back, and the output collection both backends share. Exec probes, lifecycle
//! hooks and (to come) the API's `exec` verb all go through it.
//!
//! [`ContainerRuntime::exec`]: super::ContainerRuntime::exec

pub(crate) mod capture;
pub(crate) mod enter;

use std::fmt;
use std::time::Duration;

/// What to run in a container, and how.
#[derive(Debug)]
pub struct ExecRequest {
    /// argv; `command[0]` is looked up in the container's PATH when it has no `/`.
    pub command: Vec<String>,
    /// `NAME=value` pairs on top of (and overriding) the container's own environment.
    pub env: Vec<String>,
    /// The command is killed once it has run this long; `None` lets it take as long as it takes.
    pub timeout: Option<Duration>,
    /// Where its standard streams go.
    pub io: ExecIo,
}

impl ExecRequest {
    /// `command` with the container's environment, stdout and stderr captured up to
    /// [`CAPTURE_LIMIT`] bytes each, killed after `timeout`.
    pub fn captured(command: Vec<String>, timeout: Option<Duration>) -> ExecRequest {
        ExecRequest { command, env: Vec::new(), timeout, io: ExecIo::Capture { limit: CAPTURE_LIMIT } }
    }
}

/// How much of each stream [`ExecRequest::captured`] keeps: the kubelet reads at most 10 KiB
/// of a probe's output.
pub const CAPTURE_LIMIT: usize = 10 * 1024;

/// The command's standard streams. Capture is all there is now; the API's `exec` verb adds a
/// variant carrying the client's stdin, stdout and stderr streams and a tty, answered by the
/// same backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecIo {
    /// stdin is empty; stdout and stderr are collected, each up to `limit` bytes (whatever
    /// comes after is read and dropped, so the command never blocks on a full pipe).
    Capture { limit: usize },
}

/// How an exec'd command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code, or 128 + the number of the signal that ended it.
    pub exit_code: i32,
    /// What it wrote to stdout (captured streams only).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (captured streams only).
    pub stderr: Vec<u8>,
}

/// Why a command did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The container is not running: there is nothing to run the command in.
    NotRunning { id: String },
    /// The command never ran: its program is missing or not executable, worded as a
    /// container's `StartError` (`exec: "nope": executable file not found in $PATH`).
    Start(String),
    /// It ran past its timeout and was killed; what it wrote until then.
    TimedOut { timeout: Duration, output: ExecOutput },
    /// The runtime could not set it up (namespaces, cgroups, identity, the OCI runtime).
    Runtime(String),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::NotRunning { id } => write!(f, "container {id} is not running"),
            ExecError::Start(message) | ExecError::Runtime(message) => f.write_str(message),
            ExecError::TimedOut { timeout, .. } => write!(f, "command timed out after {timeout:?}"),
        }
    }
}

impl std::error::Error for ExecError {}

/// The container's environment with `extra` on top: a name set in both takes `extra`'s value.
pub fn merged_env(container: &[String], extra: &[String]) -> Vec<String> {
    let name = |e: &String| e.split_once('=').map_or(e.clone(), |(n, _)| n.to_string());
    let overridden: Vec<String> = extra.iter().map(name).collect();
    container.iter().filter(|e| !overridden.contains(&name(e))).chain(extra).cloned().collect()
}

/// Go's wording of a failed exec of `program`, as a container start words it.
pub(crate) fn start_error(program: &str, error: &std::io::Error) -> ExecError {
    let cause = match error.raw_os_error() {
        Some(libc::ENOENT) if !program.contains('/') => "executable file not found in $PATH".to_string(),
        Some(errno) => super::init::go_errno(nix::errno::Errno::from_raw(errno)),
        None => error.to_string(),
    };
    ExecError::Start(format!("exec: {program:?}: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requests_environment_overrides_the_containers() {
        let container = vec!["PATH=/bin".to_string(), "A=1".to_string(), "B=2".to_string()];
        let merged = merged_env(&container, &["A=9".to_string(), "C=3".to_string()]);
        assert_eq!(merged, ["PATH=/bin", "B=2", "A=9", "C=3"]);
        assert_eq!(merged_env(&container, &[]), container);
    }

    #[test]
    fn failed_execs_read_like_a_container_start() {
        let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            start_error("nope", &enoent),
            ExecError::Start("exec: \"nope\": executable file not found in $PATH".into())
        );
        assert_eq!(
            start_error("/bin/nope", &enoent),
            ExecError::Start("exec: \"/bin/nope\": no such file or directory".into())
        );
        let eacces = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(start_error("/etc/passwd", &eacces).to_string(), "exec: \"/etc/passwd\": permission denied");
    }
}
