//! Moves bytes both ways between a client and its upstream until both sides are done:
//! splice(2) through a pipe (the pipe is the connection's bounded buffer, and the bytes
//! never enter user space), falling back to a bounded copy where splice is refused. A
//! half-close is passed on; an error ends both directions.

use nix::errno::Errno;
use nix::fcntl::{splice, OFlag, SpliceFFlags};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;

/// Bytes moved per splice call, and the copy buffer's size.
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
    let result = match nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
        Ok((r, w)) => spliced(from, to, &r, &w).await,
        Err(_) => copied(from, to, 0).await,
    };
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

async fn spliced(from: &Async<TcpStream>, to: &Async<TcpStream>, r: &OwnedFd, w: &OwnedFd) -> io::Result<u64> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
    loop {
        let n = loop {
            match splice(from.get_ref(), None, w, None, CHUNK, flags) {
                Ok(n) => break n,
                Err(Errno::EAGAIN) => from.readable().await?,
                Err(Errno::EINTR) => {}
                Err(Errno::EINVAL) if total == 0 => return copied(from, to, 0).await,
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            return Ok(total);
        }
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
