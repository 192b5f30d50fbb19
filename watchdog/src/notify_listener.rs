//! Tests' stand-in for systemd: a datagram socket that notifications are sent to.

use super::Notifier;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

/// A socket bound in `dir` and a notifier that sends to it.
pub fn listen(dir: &Path) -> (UnixDatagram, Notifier) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
    (socket, Notifier::new(path.to_str().expect("a UTF-8 temp path")).expect("a notifier"))
}

/// The next notification, or None when none arrives within `timeout`.
pub fn receive(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 256];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => None,
        Err(e) => panic!("receiving a notification: {e}"),
    }
}
