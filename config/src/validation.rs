//! Validation with Kubernetes' rules; every problem carries its field path.
//!
//! SKELETON: signatures are the contract; bodies are being written.

use crate::object::Object;
use std::fmt;

/// `field.ErrorType`: how a field is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `Required value`
    Required,
    /// `Invalid value: "x": detail`
    Invalid(String),
    /// `Unsupported value: "x": supported values: "a", "b"`
    NotSupported(String, Vec<String>),
    /// `Duplicate value: "x"`
    Duplicate(String),
    /// `Forbidden: detail`
    Forbidden,
}

/// One problem with one field, printed as Kubernetes prints it:
/// `spec.template.spec.containers[0].image: Required value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!("field error display")
    }
}

/// Checks a new object.
pub fn validate(obj: &Object) -> Result<(), Vec<FieldError>> {
    let _ = obj;
    todo!("validation")
}

/// Checks an update of `old` to `new` (immutable fields such as selectors stay put).
pub fn validate_update(old: &Object, new: &Object) -> Result<(), Vec<FieldError>> {
    let _ = (old, new);
    todo!("update validation")
}
