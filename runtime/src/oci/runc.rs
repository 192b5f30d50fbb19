//! The OCI runtime's command line (`runc`, `crun`, `youki` share it): one invocation per call,
//! with its state kept under our own `--root` and its own errors in a JSON log we can read back.

use super::super::container_runtime::StartError;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An OCI runtime binary and the state directory it keeps our containers in.
#[derive(Debug, Clone)]
pub struct OciCli {
    /// The runtime binary (`/usr/sbin/runc`).
    pub binary: PathBuf,
    /// Its `--root`: where it records the containers it created.
    pub state_root: PathBuf,
}

impl OciCli {
    /// A command for `binary --root STATE [--log LOG --log-format json] ARGS…` with stdin closed.
    pub fn command(&self, log: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        if let Some(log) = log {
            cmd.arg("--log").arg(log).args(["--log-format", "json"]);
        }
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<Output, String> {
        self.command(None, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("run {} {}: {e}", self.binary.display(), args.join(" ")))
    }

    fn checked(&self, args: &[&str]) -> Result<Output, String> {
        let out = self.run(args)?;
        if out.status.success() {
            return Ok(out);
        }
        Err(format!(
            "{} {}: {} ({})",
            self.binary.display(),
            args.join(" "),
            last_error(&String::from_utf8_lossy(&out.stderr)),
            out.status
        ))
    }

    /// `start ID`: lets a created container exec its process.
    pub fn start(&self, id: &str) -> Result<(), String> {
        self.checked(&["start", id]).map(drop)
    }

    /// `kill ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), String> {
        self.checked(&["kill", id, &signal.to_string()]).map(drop)
    }

    /// `delete --force ID`; a container the runtime does not know is already deleted.
    pub fn delete(&self, id: &str) -> Result<(), String> {
        match self.checked(&["delete", "--force", id]) {
            Ok(_) => Ok(()),
            Err(_) if !self.state_root.join(id).exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `state ID` → the status the runtime reports (`created`, `running`, `stopped`).
    pub fn status(&self, id: &str) -> Result<String, String> {
        let out = self.checked(&["state", id])?;
        let state: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{} state {id}: unreadable answer: {e}", self.binary.display()))?;
        Ok(state["status"].as_str().unwrap_or_default().to_string())
    }
}

/// The last error message in a runtime's stderr or JSON log: the final `"msg"` of a JSON line,
/// else the last non-empty line (stripped of logrus's `time=… level=error msg=` prefix).
pub fn last_error(text: &str) -> String {
    let mut found = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(msg) = entry["msg"].as_str() {
                if entry["level"].as_str().is_none_or(|l| l == "error" || l == "fatal") {
                    found = Some(msg.to_string());
                }
                continue;
            }
        }
        let msg = match line.find("msg=") {
            Some(at) => line[at + 4..].trim_matches('"').to_string(),
            None => line.to_string(),
        };
        found = Some(msg);
    }
    found.unwrap_or_else(|| "no error message".into())
}

/// Classifies a failed `create`: an exec problem (`exec: "x": …`) is a `StartError` worded as the
/// builtin runtime words it; anything else is a `RunContainerError` carrying the runtime's text.
pub fn start_error(message: &str) -> StartError {
    let Some(at) = message.find("exec: ") else {
        return StartError::run(message.to_string());
    };
    let exec = &message[at..];
    // runc says `exec: "/bin/nope": stat /bin/nope: no such file or directory`; the stat is noise.
    let exec = match exec.split_once("\": stat ").and_then(|(head, tail)| tail.split_once(": ").map(|t| (head, t.1))) {
        Some((head, cause)) => format!("{head}\": {cause}"),
        None => exec.to_string(),
    };
    StartError { reason: "StartError".into(), message: exec }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_failures_read_like_the_builtin_runtime() {
        let e = start_error(
            "runc create failed: unable to start container process: exec: \"/bin/nope\": stat /bin/nope: no such file or directory",
        );
        assert_eq!(
            (e.reason.as_str(), e.message.as_str()),
            ("StartError", "exec: \"/bin/nope\": no such file or directory")
        );
        let e = start_error(
            "runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH",
        );
        assert_eq!(e.message, "exec: \"nope\": executable file not found in $PATH");
        let e = start_error(
            "runc create failed: unable to start container process: exec: \"/etc/passwd\": permission denied",
        );
        assert_eq!(e.message, "exec: \"/etc/passwd\": permission denied");
        let e = start_error("runc create failed: cgroup: mkdir /sys/fs/cgroup/x: permission denied");
        assert_eq!(e.reason, "RunContainerError");
        assert!(e.message.contains("mkdir /sys/fs/cgroup/x"));
    }

    #[test]
    fn the_last_error_comes_from_json_or_logrus_lines() {
        let log =
            "{\"level\":\"warning\",\"msg\":\"meh\"}\n{\"level\":\"error\",\"msg\":\"runc create failed: boom\"}\n";
        assert_eq!(last_error(log), "runc create failed: boom");
        assert_eq!(last_error("time=\"x\" level=error msg=\"container does not exist\"\n"), "container does not exist");
        assert_eq!(last_error("plain failure\n\n"), "plain failure");
        assert_eq!(last_error(""), "no error message");
    }
}
