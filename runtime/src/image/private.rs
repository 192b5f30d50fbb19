//! Keeping the store's content away from the host's other users: its root is the daemon's
//! own and 0700 whatever the data directory's mode, so the set-id files layers keep are
//! reachable only through a container; and device nodes that older versions created from
//! layers are removed once.

use super::error::ImageError;
use super::fsutil::write_atomic;
use super::overlay;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The mode of the store's root: the owner's alone.
pub const ROOT_MODE: u32 = 0o700;

/// Written once the layers hold no device nodes (see `remove_device_nodes_once`).
const NO_DEVICES_MARKER: &str = ".no-device-nodes";

/// Creates `root` (the store, inside `data_dir`) if needed and makes it private: a
/// directory (not a symlink) owned by us, mode 0700. Refused when another user could swap
/// it: `data_dir` owned by someone else, or writable by others without the sticky bit.
pub fn private_root(data_dir: &Path, root: &Path) -> Result<(), ImageError> {
    fs::create_dir_all(data_dir).map_err(|e| ImageError::io("creating", data_dir, e))?;
    let me = nix::unistd::geteuid().as_raw();
    let parent = fs::metadata(data_dir).map_err(|e| ImageError::io("inspecting", data_dir, e))?;
    if parent.uid() != me && parent.uid() != 0 {
        return Err(ImageError::invalid(
            format!("data directory {}", data_dir.display()),
            format!("owned by uid {}: its owner could replace the image store in it", parent.uid()),
        ));
    }
    if parent.mode() & 0o022 != 0 && parent.mode() & 0o1000 == 0 {
        return Err(ImageError::invalid(
            format!("data directory {}", data_dir.display()),
            format!("mode {:o} lets other users replace the image store in it", parent.mode() & 0o7777),
        ));
    }
    match DirBuilder::new().mode(ROOT_MODE).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(ImageError::io("creating", root, e)),
    }
    let meta = fs::symlink_metadata(root).map_err(|e| ImageError::io("inspecting", root, e))?;
    if !meta.is_dir() {
        return Err(ImageError::invalid(format!("image store {}", root.display()), "is not a directory"));
    }
    if meta.uid() != me {
        return Err(ImageError::invalid(
            format!("image store {}", root.display()),
            format!("owned by uid {}, not by the daemon's uid {me}", meta.uid()),
        ));
    }
    if meta.mode() & 0o7777 != ROOT_MODE {
        log::info!(
            "image store {}: mode {:o} made {ROOT_MODE:o}: its layers keep set-id files",
            root.display(),
            meta.mode() & 0o7777
        );
        fs::set_permissions(root, fs::Permissions::from_mode(ROOT_MODE))
            .map_err(|e| ImageError::io("making private", root, e))?;
    }
    Ok(())
}

/// Removes character and block devices (other than overlay's 0/0 whiteouts) from the layers
/// of a store written before layers stopped carrying them; once, then a marker says so.
pub fn remove_device_nodes_once(root: &Path) -> Result<(), ImageError> {
    let marker = root.join(NO_DEVICES_MARKER);
    if marker.exists() {
        return Ok(());
    }
    let mut removed = 0;
    remove_devices(&root.join("layers"), &mut removed)
        .map_err(|e| ImageError::io("removing device nodes from", &root.join("layers"), e))?;
    if removed > 0 {
        log::warn!("image store {}: {removed} device node(s) from older loads removed from layers", root.display());
    }
    write_atomic(&marker, b"layers hold no device nodes but overlay whiteouts\n")
}

fn remove_devices(dir: &Path, removed: &mut u64) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            remove_devices(&path, removed)?;
        } else if (ft.is_char_device() || ft.is_block_device()) && overlay::whiteout_target(&path, &meta).is_none() {
            fs::remove_file(&path)?;
            *removed += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    #[test]
    fn the_root_is_made_private_whatever_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        let root = data.join("images");
        DirBuilder::new().mode(0o755).create(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o4777)).unwrap();
        private_root(&data, &root).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, ROOT_MODE);
        fs::remove_dir(&root).unwrap();
        private_root(&data, &root).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, ROOT_MODE, "created private");

        fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_root(&data, &root).unwrap_err().to_string();
        assert!(err.contains("mode 777 lets other users replace the image store"), "{err}");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o1777)).unwrap();
        private_root(&data, &root).unwrap();

        let link = dir.path().join("link-data");
        fs::create_dir(&link).unwrap();
        std::os::unix::fs::symlink(&root, link.join("images")).unwrap();
        let err = private_root(&link, &link.join("images")).unwrap_err().to_string();
        assert!(err.ends_with("is not a directory"), "{err}");
    }

    #[test]
    fn device_nodes_left_by_older_loads_go_once_whiteouts_stay() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: making device nodes needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layers/abc/dev");
        fs::create_dir_all(&layer).unwrap();
        mknod(&layer.join("sda"), SFlag::S_IFBLK, Mode::from_bits_truncate(0o666), makedev(8, 0)).unwrap();
        mknod(&layer.join("mem"), SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(1, 1)).unwrap();
        mknod(&layer.join("gone"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        mknod(&layer.join("fifo"), SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0).unwrap();
        remove_device_nodes_once(dir.path()).unwrap();
        let mut left: Vec<String> =
            fs::read_dir(&layer).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["fifo", "gone"]);
        assert!(dir.path().join(NO_DEVICES_MARKER).is_file());
        // Once: a node appearing later (it cannot, through a load) is not looked for again.
        mknod(&layer.join("sda"), SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), makedev(8, 0)).unwrap();
        remove_device_nodes_once(dir.path()).unwrap();
        assert!(layer.join("sda").exists());
    }
}
