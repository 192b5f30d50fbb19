//! Upgraded connections (`coracle port-forward`): a request with `Connection: Upgrade`, whose
//! `101` head is read byte by byte so no byte of the new protocol is buffered away.

use super::endpoint::Connection;
use super::response::read_response;
use super::status::status_from_response;
use super::Client;
use crate::error::CtlError;
use std::io::{self, Read, Write};

pub use coracle_wire::stream::copy_flushing;

/// A switched connection and the headers of its `101` answer.
pub type Upgraded = (Vec<(String, String)>, Box<dyn Connection>);

/// The longest response head read.
const MAX_HEAD: usize = 64 * 1024;

impl Client {
    /// Sends `method path` asking to switch to `protocol`. On `101` returns the response
    /// headers and the connection, now carrying the new protocol; any other answer becomes
    /// the server's `Status` as an error.
    pub fn upgrade(&self, method: &str, path: &str, protocol: &str) -> Result<Upgraded, CtlError> {
        let mut conn = self.endpoint.connect(None)?;
        let io_err = |e: io::Error| CtlError::client(format!("{method} {path} on {}: {e}", self.endpoint.display()));
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: coracle/{}\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n",
            self.endpoint.host_header(),
            env!("CARGO_PKG_VERSION"),
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).and_then(|()| conn.flush()).map_err(io_err)?;
        let answer = read_head(&mut conn).map_err(io_err)?;
        // The head is parsed from our copy; the connection itself stays untouched past it.
        let response = read_response(io::Cursor::new(&answer).chain(&mut conn), method).map_err(io_err)?;
        if response.status == 101 {
            let headers = response.headers;
            return Ok((headers, conn));
        }
        let (status, headers) = (response.status, response.headers.clone());
        let body = response.body.into_bytes().map_err(io_err)?;
        log::debug!("{method} {path}: {status} {headers:?}");
        Err(CtlError::Api { status: Box::new(status_from_response(status, &body)), context: None })
    }
}

/// Reads up to and including the blank line that ends a response head.
fn read_head(conn: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "response head larger than 64 KiB"));
        }
        match conn.read(&mut byte) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before answering",
                ))
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::super::Endpoint;
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// A server that answers one upgrade request with `answer` followed by `after`.
    fn serve(
        answer: &'static str,
        after: &'static [u8],
    ) -> (tempfile::TempDir, Client, std::thread::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            while !request.ends_with("\r\n\r\n") {
                reader.read_line(&mut request).unwrap();
            }
            // The head and the first bytes of the new protocol in one write.
            stream.write_all(&[answer.as_bytes(), after].concat()).unwrap();
            request
        });
        (dir, Client::new(Endpoint::Unix(path), Some("t0k".into())), handle)
    }

    #[test]
    fn bytes_right_after_the_101_are_kept() {
        let (_dir, client, server) =
            serve("HTTP/1.1 101 Switching Protocols\r\nUpgrade: p1\r\nX-Session: abc\r\n\r\n", b"first bytes");
        let (headers, mut conn) = client.upgrade("POST", "/x", "p1").unwrap();
        assert!(headers.iter().any(|(k, v)| k == "X-Session" && v == "abc"), "{headers:?}");
        let mut rest = String::new();
        conn.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "first bytes");
        let request = server.join().unwrap();
        assert!(request.contains("Connection: Upgrade\r\nUpgrade: p1\r\n"), "{request}");
        assert!(request.contains("Authorization: Bearer t0k\r\n"), "{request}");
    }

    #[test]
    fn a_refusal_is_the_servers_status() {
        let body = r#"{"kind":"Status","status":"Failure","message":"port-forward over p1 is not supported","reason":"BadRequest","code":400}"#;
        let answer: &'static str =
            Box::leak(format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into());
        let (_dir, client, server) = serve(answer, b"");
        let err = client.upgrade("POST", "/x", "p1").err().unwrap();
        assert_eq!(err.to_string(), "Error from server (BadRequest): port-forward over p1 is not supported");
        server.join().unwrap();
    }

    #[test]
    fn copying_moves_everything_and_flushes_each_piece() {
        struct Flushes(Vec<u8>, usize);
        impl Write for Flushes {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.1 += 1;
                Ok(())
            }
        }
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut out = Flushes(Vec::new(), 0);
        assert_eq!(copy_flushing(&mut &data[..], &mut out).unwrap(), data.len() as u64);
        assert_eq!(out.0, data);
        assert!(out.1 >= data.len() / (32 * 1024), "a flush per piece: {}", out.1);
    }
}
