//! Moves bytes both ways between a client and its upstream until both sides are done.
//! Each direction starts with a small copy buffer (request/response traffic: one read and
//! one write per message, no pipe to set up, which keeps new connections cheap) and moves
//! to splice(2) through a pipe as soon as one read fills the buffer (bulk: the bytes then
//! never enter user space, and the pipe is the connection's bounded buffer). A half-close
//! is passed on; an error ends both directions.

use super::reactor::{Direction, Io};
use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::Poll;

/// The copy buffer of one direction; a read that fills it marks the stream as bulk.
const SMALL: usize = 16 * 1024;
/// The copy buffer once a stream that cannot be spliced turned out to be bulk.
const CHUNK: usize = 64 * 1024;
/// The pipe between the two sockets of a spliced direction: the most one direction of a
/// connection holds in the kernel on its way through.
const PIPE: usize = 256 * 1024;
/// Linux's pipe size when it cannot be changed.
const DEFAULT_PIPE: usize = 64 * 1024;

/// Relays until both directions have ended; returns bytes (client→upstream, upstream→client).
pub async fn relay(client: &Io<TcpStream>, upstream: &Io<TcpStream>) -> io::Result<(u64, u64)> {
    let ended = Cell::new(false);
    let (up, down) = smol::future::zip(one_way(client, upstream, &ended), one_way(upstream, client, &ended)).await;
    if up.is_err() || down.is_err() {
        let _ = client.get_ref().shutdown(Shutdown::Both);
        let _ = upstream.get_ref().shutdown(Shutdown::Both);
    }
    Ok((up?, down?))
}

