//! Moving `status` between object versions: an update keeps the stored status, a status
//! update keeps everything else. Kinds differ in their status types, so this goes through
//! each object's JSON form.

use super::StoreError;
use coracle_config::object::{Object, ResourceInfo};
use serde_json::Value;

/// True for kinds served with a `/status` subresource.
pub(crate) fn has_status(info: &ResourceInfo) -> bool {
    info.subresources.contains(&"status")
}

/// The object's `status`, None when it has none.
pub(crate) fn status_of(obj: &Object) -> Option<Value> {
    match obj.to_json() {
        Value::Object(mut map) => map.remove("status").filter(|s| !s.is_null()),
        _ => None,
    }
}

/// `obj` with its status replaced by `status` (removed when None).
pub(crate) fn with_status(obj: &Object, status: Option<Value>) -> Result<Object, StoreError> {
    let info = obj.info();
    let mut json = obj.to_json();
    let Value::Object(map) = &mut json else { unreachable!("objects serialize to JSON objects") };
    match status {
        Some(s) => map.insert("status".into(), s),
        None => map.remove("status"),
    };
    Object::from_json(info, json).map_err(|e| StoreError::Invalid {
        message: format!("{} {:?}: status does not fit the object: {e}", info.kind, obj.metadata().name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{Pod, PodStatus};

    #[test]
    fn status_moves_between_versions() {
        let status = Some(PodStatus { phase: Some("Running".into()), ..Default::default() });
        let with: Object = Pod { status, ..Default::default() }.into();
        let without: Object = Pod::default().into();
        assert_eq!(status_of(&without), None);
        let moved = with_status(&without, status_of(&with)).unwrap();
        assert_eq!(moved, with);
        assert_eq!(with_status(&with, None).unwrap(), without);
    }
}
