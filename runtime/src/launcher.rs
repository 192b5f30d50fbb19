//! The shim launcher: one long-lived, single-threaded coracled started once per daemon, which
//! forks a shim for every container start. A fork of that small process is much cheaper than
//! exec'ing the whole coracled binary again (loading, relocation, runtime start-up) and saves
//! the shim's detaching fork too: the launcher is already detached and reaps nothing (SIGCHLD
//! is ignored). It exits when the daemon's end of its socket closes, leaving its shims to init.
//! When no launcher can be had, shims are exec'd one by one as before.

use super::container_runtime::{ContainerHandle, StartError};
use super::shim::{self, ShimRequest};
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned};
use nix::sys::socket::{MsgFlags, SockFlag, SockType};
use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Set in the environment of a shim program that should serve as the launcher.
pub const LAUNCHER_ENV: &str = "CORACLE_SHIM_LAUNCHER";

/// The largest request the launcher reads (a container spec with its env and mounts).
const MAX_REQUEST: usize = 1 << 20;

/// Starts shims for a runtime: forked by its launcher, or exec'd when the launcher is out of reach.
pub struct ShimStarter {
    program: PathBuf,
    args: Vec<OsString>,
    launcher: Mutex<Option<Launcher>>,
}

/// A running launcher and the daemon's end of its socket.
struct Launcher {
    child: Child,
    socket: Option<OwnedFd>,
}

impl Drop for Launcher {
    fn drop(&mut self) {
        // Closing our end is the launcher's signal to exit; its shims carry on without it.
        drop(self.socket.take());
        let _ = self.child.wait();
    }
}

impl Launcher {
    fn start(program: &Path, args: &[OsString]) -> Result<Launcher, String> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| format!("socketpair for the shim launcher: {e}"))?;
        let mut command = Command::new(program);
        // Shims outlive the daemon and must never speak to systemd in its name.
        for name in coracle_watchdog::DAEMON_ONLY_ENV {
            command.env_remove(name);
        }
        command.args(args).env(LAUNCHER_ENV, "1").stdin(Stdio::from(theirs)).stdout(Stdio::null());
        let child = command.spawn().map_err(|e| format!("start shim launcher {}: {e}", program.display()))?;
        Ok(Launcher { child, socket: Some(ours) })
    }

    /// Hands the launcher a request with the shim's channel and log descriptors.
    fn send(&self, request: &[u8], fds: &[RawFd]) -> nix::Result<()> {
        let socket = self.socket.as_ref().ok_or(nix::errno::Errno::EBADF)?;
        let rights = [ControlMessage::ScmRights(fds)];
        sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(request)], &rights, MsgFlags::MSG_NOSIGNAL, None).map(drop)
    }
}

impl ShimStarter {
    /// Shims run as `program args…` (the launcher too, with [`LAUNCHER_ENV`] set).
    pub fn new(program: impl Into<PathBuf>, args: Vec<OsString>) -> ShimStarter {
        ShimStarter { program: program.into(), args, launcher: Mutex::new(None) }
    }

    /// Starts a container under a new shim: the handle of the container that exec'd, or why it
    /// did not start. The shim's own output goes to `shim_log`.
    pub fn start_container(&self, request: &ShimRequest, shim_log: &Path) -> Result<ContainerHandle, StartError> {
        let report = match self.fork_from_launcher(request, shim_log) {
            Some(report) => report?,
            None => shim::spawn(&self.program, &self.args, request, shim_log)?,
        };
        shim::handle_from(&request.spec.id, report)
    }

