//! The sd_notify datagram protocol: newline-separated `KEY=VALUE` assignments sent as one
//! datagram to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace). See sd_notify(3).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// A connection-less sender bound to one notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    spec: String,
}

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`, or `None` when it is unset or empty (not under systemd).
    pub fn from_env() -> io::Result<Option<Notifier>> {
        match std::env::var_os(NOTIFY_SOCKET_ENV) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) => {
                let spec = value.into_string().map_err(|raw| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{NOTIFY_SOCKET_ENV}={raw:?} is not valid UTF-8"),
                    )
                })?;
                Notifier::new(&spec).map(Some)
            }
        }
    }

    /// A notifier for `spec`: an absolute socket path or `@name` for an abstract socket.
    pub fn new(spec: &str) -> io::Result<Notifier> {
        let addr = parse_socket_spec(spec)?;
        let socket = UnixDatagram::unbound()
            .map_err(|e| io::Error::new(e.kind(), format!("creating a datagram socket for {spec}: {e}")))?;
        Ok(Notifier { socket, addr, spec: spec.to_string() })
    }

    /// Sends `state` (one or more `KEY=VALUE` lines) as a single datagram.
    pub fn send(&self, state: &str) -> io::Result<()> {
        if state.trim().is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty sd_notify state"));
        }
        let sent = self
            .socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map_err(|e| io::Error::new(e.kind(), format!("sending {state:?} to {}: {e}", self.spec)))?;
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sending {state:?} to {}: only {sent} of {} bytes went out", self.spec, state.len()),
            ));
        }
        Ok(())
    }
}

/// Resolves a `$NOTIFY_SOCKET` value; `vsock:` and relative paths are refused by name.
fn parse_socket_spec(spec: &str) -> io::Result<SocketAddr> {
    if let Some(name) = spec.strip_prefix('@') {
        return SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("{NOTIFY_SOCKET_ENV}={spec}: {e}")));
    }
    if spec.starts_with('/') {
        return SocketAddr::from_pathname(spec)
            .map_err(|e| io::Error::new(e.kind(), format!("{NOTIFY_SOCKET_ENV}={spec}: {e}")));
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{NOTIFY_SOCKET_ENV}={spec}: only absolute paths and @abstract names are supported"),
    ))
}

/// Folds a free-text value onto one line: a newline would start a new assignment.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect()
}

/// Sends `state` to `$NOTIFY_SOCKET`; `Ok(false)` when not running under systemd.
pub fn notify(state: &str) -> io::Result<bool> {
    match Notifier::from_env()? {
        Some(notifier) => notifier.send(state).map(|()| true),
        None => Ok(false),
    }
}

/// Tells systemd start-up is complete: the store is loaded and the API serves.
pub fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// Sets the one-line status `systemctl status` shows.
pub fn status(text: &str) -> io::Result<bool> {
    notify(&format!("STATUS={}", one_line(text)))
}

/// Tells systemd the daemon is shutting down on purpose.
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a notification arrives");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_one_datagram_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(path.to_str().unwrap()).unwrap();
        notifier.send("READY=1\nSTATUS=serving").unwrap();
        assert_eq!(receive(&listener), "READY=1\nSTATUS=serving");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("coracle-notify-test-{}", std::process::id());
        let listener = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        let notifier = Notifier::new(&format!("@{name}")).unwrap();
        notifier.send("WATCHDOG=1").unwrap();
        assert_eq!(receive(&listener), "WATCHDOG=1");
    }

    #[test]
    fn refuses_relative_and_vsock_specs() {
        for spec in ["relative.sock", "vsock:2:1234"] {
            let err = Notifier::new(spec).unwrap_err();
            assert!(err.to_string().contains(spec), "{err}");
        }
    }

    #[test]
    fn refuses_an_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let _listener = UnixDatagram::bind(&path).unwrap();
        assert!(Notifier::new(path.to_str().unwrap()).unwrap().send(" \n").is_err());
    }

    #[test]
    fn a_missing_listener_is_an_error_naming_the_socket() {
        let err = Notifier::new("/nonexistent/coracle-notify.sock").unwrap().send("READY=1").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/coracle-notify.sock"), "{err}");
    }

    #[test]
    fn status_text_stays_on_one_line() {
        assert_eq!(one_line("loaded 3 objects\nserving"), "loaded 3 objects serving");
    }
}
