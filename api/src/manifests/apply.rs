//! Applying one manifest file: decode and admit every object first (a bad file changes
//! nothing), then create or update each, and delete what the file no longer holds.

use crate::admission;
use coracle_config::core::Namespace;
use coracle_config::manifest;
use coracle_config::object::{Object, Resource, ResourceInfo};
use coracle_net::services::allocator::ServiceAllocator;
use coracle_store::{DeleteOptions, Filter, Store};
use std::collections::BTreeSet;

/// The annotation naming the manifest file an object came from.
pub const FILE_ANNOTATION: &str = "coracle.io/manifest-file";

/// Identifies a stored object: resource plural, namespace, name.
pub type ObjectKey = (&'static str, String, String);

fn key_of(object: &Object) -> ObjectKey {
    let meta = object.metadata();
    (object.info().plural, meta.namespace.clone(), meta.name.clone())
}

/// Decodes and admits every object of a file, annotated with the file name. Any problem
/// fails the whole file, naming the document.
pub fn load(file_name: &str, text: &str) -> Result<Vec<Object>, String> {
    let parsed = manifest::parse_documents(text).map_err(|e| e.to_string())?;
    let mut objects = Vec::with_capacity(parsed.len());
    let mut seen = BTreeSet::new();
    for (index, doc) in parsed.into_iter().enumerate() {
        for warning in &doc.warnings {
            log::warn!("manifests: {file_name}: document {}: {warning}", index + 1);
        }
        // A field Kubernetes would honour and Coracle cannot is never dropped: the file is
        // refused, naming it, as the API refuses it under fieldValidation=Strict.
        if !doc.unsupported.is_empty() {
            let named: Vec<String> =
                doc.unsupported.iter().map(|path| format!("{path}: Forbidden: {}", manifest::NOT_SUPPORTED)).collect();
            return Err(format!("document {}: {}", index + 1, named.join(", ")));
        }
        if doc.object.metadata().name.is_empty() {
            return Err(format!(
                "document {}: metadata.name: Required value (generateName is not supported in manifest files)",
                index + 1
            ));
        }
        let mut object =
            admission::admit_create(doc.object, "default").map_err(|e| format!("document {}: {e}", index + 1))?;
        object.metadata_mut().annotations.insert(FILE_ANNOTATION.into(), file_name.into());
        if !seen.insert(key_of(&object)) {
            return Err(format!("document {}: {} is defined twice", index + 1, object.key()));
        }
        objects.push(object);
    }
    // Namespaces first, so the objects placed in them find them.
    objects.sort_by_key(|o| !matches!(o, Object::Namespace(_)));
    Ok(objects)
}

/// Creates the namespace an object lives in when nothing defines it yet.
fn ensure_namespace(store: &Store, namespace: &str, file_name: &str) -> Result<(), String> {
    if namespace.is_empty() || store.get(&Namespace::INFO, "", namespace).is_some() {
        return Ok(());
    }
    let mut ns = Namespace::default();
    ns.metadata.name = namespace.to_string();
    let mut object = Object::Namespace(ns);
    object.set_type_meta();
    log::info!("manifests: {file_name}: creating namespace {namespace}");
    match store.create(object) {
        Ok(_) | Err(coracle_store::StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(format!("creating namespace {namespace}: {e}")),
    }
}

/// Creates or updates one object; an update replaces whatever is stored (no resourceVersion
/// precondition: the file is the source of truth). Unchanged objects are not rewritten.
fn upsert(store: &Store, services: &ServiceAllocator, object: Object, file_name: &str) -> Result<(), String> {
    let info = object.info();
    let (namespace, name) = (object.metadata().namespace.clone(), object.metadata().name.clone());
    ensure_namespace(store, &namespace, file_name)?;
    match store.get(info, &namespace, &name) {
        None => {
            let mut object = object;
            let picks = admission::allocate(services, store, &mut object).map_err(|e| e.to_string())?;
            picks.settle(store.create(object)).map_err(|e| format!("creating {} {}: {e}", info.kind, name))?;
            log::info!("manifests: {file_name}: created {} {namespace}/{name}", info.kind);
        }
        Some(existing) => {
            if let Some(other) = existing.metadata().annotations.get(FILE_ANNOTATION).filter(|f| *f != file_name) {
                log::warn!(
                    "manifests: {file_name}: {} {namespace}/{name} was defined by {other}; taking it over",
                    info.kind
                );
            }
            let (mut object, picks) =
                admission::admit_update(services, store, &existing, object).map_err(|e| e.to_string())?;
            object.metadata_mut().resource_version.clear();
            let stored =
                picks.settle(store.update(object)).map_err(|e| format!("updating {} {name}: {e}", info.kind))?;
            if stored.metadata().resource_version != existing.metadata().resource_version {
                log::info!("manifests: {file_name}: updated {} {namespace}/{name}", info.kind);
            }
        }
    }
    Ok(())
}

/// Every stored object carrying the file annotation, with the file it names.
pub fn annotated(store: &Store) -> Vec<(String, ObjectKey)> {
    let (objects, _) = store.list(&Filter::default());
    objects
        .iter()
        .filter_map(|o| o.metadata().annotations.get(FILE_ANNOTATION).map(|f| (f.clone(), key_of(o))))
        .collect()
}

/// Deletes the objects that came from `file_name` and are not in `keep`.
pub fn delete_leftovers(store: &Store, file_name: &str, keep: &BTreeSet<ObjectKey>) {
    for (file, key) in annotated(store) {
        if file != file_name || keep.contains(&key) {
            continue;
        }
        let (plural, namespace, name) = &key;
        let Some(info) = ResourceInfo::lookup(plural) else { continue };
        match store.delete(info, namespace, name, &DeleteOptions::default()) {
            Ok(_) => log::info!("manifests: {file_name}: deleted {} {namespace}/{name}", info.kind),
            Err(e) => log::warn!("manifests: {file_name}: deleting {} {namespace}/{name}: {e}", info.kind),
        }
    }
}

/// Applies a file's text: every object created or updated, leftovers deleted. A file that
/// fails to load leaves the store untouched.
pub fn apply(store: &Store, services: &ServiceAllocator, file_name: &str, text: &str) -> Result<(), String> {
    let objects = load(file_name, text)?;
    let keep: BTreeSet<ObjectKey> = objects.iter().map(key_of).collect();
    let mut failures = Vec::new();
    for object in objects {
        if let Err(e) = upsert(store, services, object, file_name) {
            failures.push(e);
        }
    }
    delete_leftovers(store, file_name, &keep);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
