//! Manifest parsing: JSON or YAML text (multi-document, `kind: List`) into typed objects,
//! with unknown fields dropped and reported as warnings, as the Kubernetes API does.
//!
//! SKELETON: signatures are the contract; bodies are being written.

use crate::object::Object;
use std::fmt;

/// One decoded object and the warnings its decoding produced
/// (`unknown field "spec.replica"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub object: Object,
    pub warnings: Vec<String>,
}

/// Why a manifest could not be decoded. The message names the document and the field.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestError {
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

/// Parses every object in `text` (JSON, YAML, multi-document YAML, `kind: List`).
pub fn parse_documents(text: &str) -> Result<Vec<Parsed>, ManifestError> {
    let _ = text;
    todo!("manifest parsing")
}

/// Decodes one object from a JSON value, as the API receives it in a request body.
pub fn decode_object(value: serde_json::Value) -> Result<Parsed, ManifestError> {
    let _ = value;
    todo!("object decoding")
}
