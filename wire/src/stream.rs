//! Byte streams over upgraded connections.

use std::io::{self, Read, Write};

/// Copies until `from` ends, flushing every piece: upgraded writers buffer, and an
/// interactive protocol must see each reply at once. Both ends of a port-forward use it.
pub fn copy_flushing(from: &mut dyn Read, to: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        to.flush()?;
        total += n as u64;
    }
}
