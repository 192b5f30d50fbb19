//! The one error type of the image store; every message names what was being done.

use std::fmt;
use std::io;
use std::path::Path;

/// Why an image operation failed, with enough context to act on.
#[derive(Debug)]
pub enum ImageError {
    /// A filesystem or stream operation failed; `context` says on what.
    Io { context: String, source: io::Error },
    /// Content does not hash to the digest it was announced with.
    DigestMismatch { what: String, expected: String, actual: String },
    /// The input is malformed or unsupported (archive layout, JSON, reference, tar entry).
    Invalid { context: String, reason: String },
    /// The input unpacks beyond its budget (a compression bomb, or an image too large for
    /// the settings or the free space).
    TooLarge { context: String, reason: String },
    /// Whoever asked for the load went away before it finished; nothing was stored.
    Abandoned { context: String },
    /// No image answers to this reference.
    NotFound { reference: String },
    /// The image is used by a pod and cannot be removed.
    InUse { reference: String, digest: String },
    /// Neither the pod nor the image says what to run.
    NoCommand,
}

impl ImageError {
    /// An I/O error about `path`.
    pub fn io(what: &str, path: &Path, source: io::Error) -> ImageError {
        ImageError::Io { context: format!("{what} {}", path.display()), source }
    }

    /// A malformed-input error.
    pub fn invalid(context: impl Into<String>, reason: impl Into<String>) -> ImageError {
        ImageError::Invalid { context: context.into(), reason: reason.into() }
    }

    /// Prefixes the error's context with `outer` ("layer sha256:… of busybox: …").
    pub fn within(self, outer: &str) -> ImageError {
        match self {
            ImageError::Io { context, source } => ImageError::Io { context: format!("{outer}: {context}"), source },
            ImageError::DigestMismatch { what, expected, actual } => {
                ImageError::DigestMismatch { what: format!("{outer}: {what}"), expected, actual }
            }
            ImageError::Invalid { context, reason } => {
                ImageError::Invalid { context: format!("{outer}: {context}"), reason }
            }
            ImageError::TooLarge { context, reason } => {
                ImageError::TooLarge { context: format!("{outer}: {context}"), reason }
            }
            ImageError::Abandoned { context } => ImageError::Abandoned { context: format!("{outer}: {context}") },
            other => other,
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Io { context, source } => write!(f, "{context}: {source}"),
            ImageError::DigestMismatch { what, expected, actual } => {
                write!(f, "{what}: digest mismatch: expected {expected}, got {actual}")
            }
            ImageError::Invalid { context, reason } => write!(f, "{context}: {reason}"),
            ImageError::TooLarge { context, reason } => write!(f, "{context}: {reason}"),
            ImageError::Abandoned { context } => {
                write!(f, "{context}: the client went away before the load finished; nothing was stored")
            }
            ImageError::NotFound { reference } => write!(f, "image {reference:?} not found"),
            ImageError::InUse { reference, digest } => {
                write!(f, "image {reference} ({digest}) is in use by a pod")
            }
            ImageError::NoCommand => write!(f, "no command specified"),
        }
    }
}

impl std::error::Error for ImageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
