//! The `status` and `scale` subresources: status written alone through
//! `Store::update_status`, and replicas read and written as an `autoscaling/v1` `Scale`.

use super::objects::{self, present};
use super::patch::{patched, CONFLICT_RETRIES};
use super::Reply;
use crate::errors::ApiError;
use crate::patch::PatchType;
use crate::request::WriteOptions;
use crate::routes::ResourcePath;
use coracle_config::meta::LabelSelector;
use coracle_config::object::Object;
use coracle_net::services::allocator::ServiceAllocator;
use coracle_store::{Store, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;

/// GET of `{name}/status` or `{name}/scale`.
pub fn get(store: &Store, path: &ResourcePath) -> Result<Value, ApiError> {
    let live = objects::live(store, path)?;
    match path.subresource.as_deref() {
        Some("scale") => scale_of(&live),
        _ => Ok(present(&live, path)),
    }
}

/// PUT of `{name}/status` or `{name}/scale`.
pub fn replace(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    body: Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    match path.subresource.as_deref() {
        Some("scale") => {
            let pinned =
                body.pointer("/metadata/resourceVersion").and_then(Value::as_str).is_some_and(|v| !v.is_empty());
            retry_unpinned(pinned, || write_scale(store, services, path, &objects::live(store, path)?, &body, options))
        }
        _ => write_status(store, path, body, options),
    }
}

/// Runs a subresource write again when it lost a race with another writer (a controller
/// writing status) and the client pinned no resourceVersion, as kube-apiserver retries.
fn retry_unpinned(pinned: bool, mut write: impl FnMut() -> Result<Reply, ApiError>) -> Result<Reply, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write() {
            Err(ApiError::Store(StoreError::Conflict { .. })) if !pinned && attempt < CONFLICT_RETRIES => continue,
            result => return result,
        }
    }
}

/// PATCH of `{name}/status` or `{name}/scale`: the patch applies to the subresource's own
/// document (the whole object for status, the `Scale` for scale).
pub fn patch(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    kind: PatchType,
    body: &Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    match path.subresource.as_deref() {
        Some("scale") => {
            // The live version is part of the Scale, so a patch that names none cannot fail
            // on it; only one that names a version pins it.
            let pinned = body.pointer("/metadata/resourceVersion").is_some();
            retry_unpinned(pinned, || {
                let live = objects::live(store, path)?;
                let mut document = patched(kind, &scale_of(&live)?, body)?;
                if !pinned {
                    if let Some(meta) = document.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                }
                write_scale(store, services, path, &live, &document, options)
            })
        }
        _ => {
            let pinned = body.pointer("/metadata/resourceVersion").is_some();
            retry_unpinned(pinned, || {
                let live = objects::live(store, path)?;
                let document = patched(kind, &present(&live, path), body)?;
                write_status(store, path, document, options)
            })
        }
    }
}

fn write_status(store: &Store, path: &ResourcePath, body: Value, options: &WriteOptions) -> Result<Reply, ApiError> {
    let mut parsed = objects::decode_for(path, body, options)?;
    objects::check_name(&mut parsed.object, path)?;
    let live = objects::live(store, path)?;
    parsed.object.metadata_mut().namespace.clone_from(&live.metadata().namespace);
    let body = if options.dry_run {
        let mut preview = present(&live, path);
        preview["status"] = present(&parsed.object, path).get("status").cloned().unwrap_or(Value::Null);
        preview
    } else {
        present(store.update_status(parsed.object, true)?.as_ref(), path)
    };
    Ok(Reply::Json { code: 200, body, warnings: parsed.warnings })
}

/// The label selector of a deployment or replica set as a query string (`app=web`).
fn selector_query(object: &Value) -> Result<String, ApiError> {
    let selector = object.pointer("/spec/selector").cloned().unwrap_or(Value::Null);
    if selector.is_null() {
        return Ok(String::new());
    }
    let selector = LabelSelector::from_json(selector)
        .map_err(|e| ApiError::BadRequest(format!("spec.selector of the scaled object: {e}")))?;
    Ok(selector.to_query())
}

/// The `autoscaling/v1` `Scale` of a deployment or replica set.
pub fn scale_of(object: &Arc<Object>) -> Result<Value, ApiError> {
    let value = object.to_json();
    let meta = object.metadata();
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "uid": meta.uid,
            "resourceVersion": meta.resource_version,
            "creationTimestamp": meta.creation_timestamp,
        },
        "spec": {"replicas": value.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": value.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_query(&value)?,
        },
    }))
}

fn write_scale(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    live: &Arc<Object>,
    scale: &Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().filter(|n| (0..=i64::from(i32::MAX)).contains(n)).ok_or_else(|| {
            ApiError::BadRequest(format!("spec.replicas: Invalid value: {v}: must be a non-negative integer"))
        })?,
    };
    let name = path.name.as_deref().unwrap_or("");
    if let Some(asked) = scale.pointer("/metadata/name").and_then(Value::as_str).filter(|n| !n.is_empty() && *n != name)
    {
        return Err(ApiError::BadRequest(format!("the name of the Scale ({asked}) does not match the URL ({name})")));
    }
    let mut value = live.to_json();
    value["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|v| !v.is_empty()) {
        if rv != live.metadata().resource_version {
            return Err(StoreError::Conflict {
                resource: path.resource,
                name: name.to_string(),
                message: "the object has been modified; please apply your changes to the latest version and try again"
                    .into(),
            }
            .into());
        }
    }
    let object = Object::from_json(path.resource, value)
        .map_err(|e| ApiError::BadRequest(format!("scaling {} {name}: {e}", path.resource.kind)))?;
    objects::store_update(store, services, path, live, object, options)?;
    let updated = if options.dry_run {
        let mut preview = scale_of(live)?;
        preview["spec"]["replicas"] = json!(replicas);
        preview
    } else {
        scale_of(&objects::live(store, path)?)?
    };
    Ok(Reply::Json { code: 200, body: updated, warnings: Vec::new() })
}
