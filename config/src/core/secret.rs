//! `v1.Secret`: like a ConfigMap, for values that must not be shown or written to flash
//! in the clear more than needed (the store keeps them 0600; describe prints sizes only).

use crate::base64::Base64Bytes;
use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The secret types Kubernetes defines, and the keys they require.
pub mod types {
    pub const OPAQUE: &str = "Opaque";
    pub const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
    pub const DOCKERCFG: &str = "kubernetes.io/dockercfg";
    pub const DOCKERCFG_KEY: &str = ".dockercfg";
    pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
    pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
    pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
    pub const BASIC_AUTH_USERNAME: &str = "username";
    pub const BASIC_AUTH_PASSWORD: &str = "password";
    pub const SSH_AUTH: &str = "kubernetes.io/ssh-auth";
    pub const SSH_AUTH_PRIVATE_KEY: &str = "ssh-privatekey";
    pub const TLS: &str = "kubernetes.io/tls";
    pub const TLS_CERT: &str = "tls.crt";
    pub const TLS_KEY: &str = "tls.key";
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Base64Bytes>,
    /// Write-only: folded into `data` when the secret is admitted, never stored or served.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Once true, `data` can no longer change, nor this flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl Secret {
    /// The type, `Opaque` when unset.
    pub fn secret_type(&self) -> &str {
        self.type_.as_deref().filter(|t| !t.is_empty()).unwrap_or(types::OPAQUE)
    }
}
