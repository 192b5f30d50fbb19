//! Talking to systemd without libsystemd: readiness and status notifications over
//! `$NOTIFY_SOCKET`, and a watchdog that keeps pinging only while the daemon's loops progress
//! (the API's among them, checked from outside by [`ApiProbe`]).
//!
//! Both are no-ops when the daemon is not started by systemd (no `NOTIFY_SOCKET`, no
//! `WATCHDOG_USEC`), so callers never branch on how the daemon was launched.

pub mod api_probe;
pub mod notify;
/// Tests' stand-in for systemd, for this crate's tests and (feature `test-support`) the
/// node's and the controllers'.
#[cfg(any(test, feature = "test-support"))]
pub mod notify_listener;
pub mod watchdog;

pub use api_probe::ApiProbe;
pub use notify::{notify, ready, status, stopping, Notifier};
pub use watchdog::{Heartbeat, Watchdog, WatchdogGuard};

/// Variables systemd sets for the daemon alone: clear them from every child's environment
/// (`Command::env_remove`) so containers and shims never talk to systemd in its name.
pub const DAEMON_ONLY_ENV: [&str; 3] =
    [notify::NOTIFY_SOCKET_ENV, watchdog::WATCHDOG_USEC_ENV, watchdog::WATCHDOG_PID_ENV];
