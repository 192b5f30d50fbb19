//! Turning a root filesystem directory (buildroot, Yocto output) into a layer tar stream,
//! in a stable order so the same tree always gets the same diff id.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header, HeaderMode};

/// Writes `dir` as a tar stream to `out`: ownership, modes, mtimes, symlinks, hardlinks
/// and device nodes; sockets are skipped (they are not content).
pub fn write_rootfs_tar(dir: &Path, out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let mut links = HashMap::new();
    append_tree(&mut builder, dir, Path::new(""), &mut links)?;
    builder.into_inner()?.flush()
}

fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = rel.join(entry.file_name());
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        let mut h = Header::new_gnu();
        h.set_metadata_in_mode(&meta, HeaderMode::Complete);
        if ft.is_dir() {
            b.append_data(&mut h, &name, io::empty())?;
            append_tree(b, dir, &name, links)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    h.set_entry_type(EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &name, first)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), name.clone());
            }
            b.append_data(&mut h, &name, fs::File::open(&path)?)?;
        } else if ft.is_symlink() {
            h.set_size(0);
            b.append_link(&mut h, &name, fs::read_link(&path)?)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_device_major(nix::sys::stat::major(meta.rdev()) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(meta.rdev()) as u32)?;
            b.append_data(&mut h, &name, io::empty())?;
        } else {
            log::debug!("rootfs import: {} skipped: sockets are not image content", path.display());
        }
    }
    Ok(())
}