/// One direction; `ended` says whether the other one has already read its end of stream.
async fn one_way(from: &Io<TcpStream>, to: &Io<TcpStream>, ended: &Cell<bool>) -> io::Result<u64> {
    let result = copy_then_splice(from, to).await;
    match &result {
        // Pass the end on: the other side sees EOF, and the reverse direction continues.
        // When that one has ended too, both sockets are read to their end and are closed
        // right after, which sends the FIN anyway.
        Ok(_) => {
            if !ended.replace(true) {
                let _ = to.get_ref().shutdown(Shutdown::Write);
            }
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
async fn copy_then_splice(from: &Io<TcpStream>, to: &Io<TcpStream>) -> io::Result<u64> {
    let mut total = 0u64;
    if !copy(from, to, &mut vec![0u8; SMALL], &mut total, true).await? {
        return Ok(total);
    }
    match nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
        Ok((r, w)) => {
            // A larger pipe than the default moves more per splice; if the kernel refuses
            // (pipe-user-pages-soft reached), the default one still works.
            let capacity = fcntl(w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE as i32))
                .or_else(|_| fcntl(w.as_raw_fd(), FcntlArg::F_GETPIPE_SZ))
                .map_or(DEFAULT_PIPE, |n| n as usize);
            spliced(from, to, &r, &w, total, capacity).await
        }
        Err(_) => copied(from, to, total).await,
    }
}

/// Copies through `buf` until the end of the stream (false) or, with `until_full`, until
/// a read fills `buf` (true), counting into `total`.
async fn copy(
    from: &Io<TcpStream>,
    to: &Io<TcpStream>,
    buf: &mut [u8],
    total: &mut u64,
    until_full: bool,
) -> io::Result<bool> {
    loop {
        let n = read(from, buf).await?;
        if n == 0 {
            return Ok(false);
        }
        write_all(to, &buf[..n]).await?;
        *total += n as u64;
        if until_full && n == buf.len() {
            return Ok(true);
        }
    }
}

/// Reads what is there, waiting only if nothing is. A short read means the socket's
/// receive queue was emptied, so the next read waits for an edge instead of failing first.
async fn read(from: &Io<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    let n = from.with(Direction::Read, |mut s| s.read(buf)).await?;
    if n > 0 && n < buf.len() {
        from.drained(Direction::Read);
    }
    Ok(n)
}

/// Writes all of `buf`; a short write means the send buffer is full.
async fn write_all(to: &Io<TcpStream>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = to.with(Direction::Write, |mut s| s.write(buf)).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "the peer accepts no more bytes"));
        }
        if n < buf.len() {
            to.drained(Direction::Write);
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// Splices `from` → pipe → `to`, reading on while the pipe has room even when `to` cannot
/// take more yet (and writing while `from` has nothing new), so neither socket's queue
/// waits for the other's: the pipe is the connection's bounded buffer.
async fn spliced(
    from: &Io<TcpStream>,
    to: &Io<TcpStream>,
    r: &OwnedFd,
    w: &OwnedFd,
    total: u64,
    capacity: usize,
) -> io::Result<u64> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let (mut total, mut queued, mut ended, mut spliced_any) = (total, 0usize, false, false);
    // A splice in that found no room can fail with EAGAIN while the socket still holds
    // bytes (a pipe counts buffers, not bytes): then no edge will come, and the read is
    // retried once the pipe has been drained some.
    let mut maybe_pipe_full = false;
    let outcome = std::future::poll_fn(|cx| loop {
        let mut moved = false;
        if !ended && queued < capacity {
            let room = capacity - queued;
            match from.poll_io(Direction::Read, cx, |s| splice(s, None, w, None, room, flags).map_err(io::Error::from))
            {
                Poll::Ready(Ok(0)) => ended = true,
                Poll::Ready(Ok(n)) => (queued, spliced_any, moved) = (queued + n, true, true),
                // Nothing is in the pipe yet, so copying on loses nothing.
                Poll::Ready(Err(e)) if e.raw_os_error() == Some(Errno::EINVAL as i32) && !spliced_any => {
                    return Poll::Ready(Ok(None));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => maybe_pipe_full = queued > 0,
            }
        }
        if queued > 0 {
            match to.poll_io(Direction::Write, cx, |s| splice(r, None, s, None, queued, flags).map_err(io::Error::from))
            {
                Poll::Ready(Ok(n)) => {
                    (queued, total, moved) = (queued - n, total + n as u64, true);
                    if std::mem::take(&mut maybe_pipe_full) {
                        from.retry(Direction::Read);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if ended && queued == 0 {
            return Poll::Ready(Ok(Some(total)));
        }
        if !moved {
            return Poll::Pending;
        }
    })
    .await?;
    match outcome {
        Some(total) => Ok(total),
        None => copied(from, to, total).await,
    }
}

async fn copied(from: &Io<TcpStream>, to: &Io<TcpStream>, mut total: u64) -> io::Result<u64> {
    copy(from, to, &mut vec![0u8; CHUNK], &mut total, false).await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Accepts one client on `front` and relays it to `upstream` until both sides end.
    fn relay_one(front: &std::net::TcpListener, upstream: std::net::SocketAddr) -> (u64, u64) {
        crate::worker::block_on(async {
            let (c, _) = front.accept().unwrap();
            c.set_nonblocking(true).unwrap();
            let u = TcpStream::connect(upstream).unwrap();
            u.set_nonblocking(true).unwrap();
            relay(&Io::new(c).unwrap(), &Io::new(u).unwrap()).await.unwrap()
        })
        .unwrap()
    }

    /// Small request/response rounds on one connection (keep-alive): each short read marks
    /// the socket drained, and the next message must still be seen.
    #[test]
    fn small_messages_go_back_and_forth_on_one_connection() {
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up_addr = upstream.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            let mut buf = [0u8; 64];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(front_addr).unwrap();
            for i in 0..500u32 {
                let msg = i.to_be_bytes();
                c.write_all(&msg).unwrap();
                let mut back = [0u8; 4];
                c.read_exact(&mut back).unwrap();
                assert_eq!(back, msg, "round {i}");
            }
        });
        let moved = relay_one(&front, up_addr);
        client.join().unwrap();
        assert_eq!(moved, (2000, 2000));
    }

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
        let moved = relay_one(&front, up_addr);
        server.join().unwrap();
        let mut back = client.join().unwrap();
        back.reverse();
        assert_eq!(moved, (payload.len() as u64, payload.len() as u64));
        assert!(back == payload, "the relayed bytes differ");
    }

    /// An upstream that writes many small segments and closes while the client is not
    /// reading yet: the pipe fills (by buffers, not bytes) with the socket still holding
    /// data and its end already queued, so no further edge comes — the read must be retried
    /// once the client drains, or the last bytes and the end would never arrive. Whether a
    /// run gets there depends on how the kernel coalesced the segments: without the retry,
    /// about one run in ten hung here.
    #[test]
    fn a_slow_client_gets_every_byte_of_a_stream_of_small_segments() {
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up_addr = upstream.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            s.set_nodelay(true).unwrap();
            for i in 0..16000u32 {
                let chunk: Vec<u8> = (0..1000u32).map(|j| ((i + j) % 251) as u8).collect();
                s.write_all(&chunk).unwrap();
            }
        });
        let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(front_addr).unwrap();
            c.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let mut got = Vec::new();
            c.read_to_end(&mut got).expect("the stream ends within 20 s");
            got
        });
        let (done, moved) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(relay_one(&front, up_addr)));
        let moved = moved.recv_timeout(std::time::Duration::from_secs(30)).expect("the relay ends within 30 s");
        server.join().unwrap();
        let got = client.join().unwrap();
        let want: Vec<u8> = (0..16000u32).flat_map(|i| (0..1000u32).map(move |j| ((i + j) % 251) as u8)).collect();
        assert_eq!(moved, (0, want.len() as u64));
        assert!(got == want, "the relayed bytes differ ({} of {} arrived)", got.len(), want.len());
    }
}
