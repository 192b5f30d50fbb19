//! The content-addressed image store under DATA/images: blobs by digest, unpacked layers by
//! diff id, and index.json naming them. Loads stage everything in DATA/images/tmp and
//! commit with renames, so a crash never leaves a half layer that looks complete.
//!
//! The store's root is forced to 0700 and must be the daemon's own, whatever the data
//! directory's mode: layers keep set-id files, which only the containers may reach.

use super::archive::extract_archive;
use super::budget::Budget;
use super::config::ImageConfig;
use super::digest::Digest;
use super::error::ImageError;
use super::fsutil::{fsync_dir, remove_tree, tree_size, write_atomic};
use super::index::{ImageRecord, IndexFile};
use super::layer::stream_layer;
use super::private::{private_root, remove_device_nodes_once};
use super::reference::Reference;
use super::rootfs::write_rootfs_tar;
use super::source::{read_source, SourceImage};
use super::spec::{self, ConfigFile, Descriptor, Manifest};
use coracle_config::settings::ImageSettings;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stored image, ready for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The reference it was resolved by, normalized (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// Manifest digest, `sha256:…` (the pod status `imageID`).
    pub digest: String,
    /// Run defaults from the image config.
    pub config: ImageConfig,
    /// Unpacked layer directories, bottom → top (overlay lowerdir wants them reversed).
    pub layers: Vec<PathBuf>,
    /// Bytes of regular files across the layers.
    pub size: u64,
}

/// One row of `image ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// `docker.io/library/busybox`, or `<none>` for an untagged image.
    pub repository: String,
    /// `latest`, or `<none>`.
    pub tag: String,
    /// Manifest digest.
    pub digest: String,
    /// Bytes of regular files across the layers.
    pub size: u64,
}

/// The image store; cheap to share behind an `Arc` (all methods take `&self`).
pub struct ImageStore {
    pub(super) root: PathBuf,
    privileged: bool,
    limits: ImageSettings,
    index: Mutex<IndexFile>,
    pub(super) seq: AtomicU64,
}

/// A private directory under DATA/images/tmp, removed when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.0) {
            log::warn!("removing image staging directory {}: {e}", self.0.display());
        }
    }
}

/// A verified image about to be committed.
struct Prepared {
    names: Vec<String>,
    manifest: (Digest, Vec<u8>),
    config: (Digest, Vec<u8>),
    layers: Vec<Digest>,
    size: u64,
}

impl ImageStore {
    /// Opens (creating if needed) the store in `data_dir/images` with the default limits.
    pub fn open(data_dir: &Path) -> Result<ImageStore, ImageError> {
        ImageStore::open_with(data_dir, &ImageSettings::default())
    }

