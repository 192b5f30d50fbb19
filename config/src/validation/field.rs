//! `field.Error` and `field.Path`: one problem with one field, printed as Kubernetes does.

use std::collections::BTreeMap;
use std::fmt;

/// `field.ErrorType`: how a field is wrong. Values are held as printed (`"Web_1"`, `-1`).
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
    /// `Not found: "x"`
    NotFound(String),
    /// `Too long: detail`
    TooLong,
}

/// One problem with one field, printed as Kubernetes prints it:
/// `spec.template.spec.containers[0].image: Required value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
    pub detail: String,
}

impl FieldError {
    /// `field: Required value[: detail]`.
    pub fn required(field: &Path, detail: &str) -> FieldError {
        FieldError::new(field, FieldErrorKind::Required, detail)
    }

    /// `field: Invalid value: <value>: detail`; `value` is already rendered (see [`quote`]).
    pub fn invalid(field: &Path, value: impl Into<String>, detail: &str) -> FieldError {
        FieldError::new(field, FieldErrorKind::Invalid(value.into()), detail)
    }

    /// `field: Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: &Path, value: &str, supported: &[&str]) -> FieldError {
        let supported = supported.iter().map(|s| s.to_string()).collect();
        FieldError::new(field, FieldErrorKind::NotSupported(quote(value), supported), "")
    }

    /// `field: Duplicate value: <value>`.
    pub fn duplicate(field: &Path, value: impl Into<String>) -> FieldError {
        FieldError::new(field, FieldErrorKind::Duplicate(value.into()), "")
    }

    /// `field: Forbidden: detail`.
    pub fn forbidden(field: &Path, detail: &str) -> FieldError {
        FieldError::new(field, FieldErrorKind::Forbidden, detail)
    }

    /// `field: Not found: <value>`.
    pub fn not_found(field: &Path, value: impl Into<String>) -> FieldError {
        FieldError::new(field, FieldErrorKind::NotFound(value.into()), "")
    }

    /// `field: Too long: detail`.
    pub fn too_long(field: &Path, detail: &str) -> FieldError {
        FieldError::new(field, FieldErrorKind::TooLong, detail)
    }

    fn new(field: &Path, kind: FieldErrorKind, detail: &str) -> FieldError {
        FieldError { field: field.to_string(), kind, detail: detail.to_string() }
    }

    /// The `StatusCause.reason` Kubernetes gives this error (`FieldValueRequired`, …).
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::NotFound(_) => "FieldValueNotFound",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }

    /// The message without the field path (`field.Error.ErrorBody`), as `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = match &self.kind {
            FieldErrorKind::Required => "Required value".to_string(),
            FieldErrorKind::Invalid(v) => format!("Invalid value: {v}"),
            FieldErrorKind::NotSupported(v, supported) => {
                let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
                format!("Unsupported value: {v}: supported values: {}", list.join(", "))
            }
            FieldErrorKind::Duplicate(v) => format!("Duplicate value: {v}"),
            FieldErrorKind::Forbidden => "Forbidden".to_string(),
            FieldErrorKind::NotFound(v) => format!("Not found: {v}"),
            FieldErrorKind::TooLong => "Too long".to_string(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// `Deployment.apps "web" is invalid: [a, b]`, the message of a 422 Invalid response.
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut seen = Vec::new();
    for e in errors {
        let s = e.to_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    let list = if seen.len() == 1 { seen.remove(0) } else { format!("[{}]", seen.join(", ")) };
    format!("{qualified_kind} {name:?} is invalid: {list}")
}

/// A field path being built: `spec.template.spec.containers[0].image`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Path(String);

impl Path {
    /// A path starting at the top-level field `name`.
    pub fn new(name: &str) -> Path {
        Path(name.to_string())
    }

    /// `self.name`.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path::new(name)
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `self[i]`.
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// `self[key]`, for map entries such as `resources.limits[cpu]`.
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string value as Go's `%q` prints it.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// A label map as Go's `%#v` prints it: `map[string]string{"app":"x"}`.
pub fn go_map(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "map[string]string(nil)".into();
    }
    let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v))).collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// A string list as Go's `%#v` prints it: `[]string{"a"}`.
pub fn go_strings(v: &[String]) -> String {
    if v.is_empty() {
        return "[]string(nil)".into();
    }
    let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[]string{{{}}}", items.join(", "))
}
