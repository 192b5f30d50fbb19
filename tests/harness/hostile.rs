//! The hostile archive battery: crafted image archives an image loader must refuse, each
//! with the words its refusal must contain, and archives it must defuse (load, with nothing
//! usable made on the host). The store's tests and the daemon's e2e tests run the same ones.

use crate::images::{sha256, write_image, Compression, Format, ImageBuild};
use crate::rawtar::{files_tar, raw_tar, tar_files, RawEntry};
use std::path::Path;
use tar::EntryType;

/// An archive (a `docker save` or OCI archive, uncompressed) and what its refusal names.
pub struct Hostile {
    pub name: String,
    pub archive: Vec<u8>,
    /// Words the error must contain.
    pub refusal: String,
}

/// The image reference the archives of case `name` carry.
pub fn reference(name: &str) -> String {
    format!("localhost/hostile-{name}:1")
}

/// An OCI archive of one image `reference` whose only layer is `layer` (gzip).
pub fn oci_archive(reference: &str, layers: Vec<Vec<u8>>, work: &Path) -> Vec<u8> {
    let image = ImageBuild {
        reference: reference.to_string(),
        run_config: serde_json::json!({ "Cmd": ["sh"] }),
        layers,
        compression: Compression::Gzip,
    };
    let dir = work.join(reference.replace(['/', ':'], "_"));
    std::fs::read(write_image(&image, Format::OciArchive, &dir)).expect("reading the OCI archive back")
}

/// The `docker save` files (name, bytes) of one image `reference` with `layers`.
fn docker_files(reference: &str, layers: Vec<Vec<u8>>, work: &Path) -> Vec<(String, Vec<u8>)> {
    let image = ImageBuild {
        reference: reference.to_string(),
        run_config: serde_json::json!({ "Cmd": ["sh"] }),
        layers,
        compression: Compression::None,
    };
    let dir = work.join(format!("docker-{}", reference.replace(['/', ':'], "_")));
    tar_files(&std::fs::read(write_image(&image, Format::DockerArchive, &dir)).expect("reading docker archive"))
}

/// The files of an OCI archive of `reference` with one small harmless layer.
fn oci_files(reference: &str, work: &Path) -> Vec<(String, Vec<u8>)> {
    tar_files(&oci_archive(reference, vec![raw_tar(&[RawEntry::file("hello", b"hi")])], work))
}

/// Replaces the file `name` of `files` with `data`.
fn replace_file(files: &mut [(String, Vec<u8>)], name: &str, data: Vec<u8>) {
    files.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in the archive")).1 = data;
}

/// The JSON of file `name`.
fn json_of(files: &[(String, Vec<u8>)], name: &str) -> serde_json::Value {
    let (_, data) = files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
    serde_json::from_slice(data).expect("JSON file")
}

/// Rewrites index.json's first manifest digest to `digest` (and drops the old manifest).
fn with_manifest_digest(mut files: Vec<(String, Vec<u8>)>, digest: &str) -> Vec<(String, Vec<u8>)> {
    let mut index = json_of(&files, "index.json");
    index["manifests"][0]["digest"] = serde_json::json!(digest);
    replace_file(&mut files, "index.json", serde_json::to_vec(&index).unwrap());
    files
}

/// The blob file of the OCI archive whose JSON has `key` at the top level (config: `rootfs`,
/// manifest: `layers`).
fn blob_with(files: &[(String, Vec<u8>)], key: &str) -> String {
    files
        .iter()
        .find(|(n, d)| {
            n.starts_with("blobs/")
                && serde_json::from_slice::<serde_json::Value>(d).is_ok_and(|v| v.get(key).is_some())
        })
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| panic!("no blob with {key}"))
}

