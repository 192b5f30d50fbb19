//! Extracting an image archive (`docker save` or OCI archive, optionally compressed as a
//! whole) into a private staging directory, so both formats load from a directory. The
//! stream is metered: the staged files count against the load's share of the free space.

use super::budget::{Allowance, Counted, EntryCount, Meter};
use super::compression::decompressed;
use super::error::ImageError;
use super::safe_path::{prepare_parents, relative_entry_path};
use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};
use tar::EntryType;

/// What extracting an archive took: bytes of its (uncompressed) tar stream and entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub bytes: u64,
    pub entries: u64,
}

/// Extracts the archive stream into `dest`: regular files, directories and symlinks that
/// stay inside the archive (legacy `docker save` links duplicate layers that way). Stops
/// once the stream exceeds `allowance`.
pub fn extract_archive(
    input: impl Read,
    dest: &Path,
    allowance: &Allowance,
    abandoned: &dyn Fn() -> bool,
) -> Result<Extracted, ImageError> {
    let (compressed, produced) = (Cell::new(0u64), Cell::new(0u64));
    let stop = Cell::new(None);
    let mut entries = EntryCount::new(&allowance.entries);
    let extracted = (|| {
        let stream_err = |e: io::Error| ImageError::Io { context: "reading image archive".into(), source: e };
        let raw = Counted::new(input, &compressed);
        let decoder = decompressed(BufReader::new(raw)).map_err(stream_err)?;
        let metered = Counted::new(Meter::new(decoder, allowance, &compressed, abandoned, &stop), &produced);
        let mut archive = tar::Archive::new(metered);
        for entry in archive.entries().map_err(stream_err)? {
            let mut entry = entry.map_err(stream_err)?;
            entries.add("image archive")?;
            extract_entry(&mut entry, dest)?;
        }
        Ok(())
    })();
    if let Some(why) = stop.take() {
        return Err(why.into_error("image archive"));
    }
    extracted?;
    Ok(Extracted { bytes: produced.get(), entries: entries.seen })
}

fn extract_entry<R: Read>(entry: &mut tar::Entry<'_, R>, dest: &Path) -> Result<(), ImageError> {
    let stream_err = |e: io::Error| ImageError::Io { context: "reading image archive".into(), source: e };
    let raw = entry.path().map_err(stream_err)?.into_owned();
    let rel = relative_entry_path(&raw).map_err(|e| e.within("image archive"))?;
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    prepare_parents(dest, &rel).map_err(|e| e.within("image archive"))?;
    let target = dest.join(&rel);
    let kind = entry.header().entry_type();
    match kind {
        EntryType::Directory => {
            fs::create_dir_all(&target).map_err(|e| ImageError::io("creating", &target, e))?;
        }
        EntryType::Regular | EntryType::Continuous => {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(|e| ImageError::io("creating", &target, e))?;
            io::copy(entry, &mut f).map_err(|e| ImageError::io("writing", &target, e))?;
        }
        EntryType::Symlink => {
            let link = entry.link_name().map_err(stream_err)?.unwrap_or_default().into_owned();
            if !stays_inside(&rel, &link) {
                return Err(ImageError::invalid(
                    format!("image archive entry {}", raw.display()),
                    format!("symlink to {} leaves the archive", link.display()),
                ));
            }
            std::os::unix::fs::symlink(&link, &target).map_err(|e| ImageError::io("creating symlink", &target, e))?;
        }
        _ => log::debug!("image archive entry {} of type {kind:?} ignored", raw.display()),
    }
    Ok(())
}

/// Whether the relative symlink `link` placed at `at` resolves (lexically) inside the root.
fn stays_inside(at: &Path, link: &Path) -> bool {
    let mut depth = at.components().count() as i64 - 1;
    for c in link.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth -= 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_must_stay_inside_the_archive() {
        assert!(stays_inside(Path::new("b/layer.tar"), Path::new("../a/layer.tar")));
        assert!(!stays_inside(Path::new("b/layer.tar"), Path::new("../../etc/passwd")));
        assert!(!stays_inside(Path::new("x"), Path::new("/etc/passwd")));
    }
}
