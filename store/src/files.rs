//! The on-disk layout and the crash-safe file operations under it.
//!
//! `DATA/objects/<plural>/<namespace>/<name>.json`, with `_` standing for the namespace of
//! cluster-scoped objects (no namespace name can be `_`). Store bookkeeping lives beside the
//! resource folders under names starting with `.`, which no resource or object name can:
//! `.lock`, `.resource-version`, `.corrupt/`. Temp files are `.<name>.tmp` in the folder
//! of the file they replace, so a crash leaves them where `open` finds and removes them.

use coracle_config::object::{Object, ResourceInfo, ALL};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The folder name cluster-scoped objects are kept under.
const CLUSTER_SCOPE_DIR: &str = "_";

/// Where the store's files live, and the atomic operations on them.
pub(crate) struct Layout {
    root: PathBuf,
}

/// An object read back from disk, with the resourceVersion it carried.
pub(crate) struct Loaded {
    pub object: Object,
    pub resource_version: u64,
}

impl Layout {
    /// The layout under `DATA/objects`, creating the folder when missing.
    pub fn create(data_dir: &Path) -> io::Result<Layout> {
        let root = data_dir.join("objects");
        ensure_dir(&root)?;
        Ok(Layout { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn collection_dir(&self, plural: &str, namespace: &str) -> PathBuf {
        let ns = if namespace.is_empty() { CLUSTER_SCOPE_DIR } else { namespace };
        self.root.join(plural).join(ns)
    }

    /// The file an object is kept in.
    pub fn object_path(&self, plural: &str, namespace: &str, name: &str) -> PathBuf {
        self.collection_dir(plural, namespace).join(format!("{name}.json"))
    }

    /// Durably replaces the object's file with `bytes`; a confidential kind's file (a
    /// Secret's) is readable by the daemon's user only, from the first byte written.
    pub fn write_object(&self, info: &ResourceInfo, namespace: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
        let dir = self.collection_dir(info.plural, namespace);
        ensure_dir(&dir)?;
        let mode = if info.confidential() { PRIVATE_MODE } else { SHARED_MODE };
        write_atomic_mode(&dir, &format!("{name}.json"), bytes, mode)
    }

    /// Durably removes the object's file; a file already gone is not an error.
    pub fn remove_object(&self, plural: &str, namespace: &str, name: &str) -> io::Result<()> {
        let dir = self.collection_dir(plural, namespace);
        let path = self.object_path(plural, namespace, name);
        match fs::remove_file(&path) {
            Ok(()) => fsync_dir(&dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(with_path(e, "removing", &path)),
        }
    }

    /// Reads every object file, removing torn temp files and moving aside (never deleting)
    /// files that do not hold a well-formed object of the folder's type.
    pub fn load_all(&self) -> io::Result<Vec<Loaded>> {
        let mut loaded = Vec::new();
        for entry in read_dir_sorted(&self.root)? {
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            let Some(info) = ALL.iter().copied().find(|i| i.plural == name) else {
                log::warn!("store: ignoring {}: not a resource type", entry.display());
                continue;
            };
            if info.kind == "Event" {
                // Events live in memory only; files here were not written by this store.
                log::warn!("store: ignoring {}: events are not kept on disk", entry.display());
                continue;
            }
            for ns_dir in read_dir_sorted(&entry)? {
                if !ns_dir.is_dir() {
                    log::warn!("store: ignoring {}: not a namespace folder", ns_dir.display());
                    continue;
                }
                self.load_collection(info, &ns_dir, &mut loaded)?;
            }
        }
        Ok(loaded)
    }

    fn load_collection(&self, info: &ResourceInfo, dir: &Path, out: &mut Vec<Loaded>) -> io::Result<()> {
        let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let namespace = if dir_name == CLUSTER_SCOPE_DIR { String::new() } else { dir_name };
        let mut removed_temp = false;
        for path in read_dir_sorted(dir)? {
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if file.starts_with('.') && file.ends_with(".tmp") {
                // A write that never reached its rename was never acknowledged.
                log::info!("store: removing torn temp file {}", path.display());
                fs::remove_file(&path).map_err(|e| with_path(e, "removing", &path))?;
                removed_temp = true;
                continue;
            }
            let Some(name) = file.strip_suffix(".json") else {
                log::warn!("store: ignoring {}: not an object file", path.display());
                continue;
            };
            match parse_object(info, &namespace, name, &path) {
                Ok(l) => out.push(l),
                Err(why) => {
                    let kept = self.move_aside(info, &namespace, &file, &path)?;
                    log::error!(
                        "store: CORRUPT object file {} ({why}); NOT loaded, moved to {}",
                        path.display(),
                        kept.display()
                    );
                }
            }
        }
        if removed_temp {
            fsync_dir(dir)?;
        }
        Ok(())
    }

    /// Moves an unreadable file to `.corrupt/<plural>/<namespace>/<file>.<unix-seconds>`.
    fn move_aside(&self, info: &ResourceInfo, namespace: &str, file: &str, path: &Path) -> io::Result<PathBuf> {
        let ns = if namespace.is_empty() { CLUSTER_SCOPE_DIR } else { namespace };
        let dir = self.root.join(".corrupt").join(info.plural).join(ns);
        ensure_dir(&dir)?;
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let target = dir.join(format!("{file}.{secs}"));
        fs::rename(path, &target).map_err(|e| with_path(e, "moving aside", path))?;
        fsync_dir(&dir)?;
        if let Some(parent) = path.parent() {
            fsync_dir(parent)?;
        }
        Ok(target)
    }
}

/// Decodes one object file and checks it belongs where it was found.
fn parse_object(info: &ResourceInfo, namespace: &str, name: &str, path: &Path) -> Result<Loaded, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
    if kind != info.kind {
        return Err(format!("kind {kind:?} in a {} folder", info.plural));
    }
    let mut object = Object::from_json(info, value).map_err(|e| format!("not a valid {}: {e}", info.kind))?;
    object.set_type_meta();
    let meta = object.metadata();
    if meta.name != name || meta.namespace != namespace {
        return Err(format!("holds {:?} in namespace {:?}", meta.name, meta.namespace));
    }
    if meta.uid.is_empty() {
        return Err("metadata.uid is empty".into());
    }
    let resource_version = meta
        .resource_version
        .parse::<u64>()
        .map_err(|_| format!("metadata.resourceVersion {:?} is not a number", meta.resource_version))?;
    Ok(Loaded { object, resource_version })
}

/// Writes `bytes` to `dir/file_name` so that a crash leaves either the old or the new
/// content: temp file in the same folder, fsync, rename over, fsync of the folder.
pub(crate) fn write_atomic(dir: &Path, file_name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(dir, file_name, bytes, SHARED_MODE)
}

/// The mode of object files, before the umask.
const SHARED_MODE: u32 = 0o644;
/// The mode of confidential objects' files: the daemon's user only.
const PRIVATE_MODE: u32 = 0o600;

/// [`write_atomic`] with the file's permission bits (set before anything is written, also
/// on a temp file a crash left behind).
fn write_atomic_mode(dir: &Path, file_name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let target = dir.join(file_name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| with_path(e, "creating", &tmp))?;
    if mode == PRIVATE_MODE {
        f.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| with_path(e, "restricting", &tmp))?;
    }
    f.write_all(bytes).map_err(|e| with_path(e, "writing", &tmp))?;
    f.sync_all().map_err(|e| with_path(e, "syncing", &tmp))?;
    drop(f);
    fs::rename(&tmp, &target).map_err(|e| with_path(e, "renaming into place", &target))?;
    fsync_dir(dir)
}

/// Makes a folder's entries (creations, renames, removals) durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| with_path(e, "syncing folder", dir))
}

/// Creates a folder (and missing parents), making each new entry durable in its parent.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(with_path(e, "creating folder", dir)),
    }
    match dir.parent() {
        Some(parent) => fsync_dir(parent),
        None => Ok(()),
    }
}

fn read_dir_sorted(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .map_err(|e| with_path(e, "listing", dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| with_path(e, "listing", dir))?;
    paths.sort();
    Ok(paths)
}

/// Keeps the error kind and names the file in the message.
pub(crate) fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a.json", b"one").unwrap();
        write_atomic(dir.path(), "a.json", b"two").unwrap();
        assert_eq!(fs::read(dir.path().join("a.json")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn cluster_scoped_objects_live_under_the_underscore_folder() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        assert_eq!(layout.object_path("namespaces", "", "kube"), dir.path().join("objects/namespaces/_/kube.json"));
        assert_eq!(layout.object_path("pods", "default", "web"), dir.path().join("objects/pods/default/web.json"));
    }
}
