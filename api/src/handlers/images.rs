//! The images API (`/apis/images.coracle.io/v1/images`) behind `coracle image …`: list,
//! load an archive streamed from the request body, import a root filesystem directory, and
//! remove (refused while a pod uses the image).

use super::Reply;
use crate::errors::ApiError;
use coracle_config::core::Pod;
use coracle_runtime::image::{ImageError, ImageStore};
use coracle_store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

/// The API group-version, as the documents name it.
const API_VERSION: &str = "images.coracle.io/v1";

fn image_error(error: ImageError) -> ApiError {
    match &error {
        ImageError::NotFound { reference } => ApiError::Status {
            code: 404,
            reason: "NotFound",
            message: format!("images.images.coracle.io \"{reference}\" not found"),
        },
        ImageError::InUse { .. } => ApiError::Status { code: 409, reason: "Conflict", message: error.to_string() },
        ImageError::Io { .. } => ApiError::Internal(error.to_string()),
        _ => ApiError::BadRequest(error.to_string()),
    }
}

/// `GET …/images`: one item per name (and per untagged image).
pub fn list(images: &ImageStore) -> Value {
    let mut rows = images.list();
    rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let name = if r.tag == "<none>" { r.digest.clone() } else { format!("{}:{}", r.repository, r.tag) };
            json!({"metadata": {"name": name}, "repository": r.repository, "tag": r.tag, "digest": r.digest, "size": r.size})
        })
        .collect();
    json!({"kind": "ImageList", "apiVersion": API_VERSION, "items": items})
}

fn loaded(references: Vec<String>) -> Reply {
    let items: Vec<Value> = references.iter().map(|r| json!({"metadata": {"name": r}})).collect();
    Reply::Json {
        code: 201,
        body: json!({"kind": "ImageList", "apiVersion": API_VERSION, "items": items}),
        warnings: Vec::new(),
    }
}

/// `POST …/images` with an archive body (tar, gzip, zstd): loaded as it streams in.
pub fn load(images: &ImageStore, body: impl Read) -> Result<Reply, ApiError> {
    images.load_reader(body).map(loaded).map_err(image_error)
}

/// `POST …/images?import=<dir>&name=<ref>`: a root filesystem directory as an image.
pub fn import(images: &ImageStore, dir: &str, name: &str) -> Result<Reply, ApiError> {
    if name.is_empty() {
        return Err(ApiError::BadRequest("import: the name query parameter (the image reference) is required".into()));
    }
    if !Path::new(dir).is_absolute() {
        return Err(ApiError::BadRequest(format!("import: {dir:?} must be an absolute path on the daemon's host")));
    }
    images.import_rootfs(Path::new(dir), name).map(|r| loaded(vec![r])).map_err(image_error)
}

/// The digests of every image a stored pod names.
fn digests_in_use(store: &Store, images: &ImageStore) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for pod in store.list_as::<Pod>(None, None) {
        for container in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
            if let Ok(Some(image)) = images.resolve(&container.image) {
                used.insert(image.digest);
            }
        }
    }
    used
}

/// `DELETE …/images/<ref>`: 409 while a pod in the store uses the image.
pub fn delete(store: &Store, images: &ImageStore, reference: &str) -> Result<Reply, ApiError> {
    // Resolved before removing: the store's lock is held while `in_use` runs.
    let used = digests_in_use(store, images);
    let removal = images.remove(reference, &|digest| used.contains(digest)).map_err(image_error)?;
    Ok(Reply::ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Success",
        "details": {"name": reference, "group": "images.coracle.io", "kind": "images"},
        "untagged": removal.untagged,
        "deleted": removal.deleted,
    })))
}
