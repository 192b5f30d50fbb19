//! Refusals before a write: names that cannot be file names, and a stale resourceVersion
//! or uid in the incoming object (409 Conflict).

use super::StoreError;
use coracle_config::object::Object;

/// Names become file names: refuse anything that could leave its folder.
pub(crate) fn check_path_safe(field: &str, value: &str) -> Result<(), StoreError> {
    let bad = value.is_empty() || value.starts_with('.') || value.contains(['/', '\0']) || value.len() > 253;
    if bad {
        return Err(StoreError::Invalid { message: format!("{field} {value:?} cannot be stored: not a valid name") });
    }
    Ok(())
}

pub(crate) fn conflict(obj: &Object, message: impl Into<String>) -> StoreError {
    StoreError::Conflict { resource: obj.info(), name: obj.metadata().name.clone(), message: message.into() }
}

/// 409 when `incoming` carries a resourceVersion or uid other than the stored object's.
pub(crate) fn check_preconditions(current: &Object, incoming: &Object) -> Result<(), StoreError> {
    let (cur, new) = (current.metadata(), incoming.metadata());
    if !new.resource_version.is_empty() && new.resource_version != cur.resource_version {
        return Err(conflict(
            current,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    if !new.uid.is_empty() && new.uid != cur.uid {
        return Err(conflict(
            current,
            format!("Precondition failed: UID in precondition: {}, UID in object meta: {}", new.uid, cur.uid),
        ));
    }
    Ok(())
}
