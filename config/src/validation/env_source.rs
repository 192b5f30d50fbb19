//! `validateConfigMapKeySelector`, `validateSecretKeySelector` and `validateEnvFrom`.

use super::field::{quote, FieldError, Path};
use super::names;
use crate::core::{EnvFromSource, KeySelector, NamedSource};

fn object_name(name: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        for msg in names::dns1123_subdomain(name) {
            errs.push(FieldError::invalid(&path.child("name"), quote(name), &msg));
        }
    }
}

/// One key of a named ConfigMap or Secret.
pub fn key_selector(k: &KeySelector, path: &Path, errs: &mut Vec<FieldError>) {
    object_name(&k.name, path, errs);
    if k.key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for msg in names::config_map_key(&k.key) {
            errs.push(FieldError::invalid(&path.child("key"), quote(&k.key), &msg));
        }
    }
}

/// `envFrom`: one source each, a valid prefix.
pub fn env_from(sources: &[EnvFromSource], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, source) in sources.iter().enumerate() {
        let p = path.index(i);
        if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
            for msg in names::env_var_name(prefix) {
                errs.push(FieldError::invalid(&p.child("prefix"), quote(prefix), &msg));
            }
        }
        let refs: [(&str, &Option<NamedSource>); 2] =
            [("configMapRef", &source.config_map_ref), ("secretRef", &source.secret_ref)];
        for (field, named) in refs {
            if let Some(named) = named {
                object_name(&named.name, &p.child(field), errs);
            }
        }
        match refs.iter().filter(|(_, r)| r.is_some()).count() {
            0 => errs.push(FieldError::invalid(path, "\"\"", "must specify one of: `configMapRef` or `secretRef`")),
            1 => {}
            _ => errs.push(FieldError::invalid(path, "\"\"", "may not have more than one field specified at a time")),
        }
    }
}
