//! What a store operation can fail with; the API maps each to its HTTP status in one place.

use coracle_config::object::ResourceInfo;
use std::fmt;

#[derive(Debug)]
pub enum StoreError {
    NotFound {
        resource: &'static ResourceInfo,
        name: String,
    },
    AlreadyExists {
        resource: &'static ResourceInfo,
        name: String,
    },
    /// The update carried a stale resourceVersion, or a precondition failed.
    Conflict {
        resource: &'static ResourceInfo,
        name: String,
        message: String,
    },
    /// A watch asked for a resourceVersion older than the window kept in memory.
    Expired {
        requested: u64,
        oldest: u64,
    },
    /// The request is malformed in a way only the store can see (e.g. neither name nor
    /// generateName).
    Invalid {
        message: String,
    },
    Io {
        context: String,
        error: std::io::Error,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound { resource, name } => {
                write!(f, "{} {name:?} not found", resource.qualified_plural())
            }
            StoreError::AlreadyExists { resource, name } => {
                write!(f, "{} {name:?} already exists", resource.qualified_plural())
            }
            StoreError::Conflict { resource, name, message } => {
                write!(f, "Operation cannot be fulfilled on {} {name:?}: {message}", resource.qualified_plural())
            }
            StoreError::Expired { requested, oldest } => {
                write!(f, "too old resource version: {requested} ({oldest})")
            }
            StoreError::Invalid { message } => f.write_str(message),
            StoreError::Io { context, error } => write!(f, "{context}: {error}"),
        }
    }
}

impl std::error::Error for StoreError {}
