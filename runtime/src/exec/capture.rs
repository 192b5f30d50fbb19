//! Collecting an exec'd command's output while it runs, within its timeout: both pipes are
//! read as data arrives (a chatty command never blocks on a full pipe), and the wait ends when
//! the command exits, even if something it started in the background still holds the pipes.

use super::ExecOutput;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Longest single wait between looks at the child.
const STEP: Duration = Duration::from_millis(10);

/// What a collection ended with.
pub(crate) struct Collected {
    pub output: ExecOutput,
    /// The timeout passed and `kill` was called.
    pub timed_out: bool,
}

/// One captured stream: its pipe while open, and what was kept of it.
struct Stream {
    fd: Option<OwnedFd>,
    kept: Vec<u8>,
}

impl Stream {
    fn new(fd: Option<OwnedFd>) -> io::Result<Stream> {
        if let Some(fd) = &fd {
            let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        }
        Ok(Stream { fd, kept: Vec::new() })
    }

    /// Reads what is there now, keeping up to `limit` bytes in all; closes the pipe at its end.
    fn drain(&mut self, limit: usize) {
        let mut buf = [0u8; 8192];
        while let Some(fd) = &self.fd {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => self.fd = None,
                Ok(n) => {
                    let room = limit.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => self.fd = None,
            }
        }
    }
}

/// Collects `child`'s stdout and stderr (each up to `limit` bytes) until it exits.
/// `supervise` is called between looks at it, with `true` once `timeout` has passed: it must
/// then end the command, and the collection waits for that.
pub(crate) fn collect(
    child: &mut Child,
    limit: usize,
    timeout: Option<Duration>,
    supervise: &mut dyn FnMut(&mut Child, bool),
) -> io::Result<Collected> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut streams =
        [Stream::new(child.stdout.take().map(OwnedFd::from))?, Stream::new(child.stderr.take().map(OwnedFd::from))?];
    let mut timed_out = false;
    loop {
        if let Some(status) = child.try_wait()? {
            streams.iter_mut().for_each(|s| s.drain(limit));
            let [stdout, stderr] = streams;
            let output = ExecOutput { exit_code: exit_code(status), stdout: stdout.kept, stderr: stderr.kept };
            return Ok(Collected { output, timed_out });
        }
        let now = Instant::now();
        let time_up = !timed_out && deadline.is_some_and(|d| now >= d);
        timed_out |= time_up;
        supervise(child, time_up);
        let step = deadline.filter(|_| !timed_out).map_or(STEP, |d| d.saturating_duration_since(now).min(STEP));
        wait_for_output(&mut streams, step, limit)?;
    }
}

/// Waits up to `step` for output on the open pipes and reads it; sleeps when none is open.
fn wait_for_output(streams: &mut [Stream; 2], step: Duration, limit: usize) -> io::Result<()> {
    let ready: Vec<bool> = {
        let mut fds: Vec<PollFd> =
            streams.iter().filter_map(|s| s.fd.as_ref().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))).collect();
        if fds.is_empty() {
            std::thread::sleep(step.max(Duration::from_millis(1)));
            return Ok(());
        }
        let millis = u16::try_from(step.as_millis()).unwrap_or(u16::MAX).max(1);
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        fds.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect()
    };
    let mut polled = ready.into_iter();
    for stream in streams.iter_mut().filter(|s| s.fd.is_some()) {
        if polled.next() == Some(true) {
            stream.drain(limit);
        }
    }
    Ok(())
}

/// The exit code, or 128 + the signal for a command a signal ended.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn spawn(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn kill(child: &mut Child, time_up: bool) {
        if time_up {
            let _ = child.kill();
        }
    }

    #[test]
    fn output_is_kept_up_to_the_limit_and_the_rest_is_drained() {
        // 200 KiB on stdout would fill a pipe three times over if nobody read it.
        let mut child = spawn("head -c 204800 /dev/zero; echo err >&2; exit 3");
        let got = collect(&mut child, 1000, Some(Duration::from_secs(30)), &mut kill).unwrap();
        assert!(!got.timed_out);
        assert_eq!(got.output.exit_code, 3);
        assert_eq!(got.output.stdout.len(), 1000);
        assert_eq!(got.output.stderr, b"err\n");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_reported() {
        let mut child = spawn("echo started; exec sleep 30");
        let got = collect(&mut child, 100, Some(Duration::from_millis(300)), &mut kill).unwrap();
        assert!(got.timed_out);
        assert_eq!(got.output.exit_code, 128 + libc::SIGKILL);
        assert_eq!(got.output.stdout, b"started\n");
    }

    #[test]
    fn a_background_process_holding_the_pipes_does_not_hold_the_wait() {
        let mut child = spawn("sleep 30 & echo $!");
        let got = collect(&mut child, 100, Some(Duration::from_secs(20)), &mut kill).unwrap();
        let sleeper: i32 = String::from_utf8_lossy(&got.output.stdout).trim().parse().unwrap();
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleeper), nix::sys::signal::Signal::SIGKILL);
        assert!(!got.timed_out, "the wait ended when sh exited, not when sleep did");
        assert_eq!(got.output.exit_code, 0);
    }
}
