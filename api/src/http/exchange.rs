//! One request on a worker: its head, its body as a reader, and the ways to answer it (a
//! whole response, a chunked stream, or an upgrade), after which a kept-alive connection
//! goes back to the reactor.

use super::body::{Framing, Input};
use super::conn::{Conn, Socket};
use super::head::Head;
use super::Home;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

/// A request being served.
pub struct Request {
    head: Head,
    input: Input<Conn>,
    framing: Framing,
    /// `Expect: 100-continue`: the interim answer is sent when the body is first read.
    expect_continue: bool,
    /// The bearer token the listener requires (TCP), None on the unix socket.
    pub token: Option<Arc<String>>,
    home: Home,
}

/// A whole answer.
pub struct Response {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(code: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response { code, headers: vec![("Content-Type".into(), content_type.into())], body }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The reason phrase of the codes the API answers with.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The bytes of a response head.
pub fn head_bytes(code: u16, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

impl Request {
    pub(super) fn new(
        head: Head,
        conn: Conn,
        buf: Vec<u8>,
        start: usize,
        token: Option<Arc<String>>,
        home: Home,
    ) -> Result<Request, (Conn, String)> {
        let framing = match Framing::of(head.header("Content-Length"), head.header("Transfer-Encoding")) {
            Ok(f) => f,
            Err(message) => return Err((conn, message)),
        };
        let expect_continue =
            head.minor >= 1 && head.header("Expect").is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
        Ok(Request { head, input: Input::new(conn, buf, start), framing, expect_continue, token, home })
    }

    pub fn method(&self) -> &str {
        &self.head.method
    }

    /// Path and query, as on the request line.
    pub fn url(&self) -> &str {
        &self.head.target
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The declared body length (`Content-Length`), None for a chunked body.
    pub fn body_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            Framing::Chunked { .. } => None,
        }
    }

    /// The connection's socket, to poll whether the client has gone during a long request.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.input.source.as_fd()
    }

    /// Whether the client has closed its end.
    pub fn client_gone(&self) -> bool {
        self.input.source.client_gone()
    }

    /// The body, read as it arrives, for as long as it takes (an image upload).
    pub fn body(&mut self) -> BodyReader<'_> {
        BodyReader { request: self, deadline: None }
    }

    /// The body, which must have arrived within `within`: a client trickling a small body
    /// cannot hold a worker for longer.
    pub fn body_within(&mut self, within: std::time::Duration) -> BodyReader<'_> {
        BodyReader { request: self, deadline: std::time::Instant::now().checked_add(within) }
    }

    /// Sends `response`; the connection returns to the reactor for the next request when it
    /// is kept alive and its body was read to the end (an unread body ends the connection).
    pub fn respond(self, mut response: Response) {
        let unread = self.framing != Framing::Done;
        let reusable = self.head.keep_alive() && !unread;
        response.headers.push(("Content-Length".into(), response.body.len().to_string()));
        if !reusable {
            response.headers.push(("Connection".into(), "close".into()));
        }
        let Request { head, input, home, token, .. } = self;
        let (mut conn, rest) = input.into_parts();
        let bytes = head_bytes(response.code, &response.headers);
        let body: &[u8] = if head.method == "HEAD" { &[] } else { &response.body };
        match write_both(&mut conn, &bytes, body) {
            Ok(()) if reusable => home.give_back(conn, rest, token),
            Ok(()) if !unread => {}
            Ok(()) => {
                let _ = conn.socket.shutdown(std::net::Shutdown::Write);
                home.linger(conn);
            }
            Err(e) => log::debug!("API: writing a response: {e}"),
        }
    }

    /// Starts a chunked 200 answer of `content_type`, each piece sent at once; the connection
    /// closes when the stream ends.
    pub fn into_stream(self, content_type: &str) -> io::Result<ChunkedStream> {
        let headers = [
            ("Content-Type".to_string(), content_type.to_string()),
            ("Transfer-Encoding".into(), "chunked".into()),
            ("Cache-Control".into(), "no-cache, private".into()),
            ("Connection".into(), "close".into()),
        ];
        let (mut conn, _) = self.input.into_parts();
        conn.write_all(&head_bytes(200, &headers))?;
        Ok(ChunkedStream { conn })
    }

    /// Answers `101 Switching Protocols` to `protocol` with `headers`; the connection is then
    /// the caller's, in both directions, with whatever the client sent after the head first.
    pub fn upgrade(self, protocol: &str, headers: &[(String, String)]) -> io::Result<Upgraded> {
        let mut all = vec![("Connection".to_string(), "Upgrade".to_string()), ("Upgrade".into(), protocol.into())];
        all.extend_from_slice(headers);
        let (mut conn, rest) = self.input.into_parts();
        conn.write_all(&head_bytes(101, &all))?;
        Ok(Upgraded { early: io::Cursor::new(rest), conn })
    }
}

/// Writes `head` then `body` in as few writes as the socket takes (one, usually), without
/// copying the body behind the head.
fn write_both(conn: &mut Conn, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
    while !head.is_empty() {
        let n = conn.write_vectored(&[io::IoSlice::new(head), io::IoSlice::new(body)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    conn.write_all(body)
}

/// A request's body as a reader; its end is the body's end.
pub struct BodyReader<'r> {
    request: &'r mut Request,
    deadline: Option<std::time::Instant>,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the body did not arrive in time"));
        }
        let request = &mut *self.request;
        if std::mem::take(&mut request.expect_continue) && request.framing != Framing::Done {
            request.input.source.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        request.framing.read(&mut request.input, out)
    }
}

/// A chunked answer under way.
pub struct ChunkedStream {
    conn: Conn,
}

impl ChunkedStream {
    /// Sends one chunk (an empty piece sends nothing: it would end the stream).
    pub fn send(&mut self, piece: &[u8]) -> io::Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        let mut bytes = format!("{:x}\r\n", piece.len()).into_bytes();
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
        self.conn.write_all(&bytes)
    }

    /// Ends the stream with the last chunk.
    pub fn finish(mut self) -> io::Result<()> {
        self.conn.write_all(b"0\r\n\r\n")
    }

    pub fn client_gone(&self) -> bool {
        self.conn.client_gone()
    }
}

/// An upgraded connection: reads give the bytes the client sent early first.
pub struct Upgraded {
    early: io::Cursor<Vec<u8>>,
    pub conn: Conn,
}

impl Upgraded {
    /// A handle for writing to the client while this one reads.
    pub fn writer(&self) -> io::Result<Socket> {
        self.conn.try_clone_socket()
    }

    /// Upgraded connections carry a long-lived byte stream: no read deadline.
    pub fn without_read_timeout(self) -> io::Result<Upgraded> {
        match &self.conn.socket {
            Socket::Tcp(s) => s.set_read_timeout(None)?,
            Socket::Unix(s) => s.set_read_timeout(None)?,
        }
        Ok(self)
    }
}

impl Read for Upgraded {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if (self.early.position() as usize) < self.early.get_ref().len() {
            return self.early.read(out);
        }
        self.conn.read(out)
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
