//! The store end to end on real busybox images: every format and compression, whiteouts,
//! links, corrupt input, rootfs import, naming, removal and flatten. Hostile archives,
//! bombs and parsers under arbitrary input have modules of their own beside this one.

use super::*;
use coracle_e2e::images::{
    busybox_docker_archive, busybox_rootfs, compress, layer_from_dir, layer_from_entries, write_image, zstd_available,
    Compression, Format, ImageBuild, LayerEntry, PATH_ENV,
};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub(super) fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Layer 1: busybox plus files the second layer deletes or hides.
fn base_layer() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    busybox_rootfs(dir.path());
    fs::write(dir.path().join("removed"), b"gone soon").unwrap();
    fs::create_dir(dir.path().join("data")).unwrap();
    fs::write(dir.path().join("data/old"), b"hidden by opaque").unwrap();
    layer_from_dir(dir.path())
}

/// Layer 2: a whiteout, an opaque directory, a symlink and a hardlink.
fn change_layer() -> Vec<u8> {
    layer_from_entries(&[
        LayerEntry::File(".wh.removed", b"", 0o644),
        LayerEntry::Dir("data", 0o755),
        LayerEntry::File("data/.wh..wh..opq", b"", 0o644),
        LayerEntry::File("data/new", b"fresh", 0o644),
        LayerEntry::Symlink("link", "bin/busybox"),
        LayerEntry::Dir("two", 0o755),
        LayerEntry::File("two/a", b"shared inode", 0o600),
        LayerEntry::Hardlink("two/b", "two/a"),
    ])
}

fn two_layer_image(reference: &str, compression: Compression) -> ImageBuild {
    ImageBuild {
        reference: reference.to_string(),
        run_config: serde_json::json!({ "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": [PATH_ENV],
            "WorkingDir": "/data", "User": "65534", "ExposedPorts": { "80/tcp": {} } }),
        layers: vec![base_layer(), change_layer()],
        compression,
    }
}

pub(super) fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

pub(super) fn assert_store_empty(data: &Path) {
    let images = data.join("images");
    assert_eq!(entries(&images.join("layers")), Vec::<String>::new(), "layers left behind");
    assert_eq!(entries(&images.join("blobs/sha256")), Vec::<String>::new(), "blobs left behind");
    assert_eq!(entries(&images.join("tmp")), Vec::<String>::new(), "staging left behind");
}

