//! One panic policy for every build: a panic anywhere ends the whole process.
//!
//! Release builds already abort (`panic = "abort"` in Cargo.toml); debug builds, which the
//! tests run, unwind by default, and an unwinding thread would end alone, leaving a daemon
//! that still answers its API with a dead loop behind it (a pod worker thread, a controller,
//! the proxy). The hook makes every build behave as release does: the panic is reported by
//! the default hook, then the process aborts. systemd restarts the daemon (`Restart=always`),
//! the pods keep running (`KillMode=process`) and the next start re-adopts them.

/// Installs the hook; call first thing in `main`, before any thread starts.
pub fn install() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}
