//! Environment taken from ConfigMaps and Secrets: `env[].valueFrom.configMapKeyRef` /
//! `secretKeyRef` (one key) and `envFrom` (every key, optionally prefixed).

use serde::{Deserialize, Serialize};

/// `v1.ConfigMapKeySelector` and `v1.SecretKeySelector`: one key of a named object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySelector {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    /// True: a missing object or key leaves the variable unset instead of failing the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `v1.EnvFromSource`: every key of one ConfigMap or Secret as a variable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFromSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<NamedSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<NamedSource>,
}

/// `v1.ConfigMapEnvSource` and `v1.SecretEnvSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedSource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}
