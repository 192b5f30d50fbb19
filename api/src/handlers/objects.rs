//! CRUD on objects: list, get, create, replace and delete, through admission and the store.

use super::Reply;
use crate::admission;
use crate::admission::AdmissionError;
use crate::errors::ApiError;
use crate::request::{FieldValidation, ListQuery, WriteOptions};
use crate::routes::ResourcePath;
use coracle_config::core::Namespace;
use coracle_config::manifest::{Parsed, NOT_SUPPORTED};
use coracle_config::object::{Object, Resource};
use coracle_config::validation::{FieldError, Path as FieldPath};
use coracle_net::services::allocator::ServiceAllocator;
use coracle_store::{DeleteOptions, Filter, Store, StoreError};
use serde_json::{json, Value};

/// The `apiVersion` the client addressed (`autoscaling/v1` for a v1 autoscaler path).
pub fn served_api_version(path: &ResourcePath) -> String {
    if path.resource.group.is_empty() {
        path.version.clone()
    } else {
        format!("{}/{}", path.resource.group, path.version)
    }
}

/// An object as the addressed version shows it: autoscalers converted to v1 when asked
/// for as v1, `apiVersion` and `kind` always filled.
pub fn present(object: &Object, path: &ResourcePath) -> Value {
    if let (Object::HorizontalPodAutoscaler(hpa), "v1") = (object, path.version.as_str()) {
        return serde_json::to_value(hpa.to_v1()).expect("autoscalers serialize");
    }
    let mut value = object.to_json();
    if let Some(map) = value.as_object_mut() {
        let info = object.info();
        map.insert("apiVersion".into(), Value::String(info.api_version()));
        map.insert("kind".into(), Value::String(info.kind.to_string()));
    }
    value
}

fn filter(path: &ResourcePath) -> Filter {
    Filter { resource: Some(path.resource), namespace: path.namespace.clone().filter(|_| path.resource.namespaced) }
}

/// The selected objects, sorted by namespace and name, and the list's resourceVersion.
fn select(store: &Store, path: &ResourcePath, query: &ListQuery) -> (Vec<std::sync::Arc<Object>>, u64) {
    let (mut objects, resource_version) = store.list(&filter(path));
    objects.retain(|o| query.selectors.matches(o));
    objects.sort_by(|a, b| {
        let (a, b) = (a.metadata(), b.metadata());
        (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
    });
    (objects, resource_version)
}

/// `{kind: XList, apiVersion, metadata: {resourceVersion}, items}` for the selected objects,
/// or a `Table` of them when the client asked for one.
pub fn list(store: &Store, path: &ResourcePath, query: &ListQuery) -> Value {
    let (objects, resource_version) = select(store, path, query);
    if query.table {
        return crate::table::table(path.resource, &objects, Some(resource_version), true);
    }
    let items: Vec<Value> = objects.iter().map(|o| present(o, path)).collect();
    json!({
        "kind": path.resource.list_kind,
        "apiVersion": served_api_version(path),
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

fn namespace_of(path: &ResourcePath) -> &str {
    path.namespace.as_deref().filter(|_| path.resource.namespaced).unwrap_or("")
}

fn name_of(path: &ResourcePath) -> &str {
    path.name.as_deref().unwrap_or("")
}

/// The live object a path names, or 404.
pub fn live(store: &Store, path: &ResourcePath) -> Result<std::sync::Arc<Object>, ApiError> {
    store
        .get(path.resource, namespace_of(path), name_of(path))
        .ok_or_else(|| ApiError::NotFound { resource: path.resource, name: name_of(path).to_string() })
}

/// One object (a one-row Table when `table`), or 404.
pub fn get(store: &Store, path: &ResourcePath, table: bool) -> Result<Value, ApiError> {
    let object = live(store, path)?;
    if table {
        let rv = object.metadata().resource_version.parse().ok();
        return Ok(crate::table::table(path.resource, &[object], rv, true));
    }
    Ok(present(&object, path))
}

/// What `fieldValidation` makes of the fields decoding dropped, as the API server does:
/// under Strict an unknown field is a 400 (`strict decoding error: unknown field "spec.foo"`),
/// under Warn a warning, under Ignore nothing. A field of Kubernetes' API that Coracle does
/// not implement is never dropped unseen: a 422 naming it under Strict, a warning otherwise
/// (even under Ignore, since Kubernetes would have honoured it).
/// `version` is the one the client wrote in (`v1` of `autoscaling/v1`), for the message.
pub fn field_validation(parsed: &mut Parsed, options: &WriteOptions, version: &str) -> Result<(), ApiError> {
    let strict = options.field_validation == FieldValidation::Strict;
    if strict && !parsed.warnings.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            parsed.warnings.join(", "),
            kind = parsed.object.info().kind,
        )));
    }
    if strict && !parsed.unsupported.is_empty() {
        let errors =
            parsed.unsupported.iter().map(|path| FieldError::forbidden(&FieldPath::new(path), NOT_SUPPORTED)).collect();
        let meta = parsed.object.metadata();
        let name = if meta.name.is_empty() { meta.generate_name.clone() } else { meta.name.clone() };
        return Err(AdmissionError::Invalid { resource: parsed.object.info(), name, errors }.into());
    }
    if options.field_validation == FieldValidation::Ignore {
        parsed.warnings.clear();
    }
    let unsupported = std::mem::take(&mut parsed.unsupported);
    parsed.warnings.extend(unsupported.iter().map(|path| format!("{path}: {NOT_SUPPORTED}; the field was dropped")));
    Ok(())
}

