//! What a shim leaves in RUN_DIR/containers/<id>/, and how anyone proves a container alive from it.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the running-container record.
pub const STATE_FILE: &str = "state.json";
/// File name of the exit record.
pub const EXIT_FILE: &str = "exit";

/// Written by the shim once the container has exec'd: enough to re-adopt it after a daemon restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The shim process supervising the container.
    pub shim_pid: i32,
    /// The shim's start time (field 22 of /proc/PID/stat), to tell it from a reused pid.
    pub shim_start_time: u64,
    /// The container's init, as the host sees it.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat).
    pub pid_start_time: u64,
    /// RFC 3339 time the container exec'd.
    pub started_at: String,
}

/// Written by the shim after the container's init has been reaped (or failed to start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code; 128 + signal when killed by a signal, 128 when the start failed.
    pub exit_code: i32,
    /// The signal that killed the init, if one did.
    pub signal: Option<i32>,
    /// RFC 3339 time the exit was observed.
    pub finished_at: String,
    /// RFC 3339 time the container started; empty when it never did.
    pub started_at: String,
    /// `StartError`/`RunContainerError` when the container never ran.
    pub reason: Option<String>,
    /// What went wrong when the container never ran.
    pub message: Option<String>,
}

/// What the runtime knows about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// The init process is alive (pid and start time match the record).
    Running { pid: i32, started_at: String },
    /// The container has exited, or never started (then `reason`/`message` say why).
    Exited {
        code: i32,
        signal: Option<i32>,
        finished_at: String,
        started_at: String,
        reason: Option<String>,
        message: Option<String>,
    },
    /// Nothing proves the container alive or exited: clean up and restart it.
    Unknown,
}

/// The directory holding one container's records.
pub fn container_dir(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join("containers").join(id)
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), `None` if it is gone.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may hold spaces and parentheses: count fields from the last ')'.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// True when `pid` is alive and is the same process that started at `start_time`.
pub fn is_same_process(pid: i32, start_time: u64) -> bool {
    pid > 0 && process_start_time(pid) == Some(start_time)
}

/// Replaces `path` with `bytes` atomically (temp file, rename). No fsync: these records describe
/// processes, which a power loss ends anyway, and the spawn path should not wait on the disk.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// The record of the process container `id` started, while that very process still runs:
/// None once it has exited, so a recycled pid never receives the `signal` being sent.
pub fn signal_target(
    dir: &Path,
    id: &str,
    signal: nix::sys::signal::Signal,
) -> Result<Option<StateRecord>, super::RuntimeError> {
    let Some(record) = read_record::<StateRecord>(&dir.join(STATE_FILE)) else {
        return Err(super::RuntimeError::Container(format!("signal {signal} to container {id}: it never started")));
    };
    Ok(is_same_process(record.pid, record.pid_start_time).then_some(record))
}

/// Reads a JSON record, `None` when the file does not exist or is unreadable.
pub fn read_record<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Derives a container's state from its records and /proc; this is how a restarted daemon re-adopts.
pub fn read_state(dir: &Path) -> ContainerState {
    let exited = || read_record::<ExitRecord>(&dir.join(EXIT_FILE)).map(ContainerState::from);
    if let Some(state) = exited() {
        return state;
    }
    let Some(record) = read_record::<StateRecord>(&dir.join(STATE_FILE)) else {
        return ContainerState::Unknown;
    };
    // A living shim that has not yet written the exit record is still finishing: keep reporting Running.
    if is_same_process(record.pid, record.pid_start_time) || is_same_process(record.shim_pid, record.shim_start_time) {
        return ContainerState::Running { pid: record.pid, started_at: record.started_at };
    }
    // The shim may have written the record and exited between the two looks.
    exited().unwrap_or(ContainerState::Unknown)
}

impl From<ExitRecord> for ContainerState {
    fn from(r: ExitRecord) -> Self {
        ContainerState::Exited {
            code: r.exit_code,
            signal: r.signal,
            finished_at: r.finished_at,
            started_at: r.started_at,
            reason: r.reason,
            message: r.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_stable() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).expect("own /proc/self/stat");
        assert!(is_same_process(me, t));
        assert!(!is_same_process(me, t + 1));
        assert_eq!(process_start_time(-1), None);
    }

    #[test]
    fn records_round_trip_into_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_state(dir.path()), ContainerState::Unknown);
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        let state = StateRecord {
            shim_pid: me,
            shim_start_time: start,
            pid: me,
            pid_start_time: start,
            started_at: "2024-01-01T00:00:00Z".into(),
        };
        write_atomic(&dir.path().join(STATE_FILE), &serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(read_state(dir.path()), ContainerState::Running { pid: me, started_at: state.started_at.clone() });
        let stale = StateRecord { pid_start_time: start + 7, shim_start_time: start + 7, ..state };
        write_atomic(&dir.path().join(STATE_FILE), &serde_json::to_vec(&stale).unwrap()).unwrap();
        assert_eq!(read_state(dir.path()), ContainerState::Unknown);
        let exit = ExitRecord {
            exit_code: 137,
            signal: Some(9),
            finished_at: "2024-01-01T00:00:05Z".into(),
            started_at: "2024-01-01T00:00:00Z".into(),
            reason: None,
            message: None,
        };
        write_atomic(&dir.path().join(EXIT_FILE), &serde_json::to_vec(&exit).unwrap()).unwrap();
        assert!(matches!(read_state(dir.path()), ContainerState::Exited { code: 137, signal: Some(9), .. }));
    }
}
