//! Listing the manifests directory: which files count, and a cheap fingerprint of each so a
//! change is noticed without reading every file on every pass.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Size, modification time and inode: any edit, rewrite or replacement changes one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub len: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

/// True for the file names the follower applies: `*.yaml`, `*.yml`, `*.json`, not hidden
/// (editors' swap and temp files start with a dot).
pub fn is_manifest(name: &str) -> bool {
    !name.starts_with('.') && [".yaml", ".yml", ".json"].iter().any(|ext| name.ends_with(ext))
}

/// Every manifest file in `dir` by file name. A missing directory holds no manifests.
pub fn scan(dir: &Path) -> io::Result<BTreeMap<String, Fingerprint>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("reading {}: {e}", dir.display()))),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", dir.display())))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if !is_manifest(&name) {
            continue;
        }
        // Follow symlinks: configuration management often links files in.
        let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
        if !meta.is_file() {
            continue;
        }
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        files.insert(name, Fingerprint { len: meta.len(), mtime_ns, inode: meta.ino() });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_yaml_and_json_files_count() {
        assert!(is_manifest("web.yaml") && is_manifest("web.yml") && is_manifest("web.json"));
        assert!(!is_manifest(".web.yaml.swp") && !is_manifest(".web.yaml") && !is_manifest("README.md"));
    }

    #[test]
    fn scan_lists_manifests_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let first = scan(dir.path()).unwrap();
        assert_eq!(first.keys().collect::<Vec<_>>(), ["a.yaml"]);
        std::fs::write(dir.path().join("a.yaml"), "longer").unwrap();
        assert_ne!(scan(dir.path()).unwrap()["a.yaml"], first["a.yaml"]);
        assert!(scan(&dir.path().join("missing")).unwrap().is_empty());
    }
}