/// Type-checks and decodes a body for this path, applying `fieldValidation`.
pub fn decode_for(path: &ResourcePath, mut body: Value, options: &WriteOptions) -> Result<Parsed, ApiError> {
    check_type(&mut body, path)?;
    let mut parsed = admission::decode(body)?;
    field_validation(&mut parsed, options, &path.version)?;
    check_namespace(&parsed.object, path)?;
    Ok(parsed)
}

/// Fills a missing `apiVersion`/`kind` from the path, and refuses a body of another kind.
fn check_type(body: &mut Value, path: &ResourcePath) -> Result<(), ApiError> {
    let map = body.as_object_mut().ok_or_else(|| ApiError::BadRequest("the body must be an object".into()))?;
    let expected = served_api_version(path);
    let api_version = map.entry("apiVersion").or_insert_with(|| Value::String(expected.clone())).clone();
    let kind = map.entry("kind").or_insert_with(|| Value::String(path.resource.kind.into())).clone();
    let (api_version, kind) = (api_version.as_str().unwrap_or(""), kind.as_str().unwrap_or(""));
    if kind != path.resource.kind {
        return Err(ApiError::BadRequest(format!(
            "the kind in the body ({kind}) does not match the kind of the URL ({})",
            path.resource.kind
        )));
    }
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    if group != path.resource.group {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    Ok(())
}

fn check_namespace(object: &Object, path: &ResourcePath) -> Result<(), ApiError> {
    let body_ns = &object.metadata().namespace;
    match path.namespace.as_deref() {
        Some(ns) if path.resource.namespaced && !body_ns.is_empty() && body_ns != ns => Err(ApiError::BadRequest(
            format!("the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"),
        )),
        _ => Ok(()),
    }
}

/// Creating in a namespace that does not exist is 404, as in Kubernetes.
fn require_namespace(store: &Store, namespace: &str) -> Result<(), ApiError> {
    if namespace.is_empty() || store.get(&Namespace::INFO, "", namespace).is_some() {
        return Ok(());
    }
    Err(ApiError::NotFound { resource: &Namespace::INFO, name: namespace.to_string() })
}

/// POST to a collection: 201 and the stored object (`dryRun`: as it would be stored).
pub fn create(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    body: Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    let parsed = decode_for(path, body, options)?;
    let mut object = admission::admit_create(parsed.object, namespace_of(path))?;
    require_namespace(store, &object.metadata().namespace)?;
    if store.get(object.info(), &object.metadata().namespace, &object.metadata().name).is_some() {
        let name = object.metadata().name.clone();
        return Err(StoreError::AlreadyExists { resource: path.resource, name }.into());
    }
    let picks = admission::allocate(services, store, &mut object)?;
    if options.dry_run {
        // Nothing is stored: dropping the reservation gives the picks back.
        return Ok(Reply::Json { code: 201, body: present(&object, path), warnings: parsed.warnings });
    }
    let stored = picks.settle(store.create(object))?;
    Ok(Reply::Json { code: 201, body: present(&stored, path), warnings: parsed.warnings })
}

/// Names the body after the URL when it names nothing; a different name is 400.
pub fn check_name(object: &mut Object, path: &ResourcePath) -> Result<(), ApiError> {
    let url_name = name_of(path);
    let meta = object.metadata_mut();
    if meta.name.is_empty() {
        meta.name = url_name.to_string();
    } else if meta.name != url_name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({}) does not match the name on the URL ({url_name})",
            meta.name
        )));
    }
    Ok(())
}