/// Every refused case; `outside` is a directory of the test's own that escapes would reach.
pub fn refused(outside: &Path, work: &Path) -> Vec<Hostile> {
    let out = outside.display().to_string();
    let up = "../".repeat(12);
    // Layer entries: each case is an OCI archive whose one layer holds these entries.
    let layer_cases: Vec<(&str, Vec<RawEntry>, String)> = vec![
        ("dotdot", vec![RawEntry::file(&format!("{up}evil"), b"x")], "path contains '..'".into()),
        ("nested-dotdot", vec![RawEntry::file("a/../../evil", b"x")], "path contains '..'".into()),
        ("absolute", vec![RawEntry::file("/evil", b"x")], "absolute path".into()),
        ("absolute-cron", vec![RawEntry::file("/etc/cron.d/evil", b"* * * * * root id\n")], "absolute path".into()),
        ("hardlink-dotdot", vec![RawEntry::hardlink("h", "../../etc/passwd")], "path contains '..'".into()),
        ("hardlink-shadow", vec![RawEntry::hardlink("h", "/etc/shadow")], "absolute path".into()),
        (
            "symlink-abs-then-file",
            vec![RawEntry::symlink("esc", &out), RawEntry::file("esc/evil", b"x")],
            "passes through symlink esc".into(),
        ),
        (
            "symlink-rel-then-file",
            vec![RawEntry::symlink("esc", &up), RawEntry::file("esc/evil", b"x")],
            "passes through symlink esc".into(),
        ),
        (
            "symlink-etc-then-hardlink-shadow",
            vec![RawEntry::symlink("etc", "/etc"), RawEntry::hardlink("shadow", "etc/shadow")],
            "passes through symlink etc".into(),
        ),
        (
            "symlink-then-dir",
            vec![RawEntry::symlink("d", &out), RawEntry::dir("d/sub")],
            "passes through symlink d".into(),
        ),
        ("whiteout-parent", vec![RawEntry::file(".wh...", b"")], "\"..\" names no entry".into()),
        ("whiteout-self", vec![RawEntry::dir("a"), RawEntry::file("a/.wh..", b"")], "\".\" names no entry".into()),
        (
            "whiteout-through-symlink",
            vec![RawEntry::symlink("s", &out), RawEntry::file("s/.wh.victim", b"")],
            "passes through symlink s".into(),
        ),
        (
            "opaque-through-symlink",
            vec![RawEntry::symlink("s", &out), RawEntry::file("s/.wh..wh..opq", b"")],
            "passes through symlink s".into(),
        ),
        (
            "pax-path-dotdot",
            vec![RawEntry::file("harmless", b"x").pax("path", format!("{up}evil").as_bytes())],
            "path contains '..'".into(),
        ),
        (
            "gnu-longname-dotdot",
            vec![RawEntry::file(&format!("{}/{up}evil", "d".repeat(100)), b"x")],
            "path contains '..'".into(),
        ),
        (
            "pax-linkpath-shadow",
            vec![RawEntry::hardlink("h", "harmless").pax("linkpath", b"/etc/shadow")],
            "absolute path".into(),
        ),
        (
            "file-under-file",
            vec![RawEntry::file("f", b"x"), RawEntry::file("f/x", b"y")],
            "parent f is not a directory".into(),
        ),
        (
            "hardlink-to-nothing",
            vec![RawEntry::hardlink("h", "nowhere")],
            "hard link to nowhere: no earlier entry of the layer has that name".into(),
        ),
    ];
    let mut cases: Vec<Hostile> = layer_cases
        .into_iter()
        .map(|(name, entries, refusal)| Hostile {
            name: format!("layer-{name}"),
            archive: oci_archive(&reference(name), vec![raw_tar(&entries)], work),
            refusal,
        })
        .collect();

    // The archive itself.
    let mut archive = |name: &str, archive: Vec<u8>, refusal: &str| {
        cases.push(Hostile { name: format!("archive-{name}"), archive, refusal: refusal.into() })
    };
    archive("dotdot", raw_tar(&[RawEntry::file(&format!("{up}evil"), b"x")]), "path contains '..'");
    archive("absolute", raw_tar(&[RawEntry::file("/evil", b"x")]), "absolute path");
    archive("symlink-abs", raw_tar(&[RawEntry::symlink("blobs", "/etc")]), "symlink to /etc leaves the archive");
    archive(
        "symlink-rel",
        raw_tar(&[RawEntry::symlink("x", "../../etc/shadow")]),
        "symlink to ../../etc/shadow leaves the archive",
    );
    archive(
        "symlink-then-file",
        raw_tar(&[RawEntry::symlink("d", "."), RawEntry::file("d/evil", b"x")]),
        "passes through symlink d",
    );
    let docker = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut files = docker_files(&reference(name), vec![raw_tar(&[RawEntry::file("hello", b"hi")])], work);
        let mut manifest = json_of(&files, "manifest.json");
        edit(&mut manifest);
        replace_file(&mut files, "manifest.json", serde_json::to_vec(&manifest).unwrap());
        files_tar(&files)
    };
    archive(
        "docker-layer-dotdot",
        docker("docker-layer-dotdot", &|m| m[0]["Layers"][0] = format!("{up}etc/shadow").into()),
        "path contains '..'",
    );
    archive(
        "docker-layer-absolute",
        docker("docker-layer-absolute", &|m| m[0]["Layers"][0] = "/etc/shadow".into()),
        "absolute path",
    );
    archive(
        "docker-config-absolute",
        docker("docker-config-absolute", &|m| m[0]["Config"] = "/etc/passwd".into()),
        "absolute path",
    );

    // Digests.
    let mut digest = |name: &str, files: Vec<(String, Vec<u8>)>, refusal: &str| {
        cases.push(Hostile { name: format!("digest-{name}"), archive: files_tar(&files), refusal: refusal.into() })
    };
    let mut files = oci_files(&reference("layer-blob"), work);
    let layer = files
        .iter()
        .position(|(n, d)| n.starts_with("blobs/") && d.starts_with(&[0x1f, 0x8b]))
        .expect("a gzip layer blob");
    // Another well-formed layer under the first one's digest.
    let other = raw_tar(&[RawEntry::file("hello", b"swapped")]);
    files[layer].1 = crate::images::compress(&other, Compression::Gzip);
    digest("layer-blob", files, "digest mismatch");
    for (name, key) in [("config", "rootfs"), ("manifest", "layers")] {
        let mut files = oci_files(&reference(name), work);
        let blob = blob_with(&files, key);
        let i = files.iter().position(|(n, _)| *n == blob).unwrap();
        // Still valid JSON: a space appended changes the digest, not the meaning.
        files[i].1.push(b' ');
        digest(name, files, "digest mismatch");
    }
    let mut files = docker_files(&reference("docker-diff-id"), vec![raw_tar(&[RawEntry::file("hello", b"hi")])], work);
    let layer = files.iter().position(|(n, _)| n.ends_with("/layer.tar")).unwrap();
    files[layer].1[512] ^= 0x01; // inside the file's data: the tar still parses
    digest("docker-diff-id", files, "(uncompressed): digest mismatch");
    let mut files = docker_files(&reference("docker-config"), vec![raw_tar(&[RawEntry::file("hello", b"hi")])], work);
    let config = files.iter().position(|(n, _)| n.ends_with(".json") && n != "manifest.json").unwrap();
    files[config].1.push(b' ');
    digest("docker-config", files, "digest mismatch");
    let files = oci_files(&reference("traversal"), work);
    digest(
        "traversal",
        with_manifest_digest(files, "sha256:../../../../../../etc/shadow"),
        "expected 64 lowercase hex digits",
    );
    let files = oci_files(&reference("sha512"), work);
    digest(
        "sha512",
        with_manifest_digest(files, &format!("sha512:{}", "ab".repeat(64))),
        "only sha256 digests are supported",
    );
    let mut files = oci_files(&reference("diff-ids"), work);
    let config = blob_with(&files, "rootfs");
    let mut c = json_of(&files, &config);
    c["rootfs"]["diff_ids"] = serde_json::json!([]);
    let bytes = serde_json::to_vec(&c).unwrap();
    let new_digest = sha256(&bytes);
    let manifest = blob_with(&files, "layers");
    let mut m = json_of(&files, &manifest);
    m["config"]["digest"] = new_digest.clone().into();
    m["config"]["size"] = bytes.len().into();
    files.push((format!("blobs/sha256/{}", &new_digest[7..]), bytes));
    let m = serde_json::to_vec(&m).unwrap();
    let m_digest = sha256(&m);
    files.push((format!("blobs/sha256/{}", &m_digest[7..]), m));
    digest("diff-ids", with_manifest_digest(files, &m_digest), "0 diff_ids for 1 layers");
    let mut files = oci_files(&reference("huge-index"), work);
    replace_file(&mut files, "index.json", vec![b' '; (16 << 20) + 1]);
    digest("huge-index", files, "larger than 16777216 bytes");
    digest("nested-indexes", nested_indexes(work), "indexes nested too deeply");
    cases
}

