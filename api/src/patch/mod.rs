//! The PATCH body formats: JSON merge patch, JSON patch, strategic merge patch and
//! server-side apply, chosen by Content-Type and applied to an object's JSON.

pub mod json_patch;
pub mod merge;
pub mod strategic;

use serde_json::Value;

/// A PATCH body's format, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchType {
    /// The patch type a Content-Type names, or None for any other media type.
    pub fn from_media_type(media: &str) -> Option<PatchType> {
        match media {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Applies `patch` of type `kind` to `original`; errors name the patch type and the cause.
/// Server-side apply is merged here as a strategic merge: the applied fields win (there is
/// no per-field ownership).
pub fn apply(kind: PatchType, original: &Value, patch: &Value) -> Result<Value, String> {
    match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err("a merge patch must be a JSON object".into());
            }
            let mut out = original.clone();
            merge::merge_patch(&mut out, patch);
            Ok(out)
        }
        PatchType::Json => json_patch::apply(original, patch).map_err(|e| format!("json patch: {e}")),
        PatchType::Strategic | PatchType::Apply => {
            strategic::apply(original, patch).map_err(|e| format!("strategic merge patch: {e}"))
        }
    }
}
