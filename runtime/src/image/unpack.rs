//! Unpacking one layer tar into a directory in overlayfs' format: OCI whiteouts become
//! overlay whiteouts, and symlinks, hardlinks, modes, ownership, mtimes and xattrs are kept.

use super::error::ImageError;
use super::overlay::{self, OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::safe_path::{prepare_parents, relative_entry_path};
use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{lchown, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// Metadata to apply to a directory once everything inside it has been written.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// Unpacks the tar stream `input` into the (empty) directory `dest`; returns the bytes of
/// regular files written. With `privileged`, ownership, devices and xattrs are restored too.
pub fn unpack_layer(input: impl Read, dest: &Path, privileged: bool) -> Result<u64, ImageError> {
    let mut archive = tar::Archive::new(input);
    let mut dirs = Vec::new();
    let mut size = 0;
    let entries = archive.entries().map_err(|e| ImageError::io("reading tar", dest, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io("reading tar entry for", dest, e))?;
        let raw = entry.path().map_err(|e| ImageError::io("reading tar entry path for", dest, e))?.into_owned();
        let rel = relative_entry_path(&raw)?;
        size += unpack_entry(&mut entry, &rel, dest, privileged, &mut dirs)
            .map_err(|e| e.within(&format!("tar entry {}", raw.display())))?;
    }
    // Deepest first, so a read-only directory is sealed only after its children are written.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in &dirs {
        finish_metadata(&d.path, d.mode, d.uid, d.gid, d.mtime, privileged, false)?;
    }
    Ok(size)
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    rel: &Path,
    dest: &Path,
    privileged: bool,
    dirs: &mut Vec<DirMeta>,
) -> Result<u64, ImageError> {
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().unwrap_or(0o644);
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    let mtime = header.mtime().unwrap_or(0);
    if rel.as_os_str().is_empty() {
        if kind.is_dir() {
            dirs.push(DirMeta { path: dest.to_path_buf(), mode, uid, gid, mtime });
        }
        return Ok(0);
    }
    prepare_parents(dest, rel)?;
    let target = dest.join(rel);
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == OPAQUE_MARKER {
        let dir = target.parent().unwrap_or(dest);
        return overlay::mark_opaque(dir).map(|()| 0).map_err(|e| ImageError::io("marking opaque", dir, e));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.starts_with(".wh.") {
            return Ok(0); // aufs bookkeeping (.wh..wh.plnk and friends): not content
        }
        let victim = target.with_file_name(hidden);
        remove_existing(&victim)?;
        return overlay::make_whiteout(&victim)
            .map(|()| 0)
            .map_err(|e| ImageError::io("creating whiteout", &victim, e));
    }
    let io_err = |what: &str| {
        let target = target.clone();
        let what = what.to_string();
        move |e: io::Error| ImageError::io(&what, &target, e)
    };
    let mut written = 0;
    match kind {
        EntryType::Directory => {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_existing(&target)?;
                    fs::create_dir(&target).map_err(io_err("creating directory"))?;
                }
                Err(_) => fs::create_dir(&target).map_err(io_err("creating directory"))?,
            }
            dirs.push(DirMeta { path: target, mode, uid, gid, mtime });
            return Ok(0);
        }
        EntryType::Regular | EntryType::Continuous => {
            remove_existing(&target)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o600)
                .open(&target)
                .map_err(io_err("creating"))?;
            written = io::copy(entry, &mut f).map_err(io_err("writing"))?;
        }
        EntryType::Symlink => {
            let link = entry.link_name().map_err(io_err("reading link target of"))?.unwrap_or_default();
            remove_existing(&target)?;
            std::os::unix::fs::symlink(&link, &target).map_err(io_err("creating symlink"))?;
        }
        EntryType::Link => {
            let link = entry.link_name().map_err(io_err("reading link target of"))?.unwrap_or_default();
            let link_rel = relative_entry_path(&link)?;
            prepare_parents(dest, &link_rel)?;
            remove_existing(&target)?;
            fs::hard_link(dest.join(&link_rel), &target)
                .map_err(|e| ImageError::io(&format!("hard-linking to {} as", link_rel.display()), &target, e))?;
            return Ok(0); // the link shares its target's metadata, already applied
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let dev = makedev(
                u64::from(entry.header().device_major().ok().flatten().unwrap_or(0)),
                u64::from(entry.header().device_minor().ok().flatten().unwrap_or(0)),
            );
            remove_existing(&target)?;
            match mknod(&target, sflag, Mode::from_bits_truncate(0o600), dev) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) if !privileged => {
                    log::warn!("layer entry {}: device node skipped: not privileged", rel.display());
                    return Ok(0);
                }
                Err(e) => return Err(io_err("creating device node")(e.into())),
            }
        }
        // Global PAX headers and other bookkeeping entries carry no file.
        _ => return Ok(0),
    }
    if privileged {
        apply_xattrs(entry, &target)?;
    }
    finish_metadata(&target, mode, uid, gid, mtime, privileged, kind == EntryType::Symlink)?;
    Ok(written)
}

/// Removes whatever is at `path` (a file, link or directory tree), if anything.
fn remove_existing(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => super::fsutil::remove_tree(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
    .map_err(|e| ImageError::io("replacing", path, e))
}

/// `SCHILY.xattr.*` PAX records (file capabilities, SELinux labels) onto the new file.
fn apply_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, target: &Path) -> Result<(), ImageError> {
    let Ok(Some(exts)) = entry.pax_extensions() else { return Ok(()) };
    for ext in exts.flatten() {
        let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) else { continue };
        // A layer must not forge overlay's own markers; whiteouts come only from .wh. entries.
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        overlay::set_xattr(target, name, ext.value_bytes())
            .map_err(|e| ImageError::io(&format!("setting xattr {name} on"), target, e))?;
    }
    Ok(())
}

fn finish_metadata(
    path: &Path,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    privileged: bool,
    is_symlink: bool,
) -> Result<(), ImageError> {
    if privileged {
        let (uid, gid) = (u32::try_from(uid).ok(), u32::try_from(gid).ok());
        lchown(path, uid, gid).map_err(|e| ImageError::io("changing owner of", path, e))?;
    }
    if !is_symlink {
        // Unprivileged, set-id bits would grant our own identity: drop them.
        let mode = if privileged { mode & 0o7777 } else { mode & 0o1777 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| ImageError::io("setting mode of", path, e))?;
    }
    // time_t is 32-bit on armv7.
    let t = TimeSpec::new(mtime as _, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| ImageError::io("setting mtime of", path, e.into()))
}
