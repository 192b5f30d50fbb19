//! The ctl's failures, printed the way kubectl prints them.

use coracle_config::Status;
use std::fmt;

/// Anything that makes a command fail; `Display` is the line kubectl would print on stderr.
#[derive(Debug)]
pub enum CtlError {
    /// The server answered with a failure `Status`; `context` prefixes the message
    /// (`error when creating "nginx.yaml"`).
    Api { status: Box<Status>, context: Option<String> },
    /// Nothing listens at the server address.
    Refused { server: String },
    /// A client-side failure: bad flags, unreadable files, broken responses.
    Client(String),
    /// The failure was already printed (several objects, some failed); exit 1 quietly.
    Reported,
}

impl CtlError {
    /// A client-side error with its message.
    pub fn client(message: impl Into<String>) -> CtlError {
        CtlError::Client(message.into())
    }

    /// True when the server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CtlError::Api { status, .. } if status.code == 404 || status.reason == "NotFound")
    }

    /// The same API error with a kubectl-style context prefix.
    pub fn with_context(self, context: impl Into<String>) -> CtlError {
        match self {
            CtlError::Api { status, .. } => CtlError::Api { status, context: Some(context.into()) },
            other => other,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Api { status, context } => {
                if status.reason.is_empty() {
                    f.write_str("Error from server: ")?;
                } else {
                    write!(f, "Error from server ({}): ", status.reason)?;
                }
                if let Some(context) = context {
                    write!(f, "{context}: ")?;
                }
                f.write_str(&status.message)
            }
            CtlError::Refused { server } => {
                write!(f, "The connection to the server {server} was refused - is coracled running?")
            }
            CtlError::Client(message) => write!(f, "error: {message}"),
            CtlError::Reported => Ok(()),
        }
    }
}

impl std::error::Error for CtlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_like_kubectl() {
        let status = Status::failure(404, "NotFound", "pods \"x\" not found");
        let err = CtlError::Api { status: Box::new(status), context: None };
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "Error from server (NotFound): pods \"x\" not found");
        let err = err.with_context("error when deleting \"p.yaml\"");
        assert_eq!(
            err.to_string(),
            "Error from server (NotFound): error when deleting \"p.yaml\": pods \"x\" not found"
        );
        assert_eq!(CtlError::client("bad flag").to_string(), "error: bad flag");
    }
}
