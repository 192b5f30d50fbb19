//! A `hostPath` volume's `type` checked as the kubelet checks it before mounting
//! (`pkg/volume/hostpath`), with its messages; and for a `CharDevice` or `BlockDevice`, the
//! device-cgroup rule that lets the container use the device without `privileged: true`.

use coracle_config::core::HostPathVolumeSource;
use coracle_runtime::devices::{Access, DeviceKind, DeviceRule};
use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Checks (and for the `…OrCreate` types makes) what `source` names. `Ok(Some(rule))` for a
/// device: the rule granting it, read-only when the mount is.
pub fn check(source: &HostPathVolumeSource, read_only: bool) -> Result<Option<DeviceRule>, String> {
    let path = Path::new(&source.path);
    let kind = source.type_.as_deref().unwrap_or("");
    let meta = || std::fs::metadata(path).ok();
    let failed = |what: &str| format!("hostPath type check failed: {} is not {what}", source.path);
    match kind {
        // No type: nothing checked, as the kubelet.
        "" => Ok(None),
        "DirectoryOrCreate" | "Directory" => {
            if kind == "DirectoryOrCreate" && meta().is_none() {
                // The kubelet makes it 0755 (before its umask), parents included.
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(path)
                    .map_err(|e| format!("hostPath {}: create: {e}", source.path))?;
            }
            meta().filter(|m| m.is_dir()).map(|_| None).ok_or_else(|| failed("a directory"))
        }
        "FileOrCreate" | "File" => {
            if kind == "FileOrCreate" && meta().is_none() {
                // An empty 0644 file; the kubelet does not make the parent directory.
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(path)
                    .map_err(|e| format!("hostPath {}: create: {e}", source.path))?;
            }
            meta().filter(|m| m.is_file()).map(|_| None).ok_or_else(|| failed("a file"))
        }
        "Socket" => meta().filter(|m| m.file_type().is_socket()).map(|_| None).ok_or_else(|| failed("a socket file")),
        "CharDevice" => match meta().filter(|m| m.file_type().is_char_device()) {
            Some(m) => Ok(Some(device_rule(DeviceKind::Char, m.rdev(), read_only))),
            None => Err(failed("a character device")),
        },
        "BlockDevice" => match meta().filter(|m| m.file_type().is_block_device()) {
            Some(m) => Ok(Some(device_rule(DeviceKind::Block, m.rdev(), read_only))),
            None => Err(failed("a block device")),
        },
        other => Err(format!("{other} is an invalid volume type")),
    }
}

/// The rule for one device number: read and write (read only for a read-only mount); no
/// mknod, since the node is mounted, not made.
fn device_rule(kind: DeviceKind, rdev: u64, read_only: bool) -> DeviceRule {
    DeviceRule {
        kind,
        major: Some(libc::major(rdev)),
        minor: Some(libc::minor(rdev)),
        access: Access { read: true, write: !read_only, mknod: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &Path, kind: &str) -> HostPathVolumeSource {
        HostPathVolumeSource { path: path.display().to_string(), type_: Some(kind.into()) }
    }

    #[test]
    fn types_are_checked_with_the_kubelets_messages() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(check(&source(dir.path(), "Directory"), false), Ok(None));
        assert_eq!(check(&source(&file, "File"), false), Ok(None));
        let e = check(&source(&file, "Directory"), false).unwrap_err();
        assert_eq!(e, format!("hostPath type check failed: {} is not a directory", file.display()));
        let e = check(&source(dir.path(), "File"), false).unwrap_err();
        assert!(e.ends_with("is not a file"), "{e}");
        let e = check(&source(&file, "Socket"), false).unwrap_err();
        assert!(e.ends_with("is not a socket file"), "{e}");
        let e = check(&source(&file, "CharDevice"), false).unwrap_err();
        assert!(e.ends_with("is not a character device"), "{e}");
        let e = check(&source(&file, "BlockDevice"), false).unwrap_err();
        assert!(e.ends_with("is not a block device"), "{e}");
        let missing = dir.path().join("missing");
        assert!(check(&source(&missing, "Directory"), false).unwrap_err().ends_with("is not a directory"));
        assert_eq!(check(&source(&missing, ""), false), Ok(None));
    }

    #[test]
    fn or_create_types_make_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let new_dir = dir.path().join("a/b");
        assert_eq!(check(&source(&new_dir, "DirectoryOrCreate"), false), Ok(None));
        assert!(new_dir.is_dir());
        let new_file = dir.path().join("a/file");
        assert_eq!(check(&source(&new_file, "FileOrCreate"), false), Ok(None));
        assert_eq!(std::fs::metadata(&new_file).unwrap().len(), 0);
        // No parent is made for a file.
        let orphan = dir.path().join("none/file");
        assert!(check(&source(&orphan, "FileOrCreate"), false).unwrap_err().contains("create"));
    }

    #[test]
    fn a_character_device_yields_its_rule() {
        // /dev/null is 1:3 on every Linux.
        let rule = check(&source(Path::new("/dev/null"), "CharDevice"), false).unwrap().unwrap();
        assert_eq!(rule.v1_line(), "c 1:3 rw");
        let rule = check(&source(Path::new("/dev/null"), "CharDevice"), true).unwrap().unwrap();
        assert_eq!(rule.v1_line(), "c 1:3 r");
        assert!(check(&source(Path::new("/dev/null"), "BlockDevice"), false).is_err());
    }
}
