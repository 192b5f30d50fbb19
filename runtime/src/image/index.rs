//! index.json: which names point at which images, and what each image is made of.

use super::error::ImageError;
use super::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The persisted catalogue of the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexFile {
    /// Manifest digest → image.
    #[serde(default)]
    pub images: BTreeMap<String, ImageRecord>,
    /// Normalized `repository:tag` → manifest digest.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One stored image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Digest of the config blob.
    pub config: String,
    /// Diff ids of the layers, bottom → top.
    pub layers: Vec<String>,
    /// Bytes of regular files across the layers.
    pub size: u64,
}

impl IndexFile {
    /// Reads the index; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<IndexFile, ImageError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::invalid(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(e) => Err(ImageError::io("reading", path, e)),
        }
    }

    /// Writes the index atomically.
    pub fn save(&self, path: &Path) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(self).expect("index serializes");
        write_atomic(path, &bytes)
    }

    /// Whether any image still uses the layer with this diff id.
    pub fn uses_layer(&self, diff_id: &str) -> bool {
        self.images.values().any(|r| r.layers.iter().any(|l| l == diff_id))
    }

    /// Whether a blob (manifest or config) is still referenced.
    pub fn uses_blob(&self, digest: &str) -> bool {
        self.images.iter().any(|(d, r)| d == digest || r.config == digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        assert_eq!(IndexFile::load(&path).unwrap(), IndexFile::default());
        let mut idx = IndexFile::default();
        idx.images.insert(
            "sha256:m".into(),
            ImageRecord { config: "sha256:c".into(), layers: vec!["sha256:l".into()], size: 3 },
        );
        idx.tags.insert("docker.io/library/a:latest".into(), "sha256:m".into());
        idx.save(&path).unwrap();
        let back = IndexFile::load(&path).unwrap();
        assert_eq!(back, idx);
        assert!(back.uses_layer("sha256:l") && !back.uses_layer("sha256:x"));
        assert!(back.uses_blob("sha256:c") && back.uses_blob("sha256:m") && !back.uses_blob("sha256:l"));
    }
}
