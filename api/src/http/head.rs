//! A request head (request line and header fields) parsed with httparse, bounded in size and
//! field count, with every string checked to be UTF-8 (a 400 otherwise, never a dropped
//! connection).

/// The largest request head read (1 MiB, Go net/http's `DefaultMaxHeaderBytes`).
pub const MAX_HEAD: usize = 1 << 20;
/// The most header fields one request may carry.
pub const MAX_HEADERS: usize = 128;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// HTTP/1.`minor`.
    pub minor: u8,
    pub headers: Vec<(String, String)>,
}

/// Why a head is refused; each is answered before the connection closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// 431: over `MAX_HEAD` bytes or `MAX_HEADERS` fields.
    TooLarge(String),
    /// 400: not HTTP/1.x, or not UTF-8.
    Malformed(String),
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the connection stays open after this request: HTTP/1.1 unless `Connection:
    /// close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let tokens = self.header("Connection").unwrap_or("").to_ascii_lowercase();
        let has = |t: &str| tokens.split(',').any(|x| x.trim() == t);
        if self.minor >= 1 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

/// Parses the head at the start of `buf`: None while it is incomplete (and under
/// `MAX_HEAD`), else the head and its length in bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let status = match request.parse(buf) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooLarge(format!("the request has more than {MAX_HEADERS} header fields")))
        }
        Err(e) => return Err(malformed(buf, e)),
    };
    let length = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() > MAX_HEAD => {
            return Err(HeadError::TooLarge(format!("the request head is larger than {MAX_HEAD} bytes")))
        }
        httparse::Status::Partial => return Ok(None),
    };
    if length > MAX_HEAD {
        return Err(HeadError::TooLarge(format!("the request head is larger than {MAX_HEAD} bytes")));
    }
    let mut headers = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let value = std::str::from_utf8(field.value)
            .map_err(|_| HeadError::Malformed(format!("the value of header {:?} is not valid UTF-8", field.name)))?;
        headers.push((field.name.to_string(), value.to_string()));
    }
    let head = Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        minor: request.version.unwrap_or(1),
        headers,
    };
    Ok(Some((head, length)))
}

/// A 400's message for a head httparse refused, naming invalid UTF-8 when that is the cause
/// (httparse reports it only as a bad token).
fn malformed(buf: &[u8], error: httparse::Error) -> HeadError {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    if matches!(error, httparse::Error::Token) && std::str::from_utf8(line).is_err() {
        return HeadError::Malformed("the request line is not valid UTF-8".into());
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    if std::str::from_utf8(&buf[..end]).is_err() {
        return HeadError::Malformed("the request head is not valid UTF-8".into());
    }
    HeadError::Malformed(format!("malformed HTTP request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_head_parses_with_its_length_and_fields() {
        let raw = b"GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\nrest";
        let (head, n) = parse(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 4);
        assert_eq!((head.method.as_str(), head.target.as_str(), head.minor), ("GET", "/api/v1/pods?watch=1", 1));
        assert_eq!(head.header("accept"), Some("application/json"));
        assert!(head.keep_alive());
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        let head = |raw: &[u8]| parse(raw).unwrap().unwrap().0;
        assert!(!head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn invalid_utf8_is_a_malformed_head_not_a_dropped_connection() {
        let e = parse(b"GET /api/v1/\xff\xfe HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(e, HeadError::Malformed("the request line is not valid UTF-8".into()));
        let e = parse(b"GET / HTTP/1.1\r\nX-A: \xc3\x28\r\n\r\n").unwrap_err();
        assert!(matches!(&e, HeadError::Malformed(m) if m.contains("\"X-A\" is not valid UTF-8")), "{e:?}");
    }

    #[test]
    fn floods_are_too_large() {
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse(raw.as_bytes()), Err(HeadError::TooLarge(_))));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(parse(long.as_bytes()), Err(HeadError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
            let mut framed = b"GET /".to_vec();
            framed.extend_from_slice(&bytes);
            framed.extend_from_slice(b" HTTP/1.1\r\n\r\n");
            if let Ok(Some((head, _))) = parse(&framed) {
                prop_assert!(head.target.starts_with('/'));
            }
        }
    }
}
