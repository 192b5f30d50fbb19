//! One client connection (TCP or unix socket), counted against the server's connection cap
//! for as long as it is open, and a "has the client gone" probe for long-running answers.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A share of a capped resource (connections, streams): taken while below the cap, given
/// back when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot of `counter` if fewer than `max` are taken.
    pub fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(counter.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The two transports the API listens on.
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// An open client connection and its place under the connection cap.
pub struct Conn {
    pub socket: Socket,
    _slot: Slot,
}

impl Conn {
    pub fn new(socket: Socket, slot: Slot) -> Conn {
        Conn { socket, _slot: slot }
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.set_nonblocking(on),
            Socket::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// Bounds each blocking read and write: a client that stalls mid-body or stops reading
    /// its answer loses the connection instead of holding a worker.
    pub fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))),
            Socket::Unix(s) => s.set_read_timeout(Some(timeout)).and_then(|()| s.set_write_timeout(Some(timeout))),
        }
    }

    /// A second handle on the same socket (port-forward reads one way, writes the other).
    pub fn try_clone_socket(&self) -> io::Result<Socket> {
        Ok(match &self.socket {
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
            Socket::Unix(s) => Socket::Unix(s.try_clone()?),
        })
    }

    /// Whether the client has closed the connection (or its sending side: as Go's net/http,
    /// a server takes that as the client leaving).
    pub fn client_gone(&self) -> bool {
        client_gone(self.as_fd())
    }
}

/// Whether the peer of `socket` closed its end, hung up or failed.
pub fn client_gone(socket: BorrowedFd<'_>) -> bool {
    // By hand: nix knows no POLLRDHUP (Linux's "the peer closed its end") and reads revents
    // holding it as nothing at all.
    let mut fd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: poll(2) on one pollfd we own, for a descriptor `socket` keeps open; no wait.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

impl Socket {
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Unix(s) => s.shutdown(how),
        }
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.socket.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_cap_and_come_back_when_dropped() {
        let counter = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&counter, 2).unwrap();
        let _b = Slot::take(&counter, 2).unwrap();
        assert!(Slot::take(&counter, 2).is_none());
        drop(a);
        assert!(Slot::take(&counter, 2).is_some());
        assert_eq!(counter.load(Ordering::Acquire), 1);
    }

    #[test]
    fn a_closed_peer_is_noticed_without_reading() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        assert!(!client_gone(ours.as_fd()));
        drop(theirs);
        assert!(client_gone(ours.as_fd()));
    }
}
