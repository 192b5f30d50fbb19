//! Moves bytes both ways between a client and its upstream until both sides are done.
//! Each direction starts with a small copy buffer (request/response traffic: one read and
//! one write per message, no pipe to set up, which keeps new connections cheap) and moves
//! to splice(2) through a pipe as soon as one read fills the buffer (bulk: the bytes then
//! never enter user space, and the pipe is the connection's bounded buffer). A half-close
//! is passed on; an error ends both directions.

use nix::errno::Errno;
use nix::fcntl::{splice, OFlag, SpliceFFlags};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;

/// The copy buffer of one direction; a read that fills it marks the stream as bulk.
const SMALL: usize = 16 * 1024;
/// Bytes moved per splice call.
const CHUNK: usize = 64 * 1024;

/// Relays until both directions have ended; returns bytes (client→upstream, upstream→client).
pub async fn relay(client: &Async<TcpStream>, upstream: &Async<TcpStream>) -> io::Result<(u64, u64)> {
    let (up, down) = smol::future::zip(one_way(client, upstream), one_way(upstream, client)).await;
    if up.is_err() || down.is_err() {
        let _ = client.get_ref().shutdown(Shutdown::Both);
        let _ = upstream.get_ref().shutdown(Shutdown::Both);
    }
    Ok((up?, down?))
}

async fn one_way(from: &Async<TcpStream>, to: &Async<TcpStream>) -> io::Result<u64> {
    let result = copy_then_splice(from, to).await;
    match &result {
        // Pass the end on: the other side sees EOF, and the reverse direction continues.
        Ok(_) => {
            let _ = to.get_ref().shutdown(Shutdown::Write);
        }
        // Wake the reverse direction too: one broken side ends the connection.
        Err(_) => {
            let _ = from.get_ref().shutdown(Shutdown::Both);
            let _ = to.get_ref().shutdown(Shutdown::Both);
        }
    }
    result
}

/// Copies through a small buffer until a read fills it, then splices the rest.
async fn copy_then_splice(from: &Async<TcpStream>, to: &Async<TcpStream>) -> io::Result<u64> {
    let mut buf = vec![0u8; SMALL];
    let mut writer = to;
    let mut total = 0u64;
    loop {
        let n = read_when_ready(from, &mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        writer.write_all(&buf[..n]).await?;
        total += n as u64;
        if n == buf.len() {
            drop(buf);
            return match nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
                Ok((r, w)) => spliced(from, to, &r, &w, total).await,
                Err(_) => copied(from, to, total).await,
            };
        }
    }
}

/// Waits for readability first and reads after, the reverse of `AsyncRead`'s order. Both
/// directions of a connection share one task, so each wake-up polls both: reading first
/// would cost the idle direction a failed read(2) every time, waiting first costs nothing
/// until the reactor has seen data.
async fn read_when_ready(from: &Async<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        from.readable().await?;
        match (&mut from.get_ref()).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

async fn spliced(
    from: &Async<TcpStream>,
    to: &Async<TcpStream>,
    r: &OwnedFd,
    w: &OwnedFd,
    mut total: u64,
) -> io::Result<u64> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut spliced_any = false;
    loop {
        let n = loop {
            match splice(from.get_ref(), None, w, None, CHUNK, flags) {
                Ok(n) => break n,
                Err(Errno::EAGAIN) => from.readable().await?,
                Err(Errno::EINTR) => {}
                // Nothing is in the pipe yet, so copying on loses nothing.
                Err(Errno::EINVAL) if !spliced_any => return copied(from, to, total).await,
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            return Ok(total);
        }
        spliced_any = true;
        let mut left = n;
        while left > 0 {
            match splice(r, None, to.get_ref(), None, left, flags) {
                Ok(m) => left -= m,
                Err(Errno::EAGAIN) => to.writable().await?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        total += n as u64;
    }
}

async fn copied(from: &Async<TcpStream>, to: &Async<TcpStream>, mut total: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let (mut reader, mut writer) = (from, to);
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        writer.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bulk_bytes_cross_both_ways_and_half_close_passes_on() {
        // echo upstream: reads everything, then answers with its reverse and closes.
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up_addr = upstream.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got.reverse();
            s.write_all(&got).unwrap();
        });
        let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(front_addr).unwrap();
            let mut writer = c.try_clone().unwrap();
            let w = std::thread::spawn(move || {
                writer.write_all(&sent).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap();
            w.join().unwrap();
            back
        });
        let moved = smol::block_on(async {
            let (c, _) = front.accept().unwrap();
            let c = Async::new(c).unwrap();
            let u = Async::<TcpStream>::connect(up_addr).await.unwrap();
            relay(&c, &u).await.unwrap()
        });
        server.join().unwrap();
        let mut back = client.join().unwrap();
        back.reverse();
        assert_eq!(moved, (payload.len() as u64, payload.len() as u64));
        assert!(back == payload, "the relayed bytes differ");
    }
}