    /// The report of a shim forked by the launcher; `None` when no launcher could take the start.
    fn fork_from_launcher(
        &self,
        request: &ShimRequest,
        shim_log: &Path,
    ) -> Option<Result<shim::ShimReport, StartError>> {
        let id = &request.spec.id;
        let prepared = (|| {
            let log = std::fs::File::create(shim_log)
                .map_err(|e| StartError::run(format!("create {}: {e}", shim_log.display())))?;
            let (ours, theirs) =
                UnixStream::pair().map_err(|e| StartError::run(format!("socketpair for shim: {e}")))?;
            let bytes =
                serde_json::to_vec(request).map_err(|e| StartError::run(format!("encode shim request: {e}")))?;
            Ok((log, ours, theirs, bytes))
        })();
        let (log, ours, theirs, bytes) = match prepared {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        {
            let mut slot = self.launcher.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if slot.is_none() {
                *slot = Launcher::start(&self.program, &self.args).map_err(|e| log::warn!("runtime: {e}")).ok();
            }
            let launcher = slot.as_ref()?;
            match launcher.send(&bytes, &[theirs.as_raw_fd(), log.as_raw_fd()]) {
                Ok(()) => {}
                // Too big for one message: this shim is exec'd and reads its request from a stream.
                Err(nix::errno::Errno::EMSGSIZE) => return None,
                Err(e) => {
                    // Gone (it crashed or was killed): start a new one next time, exec this shim.
                    let pid = launcher.child.id();
                    log::warn!("runtime: shim launcher (pid {pid}): {e}; starting container {id} with an exec'd shim");
                    *slot = None;
                    return None;
                }
            }
        }
        // The launcher holds its own copies now; ours must close, or reading the report never ends.
        drop((theirs, log));
        Some(shim::read_report(&ours, id, shim_log))
    }
}

/// The launcher's main: fd 0 is its socket to the daemon. Returns when the daemon has gone.
pub fn serve() -> i32 {
    // Forked shims are nobody's to wait for: the kernel reaps them.
    // SAFETY: SIG_IGN runs no handler code.
    let _ =
        unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGCHLD, nix::sys::signal::SigHandler::SigIgn) };
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        let (len, fds) = match receive(&mut buf) {
            Ok(Some(got)) => got,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("coracle shim launcher: {e}");
                return 2;
            }
        };
        let [channel, log] = match <[OwnedFd; 2]>::try_from(fds) {
            Ok(pair) => pair,
            Err(fds) => {
                eprintln!("coracle shim launcher: a request came with {} descriptors, not 2", fds.len());
                continue;
            }
        };
        // SAFETY: the launcher is single-threaded, so the child may run anything.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => std::process::exit(run_shim(&buf[..len], channel, log)),
            Ok(nix::unistd::ForkResult::Parent { .. }) => {}
            Err(e) => eprintln!("coracle shim launcher: fork a shim: {e}"),
        }
    }
}

/// One request: its length and the descriptors that came with it; `None` at end of file.
fn receive(buf: &mut [u8]) -> Result<Option<(usize, Vec<OwnedFd>)>, String> {
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(libc::STDIN_FILENO, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(|e| format!("read a request: {e}"))?,
        }
    };
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(|e| format!("read a request's descriptors: {e}"))? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: SCM_RIGHTS installed these descriptors in this process for us alone.
            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Err(format!("a request over {MAX_REQUEST} bytes or with too many descriptors"));
    }
    Ok(Some((msg.bytes, fds)))
}

/// The forked shim: its output to the log, then the same supervision as an exec'd shim.
fn run_shim(request: &[u8], channel: OwnedFd, log: OwnedFd) -> i32 {
    // SAFETY: SIG_DFL runs no handler code; the shim must see its container's exit.
    let _ =
        unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl) };
    for target in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        let _ = nix::unistd::dup2(log.as_raw_fd(), target);
    }
    drop(log);
    // Only the launcher is one; what the shim starts (runc) need not know.
    std::env::remove_var(LAUNCHER_ENV);
    // The launcher's socket is not the shim's to keep.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), libc::STDIN_FILENO);
    }
    // Each shim leads a session of its own, as an exec'd one does.
    let _ = nix::unistd::setsid();
    shim::serve_request(request, UnixStream::from(channel))
}

#[cfg(test)]
mod tests {
    use super::super::spec::ContainerSpec;
    use super::*;

    #[test]
    fn without_a_launcher_the_start_falls_back_to_an_exec_that_names_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let starter = ShimStarter::new("/nonexistent/coracled", Vec::new());
        let request = ShimRequest { run_dir: dir.path().to_path_buf(), spec: ContainerSpec::example(), oci: None };
        let err = starter.start_container(&request, &dir.path().join("shim.log")).unwrap_err();
        assert_eq!(err.reason, "RunContainerError");
        assert!(err.message.starts_with("start shim /nonexistent/coracled: "), "{err}");
        assert!(starter.launcher.lock().unwrap().is_none(), "no launcher is kept when none could start");
    }
}
