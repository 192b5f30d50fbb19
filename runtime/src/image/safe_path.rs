//! Confinement of archive entry paths: no `..`, no absolute paths, no detours through
//! symlinks, so a hostile layer cannot write outside the directory it is unpacked into.

use super::error::ImageError;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The entry path as a clean relative path ("./a/b" → "a/b"); empty for the root itself.
pub fn relative_entry_path(raw: &Path) -> Result<PathBuf, ImageError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(ImageError::invalid(format!("tar entry {}", raw.display()), "path contains '..'"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ImageError::invalid(format!("tar entry {}", raw.display()), "absolute path"))
            }
        }
    }
    Ok(out)
}

/// Creates the parent directories of `root/rel`, refusing if any existing ancestor is a
/// symlink (it could point anywhere) or not a directory.
pub fn prepare_parents(root: &Path, rel: &Path) -> Result<(), ImageError> {
    let Some(parent) = rel.parent() else { return Ok(()) };
    let mut cur = root.to_path_buf();
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ImageError::invalid(
                    format!("tar entry {}", rel.display()),
                    format!("path passes through symlink {}", cur.strip_prefix(root).unwrap_or(&cur).display()),
                ))
            }
            Ok(_) => {
                return Err(ImageError::invalid(
                    format!("tar entry {}", rel.display()),
                    format!("parent {} is not a directory", cur.strip_prefix(root).unwrap_or(&cur).display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(|e| ImageError::io("creating directory", &cur, e))?;
            }
            Err(e) => return Err(ImageError::io("inspecting", &cur, e)),
        }
    }
    Ok(())
}

/// Opens `rel` inside `root` for reading, refusing anything that resolves outside it.
pub fn open_inside(root: &Path, rel: &str) -> Result<(fs::File, PathBuf), ImageError> {
    let clean = relative_entry_path(Path::new(rel))?;
    let joined = root.join(&clean);
    let real_root = fs::canonicalize(root).map_err(|e| ImageError::io("resolving", root, e))?;
    let real = fs::canonicalize(&joined).map_err(|e| ImageError::io("opening", &joined, e))?;
    if !real.starts_with(&real_root) {
        return Err(ImageError::invalid(format!("{rel:?}"), "resolves outside the image directory"));
    }
    let f = fs::File::open(&real).map_err(|e| ImageError::io("opening", &joined, e))?;
    Ok((f, real))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_cleaned_and_escapes_refused() {
        assert_eq!(relative_entry_path(Path::new("./bin/sh")).unwrap(), Path::new("bin/sh"));
        assert_eq!(relative_entry_path(Path::new("./")).unwrap(), Path::new(""));
        assert!(relative_entry_path(Path::new("../etc/passwd")).unwrap_err().to_string().contains("'..'"));
        assert!(relative_entry_path(Path::new("a/../../x")).is_err());
        assert!(relative_entry_path(Path::new("/etc/passwd")).unwrap_err().to_string().contains("absolute"));
    }

    #[test]
    fn parents_through_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("evil")).unwrap();
        let err = prepare_parents(dir.path(), Path::new("evil/cron.d/x")).unwrap_err().to_string();
        assert!(err.contains("symlink evil"), "{err}");
        prepare_parents(dir.path(), Path::new("ok/deep/file")).unwrap();
        assert!(dir.path().join("ok/deep").is_dir());
    }

    #[test]
    fn open_inside_refuses_symlinks_leading_out() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("out")).unwrap();
        fs::write(dir.path().join("in"), b"x").unwrap();
        std::os::unix::fs::symlink("in", dir.path().join("alias")).unwrap();
        assert!(open_inside(dir.path(), "out").unwrap_err().to_string().contains("outside"));
        assert!(open_inside(dir.path(), "alias").is_ok());
        assert!(open_inside(dir.path(), "../x").is_err());
    }
}
