//! Defaulting as the Kubernetes API server does it, applied before validation and storage.
//!
//! SKELETON: signatures are the contract; bodies are being written.

use crate::object::Object;

/// Fills every defaulted field of `obj` (RollingUpdate 25%/25%, restartPolicy Always, …).
pub fn apply(obj: &mut Object) {
    let _ = obj;
    todo!("defaulting")
}