    /// Opens (creating if needed) the store in `data_dir/images`, its root private (0700,
    /// ours), dropping leftovers of interrupted loads and layers no image refers to. Loads
    /// are held to `limits`.
    pub fn open_with(data_dir: &Path, limits: &ImageSettings) -> Result<ImageStore, ImageError> {
        let root = data_dir.join("images");
        private_root(data_dir, &root)?;
        for dir in [root.join("blobs/sha256"), root.join("layers"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(|e| ImageError::io("creating", &dir, e))?;
        }
        let tmp = root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(|e| ImageError::io("reading", &tmp, e))?.flatten() {
            remove_tree(&entry.path()).map_err(|e| ImageError::io("removing leftover", &entry.path(), e))?;
        }
        let index = IndexFile::load(&root.join("index.json"))?;
        remove_device_nodes_once(&root)?;
        let store = ImageStore {
            root,
            privileged: nix::unistd::geteuid().is_root(),
            limits: limits.clone(),
            index: Mutex::new(index),
            seq: AtomicU64::new(0),
        };
        store.prune_unused_layers()?;
        Ok(store)
    }

    /// Loads a `docker save` archive, an OCI archive (either optionally gzip/zstd
    /// compressed) or an OCI image layout directory; returns the names loaded (the digest
    /// for an unnamed image).
    pub fn load(&self, path: &Path) -> Result<Vec<String>, ImageError> {
        let meta = fs::metadata(path).map_err(|e| ImageError::io("opening image", path, e))?;
        if meta.is_dir() {
            let staging = self.staging()?;
            let mut budget = Budget::new(&self.root, &self.limits, &never)?;
            return self.load_dir(path, &staging, &mut budget).map_err(|e| e.within(&path.display().to_string()));
        }
        let file = File::open(path).map_err(|e| ImageError::io("opening image", path, e))?;
        self.load_reader(file).map_err(|e| e.within(&path.display().to_string()))
    }

    /// Loads an image archive from a stream.
    pub fn load_reader(&self, input: impl Read) -> Result<Vec<String>, ImageError> {
        self.load_upload(input, &never)
    }

    /// Loads an image archive from a request body; `abandoned` says whether the client has
    /// gone away (the upload cut short, the connection closed). Once it has, the load stops
    /// where it is and everything staged is removed: a partial image is never stored.
    pub fn load_upload(&self, input: impl Read, abandoned: &dyn Fn() -> bool) -> Result<Vec<String>, ImageError> {
        let staging = self.staging()?;
        let mut budget = Budget::new(&self.root, &self.limits, abandoned)?;
        match self.load_staged(input, &staging, &mut budget) {
            // Whatever failed once the client had gone (a cut archive, most likely), the
            // client is what went wrong.
            Err(e) if !matches!(e, ImageError::Abandoned { .. }) && budget.abandoned() => {
                log::info!("image upload stopped after its client went away: {e}");
                Err(ImageError::Abandoned { context: "image upload".into() })
            }
            result => result,
        }
    }

    /// Stages the archive `input` and loads what it holds.
    fn load_staged(
        &self,
        input: impl Read,
        staging: &Staging,
        budget: &mut Budget<'_>,
    ) -> Result<Vec<String>, ImageError> {
        let src = staging.0.join("archive");
        fs::create_dir(&src).map_err(|e| ImageError::io("creating", &src, e))?;
        // The connection is not watched while the body is read: the body ending early says
        // it, and a client may close its sending side once the body is through.
        let extracted = extract_archive(input, &src, &budget.archive(), &never)?;
        budget.charge(extracted.bytes, extracted.entries, false, true);
        self.load_dir(&src, staging, budget)
    }

    /// Makes a single-layer image named `reference` from the root filesystem in `dir`.
    pub fn import_rootfs(&self, dir: &Path, reference: &str) -> Result<String, ImageError> {
        let name = Reference::parse(reference)?;
        if name.digest.is_some() {
            return Err(ImageError::invalid(format!("import as {reference:?}"), "a name:tag is needed, not a digest"));
        }
        if !dir.is_dir() {
            return Err(ImageError::invalid(format!("import of {}", dir.display()), "not a directory"));
        }
        let staging = self.staging()?;
        let unpacking = staging.0.join("layers/unpacking");
        fs::create_dir_all(&unpacking).map_err(|e| ImageError::io("creating", &unpacking, e))?;
        let (reader, writer) = io::pipe().map_err(|e| ImageError::io("creating pipe for", dir, e))?;
        let src = dir.to_path_buf();
        let tar_writer = std::thread::spawn(move || write_rootfs_tar(&src, writer));
        let budget = Budget::new(&self.root, &self.limits, &never);
        let streamed =
            budget.and_then(|b| stream_layer(reader, Some(&unpacking), self.privileged, &b.layer_written(), &never));
        let written = tar_writer.join().unwrap_or_else(|_| Err(io::Error::other("tar writer panicked")));
        let digests = match (written, streamed) {
            (Err(e), _) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(ImageError::io("reading rootfs", dir, e))
            }
            (_, Err(e)) => return Err(e.within(&format!("importing {}", dir.display()))),
            (Err(e), Ok(_)) => return Err(ImageError::io("reading rootfs", dir, e)),
            (Ok(()), Ok(d)) => d,
        };
        log_skipped_devices(&format!("import of {}", dir.display()), &digests.unpacked.devices_skipped);
        let diff_id = digests.diff_id;
        let staged = staging.0.join("layers").join(diff_id.hex());
        fs::rename(&unpacking, &staged).map_err(|e| ImageError::io("renaming", &unpacking, e))?;
        let config = serde_json::json!({
            "architecture": spec::host_architecture(),
            "os": "linux",
            "config": { "Env": [DEFAULT_PATH_ENV] },
            "rootfs": { "type": "layers", "diff_ids": [diff_id.as_str()] },
            "history": [{ "created_by": "coracle image import" }],
        });
        let config = serde_json::to_vec(&config).expect("config serializes");
        let config_digest = Digest::of(&config);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(spec::MEDIA_OCI_MANIFEST.into()),
            config: descriptor(spec::MEDIA_OCI_CONFIG, &config_digest, config.len() as u64),
            layers: vec![descriptor(spec::MEDIA_OCI_LAYER_TAR, &diff_id, 0)],
        };
        let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
        let prepared = Prepared {
            names: vec![name.to_string()],
            manifest: (Digest::of(&manifest), manifest),
            config: (config_digest, config),
            layers: vec![diff_id.clone()],
            size: digests.unpacked.bytes,
        };
        let mut staged_layers = HashMap::new();
        staged_layers.insert(diff_id, staged);
        let mut names = self.commit(&staging, staged_layers, vec![prepared])?;
        Ok(names.remove(0))
    }

    /// All images: one row per name, plus a `<none>` row per untagged image.
    pub fn list(&self) -> Vec<ImageSummary> {
        let index = self.lock();
        let size_of = |d: &str| index.images.get(d).map_or(0, |r| r.size);
        let mut rows: Vec<ImageSummary> = index
            .tags
            .iter()
            .map(|(name, digest)| {
                let (repository, tag) = split_tag(name);
                ImageSummary { repository, tag, digest: digest.clone(), size: size_of(digest) }
            })
            .collect();
        for (digest, record) in &index.images {
            if !index.tags.values().any(|d| d == digest) {
                rows.push(ImageSummary {
                    repository: "<none>".into(),
                    tag: "<none>".into(),
                    digest: digest.clone(),
                    size: record.size,
                });
            }
        }
        rows
    }

    /// The image `reference` names: `busybox`, `localhost/app:1`, `name@sha256:…`,
    /// `sha256:…` or an unambiguous hex prefix (12+ digits) of a digest. None if absent.
    pub fn resolve(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let index = self.lock();
        let Some((digest, canonical)) = find(&index, reference)? else { return Ok(None) };
        let record = &index.images[&digest];
        let config_digest = Digest::parse(&record.config)?;
        let path = self.blob_path(&config_digest);
        let bytes =
            fs::read(&path).map_err(|e| ImageError::io(&format!("reading config of {canonical}:"), &path, e))?;
        let file: ConfigFile = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(format!("config {config_digest} of {canonical}"), e.to_string()))?;
        let layers = record
            .layers
            .iter()
            .map(|l| Digest::parse(l).map(|d| self.layer_path(&d)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Image {
            reference: canonical,
            digest,
            config: ImageConfig::from_config_file(&file),
            layers,
            size: record.size,
        }))
    }

    /// Verifies and unpacks everything `src` holds into `staging` within `budget`, then
    /// commits it unless the client has gone.
    fn load_dir(&self, src: &Path, staging: &Staging, budget: &mut Budget<'_>) -> Result<Vec<String>, ImageError> {
        let images = read_source(src)?;
        if images.is_empty() {
            return Err(ImageError::invalid(src.display().to_string(), "contains no images"));
        }
        let staged_root = staging.0.join("layers");
        fs::create_dir_all(&staged_root).map_err(|e| ImageError::io("creating", &staged_root, e))?;
        let mut staged: HashMap<Digest, PathBuf> = HashMap::new();
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        let mut prepared = Vec::new();
        for image in images {
            let SourceImage { names, manifest, manifest_digest, config, config_digest, layers } = image;
            let what = names.first().cloned().unwrap_or_else(|| manifest_digest.to_string());
            budget.next_image();
            let mut diff_ids = Vec::new();
            for layer in layers {
                let shown = layer.blob_digest.as_ref().unwrap_or(&layer.diff_id);
                let context = format!("layer {shown} of {what}");
                let known = staged.contains_key(&layer.diff_id) || self.layer_path(&layer.diff_id).is_dir();
                let dest = staged_root.join(layer.diff_id.hex());
                if !known {
                    fs::create_dir(&dest).map_err(|e| ImageError::io("creating", &dest, e))?;
                }
                budget.check_client(&context)?;
                let file = File::open(&layer.path).map_err(|e| ImageError::io("opening", &layer.path, e))?;
                let allowance = if known { budget.layer() } else { budget.layer_written() };
                let got = stream_layer(file, (!known).then_some(dest.as_path()), self.privileged, &allowance, &|| {
                    budget.abandoned()
                })
                .map_err(|e| e.within(&context))?;
                budget.charge(got.uncompressed, got.unpacked.entries, true, !known);
                if let Some(expected) = &layer.blob_digest {
                    expected.verify(&got.blob, &context)?;
                }
                layer.diff_id.verify(&got.diff_id, &format!("{context} (uncompressed)"))?;
                log_skipped_devices(&context, &got.unpacked.devices_skipped);
                if !known {
                    staged.insert(layer.diff_id.clone(), dest);
                    sizes.insert(layer.diff_id.clone(), got.unpacked.bytes);
                }
                diff_ids.push(layer.diff_id);
            }
            let size =
                diff_ids.iter().map(|d| sizes.get(d).copied().unwrap_or_else(|| tree_size(&self.layer_path(d)))).sum();
            prepared.push(Prepared {
                names,
                manifest: (manifest_digest, manifest),
                config: (config_digest, config),
                layers: diff_ids,
                size,
            });
        }
        budget.check_client("image upload")?;
        self.commit(staging, staged, prepared)
    }

    /// Moves staged layers into place, stores manifest and config blobs and names the
    /// images in index.json; everything reaches the disk before the index names it.
    fn commit(
        &self,
        staging: &Staging,
        staged: HashMap<Digest, PathBuf>,
        images: Vec<Prepared>,
    ) -> Result<Vec<String>, ImageError> {
        let dir = File::open(&staging.0).map_err(|e| ImageError::io("opening", &staging.0, e))?;
        nix::unistd::syncfs(dir.as_raw_fd()).map_err(|e| ImageError::io("syncing", &staging.0, e.into()))?;
        let mut index = self.lock();
        let layers = self.root.join("layers");
        for (diff_id, path) in staged {
            let dest = self.layer_path(&diff_id);
            if !dest.exists() {
                fs::rename(&path, &dest).map_err(|e| ImageError::io("moving layer into", &dest, e))?;
            }
        }
        fsync_dir(&layers)?;
        // A layer found in place before staging may have been pruned since (an image removed
        // meanwhile); naming an image whose layer is gone would break its pods later.
        for image in &images {
            if let Some(gone) = image.layers.iter().find(|d| !self.layer_path(d).is_dir()) {
                let name = image.names.first().cloned().unwrap_or_else(|| image.manifest.0.to_string());
                return Err(ImageError::invalid(
                    format!("layer {gone} of {name}"),
                    "removed by a concurrent image removal; load again",
                ));
            }
        }
        let mut next = index.clone();
        let mut loaded = Vec::new();
        for image in images {
            for (digest, bytes) in [&image.manifest, &image.config] {
                let path = self.blob_path(digest);
                if !path.exists() {
                    write_atomic(&path, bytes)?;
                }
            }
            let digest = image.manifest.0.to_string();
            next.images.insert(
                digest.clone(),
                ImageRecord {
                    config: image.config.0.to_string(),
                    layers: image.layers.iter().map(ToString::to_string).collect(),
                    size: image.size,
                },
            );
            if image.names.is_empty() {
                loaded.push(digest.clone());
            }
            for name in image.names {
                next.tags.insert(name.clone(), digest.clone());
                loaded.push(name);
            }
        }
        next.save(&self.index_path())?;
        *index = next;
        Ok(loaded)
    }

    fn staging(&self) -> Result<Staging, ImageError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join("tmp").join(format!("stage-{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| ImageError::io("creating", &dir, e))?;
        Ok(Staging(dir))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, IndexFile> {
        // The index is only replaced whole after a successful save, so a panic elsewhere
        // cannot leave it half-updated: poisoning carries no information here.
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub(super) fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }
}

/// The client of a load that has none to lose.
fn never() -> bool {
    false
}

/// One line per layer whose device nodes were not created, naming a few.
fn log_skipped_devices(what: &str, skipped: &[PathBuf]) {
    if skipped.is_empty() {
        return;
    }
    let some: Vec<String> = skipped.iter().take(4).map(|p| format!("/{}", p.display())).collect();
    let more = if skipped.len() > some.len() { ", …" } else { "" };
    log::info!(
        "{what}: {} device node(s) not created ({}{more}): the runtime provides /dev, an image cannot",
        skipped.len(),
        some.join(", ")
    );
}

/// The manifest digest `reference` names and its canonical spelling.
pub(super) fn find(index: &IndexFile, reference: &str) -> Result<Option<(String, String)>, ImageError> {
    if reference.starts_with("sha256:") {
        let d = Digest::parse(reference)?;
        return Ok(index.images.contains_key(d.as_str()).then(|| (d.to_string(), d.to_string())));
    }
    let parsed = Reference::parse(reference);
    if let Ok(r) = &parsed {
        let canonical = r.to_string();
        if let Some(d) = &r.digest {
            return Ok(index.images.contains_key(d.as_str()).then(|| (d.to_string(), canonical)));
        }
        if let Some(d) = index.tags.get(&canonical) {
            return Ok(Some((d.clone(), canonical)));
        }
    }
    if (12..=64).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits = index.images.keys().filter(|d| d[7..].starts_with(reference));
        if let (Some(d), None) = (hits.next(), hits.next()) {
            return Ok(Some((d.clone(), d.clone())));
        }
    }
    parsed.map(|_| None)
}

/// `docker.io/library/busybox:latest` → (`docker.io/library/busybox`, `latest`).
fn split_tag(name: &str) -> (String, String) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (name[..slash + i].to_string(), name[slash + i + 1..].to_string()),
        None => (name.to_string(), "<none>".to_string()),
    }
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest.to_string(),
        size: size as i64,
        annotations: Default::default(),
        platform: None,
    }
}