/// An OCI archive whose index points at an index pointing at an index… five deep.
fn nested_indexes(work: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = oci_files(&reference("nested-indexes"), work);
    let index = json_of(&files, "index.json");
    let mut target = index["manifests"][0].clone();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    for _ in 0..5 {
        target["platform"] = serde_json::json!({ "architecture": arch, "os": "linux" });
        let nested = serde_json::to_vec(&serde_json::json!({ "schemaVersion": 2, "manifests": [target] })).unwrap();
        let digest = sha256(&nested);
        files.push((format!("blobs/sha256/{}", &digest[7..]), nested.clone()));
        target = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": nested.len(),
        });
    }
    target["annotations"] = index["manifests"][0]["annotations"].clone();
    let top = serde_json::json!({ "schemaVersion": 2, "manifests": [target] });
    replace_file(&mut files, "index.json", serde_json::to_vec(&top).unwrap());
    files
}

/// The layer of the defused image: what must load, but inert.
pub fn defused_layer(outside: &Path) -> Vec<u8> {
    let out = outside.display().to_string();
    raw_tar(&[
        // A symlink, then a file of the same name: the file replaces the link, the link's
        // target is not written.
        RawEntry::symlink("passwd", "/etc/passwd"),
        RawEntry::file("passwd", b"root::0:0::/:/bin/sh\n"),
        // A symlink out, then a directory of its name, then a file in it.
        RawEntry::symlink("d", &out),
        RawEntry::dir("d"),
        RawEntry::file("d/inside", b"x"),
        // A hard link to a symlink that points at /etc/shadow: a second name for the link.
        RawEntry::symlink("shadow-link", "/etc/shadow"),
        RawEntry::hardlink("shadow-hard", "shadow-link"),
        // Device nodes, as a hostile image would ship them: the disk, memory, a loop device.
        RawEntry::dir("dev"),
        RawEntry::device("dev/mem", EntryType::Char, 1, 1),
        RawEntry::device("dev/sda", EntryType::Block, 8, 0),
        RawEntry::device("dev/loop0", EntryType::Block, 7, 0),
        RawEntry::device("dev/zero-zero", EntryType::Char, 0, 0),
        RawEntry::hardlink("dev/disk", "dev/sda"),
        RawEntry::file("dev/after", b"entries after the devices still load"),
        RawEntry { kind: EntryType::Fifo, ..RawEntry::file("run-fifo", b"") }.mode(0o600),
        // Set-id files: kept, inside the 0700 store.
        RawEntry::dir("bin"),
        RawEntry::file("bin/su", b"#!/bin/sh\nid\n").mode(0o4755),
        RawEntry::file("bin/sg", b"#!/bin/sh\nid\n").mode(0o2755),
        // A forged overlay marker: only `.wh.` entries make whiteouts and opaque directories.
        RawEntry::dir("forged").pax("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ])
}

/// The names of the device nodes `defused_layer` ships (none may exist once loaded).
pub const DEFUSED_DEVICES: &[&str] = &["dev/mem", "dev/sda", "dev/loop0", "dev/zero-zero", "dev/disk"];
