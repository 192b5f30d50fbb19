//! Removing images from the store: untagging a name or deleting an image by digest, and
//! pruning the layers and blobs no image refers to any more.

use super::error::ImageError;
use super::fsutil::{fsync_dir, remove_tree};
use super::index::IndexFile;
use super::store::{find, ImageStore};
use std::fs;
use std::sync::atomic::Ordering;

/// What `remove` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Names that no longer point anywhere.
    pub untagged: Vec<String>,
    /// The image digest deleted, when no name pointed at it any more.
    pub deleted: Option<String>,
}

impl ImageStore {
    /// Removes a name (or, by digest, the image and all its names). Refused while
    /// `in_use(digest)` says a pod uses the image. Layers other images share stay.
    pub fn remove(&self, reference: &str, in_use: &dyn Fn(&str) -> bool) -> Result<Removal, ImageError> {
        let mut index = self.lock();
        let (digest, canonical) =
            find(&index, reference)?.ok_or_else(|| ImageError::NotFound { reference: reference.to_string() })?;
        if in_use(&digest) {
            return Err(ImageError::InUse { reference: canonical, digest });
        }
        let mut next = index.clone();
        let mut removal = Removal::default();
        if next.tags.get(&canonical) == Some(&digest) {
            next.tags.remove(&canonical);
            removal.untagged.push(canonical);
        } else {
            next.tags.retain(|name, d| {
                let keep = *d != digest;
                if !keep {
                    removal.untagged.push(name.clone());
                }
                keep
            });
        }
        if !next.tags.values().any(|d| *d == digest) {
            next.images.remove(&digest);
            removal.deleted = Some(digest);
        }
        next.save(&self.index_path())?;
        *index = next;
        if removal.deleted.is_some() {
            self.prune_locked(&index)?;
        }
        Ok(removal)
    }

    /// Deletes layers and blobs no image refers to; returns how many layers went.
    pub fn prune_unused_layers(&self) -> Result<usize, ImageError> {
        let index = self.lock();
        self.prune_locked(&index)
    }

    fn prune_locked(&self, index: &IndexFile) -> Result<usize, ImageError> {
        let layers = self.root.join("layers");
        let mut removed = 0;
        for entry in fs::read_dir(&layers).map_err(|e| ImageError::io("reading", &layers, e))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if index.uses_layer(&format!("sha256:{name}")) {
                continue;
            }
            // Out of layers/ first, so an interrupted delete never leaves a partial layer there.
            let trash =
                self.root.join("tmp").join(format!("trash-{}-{name}", self.seq.fetch_add(1, Ordering::Relaxed)));
            fs::rename(entry.path(), &trash).map_err(|e| ImageError::io("removing layer", &entry.path(), e))?;
            remove_tree(&trash).map_err(|e| ImageError::io("removing layer", &trash, e))?;
            removed += 1;
        }
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(|e| ImageError::io("reading", &blobs, e))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !index.uses_blob(&format!("sha256:{name}")) {
                fs::remove_file(entry.path()).map_err(|e| ImageError::io("removing blob", &entry.path(), e))?;
            }
        }
        if removed > 0 {
            fsync_dir(&layers)?;
        }
        Ok(removed)
    }
}
