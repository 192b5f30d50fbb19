//! A request body, framed by `Content-Length` or chunked transfer coding, read from what
//! followed the head in the connection's buffer and then from the connection itself. Every
//! line it reads is bounded, every size checked.

use std::io::{self, Read};

/// The longest chunk-size line or trailer field accepted.
const MAX_LINE: usize = 4096;
/// The most trailer fields after the last chunk.
const MAX_TRAILERS: usize = 64;

/// Bytes of one connection: a buffer of what was read ahead, then the source.
pub struct Input<R> {
    pub source: R,
    pub buf: Vec<u8>,
    pub start: usize,
}

impl<R: Read> Input<R> {
    pub fn new(source: R, buf: Vec<u8>, start: usize) -> Input<R> {
        Input { source, buf, start }
    }

    /// What was read ahead and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The read-ahead bytes, for the next request on the connection.
    pub fn into_parts(mut self) -> (R, Vec<u8>) {
        self.buf.drain(..self.start);
        (self.source, self.buf)
    }

    /// One line ending in LF (CR LF or LF), without its ending; an error past `MAX_LINE`.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buffered().iter().position(|&b| b == b'\n') {
                let mut line = self.buffered()[..end].to_vec();
                self.start += end + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buffered().len() > MAX_LINE {
                return Err(invalid("a chunk-size or trailer line is too long"));
            }
            self.fill()?;
        }
    }

    /// Reads more from the source into the buffer; an error at its end.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        let mut chunk = [0u8; 8192];
        let n = self.source.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the client ended the body early"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let ahead = self.buffered();
        if !ahead.is_empty() {
            let n = ahead.len().min(out.len());
            out[..n].copy_from_slice(&ahead[..n]);
            self.start += n;
            return Ok(n);
        }
        self.source.read(out)
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Where a body stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `remaining` bytes of a `Content-Length` body.
    Length(u64),
    /// Chunked: `remaining` bytes of the current chunk (0: a size line comes next).
    Chunked { remaining: u64, started: bool },
    /// Everything read (or there was no body).
    Done,
}

impl Framing {
    /// The framing a head announces; a 400's message when it is not one we can read.
    pub fn of(content_length: Option<&str>, transfer_encoding: Option<&str>) -> Result<Framing, String> {
        if let Some(coding) = transfer_encoding {
            if !coding.trim().eq_ignore_ascii_case("chunked") {
                return Err(format!("unsupported Transfer-Encoding {coding:?} (only chunked is)"));
            }
            if content_length.is_some() {
                return Err("a request may not carry both Content-Length and Transfer-Encoding".into());
            }
            return Ok(Framing::Chunked { remaining: 0, started: false });
        }
        match content_length.map(str::trim) {
            None => Ok(Framing::Done),
            Some(n) => match n.parse::<u64>() {
                Ok(0) => Ok(Framing::Done),
                Ok(n) => Ok(Framing::Length(n)),
                Err(_) => Err(format!("invalid Content-Length {n:?}")),
            },
        }
    }

    /// Reads body bytes into `out`; 0 at the end of the body.
    pub fn read<R: Read>(&mut self, input: &mut Input<R>, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match *self {
                Framing::Done => return Ok(0),
                Framing::Length(remaining) => {
                    let want = out.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let n = input.read(&mut out[..want])?;
                    if n == 0 && want > 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the client ended the body early"));
                    }
                    let left = remaining - n as u64;
                    *self = if left == 0 { Framing::Done } else { Framing::Length(left) };
                    return Ok(n);
                }
                Framing::Chunked { remaining: 0, started } => {
                    if started {
                        // The CRLF closing the previous chunk's data.
                        if !input.read_line()?.is_empty() {
                            return Err(invalid("a chunk's data is longer than its size"));
                        }
                    }
                    let line = input.read_line()?;
                    let size = chunk_size(&line)?;
                    if size == 0 {
                        skip_trailers(input)?;
                        *self = Framing::Done;
                        return Ok(0);
                    }
                    *self = Framing::Chunked { remaining: size, started: true };
                }
                Framing::Chunked { remaining, started } => {
                    let want = out.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let n = input.read(&mut out[..want])?;
                    if n == 0 && want > 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the client ended the body early"));
                    }
                    *self = Framing::Chunked { remaining: remaining - n as u64, started };
                    return Ok(n);
                }
            }
        }
    }
}

/// A chunk-size line: hex digits, then optional `;extensions`.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = std::str::from_utf8(digits).map_err(|_| invalid("a chunk size is not hexadecimal"))?.trim();
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid("a chunk size is not a hexadecimal number of at most 15 digits"));
    }
    u64::from_str_radix(digits, 16).map_err(|_| invalid("a chunk size is not hexadecimal"))
}

fn skip_trailers<R: Read>(input: &mut Input<R>) -> io::Result<()> {
    for _ in 0..=MAX_TRAILERS {
        if input.read_line()?.is_empty() {
            return Ok(());
        }
    }
    Err(invalid("too many trailer fields"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(framing: Framing, bytes: &[u8]) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let mut input = Input::new(io::Cursor::new(Vec::new()), bytes.to_vec(), 0);
        let mut framing = framing;
        let mut body = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = framing.read(&mut input, &mut buf)?;
            if n == 0 {
                return Ok((body, input.buffered().to_vec()));
            }
            body.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn chunked_bodies_decode_and_leave_the_next_request() {
        let chunked = Framing::of(None, Some("chunked")).unwrap();
        let (body, rest) = read_all(chunked, b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\nGET /").unwrap();
        assert_eq!((body.as_slice(), rest.as_slice()), (&b"Wikipedia"[..], &b"GET /"[..]));
        let (body, rest) = read_all(Framing::of(Some("3"), None).unwrap(), b"abcdef").unwrap();
        assert_eq!((body.as_slice(), rest.as_slice()), (&b"abc"[..], &b"def"[..]));
    }

    #[test]
    fn bad_framing_is_refused() {
        assert!(Framing::of(Some("-1"), None).is_err());
        assert!(Framing::of(Some("18446744073709551616"), None).is_err());
        assert!(Framing::of(Some("1"), Some("chunked")).is_err());
        assert!(Framing::of(None, Some("gzip")).is_err());
        let chunked = Framing::Chunked { remaining: 0, started: false };
        assert!(read_all(chunked, b"fffffffffffffffff\r\n").is_err());
        assert!(read_all(chunked, b"zz\r\n").is_err());
        assert!(read_all(chunked, b"2\r\nabc\r\n0\r\n\r\n").is_err());
        assert!(read_all(chunked, &[b'1'; 10000]).is_err());
        assert_eq!(read_all(Framing::Length(10), b"abc").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    proptest! {
        #[test]
        fn any_chunked_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read_all(Framing::Chunked { remaining: 0, started: false }, &bytes);
        }

        #[test]
        fn chunked_encoding_round_trips(pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..8)) {
            let mut wire = Vec::new();
            for p in &pieces {
                wire.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
                wire.extend_from_slice(p);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let (body, rest) = read_all(Framing::Chunked { remaining: 0, started: false }, &wire).unwrap();
            prop_assert_eq!(body, pieces.concat());
            prop_assert!(rest.is_empty());
        }
    }
}
