//! Why a pod network, the bridge or the service route could not be set up or released: one
//! type for everything `net` hands to the node and to the daemon's start-up.

use super::cni::CniError;
use nix::errno::Errno;
use std::fmt;
use std::path::PathBuf;

/// A failure of the pod network or the host's routes, by kind; the message is the one the
/// node puts in its events and the daemon logs.
#[derive(Debug)]
pub enum NetError {
    /// A `network.*` setting is invalid (the message names the field).
    Setting(String),
    /// Another live daemon holds the bridge, or a pod CIDR overlapping ours.
    BridgeTaken(String),
    /// A file or directory of the network's own state (`action` is `creating`, `opening`,
    /// `reading`, `writing` or `removing`).
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// The bridge's lock could not be probed.
    Lock { path: PathBuf, source: Errno },
    /// CNI could not be set up at all (its plugins or its configuration).
    Cni(CniError),
    /// A CNI plugin could not be run, or reported failure (its own message, or several joined by `; `).
    Plugin(String),
    /// The conflist has no plugins to run.
    NoPlugins,
    /// CNI ADD succeeded without giving the pod an address.
    NoAddress { uid: String, result: String },
    /// A host command (`command` as the message names it) could not be run.
    Spawn { command: String, source: std::io::Error },
    /// A host command ran and failed (the message names it and has its stderr).
    CommandFailed(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Setting(m) | NetError::BridgeTaken(m) | NetError::Plugin(m) | NetError::CommandFailed(m) => {
                f.write_str(m)
            }
            NetError::Io { action, path, source } => write!(f, "{action} {}: {source}", path.display()),
            NetError::Lock { path, source } => write!(f, "probing {}: {source}", path.display()),
            NetError::Cni(e) => e.fmt(f),
            NetError::NoPlugins => f.write_str("the conflist has no plugins"),
            NetError::NoAddress { uid, result } => write!(f, "CNI ADD for pod {uid} returned no IP address: {result}"),
            NetError::Spawn { command, source } => write!(f, "running {command}: {source}"),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetError::Io { source, .. } | NetError::Spawn { source, .. } => Some(source),
            NetError::Lock { source, .. } => Some(source),
            NetError::Cni(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CniError> for NetError {
    fn from(e: CniError) -> Self {
        NetError::Cni(e)
    }
}

impl NetError {
    /// An I/O failure on `path` while `action`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NetError {
        let path = path.into();
        move |source| NetError::Io { action, path, source }
    }
}
