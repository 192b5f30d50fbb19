//! The built ctl writing into a pipe whose reader is gone (`coracle get svc -o yaml | head -1`)
//! ends quietly, by SIGPIPE as kubectl does, instead of panicking ("failed printing to stdout:
//! Broken pipe", a core dump and status 134 in release builds). The reader is closed before
//! the ctl starts, so its first write fails whatever the timing.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

/// A pipe's write end whose read end is already closed.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills the two-element array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

fn ctl(args: &[&str], stdout: Stdio, stderr: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coracle"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .expect("the ctl runs")
}

#[test]
fn a_closed_stdout_ends_the_ctl_by_sigpipe_and_quietly() {
    for args in [&["version", "--client", "-o", "yaml"][..], &["version", "--client"]] {
        // The same command into a live pipe prints, so what follows is the closed pipe's doing.
        let open = ctl(args, Stdio::piped(), Stdio::piped());
        assert!(open.status.success(), "{args:?}: {:?}", open.status);
        assert!(String::from_utf8_lossy(&open.stdout).contains("v0."), "{args:?}");

        let closed = ctl(args, closed_pipe(), Stdio::piped());
        assert_eq!(closed.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?}", closed.status);
        assert_eq!(String::from_utf8_lossy(&closed.stderr), "", "{args:?}");
    }
}

#[test]
fn a_closed_stderr_ends_the_ctl_by_sigpipe_too() {
    // An error goes to stderr: `coracle … 2>&1 | head -0`.
    let args = ["version", "--client", "-o", "xml"];
    let open = ctl(&args, Stdio::piped(), Stdio::piped());
    assert_eq!(open.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&open.stderr).starts_with("error: --output must be"));

    let closed = ctl(&args, Stdio::piped(), closed_pipe());
    assert_eq!(closed.status.signal(), Some(libc::SIGPIPE), "{:?}", closed.status);
    assert!(closed.stdout.is_empty());
}

#[test]
fn help_into_a_closed_pipe_is_quiet() {
    // clap prints help itself and swallows the broken pipe.
    let closed = ctl(&["--help"], closed_pipe(), Stdio::piped());
    assert_ne!(closed.status.code(), Some(134), "{:?}", closed.status);
    assert_eq!(closed.status.signal(), None);
    assert_eq!(String::from_utf8_lossy(&closed.stderr), "");
}
