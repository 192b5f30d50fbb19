//! Writing an HTTP/1.1 request. One request per connection (`Connection: close`) keeps the
//! client free of pooling state; the server sees exactly what curl would send.

use std::io::{self, Write};

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
    fn bodiless_gets_end_at_the_blank_line() {
        let mut out = Vec::new();
        let head = RequestHead { host: "h:1", token: None, accept: "*/*" };
        write_request(&mut out, "GET", "/version", &head, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Connection: close\r\n\r\n"));
        assert!(!text.contains("Authorization"));
    }
}
