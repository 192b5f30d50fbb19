//! The images API (`/apis/images.coracle.io/v1/images`) behind `coracle image …`: list,
//! load an archive streamed from the request body, import a root filesystem directory, and
//! remove (refused while a pod uses the image).
//!
//! A load whose client goes away stops and leaves nothing behind: the body ending before
//! its length (or its last chunk) says so while it is read, and the connection's socket,
//! polled while layers unpack afterwards, says so once the client has closed it.

use super::Reply;
use crate::errors::ApiError;
use crate::http::client_gone;
use coracle_config::core::Pod;
use coracle_runtime::image::{ImageError, ImageStore};
use coracle_store::Store;
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use std::path::Path;

/// The API group-version, as the documents name it.
const API_VERSION: &str = "images.coracle.io/v1";

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

/// `POST …/images` with an archive body (tar, gzip, zstd) of `length` bytes (None when
/// chunked), loaded as it streams in from the connection `socket`.
pub fn load(
    images: &ImageStore,
    body: impl Read,
    length: Option<usize>,
    socket: Option<BorrowedFd<'_>>,
) -> Result<Reply, ApiError> {
    let cut_short = Cell::new(false);
    let upload = Upload { body, expected: length.map(|n| n as u64), received: 0, cut_short: &cut_short, socket };
    let abandoned = || cut_short.get() || socket.is_some_and(client_gone);
    let result = images.load_upload(upload, &abandoned);
    if let Err(ImageError::Abandoned { .. }) = &result {
        log::warn!("image load abandoned by its client: stopped, nothing stored");
    }
    result.map(loaded).map_err(ApiError::from)
}

/// The request body, whose early end (before its Content-Length, or a chunked body cut
/// off by a closed connection) is an error and marks the upload as cut short rather than
/// looking like the end of the archive.
struct Upload<'a, R> {
    body: R,
    expected: Option<u64>,
    received: u64,
    cut_short: &'a Cell<bool>,
    socket: Option<BorrowedFd<'a>>,
}

impl<R: Read> Read for Upload<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.body.read(buf) {
            Ok(n) => n,
            Err(e) => {
                if self.socket.is_some_and(client_gone) {
                    self.cut_short.set(true);
                }
                return Err(e);
            }
        };
        self.received = self.received.saturating_add(n as u64);
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        match self.expected {
            Some(length) if self.received < length => {
                self.cut_short.set(true);
                let message = format!("the client closed the connection after {} of {length} bytes", self.received);
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, message))
            }
            // A chunked body also ends early, silently, when the connection does.
            None if self.socket.is_some_and(client_gone) => {
                self.cut_short.set(true);
                let message = "the client closed the connection during the upload";
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, message))
            }
            _ => Ok(0),
        }
    }
}

/// `POST …/images?import=<dir>&name=<ref>`: a root filesystem directory as an image.
pub fn import(images: &ImageStore, dir: &str, name: &str) -> Result<Reply, ApiError> {
    if name.is_empty() {
        return Err(ApiError::BadRequest("import: the name query parameter (the image reference) is required".into()));
    }
    if !Path::new(dir).is_absolute() {
        return Err(ApiError::BadRequest(format!("import: {dir:?} must be an absolute path on the daemon's host")));
    }
    images.import_rootfs(Path::new(dir), name).map(|r| loaded(vec![r])).map_err(ApiError::from)
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
    let removal = images.remove(reference, &|digest| used.contains(digest)).map_err(ApiError::from)?;
    Ok(Reply::ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Success",
        "details": {"name": reference, "group": "images.coracle.io", "kind": "images"},
        "untagged": removal.untagged,
        "deleted": removal.deleted,
    })))
}
