//! Busybox test images, built for real from Debian's busybox-static: a root filesystem
//! directory, and the same image as a `docker save` archive, an OCI archive or an OCI
//! image layout, with plain, gzip or zstd layers.

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Applets linked to /bin/busybox in `busybox_rootfs`.
pub const APPLETS: &[&str] = &[
    "sh", "httpd", "sleep", "cat", "echo", "ls", "ps", "kill", "wget", "nc", "hostname", "env", "id", "yes", "dd",
    "head", "true", "false",
];
/// The PATH test images set in their config.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A fixed mtime, so the same tree always gives the same layer digest.
pub const MTIME: u64 = 1_700_000_000;

/// The host's static busybox (`apt-get install busybox-static` provides it).
pub fn busybox_binary() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox not found: apt-get install -y busybox-static")
}

/// Writes a minimal root filesystem into `dir`: /bin/busybox with applet symlinks,
/// /etc/passwd (root, nobody 65534), /etc/group, /etc/hosts, and empty /tmp /proc /dev /sys.
pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "dev", "sys", "root"] {
        fs::create_dir_all(dir.join(d)).unwrap_or_else(|e| panic!("creating {}/{d}: {e}", dir.display()));
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod /tmp");
    fs::copy(busybox_binary(), dir.join("bin/busybox")).expect("copying busybox");
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).expect("chmod busybox");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).expect("applet symlink");
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("writing /etc/passwd");
    fs::write(dir.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").expect("writing /etc/group");
    fs::write(dir.join("etc/hosts"), "").expect("writing /etc/hosts");
}

/// How the layers of a built image are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    /// Made with the `zstd` CLI; see `zstd_available`.
    Zstd,
}

/// Whether the `zstd` CLI is installed (zstd test layers are made with it).
pub fn zstd_available() -> bool {
    Command::new("zstd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The ways an image can be handed to `coracle image load`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `docker save`: manifest.json, `<config hex>.json`, `<id>/layer.tar`.
    DockerArchive,
    /// A tar of an OCI image layout.
    OciArchive,
    /// An OCI image layout directory.
    OciLayout,
}

/// One entry of a hand-made layer.
#[derive(Clone, Debug)]
pub enum LayerEntry {
    Dir(&'static str, u32),
    File(&'static str, &'static [u8], u32),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    /// A file owned by uid/gid, for ownership tests.
    Owned(&'static str, &'static [u8], u32, u64, u64),
}

/// An image to build: name, run config and uncompressed layer tars (bottom → top).
#[derive(Clone, Debug)]
pub struct ImageBuild {
    pub reference: String,
    /// The config's `config` object (Cmd, Entrypoint, Env, …).
    pub run_config: serde_json::Value,
    pub layers: Vec<Vec<u8>>,
    pub compression: Compression,
}

impl ImageBuild {
    /// A one-layer busybox image running `cmd`, with PATH set.
    pub fn busybox(reference: &str, cmd: &[&str]) -> ImageBuild {
        let rootfs = tempfile::tempdir().expect("tempdir");
        busybox_rootfs(rootfs.path());
        ImageBuild {
            reference: reference.to_string(),
            run_config: serde_json::json!({ "Cmd": cmd, "Env": [PATH_ENV] }),
            layers: vec![layer_from_dir(rootfs.path())],
            compression: Compression::None,
        }
    }
}

/// A layer tar of the tree at `dir` (sorted, owned by root, fixed mtime).
pub fn layer_from_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, dir, Path::new(""));
    b.into_inner().expect("finishing layer tar")
}

fn append_dir(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel)).expect("reading rootfs").map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(entry.path()).expect("stat");
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_mode(meta.mode() & 0o7777);
        if meta.is_dir() {
            b.append_data(&mut h, &name, std::io::empty()).expect("tar dir");
            append_dir(b, root, &name);
        } else if meta.file_type().is_symlink() {
            b.append_link(&mut h, &name, fs::read_link(entry.path()).unwrap()).expect("tar symlink");
        } else {
            b.append_data(&mut h, &name, fs::File::open(entry.path()).unwrap()).expect("tar file");
        }
    }
}