/// Admits `object` as a replacement of `old` and stores it (or, for `dryRun`, only
/// answers with it); a stale resourceVersion is 409.
pub fn store_update(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    old: &Object,
    object: Object,
    options: &WriteOptions,
) -> Result<Value, ApiError> {
    let (object, picks) = admission::admit_update(services, store, old, object)?;
    if options.dry_run {
        // Nothing is stored: the reservation, dropped on return, gives the picks back.
        let (want, have) = (&object.metadata().resource_version, &old.metadata().resource_version);
        if !want.is_empty() && want != have {
            return Err(StoreError::Conflict {
                resource: path.resource,
                name: name_of(path).to_string(),
                message: "the object has been modified; please apply your changes to the latest version and try again"
                    .into(),
            }
            .into());
        }
        return Ok(present(&object, path));
    }
    Ok(present(picks.settle(store.update(object))?.as_ref(), path))
}

/// PUT to an object: 200 and the stored object; a stale resourceVersion is 409.
pub fn replace(
    store: &Store,
    services: &ServiceAllocator,
    path: &ResourcePath,
    body: Value,
    options: &WriteOptions,
) -> Result<Reply, ApiError> {
    let mut parsed = decode_for(path, body, options)?;
    check_name(&mut parsed.object, path)?;
    let old = live(store, path)?;
    let body = store_update(store, services, path, &old, parsed.object, options)?;
    Ok(Reply::Json { code: 200, body, warnings: parsed.warnings })
}

/// DELETE of an object: 200 and the object as removed (or as marked for deletion).
pub fn delete(store: &Store, path: &ResourcePath, options: &DeleteOptions) -> Result<Value, ApiError> {
    let removed = store.delete(path.resource, namespace_of(path), name_of(path), options)?;
    Ok(present(&removed, path))
}

/// DELETE on a collection: every selected object, answered with the list of them as
/// deleted (or marked for deletion).
pub fn delete_collection(
    store: &Store,
    path: &ResourcePath,
    query: &ListQuery,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let (objects, _) = select(store, path, query);
    let mut items = Vec::new();
    for object in objects {
        let meta = object.metadata();
        match store.delete(path.resource, &meta.namespace, &meta.name, options) {
            Ok(removed) => items.push(present(&removed, path)),
            // Gone meanwhile (the garbage collector, another client): nothing to do.
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({
        "kind": path.resource.list_kind,
        "apiVersion": served_api_version(path),
        "metadata": {"resourceVersion": store.resource_version().to_string()},
        "items": items,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{parse, Route};

    fn path(p: &str) -> ResourcePath {
        match parse(p) {
            Some(Route::Resource(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_type_meta_is_taken_from_the_path() {
        let p = path("/apis/apps/v1/namespaces/default/deployments");
        let mut body = json!({"metadata": {"name": "web"}});
        check_type(&mut body, &p).unwrap();
        assert_eq!((body["apiVersion"].as_str(), body["kind"].as_str()), (Some("apps/v1"), Some("Deployment")));
    }

    #[test]
    fn a_body_of_another_kind_is_refused() {
        let p = path("/apis/apps/v1/namespaces/default/deployments");
        let mut body = json!({"apiVersion": "v1", "kind": "Pod"});
        assert_eq!(check_type(&mut body, &p).unwrap_err().code(), 400);
        let mut body = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment"});
        assert_eq!(check_type(&mut body, &p).unwrap_err().code(), 400);
    }

    #[test]
    fn v1_autoscaler_paths_present_the_v1_shape() {
        let p = path("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers");
        assert_eq!(served_api_version(&p), "autoscaling/v1");
        let hpa = Object::HorizontalPodAutoscaler(Default::default());
        assert_eq!(present(&hpa, &p)["apiVersion"], "autoscaling/v1");
        let p2 = path("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers");
        assert_eq!(present(&hpa, &p2)["apiVersion"], "autoscaling/v2");
    }
}