#[test]
fn every_format_and_compression_loads_with_whiteouts_links_and_config() {
    let mut compressions = vec![Compression::None, Compression::Gzip];
    if zstd_available() {
        compressions.push(Compression::Zstd);
    } else {
        eprintln!("skipping zstd layers: the zstd CLI is not installed");
    }
    let (base, change) = (base_layer(), change_layer());
    for format in [Format::DockerArchive, Format::OciArchive, Format::OciLayout] {
        for &compression in &compressions {
            let case = format!("{format:?}/{compression:?}");
            let work = tempfile::tempdir().unwrap();
            let store = ImageStore::open(&work.path().join("data")).unwrap();
            let image = ImageBuild {
                layers: vec![base.clone(), change.clone()],
                ..two_layer_image("localhost/t:1", compression)
            };
            let src = write_image(&image, format, &work.path().join("src"));
            assert_eq!(store.load(&src).unwrap(), vec!["localhost/t:1".to_string()], "{case}");

            let img = store.resolve("localhost/t:1").unwrap().expect(&case);
            assert_eq!(img.reference, "localhost/t:1");
            assert_eq!(img.layers.len(), 2, "{case}");
            assert_eq!(img.config.entrypoint, ["/bin/sh", "-c"], "{case}");
            assert_eq!(img.config.cmd, ["echo hi"]);
            assert_eq!(img.config.env, [PATH_ENV]);
            assert_eq!(img.config.working_dir.as_deref(), Some("/data"));
            assert_eq!(img.config.user.as_deref(), Some("65534"));
            assert_eq!(img.config.exposed_ports, ["80/tcp"]);
            assert!(img.size > 1_000_000, "{case}: busybox counted in size {}", img.size);

            let (lower, upper) = (&img.layers[0], &img.layers[1]);
            assert!(lower.join("bin/busybox").is_file(), "{case}");
            assert_eq!(fs::read_link(lower.join("bin/sh")).unwrap(), Path::new("busybox"));
            // overlay's 0/0 device where the kernel lets us make one, else the OCI marker.
            let wh =
                ["removed", ".wh.removed"].map(|n| upper.join(n)).into_iter().find(|p| p.symlink_metadata().is_ok());
            let wh = wh.expect(&case);
            assert_eq!(overlay::whiteout_target(&wh, &wh.symlink_metadata().unwrap()).unwrap(), "removed", "{case}");
            if root() {
                assert_eq!(wh.file_name().unwrap(), "removed", "{case}: root makes overlay whiteouts");
            }
            assert!(overlay::is_opaque(&upper.join("data")), "{case}");
            if root() {
                assert_eq!(
                    overlay::get_xattr(&upper.join("data"), "trusted.overlay.opaque").as_deref(),
                    Some(&b"y"[..])
                );
                assert!(!upper.join("data/.wh..wh..opq").exists(), "{case}: root converts the opaque marker");
            }
            assert_eq!(fs::read_link(upper.join("link")).unwrap(), Path::new("bin/busybox"));
            let (a, b) = (fs::metadata(upper.join("two/a")).unwrap(), fs::metadata(upper.join("two/b")).unwrap());
            assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "{case}: hardlink kept");
            assert_eq!(a.mode() & 0o777, 0o600);

            let flat = work.path().join("flat");
            flatten(&img.layers, &flat).unwrap();
            assert!(!flat.join("removed").exists(), "{case}: whiteout honoured");
            assert_eq!(entries(&flat.join("data")), ["new"], "{case}: opaque dir hides lower content");
            assert_eq!(fs::read(flat.join("link")).unwrap(), fs::read(flat.join("bin/busybox")).unwrap());
            let (a, b) = (fs::metadata(flat.join("two/a")).unwrap(), fs::metadata(flat.join("two/b")).unwrap());
            assert_eq!(a.ino(), b.ino(), "{case}: hardlink kept by flatten");
            assert_eq!(fs::metadata(flat.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
            assert_eq!(entries(&work.path().join("data/images/tmp")), Vec::<String>::new());
        }
    }
}

#[test]
fn corrupt_layers_are_refused_and_nothing_is_stored() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let store = ImageStore::open(&data).unwrap();

    // OCI: a blob whose content no longer matches the digest it is filed under.
    let image = two_layer_image("localhost/corrupt:1", Compression::None);
    let layout = write_image(&image, Format::OciLayout, &work.path().join("oci"));
    let blob = layout.join("blobs/sha256").join(&coracle_e2e::images::sha256(&image.layers[1])[7..]);
    let mut bytes = fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 3] ^= 0x20;
    fs::write(&blob, &bytes).unwrap();
    let err = store.load(&layout).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("layer sha256:") && msg.contains("of localhost/corrupt:1: digest mismatch: expected sha256:"),
        "{msg}"
    );
    assert_store_empty(&data);

    // docker save: only the diff id vouches for layer.tar.
    let archive = write_image(&image, Format::DockerArchive, &work.path().join("docker"));
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(fs::File::open(&archive).unwrap()).unpack(dir.path()).unwrap();
    let layer = dir.path().join(&coracle_e2e::images::sha256(&image.layers[0])[7..]).join("layer.tar");
    let mut bytes = fs::read(&layer).unwrap();
    bytes[1024 + 4096] ^= 0x01; // inside bin/busybox (after the bin/ and bin/busybox headers): the tar still parses
    fs::write(&layer, &bytes).unwrap();
    let msg = store.load(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("(uncompressed): digest mismatch"), "{msg}");
    assert_store_empty(&data);
    assert!(store.list().is_empty());

    let msg = store.load_reader(&b"not a tar at all, just words"[..]).unwrap_err().to_string();
    assert!(msg.contains("image archive") || msg.contains("neither manifest.json nor index.json"), "{msg}");
    assert_store_empty(&data);
}

