//! The exec action of probes and lifecycle hooks: the command runs through the container
//! runtime's `exec` (confined exactly as the container, whichever backend runs it); success
//! is exit status 0 within the timeout.

use super::Outcome;
use coracle_runtime::{ContainerRuntime, ExecError, ExecOutput, ExecRequest};
use std::time::Duration;

/// Runs `command` in container `id`, killed after `timeout`.
pub fn run(runtime: &dyn ContainerRuntime, id: &str, command: &[String], timeout: Duration) -> Outcome {
    let request = ExecRequest::captured(command.to_vec(), Some(timeout));
    outcome(command, runtime.exec(id, &request))
}

/// The probe outcome of an exec's result, worded as the kubelet words it.
fn outcome(command: &[String], result: Result<ExecOutput, ExecError>) -> Outcome {
    match result {
        Ok(out) if out.exit_code == 0 => Outcome::Success,
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Outcome::Failure(format!("command {command:?} exited with {}: {}", out.exit_code, text.trim()))
        }
        Err(ExecError::TimedOut { timeout, .. }) => {
            Outcome::Failure(format!("command {command:?} timed out after {}s", timeout.as_secs()))
        }
        Err(ExecError::NotRunning { .. }) => Outcome::Failure("container is not running".into()),
        Err(e) => Outcome::Failure(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn results_read_as_the_kubelet_words_them() {
        let command = cmd(&["cat", "/tmp/healthy"]);
        assert_eq!(outcome(&command, Ok(ExecOutput::default())), Outcome::Success);
        let failed = ExecOutput {
            exit_code: 1,
            stdout: vec![],
            stderr: b"cat: can't open '/tmp/healthy': No such file or directory\n".to_vec(),
        };
        assert_eq!(
            outcome(&command, Ok(failed)),
            Outcome::Failure(
                "command [\"cat\", \"/tmp/healthy\"] exited with 1: cat: can't open '/tmp/healthy': No such file or directory"
                    .into()
            )
        );
        let slow = ExecError::TimedOut { timeout: Duration::from_secs(1), output: ExecOutput::default() };
        assert_eq!(
            outcome(&command, Err(slow)),
            Outcome::Failure("command [\"cat\", \"/tmp/healthy\"] timed out after 1s".into())
        );
        let missing = ExecError::Start("exec: \"nope\": executable file not found in $PATH".into());
        assert_eq!(
            outcome(&cmd(&["nope"]), Err(missing)),
            Outcome::Failure("exec: \"nope\": executable file not found in $PATH".into())
        );
        let gone = ExecError::NotRunning { id: "u_app_0".into() };
        assert_eq!(outcome(&command, Err(gone)), Outcome::Failure("container is not running".into()));
    }
}
