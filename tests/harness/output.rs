//! A finished command's output as text, and the exit-status checks the ctl tests make on it
//! (kubectl's convention: 0 on success, 1 for every error, the message on stderr).

use std::process::Output;

/// The command's standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that `command` (named in the failure message) succeeded; returns its stdout.
pub fn succeeded(command: &str, o: &Output) -> String {
    assert!(o.status.success(), "{command} failed ({}):\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

/// Asserts that `coracle` succeeded; returns its stdout.
pub fn ok(o: Output) -> String {
    succeeded("coracle", &o)
}

/// Asserts that `coracle` succeeded; returns its stderr (where kubectl says "No resources found").
pub fn ok_stderr(o: Output) -> String {
    succeeded("coracle", &o);
    stderr(&o)
}

/// Asserts exit status 1 (kubectl's for every error); returns stderr.
pub fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(1), "expected exit 1:\nstdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    stderr(&o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> Output {
        Command::new("sh").args(["-c", script]).output().expect("running sh")
    }

    #[test]
    fn ok_returns_stdout_and_ok_stderr_returns_stderr() {
        assert_eq!(ok(sh("echo out; echo err >&2")), "out\n");
        assert_eq!(ok_stderr(sh("echo out; echo err >&2")), "err\n");
    }

    #[test]
    #[should_panic(expected = "coracle failed")]
    fn ok_panics_on_a_failure() {
        ok(sh("echo why >&2; exit 1"));
    }

    #[test]
    fn fails_returns_stderr_of_exit_one() {
        assert_eq!(fails(sh("echo no >&2; exit 1")), "no\n");
    }

    #[test]
    #[should_panic(expected = "expected exit 1")]
    fn fails_panics_on_another_exit_status() {
        fails(sh("exit 2"));
    }
}
