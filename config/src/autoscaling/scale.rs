//! `autoscaling/v1.Scale`: the `/scale` subresource of deployments and replica sets.

use crate::meta::ObjectMeta;
use crate::tracked::{self, DecodeError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scale {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ScaleSpec,
    #[serde(default)]
    pub status: ScaleStatus,
}

impl Scale {
    /// Decodes one from JSON with the object model's decoder (`tracked`; the error names the
    /// field's path). Not generic, so the crates above share this one copy of the decoding
    /// code instead of each instantiating serde's for their own deserializer.
    #[inline(never)]
    pub fn from_json(value: serde_json::Value) -> Result<Scale, DecodeError> {
        tracked::from_value(value)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStatus {
    #[serde(default)]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
}
