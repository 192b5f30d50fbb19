//! Applying unpacked layers in order into one plain directory, for runtimes without
//! overlayfs: whiteouts delete, opaque directories hide what lower layers put there.

use super::error::ImageError;
use super::fsutil::remove_tree;
use super::overlay::{self, OPAQUE_MARKER};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{lchown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies `layers` (bottom → top, as `Image::layers` lists them) into `dest`, honouring
/// whiteouts in both overlay and OCI form. Hardlinks within a layer stay hardlinks.
pub fn flatten(layers: &[PathBuf], dest: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(dest).map_err(|e| ImageError::io("creating", dest, e))?;
    let privileged = nix::unistd::geteuid().is_root();
    for layer in layers {
        let mut copier = Copier { privileged, links: HashMap::new(), dirs: Vec::new() };
        copier.apply_dir(layer, dest).map_err(|e| e.within(&format!("flattening layer {}", layer.display())))?;
        for (path, meta) in copier.dirs.iter().rev() {
            copy_metadata(path, meta, privileged)?;
        }
    }
    Ok(())
}

struct Copier {
    privileged: bool,
    /// (dev, inode) of a multiply linked source file → where it was first copied.
    links: HashMap<(u64, u64), PathBuf>,
    dirs: Vec<(PathBuf, fs::Metadata)>,
}

impl Copier {
    fn apply_dir(&mut self, src: &Path, dst: &Path) -> Result<(), ImageError> {
        if overlay::is_opaque(src) {
            clear_dir(dst)?;
        }
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(|e| ImageError::io("reading", src, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| ImageError::io("reading", src, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let from = entry.path();
            let meta = fs::symlink_metadata(&from).map_err(|e| ImageError::io("inspecting", &from, e))?;
            if entry.file_name() == OPAQUE_MARKER {
                continue;
            }
            if let Some(hidden) = overlay::whiteout_target(&from, &meta) {
                let victim = dst.join(hidden);
                replace(&victim)?;
                continue;
            }
            let to = dst.join(entry.file_name());
            self.apply_entry(&from, &meta, &to)?;
        }
        Ok(())
    }

    fn apply_entry(&mut self, from: &Path, meta: &fs::Metadata, to: &Path) -> Result<(), ImageError> {
        let existing = fs::symlink_metadata(to).ok();
        let ft = meta.file_type();
        if ft.is_dir() {
            if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                replace(to)?;
                fs::create_dir(to).map_err(|e| ImageError::io("creating directory", to, e))?;
            }
            fs::set_permissions(to, fs::Permissions::from_mode(0o700))
                .map_err(|e| ImageError::io("opening up", to, e))?;
            self.dirs.push((to.to_path_buf(), meta.clone()));
            return self.apply_dir(from, to);
        }
        replace(to)?;
        if ft.is_file() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                return fs::hard_link(first, to).map_err(|e| ImageError::io("hard-linking", to, e));
            }
            self.links.insert((meta.dev(), meta.ino()), to.to_path_buf());
        }
        if ft.is_file() {
            fs::copy(from, to).map_err(|e| ImageError::io("copying to", to, e))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(from).map_err(|e| ImageError::io("reading link", from, e))?;
            std::os::unix::fs::symlink(target, to).map_err(|e| ImageError::io("creating symlink", to, e))?;
        } else if ft.is_fifo() {
            mknod(to, SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0)
                .map_err(|e| ImageError::io("creating fifo", to, e.into()))?;
        } else {
            // Sockets are not image content; device nodes are not made from images (layers
            // hold none but whiteouts, handled above).
            return Ok(());
        }
        copy_metadata(to, meta, self.privileged)
    }
}

fn replace(to: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(to) {
        Ok(m) if m.is_dir() => remove_tree(to),
        Ok(_) => fs::remove_file(to),
        Err(_) => Ok(()),
    }
    .map_err(|e| ImageError::io("replacing", to, e))
}

fn clear_dir(dir: &Path) -> Result<(), ImageError> {
    let Ok(rd) = fs::read_dir(dir) else { return Ok(()) };
    for entry in rd.flatten() {
        replace(&entry.path())?;
    }
    Ok(())
}

fn copy_metadata(to: &Path, meta: &fs::Metadata, privileged: bool) -> Result<(), ImageError> {
    let is_symlink = meta.file_type().is_symlink();
    if privileged {
        lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(|e| ImageError::io("changing owner of", to, e))?;
    }
    if !is_symlink {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| ImageError::io("setting mode of", to, e))?;
    }
    // time_t and the nanosecond field are 32-bit on armv7.
    let t = TimeSpec::new(meta.mtime() as _, meta.mtime_nsec() as _);
    utimensat(None, to, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| ImageError::io("setting mtime of", to, e.into()))
}
