//! The keeper of the pods' scope (see [`super::pod_scope`]): this binary re-executed with a
//! private argv marker by `systemd-run --scope`. It moves itself into the scope's keeper leaf,
//! so the scope holds no process of its own and may enable controllers for the pods, then
//! sleeps until the scope is stopped. Its only job is keeping the scope alive while no pod runs.

use super::pod_scope::KEEPER_LEAF;
use super::{files, CgroupError, Roots};
use std::os::fd::AsRawFd;

/// argv[1] that turns a coracled process into the scope's keeper.
pub const KEEPER_ARG: &str = "__coracle_scope_keeper";

/// Runs the keeper when this process was started as one and returns its exit code; `None`
/// means "be something else".
pub fn dispatch() -> Option<i32> {
    if std::env::args_os().nth(1)? != KEEPER_ARG {
        return None;
    }
    if let Err(e) = enter_leaf() {
        // systemd-run's stderr is the daemon's pipe: the daemon reports this.
        eprintln!("coracle scope keeper: {e}");
        return Some(1);
    }
    // Nothing reads our output any more; the daemon closed its end of the pipe.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        for fd in [1, 2] {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
    loop {
        // SIGTERM from the scope's stop ends the process (default action); nothing else does.
        nix::unistd::pause();
    }
}

/// Moves this process from the scope's cgroup into `<scope>/keeper`.
fn enter_leaf() -> Result<(), CgroupError> {
    let Roots::V2 { own, .. } = Roots::detect()? else {
        return Err(CgroupError::Layout("the scope keeper runs only on pure cgroup v2".into()));
    };
    let leaf = own.join(KEEPER_LEAF);
    files::ensure_dir(&leaf)?;
    files::append(&leaf.join("cgroup.procs"), &std::process::id().to_string())
}
