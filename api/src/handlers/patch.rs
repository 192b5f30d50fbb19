//! PATCH of an object: the patch applied to the live object's JSON (as the addressed
//! version shows it), then admission and a store update carrying the live resourceVersion.
//! Server-side apply creates the object when it is absent.

use super::objects::{self, present};
use super::Reply;
use crate::admission;
use crate::errors::ApiError;
use crate::patch::{self, PatchType};
use crate::request::WriteOptions;
use crate::routes::ResourcePath;
use coracle_net::services::allocator::ServiceAllocator;
use coracle_store::{Store, StoreError};
use serde_json::Value;

/// How often a patch that names no resourceVersion is re-applied after losing a race with
/// another writer, as kube-apiserver retries.
pub(super) const CONFLICT_RETRIES: usize = 5;

/// The resourceVersion a patch body carries, if any.
fn patch_resource_version(kind: PatchType, body: &Value) -> Option<&str> {
    match kind {
        PatchType::Json => None,
        _ => body.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|v| !v.is_empty()),
    }
}

/// Applies `body` to the live object's JSON: the patched document.
pub fn patched(kind: PatchType, original: &Value, body: &Value) -> Result<Value, ApiError> {
    patch::apply(kind, original, body).map_err(ApiError::BadRequest)
}

/// PATCH `path` (an object, not a subresource).
pub fn patch(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    kind: PatchType,
    body: &Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    let pinned = patch_resource_version(kind, body).is_some();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let live = match objects::live(store, path) {
            Ok(live) => live,
            Err(_) if kind == PatchType::Apply => return apply_create(store, services, path, body.clone(), options),
            Err(e) => return Err(e),
        };
        let document = patched(kind, &present(&live, path), body)?;
        let mut parsed = objects::decode_for(path, document, options)?;
        objects::check_name(&mut parsed.object, path)?;
        match objects::store_update(store, services, path, &live, parsed.object, options) {
            Err(ApiError::Store(StoreError::Conflict { .. })) if !pinned && attempt < CONFLICT_RETRIES => continue,
            Err(e) => return Err(e),
            Ok(stored) => return Ok(Reply::Json { code: 200, body: stored, warnings: parsed.warnings }),
        }
    }
}

/// Server-side apply of an absent object: the manifest, named by the URL, created (201).
fn apply_create(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    mut body: Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    if let Some(map) = body.as_object_mut() {
        let meta = map.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.entry("name").or_insert_with(|| Value::String(path.name.clone().unwrap_or_default()));
        }
    }
    let mut parsed = objects::decode_for(path, body, options)?;
    objects::check_name(&mut parsed.object, path)?;
    let namespace = path.namespace.clone().unwrap_or_default();
    let mut object = admission::admit_create(parsed.object, &namespace)?;
    let picks = admission::allocate(services, store, &mut object)?;
    let stored = if options.dry_run {
        // Nothing is stored: dropping the reservation gives the picks back.
        present(&object, path)
    } else {
        present(picks.settle(store.create(object))?.as_ref(), path)
    };
    Ok(Reply::Json { code: 201, body: stored, warnings: parsed.warnings })
}
