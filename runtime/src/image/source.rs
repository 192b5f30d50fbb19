//! Reading what a directory in `docker save` or OCI image layout form contains: the
//! images, their names, verified manifest and config blobs, and where each layer lies.

use super::digest::Digest;
use super::error::ImageError;
use super::reference::Reference;
use super::safe_path::open_inside;
use super::spec::{self, ConfigFile, Descriptor, DockerSaveEntry, Index, Manifest};
use std::io::Read;
use std::path::{Path, PathBuf};

/// JSON documents larger than this are refused rather than read into memory.
const MAX_JSON_BLOB: u64 = 16 << 20;

/// One image found in a source, with everything but its layers already verified.
pub struct SourceImage {
    /// Normalized names (`docker.io/library/busybox:latest`); empty for an unnamed image.
    pub names: Vec<String>,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<SourceLayer>,
}

/// Where a layer blob lies and what it must hash to.
pub struct SourceLayer {
    pub path: PathBuf,
    /// The digest of the blob as stored, when the source states one.
    pub blob_digest: Option<Digest>,
    pub diff_id: Digest,
}

/// The images in `root`, a `docker save` directory (manifest.json) or OCI layout (index.json).
pub fn read_source(root: &Path) -> Result<Vec<SourceImage>, ImageError> {
    if root.join("manifest.json").is_file() {
        read_docker_save(root)
    } else if root.join("index.json").is_file() {
        read_oci_layout(root)
    } else {
        Err(ImageError::invalid(
            root.display().to_string(),
            "not a docker save archive or OCI image layout: neither manifest.json nor index.json found",
        ))
    }
}

fn read_docker_save(root: &Path) -> Result<Vec<SourceImage>, ImageError> {
    let (bytes, _) = read_limited(root, "manifest.json")?;
    let entries: Vec<DockerSaveEntry> =
        serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid("docker save manifest.json", e.to_string()))?;
    let mut images = Vec::new();
    for entry in entries {
        let names = entry.repo_tags.unwrap_or_default();
        let what = names.first().cloned().unwrap_or_else(|| entry.config.clone());
        let names = normalize_names(&names).map_err(|e| e.within(&format!("image {what}")))?;
        let (config, _) = read_limited(root, &entry.config).map_err(|e| e.within(&format!("image {what}")))?;
        let config_digest = Digest::of(&config);
        if let Some(expected) = digest_in_path(&entry.config) {
            expected.verify(&config_digest, &format!("config {} of {what}", entry.config))?;
        }
        let diff_ids = diff_ids(&config, entry.layers.len(), &what)?;
        let mut layers = Vec::new();
        let mut descriptors = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let (_, real) = open_inside(root, path).map_err(|e| e.within(&format!("layer {path} of {what}")))?;
            let size = real.metadata().map(|m| m.len() as i64).unwrap_or(0);
            let blob_digest = digest_in_path(path);
            descriptors.push(Descriptor {
                media_type: spec::MEDIA_OCI_LAYER_TAR.into(),
                digest: blob_digest.as_ref().unwrap_or(&diff_id).to_string(),
                size,
                annotations: Default::default(),
                platform: None,
            });
            layers.push(SourceLayer { path: real, blob_digest, diff_id });
        }
        // docker save carries no manifest; an equivalent OCI one gives the image its digest.
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(spec::MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: spec::MEDIA_OCI_CONFIG.into(),
                digest: config_digest.to_string(),
                size: config.len() as i64,
                annotations: Default::default(),
                platform: None,
            },
            layers: descriptors,
        };
        let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
        let manifest_digest = Digest::of(&manifest);
        images.push(SourceImage { names, manifest, manifest_digest, config, config_digest, layers });
    }
    Ok(images)
}

