//! Why the daemon did not start (or did not stop cleanly): one type for every failure `main`
//! reports before exiting 1.

use std::fmt;

/// A start-up or shut-down failure: what the daemon was doing, and the lower error that
/// stopped it (kept as the `source`, so its kind is not lost at this boundary).
#[derive(Debug)]
pub enum StartupError {
    /// A setting, flag or the token file is wrong; the message names it.
    Invalid(String),
    /// A lower layer's error reported as it is (settings files, the bridge claim).
    Layer(Box<dyn std::error::Error>),
    /// A step failed: `step` says which (e.g. `opening the store in /var/lib/coracle`).
    Step { step: String, source: Box<dyn std::error::Error> },
}

impl StartupError {
    /// Wraps a lower error as the failure of `step`.
    pub fn step<E: std::error::Error + 'static>(step: impl Into<String>) -> impl FnOnce(E) -> StartupError {
        let step = step.into();
        move |source| StartupError::Step { step, source: Box::new(source) }
    }

    /// A lower error shown without a prefix.
    pub fn layer<E: std::error::Error + 'static>(source: E) -> StartupError {
        StartupError::Layer(Box::new(source))
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Invalid(message) => f.write_str(message),
            StartupError::Layer(e) => e.fmt(f),
            StartupError::Step { step, source } => write!(f, "{step}: {source}"),
        }
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartupError::Invalid(_) => None,
            StartupError::Layer(e) => e.source(),
            StartupError::Step { source, .. } => Some(source.as_ref()),
        }
    }
}
