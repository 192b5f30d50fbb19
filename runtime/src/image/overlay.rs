//! overlayfs' on-disk whiteout format, which unpacked layers use so the runtime can mount
//! them as lower layers: a deleted NAME is a 0/0 character device, an opaque directory
//! carries `trusted.overlay.opaque=y`. Without the privilege to create those (not root),
//! the OCI markers `.wh.NAME` / `.wh..wh..opq` are kept instead; readers accept both.

use nix::sys::stat::{major, minor, mknod, Mode, SFlag};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// OCI marker prefix for a deleted entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// OCI marker for an opaque directory.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Records that `path` (a name in a layer) deletes whatever lower layers have there.
pub fn make_whiteout(path: &Path) -> io::Result<()> {
    match mknod(path, SFlag::S_IFCHR, Mode::empty(), 0) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            fs::File::create(path.with_file_name(format!("{WHITEOUT_PREFIX}{name}"))).map(drop)
        }
        Err(e) => Err(e.into()),
    }
}

/// Records that directory `dir` hides everything lower layers have beneath it.
pub fn mark_opaque(dir: &Path) -> io::Result<()> {
    match set_xattr(dir, OPAQUE_XATTR, b"y") {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP)) => {
            fs::File::create(dir.join(OPAQUE_MARKER)).map(drop)
        }
        Err(e) => Err(e),
    }
}

/// If the entry at `path` with metadata `meta` is a whiteout, the name it deletes.
pub fn whiteout_target(path: &Path, meta: &fs::Metadata) -> Option<std::ffi::OsString> {
    let name = path.file_name()?;
    if meta.file_type().is_char_device() && major(meta.rdev()) == 0 && minor(meta.rdev()) == 0 {
        return Some(name.to_os_string());
    }
    let s = name.to_str()?;
    if s == OPAQUE_MARKER {
        return None;
    }
    s.strip_prefix(WHITEOUT_PREFIX).map(Into::into)
}

/// Whether directory `dir` in a layer is opaque (xattr or OCI marker).
pub fn is_opaque(dir: &Path) -> bool {
    get_xattr(dir, OPAQUE_XATTR).is_some_and(|v| v == b"y") || dir.join(OPAQUE_MARKER).exists()
}

/// Sets an extended attribute on `path` itself (not a symlink's target).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let n = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both strings are NUL-terminated and live across the call; value is a valid
    // slice whose length is passed alongside it.
    let rc = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads a small extended attribute of `path` itself; None when absent or unreadable.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated; buf is writable for the length passed.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_and_opaque_dirs_round_trip_in_either_format() {
        let dir = tempfile::tempdir().unwrap();
        make_whiteout(&dir.path().join("gone")).unwrap();
        let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(entries.len(), 1);
        let meta = fs::symlink_metadata(&entries[0]).unwrap();
        assert_eq!(whiteout_target(&entries[0], &meta).unwrap(), "gone");

        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        assert!(!is_opaque(&sub));
        mark_opaque(&sub).unwrap();
        assert!(is_opaque(&sub));
        let marker_meta = fs::File::create(dir.path().join(OPAQUE_MARKER)).unwrap().metadata().unwrap();
        assert_eq!(whiteout_target(&dir.path().join(OPAQUE_MARKER), &marker_meta), None);
    }
}