fn read_oci_layout(root: &Path) -> Result<Vec<SourceImage>, ImageError> {
    let (bytes, _) = read_limited(root, "index.json")?;
    let index: Index =
        serde_json::from_slice(&bytes).map_err(|e| ImageError::invalid("OCI layout index.json", e.to_string()))?;
    let mut images: Vec<SourceImage> = Vec::new();
    for desc in &index.manifests {
        let name = desc
            .annotations
            .get(spec::ANNOTATION_CONTAINERD_NAME)
            .or_else(|| desc.annotations.get(spec::ANNOTATION_REF_NAME))
            .cloned();
        let what = name.clone().unwrap_or_else(|| desc.digest.clone());
        let names = normalize_names(name.as_slice()).map_err(|e| e.within(&format!("image {what}")))?;
        let manifest_desc = pick_platform(root, desc, &what)?;
        let manifest_digest = Digest::parse(&manifest_desc.digest).map_err(|e| e.within(&format!("image {what}")))?;
        // Several tags of one image appear as several index entries: merge them.
        if let Some(seen) = images.iter_mut().find(|i| i.manifest_digest == manifest_digest) {
            seen.names.extend(names);
            continue;
        }
        let manifest = read_blob(root, &manifest_digest, &format!("manifest of {what}"))?;
        let parsed: Manifest = serde_json::from_slice(&manifest)
            .map_err(|e| ImageError::invalid(format!("manifest {manifest_digest} of {what}"), e.to_string()))?;
        let config_digest = Digest::parse(&parsed.config.digest).map_err(|e| e.within(&format!("config of {what}")))?;
        let config = read_blob(root, &config_digest, &format!("config of {what}"))?;
        let diff_ids = diff_ids(&config, parsed.layers.len(), &what)?;
        let mut layers = Vec::new();
        for (layer, diff_id) in parsed.layers.iter().zip(diff_ids) {
            let blob = Digest::parse(&layer.digest).map_err(|e| e.within(&format!("layer of {what}")))?;
            let rel = format!("blobs/sha256/{}", blob.hex());
            let (_, path) = open_inside(root, &rel).map_err(|e| e.within(&format!("layer {blob} of {what}")))?;
            layers.push(SourceLayer { path, blob_digest: Some(blob), diff_id });
        }
        images.push(SourceImage { names, manifest, manifest_digest, config, config_digest, layers });
    }
    Ok(images)
}

/// For an index entry, the manifest for this machine (linux, our architecture).
fn pick_platform(root: &Path, desc: &Descriptor, what: &str) -> Result<Descriptor, ImageError> {
    let mut desc = desc.clone();
    // Nested indexes are legal; a bound keeps a cyclic one from looping.
    for _ in 0..4 {
        if !desc.is_index() {
            return Ok(desc);
        }
        let digest = Digest::parse(&desc.digest).map_err(|e| e.within(&format!("image {what}")))?;
        let bytes = read_blob(root, &digest, &format!("index of {what}"))?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(format!("index {digest} of {what}"), e.to_string()))?;
        let arch = spec::host_architecture();
        desc = index
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch))
            .cloned()
            .ok_or_else(|| ImageError::invalid(format!("image {what}"), format!("no manifest for linux/{arch}")))?;
    }
    Err(ImageError::invalid(format!("image {what}"), "indexes nested too deeply"))
}

fn normalize_names(names: &[String]) -> Result<Vec<String>, ImageError> {
    names.iter().map(|n| Reference::parse(n).map(|r| r.to_string())).collect()
}

/// The config's diff ids, which must pair one-to-one with the manifest's layers.
fn diff_ids(config: &[u8], layer_count: usize, what: &str) -> Result<Vec<Digest>, ImageError> {
    let parsed: ConfigFile =
        serde_json::from_slice(config).map_err(|e| ImageError::invalid(format!("config of {what}"), e.to_string()))?;
    if parsed.rootfs.diff_ids.len() != layer_count {
        return Err(ImageError::invalid(
            format!("config of {what}"),
            format!("{} diff_ids for {layer_count} layers", parsed.rootfs.diff_ids.len()),
        ));
    }
    parsed
        .rootfs
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| e.within(&format!("config of {what}"))))
        .collect()
}

/// Reads blobs/sha256/<hex> and checks it hashes to `digest`.
fn read_blob(root: &Path, digest: &Digest, what: &str) -> Result<Vec<u8>, ImageError> {
    let (bytes, _) = read_limited(root, &format!("blobs/sha256/{}", digest.hex())).map_err(|e| e.within(what))?;
    digest.verify(&Digest::of(&bytes), &format!("{what} {digest}"))?;
    Ok(bytes)
}

fn read_limited(root: &Path, rel: &str) -> Result<(Vec<u8>, PathBuf), ImageError> {
    let (f, real) = open_inside(root, rel)?;
    let mut bytes = Vec::new();
    f.take(MAX_JSON_BLOB + 1).read_to_end(&mut bytes).map_err(|e| ImageError::io("reading", &real, e))?;
    if bytes.len() as u64 > MAX_JSON_BLOB {
        return Err(ImageError::invalid(rel, format!("larger than {MAX_JSON_BLOB} bytes")));
    }
    Ok((bytes, real))
}

/// The digest a file name states: `blobs/sha256/<hex>` or legacy `<hex>.json`.
fn digest_in_path(path: &str) -> Option<Digest> {
    let name = Path::new(path).file_name()?.to_str()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    let in_blobs = path.contains("sha256/");
    (in_blobs || name.ends_with(".json")).then(|| Digest::parse(&format!("sha256:{hex}")).ok()).flatten()
}
