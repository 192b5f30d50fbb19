//! The benchmark's backend: a small, fast HTTP/1.1 server on loopback, the same for all
//! three paths. A pool of threads each blocks in `accept` and serves its connection to the
//! end (keep-alive included), so neither forking nor a thread spawn per connection skews
//! the new-connection figure. `GET /bulk` sends a large static file with sendfile(2), as a
//! static file server does (std's `io::copy` would not: from a file to a socket it reads and
//! sends 8 KiB at a time); anything else gets a short greeting.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n";

/// A running backend.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Starts `threads` serving threads on a free loopback port; `bulk` is served at `/bulk`.
pub fn start(threads: usize, bulk: PathBuf) -> io::Result<Backend> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let addr = listener.local_addr()?;
    let size = std::fs::metadata(&bulk)?.len();
    let bulk = Arc::new(bulk);
    for i in 0..threads {
        let (listener, bulk) = (listener.clone(), bulk.clone());
        std::thread::Builder::new().name(format!("backend-{i}")).spawn(move || loop {
            if let Ok((conn, _)) = listener.accept() {
                let _ = serve(conn, &bulk, size);
            }
        })?;
    }
    Ok(Backend { addr })
}

/// Serves requests on one connection until the client closes it or asks to.
fn serve(conn: TcpStream, bulk: &PathBuf, bulk_size: u64) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let wants_bulk = line.split_whitespace().nth(1) == Some("/bulk");
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if header.eq_ignore_ascii_case("connection: close") {
                close = true;
            }
        }
        if wants_bulk {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {bulk_size}\r\n\r\n"
            );
            out.write_all(head.as_bytes())?;
            send_file(&out, &File::open(bulk)?, bulk_size)?;
        } else {
            out.write_all(HELLO)?;
        }
        if close {
            return Ok(());
        }
    }
}

/// Sends the first `size` bytes of `file` on `out` (blocking) with sendfile(2).
fn send_file(out: &TcpStream, file: &File, size: u64) -> io::Result<()> {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < size {
        let left = (size - offset as u64) as usize;
        match nix::sys::sendfile::sendfile(out, file, Some(&mut offset), left) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the bulk file ended early")),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
