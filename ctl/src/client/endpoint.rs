//! Where the server is: a unix socket path, or `http://host:port` with a bearer token.

use crate::error::CtlError;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// A byte stream to the server.
pub trait Connection: Read + Write + Send {}
impl<T: Read + Write + Send> Connection for T {}

/// The server's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl Endpoint {
    /// Parses `--server`: `http://host[:port]` (port 80 by default) or a bare `host:port`.
    pub fn from_url(url: &str) -> Result<Endpoint, CtlError> {
        if url.starts_with("https://") {
            return Err(CtlError::client(format!(
                "--server {url:?}: https is not supported; coracled serves plain HTTP (put TLS in front of it)"
            )));
        }
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(CtlError::client(format!("--server {url:?}: no host in the URL")));
        }
        let (host, port_text) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| CtlError::client(format!("--server {url:?}: unclosed '[' in the host")))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port_text {
            Some(p) => {
                p.parse::<u16>().map_err(|_| CtlError::client(format!("--server {url:?}: invalid port {p:?}")))?
            }
            None => 80,
        };
        Ok(Endpoint::Tcp { host: host.to_string(), port })
    }

    /// How error messages name the server: the socket path or `host:port`.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Unix(path) => path.display().to_string(),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        match self {
            Endpoint::Unix(_) => "localhost".into(),
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }

    /// Opens a connection; a missing socket or a refused connection becomes kubectl's
    /// "connection refused" message.
    pub fn connect(&self, timeout: Option<Duration>) -> Result<Box<dyn Connection>, CtlError> {
        let refused = |e: &io::Error| matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound);
        let result: io::Result<Box<dyn Connection>> = match self {
            Endpoint::Unix(path) => UnixStream::connect(path).and_then(|s| {
                s.set_read_timeout(timeout)?;
                Ok(Box::new(s) as Box<dyn Connection>)
            }),
            Endpoint::Tcp { host, port } => TcpStream::connect((host.as_str(), *port)).and_then(|s| {
                s.set_read_timeout(timeout)?;
                s.set_nodelay(true)?;
                Ok(Box::new(s) as Box<dyn Connection>)
            }),
        };
        result.map_err(|e| {
            if refused(&e) {
                CtlError::Refused { server: self.display() }
            } else {
                CtlError::client(format!("connecting to {}: {e}", self.display()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_parse() {
        assert_eq!(
            Endpoint::from_url("http://127.0.0.1:6443").unwrap(),
            Endpoint::Tcp { host: "127.0.0.1".into(), port: 6443 }
        );
        assert_eq!(Endpoint::from_url("http://board/").unwrap(), Endpoint::Tcp { host: "board".into(), port: 80 });
        assert_eq!(Endpoint::from_url("[::1]:8080").unwrap(), Endpoint::Tcp { host: "::1".into(), port: 8080 });
        assert!(Endpoint::from_url("https://board:6443").is_err());
        assert!(Endpoint::from_url("http://board:x").is_err());
    }

    #[test]
    fn a_missing_socket_reads_as_refused() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint::Unix(dir.path().join("none.sock"));
        let err = endpoint.connect(None).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("The connection to the server {} was refused - is coracled running?", endpoint.display())
        );
    }
}
