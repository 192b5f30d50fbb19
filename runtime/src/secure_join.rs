//! Resolves a container path under its root without letting image symlinks escape the root.

use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: u32 = 40;

/// `root` joined with `unsafe_path`, resolving symlinks as if `root` were `/`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf, String> {
    let mut pending: Vec<std::ffi::OsString> = unsafe_path.components().rev().filter_map(component_name).collect();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = root.join(resolved.iter().collect::<PathBuf>()).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(format!("resolve {}: too many symlinks", unsafe_path.display()));
                }
                if target.is_absolute() {
                    resolved.clear();
                }
                pending.extend(target.components().rev().filter_map(component_name));
            }
            Err(_) => resolved.push(part),
        }
    }
    Ok(root.join(resolved.iter().collect::<PathBuf>()))
}

fn component_name(c: Component<'_>) -> Option<std::ffi::OsString> {
    match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data")).unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        symlink("../../../../data", root.join("data/up")).unwrap();
        assert_eq!(secure_join(root, Path::new("/etc-link/hosts")).unwrap(), root.join("etc/hosts"));
        assert_eq!(secure_join(root, Path::new("/data/up/x")).unwrap(), root.join("data/x"));
        assert_eq!(secure_join(root, Path::new("/../../x")).unwrap(), root.join("x"));
        symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(root, Path::new("/loop")).unwrap_err().contains("too many symlinks"));
    }
}