#[test]
fn ownership_and_modes_survive_unpacking() {
    if !root() {
        eprintln!("skipping ownership test: needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&work.path().join("data")).unwrap();
    let layer = layer_from_entries(&[
        LayerEntry::Dir("srv", 0o750),
        LayerEntry::Owned("srv/secret", b"s", 0o640, 1000, 2000),
        LayerEntry::Owned("srv/suid", b"#!", 0o4755, 0, 0),
        LayerEntry::Dir("ro", 0o555),
        LayerEntry::File("ro/inside", b"written before the dir was sealed", 0o444),
    ]);
    let image = ImageBuild {
        reference: "localhost/owned:1".into(),
        run_config: serde_json::json!({}),
        layers: vec![layer],
        compression: Compression::None,
    };
    store.load(&write_image(&image, Format::OciLayout, work.path())).unwrap();
    let img = store.resolve("localhost/owned:1").unwrap().unwrap();
    let l = &img.layers[0];
    let secret = fs::metadata(l.join("srv/secret")).unwrap();
    assert_eq!((secret.uid(), secret.gid(), secret.mode() & 0o7777), (1000, 2000, 0o640));
    assert_eq!(fs::metadata(l.join("srv/suid")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(l.join("srv")).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(fs::metadata(l.join("ro")).unwrap().mode() & 0o7777, 0o555);
    assert_eq!(fs::metadata(l.join("ro/inside")).unwrap().mtime(), 1_700_000_000);
    let flat = work.path().join("flat");
    flatten(&img.layers, &flat).unwrap();
    let secret = fs::metadata(flat.join("srv/secret")).unwrap();
    assert_eq!((secret.uid(), secret.gid(), secret.mode() & 0o7777), (1000, 2000, 0o640));
    store.remove("localhost/owned:1", &|_| false).unwrap();
    assert_store_empty(&work.path().join("data"));
}

#[test]
fn rootfs_import_makes_a_single_layer_image_with_a_stable_digest() {
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&work.path().join("data")).unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    fs::hard_link(rootfs.join("bin/busybox"), rootfs.join("bin/bb")).unwrap();
    assert_eq!(store.import_rootfs(&rootfs, "localhost/board:1").unwrap(), "localhost/board:1");
    let img = store.resolve("localhost/board:1").unwrap().unwrap();
    assert_eq!(img.layers.len(), 1);
    let l = &img.layers[0];
    assert_eq!(fs::read(l.join("bin/busybox")).unwrap(), fs::read(rootfs.join("bin/busybox")).unwrap());
    assert_eq!(fs::read_link(l.join("bin/httpd")).unwrap(), Path::new("busybox"));
    assert_eq!(fs::metadata(l.join("bin/bb")).unwrap().ino(), fs::metadata(l.join("bin/busybox")).unwrap().ino());
    assert_eq!(fs::metadata(l.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert!(img.config.env.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(effective_command(&img.config, None, None).unwrap_err().to_string(), "no command specified");

    store.import_rootfs(&rootfs, "localhost/board:2").unwrap();
    let again = store.resolve("localhost/board:2").unwrap().unwrap();
    assert_eq!(again.digest, img.digest, "same tree, same image");
    assert_eq!(entries(&work.path().join("data/images/layers")).len(), 1);

    let err = store.import_rootfs(&work.path().join("missing"), "localhost/x:1").unwrap_err().to_string();
    assert!(err.contains("not a directory"), "{err}");
    let err = store.import_rootfs(&rootfs, "Bad Name").unwrap_err().to_string();
    assert!(err.contains("\"Bad Name\""), "{err}");
}

#[test]
fn names_resolve_like_containerd_and_removal_respects_users_and_sharing() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let store = ImageStore::open(&data).unwrap();
    let a = busybox_docker_archive(&work.path().join("a"), "busybox:latest", &["sh"]);
    assert_eq!(store.load(&a).unwrap(), ["docker.io/library/busybox:latest"]);
    let b = busybox_docker_archive(&work.path().join("b"), "localhost/app:1", &["httpd", "-f"]);
    store.load(&b).unwrap();
    store.load(&busybox_docker_archive(&work.path().join("c"), "localhost/app:2", &["httpd", "-f"])).unwrap();

    let bb = store.resolve("busybox").unwrap().unwrap();
    assert_eq!(bb.config.cmd, ["sh"]);
    for name in ["docker.io/library/busybox", "library/busybox:latest", bb.digest.as_str(), &bb.digest[7..20]] {
        assert_eq!(store.resolve(name).unwrap().unwrap().digest, bb.digest, "{name}");
    }
    let pinned = store.resolve(&format!("busybox@{}", bb.digest)).unwrap().unwrap();
    assert_eq!(pinned.reference, format!("docker.io/library/busybox@{}", bb.digest));
    assert_eq!(store.resolve("busybox:other").unwrap(), None);
    assert!(store.resolve("Not/Valid").is_err());

    let app = store.resolve("localhost/app:1").unwrap().unwrap();
    assert_eq!(store.resolve("localhost/app:2").unwrap().unwrap().digest, app.digest);
    assert_eq!(app.layers, bb.layers, "one busybox layer, stored once");
    let mut rows = store.list();
    rows.sort_by(|x, y| (&x.repository, &x.tag).cmp(&(&y.repository, &y.tag)));
    let shown: Vec<(&str, &str)> = rows.iter().map(|r| (r.repository.as_str(), r.tag.as_str())).collect();
    assert_eq!(shown, [("docker.io/library/busybox", "latest"), ("localhost/app", "1"), ("localhost/app", "2")]);
    assert!(rows.iter().all(|r| r.size == bb.size && r.digest.starts_with("sha256:")));

    let err = store.remove("busybox", &|d| d == bb.digest).unwrap_err();
    assert!(matches!(err, ImageError::InUse { .. }));
    assert!(err.to_string().contains(&bb.digest), "{err}");
    assert!(matches!(store.remove("nothing:here", &|_| false), Err(ImageError::NotFound { .. })));

    let removed = store.remove("busybox", &|_| false).unwrap();
    assert_eq!(
        removed,
        Removal { untagged: vec!["docker.io/library/busybox:latest".into()], deleted: Some(bb.digest.clone()) }
    );
    assert!(app.layers[0].join("bin/busybox").is_file(), "shared layer stays");
    let removed = store.remove("localhost/app:1", &|_| false).unwrap();
    assert_eq!(removed.deleted, None, "app:2 still names it");

    // The index is durable: a reopened store sees the same images and drops strays.
    drop(store);
    fs::create_dir(data.join("images/tmp/stage-crashed")).unwrap();
    fs::create_dir(data.join("images/layers").join("ab".repeat(32))).unwrap();
    let store = ImageStore::open(&data).unwrap();
    assert_eq!(store.list().len(), 1);
    assert_eq!(entries(&data.join("images/layers")).len(), 1);
    assert_eq!(entries(&data.join("images/tmp")), Vec::<String>::new());
    let removed = store.remove(&app.digest, &|_| false).unwrap();
    assert_eq!(removed.untagged, ["localhost/app:2"]);
    assert_store_empty(&data);
}

#[test]
fn whole_archives_compressed_stream_in() {
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&work.path().join("data")).unwrap();
    let image = ImageBuild { compression: Compression::Gzip, ..ImageBuild::busybox("localhost/gz:1", &["sleep", "1"]) };
    let archive: PathBuf = write_image(&image, Format::OciArchive, work.path());
    let gz = compress(&fs::read(&archive).unwrap(), Compression::Gzip);
    assert_eq!(store.load_reader(&gz[..]).unwrap(), ["localhost/gz:1"]);
    assert_eq!(store.resolve("localhost/gz:1").unwrap().unwrap().config.cmd, ["sleep", "1"]);
}

#[test]
fn unpacked_layers_mount_as_overlay_lower_layers() {
    if !root() {
        eprintln!("skipping overlay mount test: needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&work.path().join("data")).unwrap();
    let src = write_image(&two_layer_image("localhost/ov:1", Compression::Gzip), Format::OciArchive, work.path());
    store.load(&src).unwrap();
    let img = store.resolve("localhost/ov:1").unwrap().unwrap();
    let lower: Vec<String> = img.layers.iter().rev().map(|p| p.display().to_string()).collect();
    let merged = work.path().join("merged");
    fs::create_dir(&merged).unwrap();
    // A private mount namespace keeps the mount away from the host and everyone else's tests.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={} {m} || exit 99; ls -A {m}; ls -A {m}/data",
        lower.join(":"),
        m = merged.display()
    );
    let out =
        std::process::Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output();
    let out = match out {
        Ok(o) if o.status.code() != Some(99) => o,
        _ => {
            eprintln!("skipping overlay mount test: overlayfs or unshare unavailable");
            return;
        }
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = listing.lines().collect();
    assert!(names.contains(&"bin") && names.contains(&"link") && names.contains(&"two"), "{listing}");
    assert!(!names.contains(&"removed"), "whiteout hides the lower file: {listing}");
    assert_eq!(names.last(), Some(&"new"), "opaque dir hides data/old: {listing}");
    assert!(!names.contains(&"old"), "{listing}");
}
