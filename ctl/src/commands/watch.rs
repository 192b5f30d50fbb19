//! Following a watch: `?watch=true` from a resourceVersion, one JSON event per line, for
//! `get -w` and `rollout status`.

use super::{with_type_meta, Context};
use crate::client::{status_from_response, with_query, BodyReader, Connection};
use crate::error::CtlError;
use coracle_config::{ResourceInfo, Status};
use serde::Deserialize;
use serde_json::Value;
use std::io::{BufRead, BufReader, ErrorKind};
use std::time::{Duration, Instant};

/// One watch event.
#[derive(Debug, Deserialize)]
pub struct WatchEvent {
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    #[serde(rename = "type")]
    pub type_: String,
    /// The object (a `Status` for ERROR).
    pub object: Value,
}

/// What the next read of a watch produced.
#[derive(Debug)]
pub enum Next {
    Event(WatchEvent),
    /// The server ended the stream; re-watch from the last resourceVersion.
    Closed,
    /// The deadline passed without an event.
    TimedOut,
}

/// An open watch on one resource type.
pub struct Watch {
    info: &'static ResourceInfo,
    lines: BufReader<BodyReader<Box<dyn Connection>>>,
    deadline: Option<Instant>,
}

/// The query of a watch: selectors plus `watch=true&resourceVersion=RV`.
pub fn watch_path(
    info: &ResourceInfo,
    namespace: Option<&str>,
    field_selector: &str,
    label_selector: &str,
    resource_version: &str,
    timeout: Option<Duration>,
) -> String {
    let seconds = timeout.map(|t| t.as_secs().max(1).to_string()).unwrap_or_default();
    with_query(
        &info.collection_path(namespace),
        &[
            ("fieldSelector", field_selector),
            ("labelSelector", label_selector),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", &seconds),
            ("watch", "true"),
        ],
    )
}

impl Watch {
    /// Opens a watch at `path` (from `watch_path`); `deadline` bounds every wait.
    pub fn open(
        ctx: &Context,
        info: &'static ResourceInfo,
        path: &str,
        deadline: Option<Instant>,
    ) -> Result<Watch, CtlError> {
        // Reads wake up at least every few seconds so the deadline is noticed.
        let read_timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(10)));
        let response = ctx.client.stream_timeout("GET", path, read_timeout)?;
        if !response.is_success() {
            let status = response.status;
            let body = response.body.into_bytes().unwrap_or_default();
            return Err(CtlError::Api { status: Box::new(status_from_response(status, &body)), context: None });
        }
        Ok(Watch { info, lines: BufReader::new(response.body), deadline })
    }

    /// Waits for the next event.
    pub fn next_event(&mut self) -> Result<Next, CtlError> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.lines.read_line(&mut line) {
                Ok(0) => return Ok(Next::Closed),
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => break,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(Next::TimedOut);
                    }
                }
                // A stream cut mid-event is a closed stream: the caller re-watches.
                Err(e) if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset) => {
                    return Ok(Next::Closed)
                }
                Err(e) => return Err(CtlError::client(format!("reading the watch of {}: {e}", self.info.plural))),
            }
        }
        let mut event: WatchEvent = serde_json::from_str(&line).map_err(|e| {
            CtlError::client(format!(
                "the watch of {} sent something that is not an event ({e}): {line}",
                self.info.plural
            ))
        })?;
        if event.type_ != "ERROR" {
            with_type_meta(&mut event.object, self.info);
        }
        Ok(Next::Event(event))
    }
}

/// The `Status` of an ERROR event.
pub fn error_status(event: &WatchEvent) -> Status {
    // Decoded from bytes, as every error answer is: the ctl keeps one copy of Status's
    // decoding code, not a second one for a JSON value.
    serde_json::to_vec(&event.object)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| Status::failure(500, "InternalError", format!("watch error: {}", event.object)))
}

/// A deadline `timeout` from now; zero means none, and so does a timeout beyond what the
/// clock can hold (`--timeout 18446744073709551615`), which no wait would outlive anyway.
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    (!timeout.is_zero()).then(|| Instant::now().checked_add(timeout)).flatten()
}

/// kubectl's `--timeout` texts: `30s`, `5m`, a bare number of seconds; `0` means forever.
pub fn parse_timeout(text: &str) -> Result<Duration, CtlError> {
    humantime::parse_duration(text)
        .or_else(|e| text.parse::<u64>().map(Duration::from_secs).map_err(|_| e))
        .map_err(|e| CtlError::client(format!("invalid --timeout {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_paths_carry_selectors_version_and_timeout() {
        let info = ResourceInfo::lookup("deploy").unwrap();
        assert_eq!(
            watch_path(info, Some("default"), "metadata.name=web", "", "42", Some(Duration::from_millis(1500))),
            "/apis/apps/v1/namespaces/default/deployments?fieldSelector=metadata.name%3Dweb&resourceVersion=42&timeoutSeconds=1&watch=true"
        );
        assert_eq!(
            watch_path(info, None, "", "app=x", "", None),
            "/apis/apps/v1/deployments?labelSelector=app%3Dx&watch=true"
        );
    }

    #[test]
    fn timeouts_parse() {
        assert_eq!(parse_timeout("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout("7").unwrap(), Duration::from_secs(7));
        assert!(deadline_after(Duration::ZERO).is_none());
        assert!(parse_timeout("later").is_err());
        assert_eq!(deadline_after(parse_timeout("0").unwrap()), None);
        assert_eq!(deadline_after(parse_timeout("18446744073709551615").unwrap()), None);
        assert!(deadline_after(parse_timeout("5m").unwrap()).is_some());
    }
}
