//! A tiny HTTP/1.1 client over a unix socket: enough to send one request and read the
//! response (plain or chunked), or to follow a watch stream event by event.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A complete response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every header of that name, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }
}

fn write_request(
    stream: &mut UnixStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Content-Type")) {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        // The server may answer (413) and stop reading before the body is through.
        if let Err(e) = stream.write_all(body) {
            if !matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
                return Err(e);
            }
        }
    }
    stream.flush()
}

/// Splits a response head into status and headers.
fn parse_head(head: &str) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {status_line:?}")))?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Ok((status, headers))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a complete chunked body.
fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body");
        let line_end = find(raw, b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&raw[..line_end]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad())?;
        if size == 0 {
            return Ok(out);
        }
        let start = line_end + 2;
        out.extend_from_slice(raw.get(start..start + size).ok_or_else(bad)?);
        raw = raw.get(start + size + 2..).ok_or_else(bad)?;
    }
}

/// Sends one request and reads the whole response.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<HttpResponse> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write_request(&mut stream, method, path, headers, body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).or_else(|e| {
        // A reset after a complete response (the server dropped an unread body) is fine.
        if e.kind() == io::ErrorKind::ConnectionReset && !raw.is_empty() {
            Ok(0)
        } else {
            Err(e)
        }
    })?;
    let split = find(&raw, b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "response without a complete head"))?;
    let (status, headers) = parse_head(&String::from_utf8_lossy(&raw[..split]))?;
    let body_raw = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("Transfer-Encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body_raw)? } else { body_raw.to_vec() };
    Ok(HttpResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// A watch being read event by event.
pub struct WatchStream {
    stream: UnixStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    raw: Vec<u8>,
    decoded: Vec<u8>,
    ended: bool,
}

impl WatchStream {
    /// Sends the GET and reads the response head.
    pub fn open(socket: &Path, path: &str) -> io::Result<WatchStream> {
        let mut stream = UnixStream::connect(socket)?;
        write_request(&mut stream, "GET", path, &[], None)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let split = loop {
            if let Some(i) = find(&raw, b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "watch closed before its head"));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let (status, headers) = parse_head(&String::from_utf8_lossy(&raw[..split]))?;
        let rest = raw.split_off(split + 4);
        Ok(WatchStream { stream, status, headers, raw: rest, decoded: Vec::new(), ended: false })
    }

    /// True once the server ended the stream.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Moves every complete chunk from `raw` to `decoded`.
    fn decode_chunks(&mut self) {
        while let Some(line_end) = find(&self.raw, b"\r\n") {
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
            let Ok(size) = usize::from_str_radix(size_text.trim(), 16) else {
                self.ended = true;
                return;
            };
            if size == 0 {
                self.ended = true;
                return;
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.decoded.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }

    /// The next event, or None after `timeout` or at the end of the stream.
    pub fn next_event(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            self.decode_chunks();
            if let Some(nl) = self.decoded.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.decoded.drain(..=nl).collect();
                return Some(
                    serde_json::from_slice(&line).unwrap_or_else(|e| {
                        panic!("watch event is not JSON ({e}): {}", String::from_utf8_lossy(&line))
                    }),
                );
            }
            if self.ended {
                return None;
            }
            let remaining = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            self.stream.set_read_timeout(Some(remaining)).ok()?;
            match self.stream.read(&mut buf) {
                Ok(0) => self.ended = true,
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return None,
                Err(_) => self.ended = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(dechunk(b"5\r\nab").is_err());
    }

    #[test]
    fn heads_parse() {
        let (status, headers) = parse_head("HTTP/1.1 404 Not Found\r\nWarning: 299 - \"x\"\r\nA: b").unwrap();
        assert_eq!(status, 404);
        assert_eq!(headers[0], ("Warning".to_string(), "299 - \"x\"".to_string()));
    }
}
