//! Writing an HTTP/1.1 request. One request per connection (`Connection: close`) keeps the
//! client free of pooling state; the server sees exactly what curl would send.

use std::io::{self, Read, Write};

/// A request body and its media type.
#[derive(Clone, Copy, Debug)]
pub struct Body<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// What goes on the wire besides method, path and body.
pub struct RequestHead<'a> {
    pub host: &'a str,
    pub token: Option<&'a str>,
    pub accept: &'a str,
}

/// Writes one complete request to `w`.
pub fn write_request(
    w: &mut dyn Write,
    method: &str,
    path: &str,
    head: &RequestHead<'_>,
    body: Option<Body<'_>>,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.map_or(0, |b| b.bytes.len()));
    write!(out, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", head.host)?;
    write!(
        out,
        "User-Agent: coracle/{}\r\nAccept: {}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        head.accept
    )?;
    if let Some(token) = head.token {
        write!(out, "Authorization: Bearer {token}\r\n")?;
    }
    match body {
        Some(b) => write!(out, "Content-Type: {}\r\nContent-Length: {}\r\n\r\n", b.content_type, b.bytes.len())?,
        None if matches!(method, "POST" | "PUT" | "PATCH") => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        None => out.extend_from_slice(b"\r\n"),
    }
    if let Some(b) = body {
        out.extend_from_slice(b.bytes);
    }
    w.write_all(&out)?;
    w.flush()
}

/// How an uploaded body's end is told to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadLength {
    /// A file of known size: `Content-Length`.
    Known(u64),
    /// A pipe: `Transfer-Encoding: chunked`.
    Chunked,
}

/// Writes a request whose body is read from `body` as it goes, never held whole in memory.
pub fn write_upload(
    w: &mut dyn Write,
    method: &str,
    path: &str,
    head: &RequestHead<'_>,
    content_type: &str,
    body: &mut dyn Read,
    length: UploadLength,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256);
    write!(out, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", head.host)?;
    write!(
        out,
        "User-Agent: coracle/{}\r\nAccept: {}\r\nConnection: close\r\nContent-Type: {content_type}\r\n",
        env!("CARGO_PKG_VERSION"),
        head.accept
    )?;
    if let Some(token) = head.token {
        write!(out, "Authorization: Bearer {token}\r\n")?;
    }
    match length {
        UploadLength::Known(n) => write!(out, "Content-Length: {n}\r\n\r\n")?,
        UploadLength::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n"),
    }
    w.write_all(&out)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("reading the upload: {e}"))),
        };
        match length {
            UploadLength::Known(_) => w.write_all(&buf[..n])?,
            UploadLength::Chunked => {
                write!(w, "{n:x}\r\n")?;
                w.write_all(&buf[..n])?;
                w.write_all(b"\r\n")?;
            }
        }
        sent += n as u64;
    }
    match length {
        UploadLength::Known(n) if n != sent => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the upload changed size while being sent: expected {n} bytes, read {sent}"),
            ))
        }
        UploadLength::Known(_) => {}
        UploadLength::Chunked => w.write_all(b"0\r\n\r\n")?,
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_host_token_and_length() {
        let mut out = Vec::new();
        let head = RequestHead { host: "localhost", token: Some("s3cret"), accept: "application/json" };
        let body = Body { content_type: "application/json", bytes: b"{}" };
        write_request(&mut out, "POST", "/api/v1/namespaces/default/pods", &head, Some(body)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: localhost\r\n"), "{text}");
        assert!(text.contains("Authorization: Bearer s3cret\r\n"));
        assert!(text.ends_with("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"), "{text}");
    }

    #[test]
    fn uploads_stream_with_length_or_chunks() {
        let head = RequestHead { host: "localhost", token: None, accept: "*/*" };
        let mut out = Vec::new();
        let mut body: &[u8] = b"archive";
        write_upload(&mut out, "POST", "/x", &head, "application/x-tar", &mut body, UploadLength::Known(7)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Type: application/x-tar\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 7\r\n\r\narchive"), "{text}");

        let mut out = Vec::new();
        let mut body: &[u8] = b"archive";
        write_upload(&mut out, "POST", "/x", &head, "application/x-tar", &mut body, UploadLength::Chunked).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Transfer-Encoding: chunked\r\n\r\n7\r\narchive\r\n0\r\n\r\n"), "{text}");

        let mut body: &[u8] = b"short";
        let err = write_upload(&mut Vec::new(), "POST", "/x", &head, "t", &mut body, UploadLength::Known(9));
        assert!(err.unwrap_err().to_string().contains("expected 9 bytes, read 5"));
    }

    #[test]
    fn bodiless_gets_end_at_the_blank_line() {
        let mut out = Vec::new();
        let head = RequestHead { host: "h:1", token: None, accept: "*/*" };
        write_request(&mut out, "GET", "/version", &head, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Connection: close\r\n\r\n"));
        assert!(!text.contains("Authorization"));
    }
}
