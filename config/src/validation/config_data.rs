//! `ValidateConfigMap`, `ValidateSecret` and their update rules: keys that can be file
//! names, Kubernetes' 1 MiB limit, the keys each secret type requires, and `immutable`.

use super::field::{quote, FieldError, Path};
use super::names;
use crate::core::secret::types;
use crate::core::{ConfigMap, Secret};

/// Kubernetes' `MaxSecretSize`, which also bounds ConfigMaps: 1 MiB of values.
pub const MAX_SIZE: usize = 1024 * 1024;

const IMMUTABLE: &str = "field is immutable when `immutable` is set";

fn too_long(path: &Path) -> FieldError {
    FieldError::too_long(path, &format!("may not be more than {MAX_SIZE} bytes"))
}

fn keys<'a>(path: &Path, keys: impl Iterator<Item = &'a String>, errs: &mut Vec<FieldError>) {
    for key in keys {
        for msg in names::config_map_key(key) {
            errs.push(FieldError::invalid(&path.key(key), quote(key), &msg));
        }
    }
}

pub fn config_map(cm: &ConfigMap, errs: &mut Vec<FieldError>) {
    let data = Path::new("data");
    keys(&data, cm.data.keys(), errs);
    for key in cm.data.keys().filter(|k| cm.binary_data.contains_key(*k)) {
        errs.push(FieldError::invalid(&data.key(key), quote(key), "duplicate of key present in binaryData"));
    }
    keys(&Path::new("binaryData"), cm.binary_data.keys(), errs);
    let total = cm.entries().fold(0usize, |sum, (_, v)| sum.saturating_add(v.len()));
    if total > MAX_SIZE {
        // Kubernetes names no field: the limit is the whole object's.
        errs.push(too_long(&Path::new("")));
    }
}

pub fn secret(s: &Secret, errs: &mut Vec<FieldError>) {
    let data = Path::new("data");
    keys(&data, s.data.keys(), errs);
    let total = s.data.values().fold(0usize, |sum, v| sum.saturating_add(v.0.len()));
    if total > MAX_SIZE {
        errs.push(too_long(&data));
    }
    let has = |key: &str| s.data.contains_key(key);
    let required = |key: &str| FieldError::required(&data.key(key), "");
    match s.secret_type() {
        types::SERVICE_ACCOUNT_TOKEN => errs.push(FieldError::invalid(
            &Path::new("type"),
            quote(types::SERVICE_ACCOUNT_TOKEN),
            "not supported by Coracle: it issues no service account tokens, pods get no API access",
        )),
        t @ (types::DOCKERCFG | types::DOCKER_CONFIG_JSON) => {
            let key = if t == types::DOCKERCFG { types::DOCKERCFG_KEY } else { types::DOCKER_CONFIG_JSON_KEY };
            match s.data.get(key) {
                None => errs.push(required(key)),
                Some(bytes) => {
                    if let Err(e) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes.0) {
                        errs.push(FieldError::invalid(
                            &data.key(key),
                            quote("<secret contents redacted>"),
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        // Either may be empty, but one must be there.
        types::BASIC_AUTH if !has(types::BASIC_AUTH_USERNAME) && !has(types::BASIC_AUTH_PASSWORD) => {
            errs.push(required(types::BASIC_AUTH_USERNAME));
            errs.push(required(types::BASIC_AUTH_PASSWORD));
        }
        types::SSH_AUTH if s.data.get(types::SSH_AUTH_PRIVATE_KEY).is_none_or(|v| v.0.is_empty()) => {
            errs.push(required(types::SSH_AUTH_PRIVATE_KEY));
        }
        types::TLS => {
            for key in [types::TLS_CERT, types::TLS_KEY] {
                if !has(key) {
                    errs.push(required(key));
                }
            }
        }
        _ => {}
    }
}

fn immutable_flag(old: Option<bool>, new: Option<bool>, errs: &mut Vec<FieldError>) -> bool {
    let frozen = old == Some(true);
    if frozen && new != Some(true) {
        errs.push(FieldError::forbidden(&Path::new("immutable"), IMMUTABLE));
    }
    frozen
}

pub fn config_map_update(old: &ConfigMap, new: &ConfigMap, errs: &mut Vec<FieldError>) {
    if immutable_flag(old.immutable, new.immutable, errs) {
        if old.data != new.data {
            errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE));
        }
        if old.binary_data != new.binary_data {
            errs.push(FieldError::forbidden(&Path::new("binaryData"), IMMUTABLE));
        }
    }
}

pub fn secret_update(old: &Secret, new: &Secret, errs: &mut Vec<FieldError>) {
    if old.secret_type() != new.secret_type() {
        errs.push(FieldError::invalid(&Path::new("type"), quote(new.secret_type()), "field is immutable"));
    }
    if immutable_flag(old.immutable, new.immutable, errs) && old.data != new.data {
        errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE));
    }
}