/// A layer tar of hand-written entries (whiteouts are `File(".wh.NAME", b"", 0o644)`).
pub fn layer_from_entries(entries: &[LayerEntry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(MTIME);
        match e {
            LayerEntry::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty())
            }
            LayerEntry::File(p, data, mode) => {
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data)
            }
            LayerEntry::Owned(p, data, mode, uid, gid) => {
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data)
            }
            LayerEntry::Symlink(p, target) | LayerEntry::Hardlink(p, target) => {
                let kind =
                    if matches!(e, LayerEntry::Symlink(..)) { tar::EntryType::Symlink } else { tar::EntryType::Link };
                h.set_entry_type(kind);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target)
            }
        }
        .unwrap_or_else(|err| panic!("tar entry {e:?}: {err}"));
    }
    b.into_inner().expect("finishing layer tar")
}

/// `data` compressed as asked (zstd through the CLI, which must be installed).
pub fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data).expect("gzip");
            gz.finish().expect("gzip")
        }
        Compression::Zstd => {
            let mut child = Command::new("zstd")
                .args(["-q", "-c", "-3"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("running zstd (check zstd_available first)");
            let mut stdin = child.stdin.take().expect("zstd stdin");
            let input = data.to_vec();
            let feeder = std::thread::spawn(move || stdin.write_all(&input));
            let out = child.wait_with_output().expect("zstd output");
            feeder.join().expect("zstd feeder").expect("writing to zstd");
            assert!(out.status.success(), "zstd failed");
            out.stdout
        }
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Builds `image` in `format` under `dest` and returns the archive file or layout dir.
pub fn write_image(image: &ImageBuild, format: Format, dest: &Path) -> PathBuf {
    let diff_ids: Vec<String> = image.layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": image.run_config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap();
    let blobs: Vec<Vec<u8>> = image.layers.iter().map(|l| compress(l, image.compression)).collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    match format {
        Format::DockerArchive => {
            let config_name = format!("{}.json", &sha256(&config)[7..]);
            let mut layer_paths = Vec::new();
            for (blob, diff_id) in blobs.iter().zip(&diff_ids) {
                let path = format!("{}/layer.tar", &diff_id[7..]);
                files.push((path.clone(), blob.clone()));
                layer_paths.push(path);
            }
            let manifest = serde_json::json!([{
                "Config": config_name, "RepoTags": [image.reference], "Layers": layer_paths,
            }]);
            files.push((config_name, config));
            files.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
        }
        Format::OciArchive | Format::OciLayout => {
            let media = match image.compression {
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            let layers: Vec<_> = blobs
                .iter()
                .map(|b| serde_json::json!({ "mediaType": media, "digest": sha256(b), "size": b.len() }))
                .collect();
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(&config), "size": config.len(),
                },
                "layers": layers,
            }))
            .unwrap();
            let index = serde_json::json!({
                "schemaVersion": 2,
                "manifests": [{
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256(&manifest), "size": manifest.len(),
                    "annotations": { "org.opencontainers.image.ref.name": image.reference },
                }],
            });
            for blob in blobs.iter().chain([&config, &manifest]) {
                files.push((format!("blobs/sha256/{}", &sha256(blob)[7..]), blob.clone()));
            }
            files.push(("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()));
            files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
        }
    }
    fs::create_dir_all(dest).expect("creating image destination");
    if format == Format::OciLayout {
        let dir = dest.join("oci-layout-dir");
        for (name, data) in &files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        return dir;
    }
    let path = dest.join(if format == Format::DockerArchive { "docker-save.tar" } else { "oci-archive.tar" });
    let mut b = tar::Builder::new(fs::File::create(&path).expect("creating archive"));
    for (name, data) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, &data[..]).expect("writing archive entry");
    }
    b.into_inner().expect("finishing archive").sync_all().expect("syncing archive");
    path
}

/// A `docker save` archive of a busybox image named `reference` running `cmd`.
pub fn busybox_docker_archive(dest: &Path, reference: &str, cmd: &[&str]) -> PathBuf {
    write_image(&ImageBuild::busybox(reference, cmd), Format::DockerArchive, dest)
}

/// An OCI archive (gzip layers) of a busybox image named `reference` running `cmd`.
pub fn busybox_oci_archive(dest: &Path, reference: &str, cmd: &[&str]) -> PathBuf {
    let image = ImageBuild { compression: Compression::Gzip, ..ImageBuild::busybox(reference, cmd) };
    write_image(&image, Format::OciArchive, dest)
}

/// An OCI image layout directory (gzip layers) of a busybox image named `reference`.
pub fn busybox_oci_layout(dest: &Path, reference: &str, cmd: &[&str]) -> PathBuf {
    let image = ImageBuild { compression: Compression::Gzip, ..ImageBuild::busybox(reference, cmd) };
    write_image(&image, Format::OciLayout, dest)
}
