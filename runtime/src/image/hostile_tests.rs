//! The hostile archive battery against the store: every crafted archive is refused with
//! its reason (and, for layers, the layer and image) named, nothing is left behind and
//! nothing outside the store is written; the defused image loads with nothing usable made
//! on the host.

use super::tests::{assert_store_empty, entries, root};
use super::*;
use coracle_e2e::hostile::{defused_layer, oci_archive, reference, refused, DEFUSED_DEVICES};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What would show a write to a file: inode, link count, size, mtime.
type Stamp = (u64, u64, u64, i64);

/// The stamps of the host's account files.
fn host_files() -> Vec<Option<Stamp>> {
    ["/etc/passwd", "/etc/shadow", "/etc/group"]
        .iter()
        .map(|p| fs::symlink_metadata(p).ok().map(|m| (m.ino(), m.nlink(), m.size(), m.mtime())))
        .collect()
}

/// Character and block devices under `dir` other than overlay's 0/0 whiteouts.
pub(super) fn devices_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let ft = meta.file_type();
        if ft.is_dir() {
            found.extend(devices_under(&path));
        } else if (ft.is_char_device() || ft.is_block_device()) && meta.rdev() != 0 {
            found.push(path);
        }
    }
    found
}

#[test]
fn every_hostile_archive_is_refused_naming_why_and_nothing_escapes() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let store = ImageStore::open(&data).unwrap();
    let outside = work.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let before = host_files();
    let cases = refused(&outside, &work.path().join("build"));
    assert!(cases.len() >= 26, "the battery holds {} archives", cases.len());
    for case in cases {
        let err = store.load_reader(&case.archive[..]).expect_err(&case.name).to_string();
        assert!(err.contains(&case.refusal), "{}: {err}", case.name);
        if let Some(name) = case.name.strip_prefix("layer-") {
            assert!(err.contains("layer sha256:") && err.contains(&reference(name)), "{}: {err}", case.name);
            assert!(err.contains("tar entry "), "{}: names the entry: {err}", case.name);
        }
        assert_store_empty(&data);
    }
    assert_eq!(entries(&outside), Vec::<String>::new(), "nothing written outside");
    assert!(!work.path().join("evil").exists() && !Path::new("/evil").exists());
    assert_eq!(host_files(), before, "the host's account files are untouched");
    assert_eq!(devices_under(work.path()), Vec::<PathBuf>::new());
    assert!(store.list().is_empty());
}

#[test]
fn the_defused_image_loads_with_nothing_usable_on_the_host() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    fs::create_dir(&data).unwrap();
    let store = ImageStore::open(&data).unwrap();
    let outside = work.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let before = host_files();
    let archive = oci_archive("localhost/defused:1", vec![defused_layer(&outside)], work.path());
    assert_eq!(store.load_reader(&archive[..]).unwrap(), ["localhost/defused:1"]);
    let img = store.resolve("localhost/defused:1").unwrap().unwrap();
    let l = &img.layers[0];

    assert!(fs::symlink_metadata(l.join("passwd")).unwrap().is_file(), "the file replaced the symlink");
    assert_eq!(fs::read(l.join("passwd")).unwrap(), b"root::0:0::/:/bin/sh\n");
    assert!(fs::symlink_metadata(l.join("d")).unwrap().is_dir(), "the directory replaced the symlink");
    assert!(l.join("d/inside").is_file());
    let hard = fs::symlink_metadata(l.join("shadow-hard")).unwrap();
    assert!(hard.file_type().is_symlink(), "a hard link to a symlink is a symlink, not /etc/shadow");
    assert_eq!(hard.ino(), fs::symlink_metadata(l.join("shadow-link")).unwrap().ino());
    for dev in DEFUSED_DEVICES {
        assert!(fs::symlink_metadata(l.join(dev)).is_err(), "{dev} must not be created");
    }
    assert!(l.join("dev/after").is_file(), "entries after skipped devices load");
    assert!(fs::symlink_metadata(l.join("run-fifo")).unwrap().file_type().is_fifo(), "FIFOs are kept");
    assert!(!overlay::is_opaque(&l.join("forged")), "only .wh. markers make opaque directories");
    let mode = |p: &str| fs::metadata(l.join(p)).unwrap().mode() & 0o7777;
    if root() {
        assert_eq!((mode("bin/su"), mode("bin/sg")), (0o4755, 0o2755), "set-id bits kept inside the store");
    } else {
        assert_eq!((mode("bin/su"), mode("bin/sg")), (0o755, 0o755), "set-id bits dropped without root");
    }
    // Kept only because nobody else can reach them: the store's root is ours and 0700.
    let store_root = fs::metadata(data.join("images")).unwrap();
    assert_eq!(store_root.mode() & 0o7777, 0o700);
    assert_eq!(store_root.uid(), nix::unistd::geteuid().as_raw());

    let flat = work.path().join("flat");
    flatten(&img.layers, &flat).unwrap();
    assert!(fs::symlink_metadata(flat.join("run-fifo")).unwrap().file_type().is_fifo());
    assert_eq!(entries(&flat.join("dev")), ["after"]);

    assert_eq!(devices_under(work.path()), Vec::<PathBuf>::new(), "no device node anywhere");
    assert_eq!(entries(&outside), Vec::<String>::new());
    assert_eq!(host_files(), before);
}

#[test]
fn a_store_opened_on_an_open_data_dir_is_still_private() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    fs::create_dir_all(data.join("images")).unwrap();
    for dir in [&data, &data.join("images")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    drop(ImageStore::open(&data).unwrap());
    assert_eq!(fs::metadata(data.join("images")).unwrap().mode() & 0o7777, 0o700);
}
