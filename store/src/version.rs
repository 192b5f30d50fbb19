//! The persisted resourceVersion ceiling.
//!
//! Objects on disk carry their own resourceVersion, but versions also go to deletions,
//! memory-only status updates and events, none of which leave an object file behind. So
//! the store leases versions in blocks: before handing out a version above the persisted
//! ceiling it durably writes a new ceiling `LEASE` higher. Every version ever handed out
//! is therefore ≤ the ceiling on disk, and after a restart the store continues from
//! `max(ceiling, newest object version)`, never going backwards. The file is written once
//! per `LEASE` versions (and never in a quiet steady state), which spares flash.

use super::files::{self, with_path};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Versions leased per write of the ceiling file.
pub(crate) const LEASE: u64 = 1000;

/// Added to the newest object's version when the ceiling file is unreadable, so versions
/// handed out before the damage (by deletions, memory-only updates) are very likely passed.
const DAMAGED_MARGIN: u64 = 1_000_000;

const FILE_NAME: &str = ".resource-version";

/// The highest resourceVersion the store may hand out without writing the file again.
pub(crate) struct VersionCeiling {
    dir: PathBuf,
    ceiling: u64,
}

impl VersionCeiling {
    /// Reads the ceiling kept in `dir`, 0 when there is none yet. `newest_object` is the
    /// highest version found on the object files, used only if the file is damaged.
    pub fn open(dir: &Path, newest_object: u64) -> io::Result<VersionCeiling> {
        let path = dir.join(FILE_NAME);
        let ceiling = match fs::read_to_string(&path) {
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(v) => v,
                Err(_) => {
                    log::error!(
                        "store: {} holds {:?}, not a resourceVersion; continuing from {} + {DAMAGED_MARGIN}",
                        path.display(),
                        text.trim(),
                        newest_object
                    );
                    newest_object + DAMAGED_MARGIN
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(with_path(e, "reading", &path)),
        };
        Ok(VersionCeiling { dir: dir.to_path_buf(), ceiling })
    }

    pub fn ceiling(&self) -> u64 {
        self.ceiling
    }

    /// Makes sure `rv` may be handed out, durably raising the ceiling first when needed.
    pub fn reserve(&mut self, rv: u64) -> io::Result<()> {
        if rv <= self.ceiling {
            return Ok(());
        }
        let next = rv + LEASE;
        files::write_atomic(&self.dir, FILE_NAME, format!("{next}\n").as_bytes())?;
        self.ceiling = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ceiling_is_written_once_per_lease_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = VersionCeiling::open(dir.path(), 0).unwrap();
        assert_eq!(c.ceiling(), 0);
        c.reserve(1).unwrap();
        assert_eq!(c.ceiling(), 1 + LEASE);
        // Every write renames a new file into place, so an unchanged inode means no write.
        let inode = || fs::metadata(dir.path().join(FILE_NAME)).unwrap().ino();
        let written = inode();
        c.reserve(LEASE).unwrap();
        assert_eq!(inode(), written);
        assert_eq!(VersionCeiling::open(dir.path(), 0).unwrap().ceiling(), 1 + LEASE);
    }

    #[test]
    fn damaged_ceiling_continues_well_past_the_newest_object() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "garbage").unwrap();
        assert_eq!(VersionCeiling::open(dir.path(), 42).unwrap().ceiling(), 42 + DAMAGED_MARGIN);
    }
}
