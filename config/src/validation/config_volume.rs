//! `validateConfigMapVolumeSource`, `validateSecretVolumeSource` and `validateKeyToPath`.

use super::field::{quote, FieldError, Path};
use crate::core::{KeyToPath, Volume};

const MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

fn mode(m: Option<i32>, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(m) = m.filter(|m| !(0..=0o777).contains(m)) {
        errs.push(FieldError::invalid(path, m.to_string(), MODE_MSG));
    }
}

/// A relative path inside the volume: not absolute, no `..` element, not starting `..`.
fn local_path(p: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, quote(p), "must be a relative path"));
    }
    if p.split('/').any(|e| e == "..") {
        errs.push(FieldError::invalid(path, quote(p), "must not contain '..'"));
    } else if p.starts_with("..") {
        errs.push(FieldError::invalid(path, quote(p), "must not start with '..'"));
    }
}

fn items(items: &[KeyToPath], path: &Path, errs: &mut Vec<FieldError>) {
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        if item.key.is_empty() {
            errs.push(FieldError::required(&p.child("key"), ""));
        }
        if item.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            local_path(&item.path, &p.child("path"), errs);
        }
        mode(item.mode, &p.child("mode"), errs);
    }
}

/// A `configMap` or `secret` volume: one source only, a name, items and modes in range.
pub fn volume(v: &Volume, path: &Path, errs: &mut Vec<FieldError>) {
    let sources = [
        v.empty_dir.is_some(),
        v.host_path.is_some(),
        v.config_map.is_some(),
        v.secret.is_some(),
        v.projected.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        let field = if v.projected.is_some() {
            "projected"
        } else if v.secret.is_some() {
            "secret"
        } else {
            "configMap"
        };
        errs.push(FieldError::forbidden(&path.child(field), "may not specify more than 1 volume type"));
    }
    if let Some(cm) = &v.config_map {
        let p = path.child("configMap");
        if cm.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        items(&cm.items, &p.child("items"), errs);
        mode(cm.default_mode, &p.child("defaultMode"), errs);
    }
    if let Some(projected) = &v.projected {
        let p = path.child("projected");
        mode(projected.default_mode, &p.child("defaultMode"), errs);
        for (i, source) in projected.sources.iter().enumerate() {
            let sp = p.child("sources").index(i);
            let refused = [
                ("downwardAPI", source.downward_api.is_some()),
                ("serviceAccountToken", source.service_account_token.is_some()),
                ("clusterTrustBundle", source.cluster_trust_bundle.is_some()),
            ];
            for (field, _) in refused.iter().filter(|(_, set)| *set) {
                errs.push(FieldError::forbidden(
                    &sp.child(field),
                    "not supported by Coracle (projected volumes take configMap and secret sources)",
                ));
            }
            let given = [source.config_map.is_some(), source.secret.is_some()].iter().filter(|s| **s).count()
                + refused.iter().filter(|(_, set)| *set).count();
            if given > 1 {
                errs.push(FieldError::forbidden(&sp, "may not specify more than 1 volume type"));
            }
            for (field, projection) in [("configMap", &source.config_map), ("secret", &source.secret)] {
                if let Some(proj) = projection {
                    if proj.name.is_empty() {
                        errs.push(FieldError::required(&sp.child(field).child("name"), ""));
                    }
                    items(&proj.items, &sp.child(field).child("items"), errs);
                }
            }
        }
    }
    if let Some(s) = &v.secret {
        let p = path.child("secret");
        if s.secret_name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        items(&s.items, &p.child("items"), errs);
        mode(s.default_mode, &p.child("defaultMode"), errs);
    }
}
