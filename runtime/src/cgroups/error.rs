//! The one error type of the cgroups module; every variant names the path or value at fault.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a cgroup operation failed.
#[derive(Debug)]
pub enum CgroupError {
    /// A file or directory operation on the cgroup filesystem failed.
    Io { op: &'static str, path: PathBuf, source: io::Error },
    /// Writing a value into a cgroup file failed (EBUSY, EINVAL, ...).
    Write { path: PathBuf, value: String, source: io::Error },
    /// A cgroup file held something we could not parse.
    Parse { path: PathBuf, value: String, expected: &'static str },
    /// /proc/self/mountinfo and /proc/self/cgroup describe no usable cgroup hierarchy.
    Layout(String),
    /// A relative cgroup path or sub-path is not a plain relative path of safe names.
    InvalidPath { path: String, reason: &'static str },
    /// A limit value is out of range.
    InvalidLimit { field: &'static str, value: i64, reason: &'static str },
    /// A limit was requested but the controller that enforces it is not available.
    ControllerMissing { controller: &'static str, path: PathBuf },
    /// The pods' systemd scope could not be found or registered.
    Scope(String),
    /// Processes were still alive in the cgroup when the kill deadline passed.
    StillPopulated { path: PathBuf, pids: Vec<i32> },
    /// A process could not be moved into a cgroup (its membership file named).
    Join { path: PathBuf, source: io::Error },
}

impl CgroupError {
    /// Wraps an I/O error with the operation and path it came from.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CgroupError::Io { op, path: path.into(), source }
    }
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupError::Io { op, path, source } => write!(f, "cgroup {op} {}: {source}", path.display()),
            CgroupError::Write { path, value, source } => {
                write!(f, "cgroup write {value:?} to {}: {source}", path.display())
            }
            CgroupError::Parse { path, value, expected } => {
                write!(f, "cgroup file {}: expected {expected}, found {value:?}", path.display())
            }
            CgroupError::Layout(why) => write!(f, "cgroup layout: {why}"),
            CgroupError::Scope(why) => f.write_str(why),
            CgroupError::InvalidPath { path, reason } => write!(f, "cgroup path {path:?}: {reason}"),
            CgroupError::InvalidLimit { field, value, reason } => write!(f, "cgroup limit {field}={value}: {reason}"),
            CgroupError::ControllerMissing { controller, path } => {
                write!(f, "cgroup controller {controller} is not available at {}", path.display())
            }
            CgroupError::StillPopulated { path, pids } => {
                write!(f, "cgroup {} still holds processes {pids:?} after killing", path.display())
            }
            CgroupError::Join { path, source } => write!(f, "join cgroup {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for CgroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CgroupError::Io { source, .. } | CgroupError::Write { source, .. } | CgroupError::Join { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}
