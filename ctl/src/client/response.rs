//! Reading an HTTP/1.1 response: the head with `httparse`, then a body framed by
//! Content-Length, chunked transfer coding, or the end of the connection, read as a stream.

use std::io::{self, BufRead, BufReader, Read};

/// A response head plus its body; `B` is a streaming reader or the collected bytes.
#[derive(Debug)]
pub struct Response<B> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: B,
}

impl<B> Response<B> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `None` before a size line, and `done` after the last.
    Chunked {
        left: Option<u64>,
        done: bool,
    },
    UntilEof,
}

/// A response body as a `Read`, decoding chunked transfer coding on the fly so watches and
/// log streams can be consumed as they arrive.
pub struct BodyReader<R> {
    inner: BufReader<R>,
    framing: Framing,
}

const MAX_HEAD: usize = 64 * 1024;

/// Reads the status line and headers from `stream`; the returned reader yields the body.
pub fn read_response<R: Read>(stream: R, request_method: &str) -> io::Result<Response<BodyReader<R>>> {
    let mut inner = BufReader::new(stream);
    let mut head = Vec::new();
    // Heads end at an empty line; reading line by line never consumes body bytes.
    loop {
        let before = head.len();
        let n = inner.by_ref().take((MAX_HEAD - before) as u64 + 1).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before answering",
            ));
        }
        if head.len() > MAX_HEAD {
            return Err(invalid("response head larger than 64 KiB"));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let mut header_slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut header_slots);
    match parsed.parse(&head).map_err(|e| invalid(&format!("malformed response head: {e}")))? {
        httparse::Status::Complete(_) => {}
        httparse::Status::Partial => return Err(invalid("truncated response head")),
    }
    let status = parsed.code.ok_or_else(|| invalid("response without a status code"))?;
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let framing = if request_method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        Framing::Chunked { left: None, done: false }
    } else if let Some(len) = find("content-length") {
        Framing::Length(len.parse().map_err(|_| invalid(&format!("invalid Content-Length {len:?}")))?)
    } else {
        Framing::UntilEof
    };
    Ok(Response { status, headers, body: BodyReader { inner, framing } })
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl<R: Read> BodyReader<R> {
    /// Reads the rest of the body.
    pub fn into_bytes(mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out)?;
        Ok(out)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.inner.by_ref().take(4096).read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body ended mid-line"));
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    fn read_chunked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Framing::Chunked { left, done } = self.framing else { unreachable!() };
            if done {
                return Ok(0);
            }
            match left {
                None => {
                    let line = self.read_line()?;
                    let size_text = line.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size_text, 16)
                        .map_err(|_| invalid(&format!("invalid chunk size line {line:?}")))?;
                    if size == 0 {
                        // Trailers, if any, end with an empty line.
                        while !self.read_line()?.is_empty() {}
                        self.framing = Framing::Chunked { left: None, done: true };
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked { left: Some(size), done: false };
                }
                Some(0) => {
                    let line = self.read_line()?;
                    if !line.is_empty() {
                        return Err(invalid("chunk not followed by CRLF"));
                    }
                    self.framing = Framing::Chunked { left: None, done: false };
                }
                Some(n) => {
                    let want = buf.len().min(n as usize);
                    let got = self.inner.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body ended mid-chunk"));
                    }
                    self.framing = Framing::Chunked { left: Some(n - got as u64), done: false };
                    return Ok(got);
                }
            }
        }
    }
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(n) => {
                let want = buf.len().min(n as usize);
                let got = self.inner.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("body ended {n} bytes short")));
                }
                self.framing = Framing::Length(n - got as u64);
                Ok(got)
            }
            Framing::UntilEof => self.inner.read(buf),
            Framing::Chunked { .. } => self.read_chunked(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Response<Vec<u8>> {
        let r = read_response(raw.as_bytes(), "GET").unwrap();
        let body = r.body.into_bytes().unwrap();
        Response { status: r.status, headers: r.headers, body }
    }

    #[test]
    fn content_length_bodies_stop_at_the_length() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nWarning: 299 - \"x\"\r\n\r\nhelloEXTRA");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("warning"), Some("299 - \"x\""));
    }

    #[test]
    fn chunked_bodies_are_decoded_with_extensions_and_trailers() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\n",
        );
        assert_eq!(String::from_utf8(r.body).unwrap(), "Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn bodies_without_framing_run_to_eof_and_204_has_none() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\n\r\nall of it").body, b"all of it");
        assert_eq!(parse("HTTP/1.1 204 No Content\r\n\r\n").body, b"");
    }

    #[test]
    fn truncated_and_malformed_bodies_fail() {
        let r = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..], "GET").unwrap();
        assert!(r.body.into_bytes().is_err());
        let r = read_response(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..], "GET").unwrap();
        assert!(r.body.into_bytes().is_err());
        assert!(read_response(&b"garbage\r\n\r\n"[..], "GET").is_err());
    }
}
