//! Unpacking one layer tar into a directory in overlayfs' format: OCI whiteouts become
//! overlay whiteouts, and symlinks, hardlinks, modes, ownership, mtimes and xattrs are kept.
//!
//! A layer is not trusted: character and block devices in it are not created (as Docker,
//! containerd and podman do when they unpack in a user namespace), because a node made on
//! the host is usable on the host by whoever reaches it; a container gets its devices from
//! the runtime's /dev, never from its image. FIFOs are harmless and kept. Set-id bits are
//! kept (running as root) because the store's root is 0700: nothing under it is reachable
//! by another user of the host.

use super::budget::{Bound, EntryCount};
use super::error::ImageError;
use super::overlay::{self, OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::safe_path::{prepare_parents, relative_entry_path};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
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

/// What unpacking a layer wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Bytes of regular files.
    pub bytes: u64,
    /// Tar entries (each at most one inode).
    pub entries: u64,
    /// Paths of the device nodes not created.
    pub devices_skipped: Vec<PathBuf>,
}

/// What one entry added.
enum Outcome {
    Wrote(u64),
    DeviceSkipped,
}

/// Unpacks the tar stream `input` into the (empty) directory `dest`, refusing more entries
/// than `max_entries` allows. With `privileged`, ownership, set-id bits and xattrs are
/// restored too.
pub fn unpack_layer(
    input: impl Read,
    dest: &Path,
    privileged: bool,
    max_entries: &Bound,
) -> Result<Unpacked, ImageError> {
    let mut archive = tar::Archive::new(input);
    let mut dirs = Vec::new();
    let mut done = Unpacked::default();
    let mut count = EntryCount::new(max_entries);
    let entries = archive.entries().map_err(|e| ImageError::io("reading tar", dest, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io("reading tar entry for", dest, e))?;
        let raw = entry.path().map_err(|e| ImageError::io("reading tar entry path for", dest, e))?.into_owned();
        count.add("tar stream")?;
        let rel = relative_entry_path(&raw)?;
        if links_to_skipped_device(&entry, &done.devices_skipped) {
            done.devices_skipped.push(rel);
            continue;
        }
        match unpack_entry(&mut entry, &rel, dest, privileged, &mut dirs)
            .map_err(|e| e.within(&format!("tar entry {}", raw.display())))?
        {
            Outcome::Wrote(n) => done.bytes = done.bytes.saturating_add(n),
            Outcome::DeviceSkipped => done.devices_skipped.push(rel),
        }
    }
    done.entries = count.seen;
    // Deepest first, so a read-only directory is sealed only after its children are written.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in &dirs {
        finish_metadata(&d.path, d.mode, d.uid, d.gid, d.mtime, privileged, false)?;
    }
    Ok(done)
}

fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    rel: &Path,
    dest: &Path,
    privileged: bool,
    dirs: &mut Vec<DirMeta>,
) -> Result<Outcome, ImageError> {
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().unwrap_or(0o644);
    let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
    let mtime = header.mtime().unwrap_or(0);
    if rel.as_os_str().is_empty() {
        if kind.is_dir() {
            dirs.push(DirMeta { path: dest.to_path_buf(), mode, uid, gid, mtime });
        }
        return Ok(Outcome::Wrote(0));
    }
    prepare_parents(dest, rel)?;
    let target = dest.join(rel);
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == OPAQUE_MARKER {
        let dir = target.parent().unwrap_or(dest);
        return overlay::mark_opaque(dir)
            .map(|()| Outcome::Wrote(0))
            .map_err(|e| ImageError::io("marking opaque", dir, e));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.starts_with(".wh.") {
            return Ok(Outcome::Wrote(0)); // aufs bookkeeping (.wh..wh.plnk and friends): not content
        }
        // `.wh..` would delete the directory itself, `.wh...` its parent: outside the entry's
        // own directory, maybe outside the layer.
        if matches!(hidden, "" | "." | "..") {
            return Err(ImageError::invalid("whiteout", format!("{hidden:?} names no entry of its directory")));
        }
        let victim = target.with_file_name(hidden);
        remove_existing(&victim)?;
        return overlay::make_whiteout(&victim)
            .map(|()| Outcome::Wrote(0))
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
            return Ok(Outcome::Wrote(0));
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
            if fs::symlink_metadata(dest.join(&link_rel)).is_err() {
                return Err(ImageError::invalid(
                    format!("hard link to {}", link_rel.display()),
                    "no earlier entry of the layer has that name",
                ));
            }
            remove_existing(&target)?;
            fs::hard_link(dest.join(&link_rel), &target)
                .map_err(|e| ImageError::io(&format!("hard-linking to {} as", link_rel.display()), &target, e))?;
            return Ok(Outcome::Wrote(0)); // the link shares its target's metadata, already applied
        }
        EntryType::Char | EntryType::Block => {
            // Whatever was there before is replaced by nothing, as the entry would have.
            remove_existing(&target)?;
            return Ok(Outcome::DeviceSkipped);
        }
        EntryType::Fifo => {
            remove_existing(&target)?;
            mknod(&target, SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0)
                .map_err(|e| io_err("creating fifo")(e.into()))?;
        }
        // Global PAX headers and other bookkeeping entries carry no file.
        _ => return Ok(Outcome::Wrote(0)),
    }
    if privileged {
        apply_xattrs(entry, &target)?;
    }
    finish_metadata(&target, mode, uid, gid, mtime, privileged, kind == EntryType::Symlink)?;
    Ok(Outcome::Wrote(written))
}

/// Whether `entry` is a hard link to a device node this layer did not create (a second
/// name for it, which is not created either).
fn links_to_skipped_device<R: Read>(entry: &tar::Entry<'_, R>, skipped: &[PathBuf]) -> bool {
    if entry.header().entry_type() != EntryType::Link || skipped.is_empty() {
        return false;
    }
    let Ok(Some(link)) = entry.link_name() else { return false };
    relative_entry_path(&link).is_ok_and(|l| skipped.contains(&l))
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
