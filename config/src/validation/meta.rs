//! Checks shared by every kind: object metadata, labels, annotations and label selectors.

use super::field::{go_map, go_strings, quote, FieldError, Path};
use super::names;
use crate::meta::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// The name rule a kind applies to `metadata.name`.
pub type NameCheck = fn(&str) -> Vec<String>;

/// Annotations may hold at most this many bytes of keys and values together.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// The finalizers Kubernetes itself defines, the only ones named without a domain.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// `ValidateObjectMeta`: name (or generateName), namespace by scope, labels, annotations,
/// owner references and finalizers.
pub fn object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_check: NameCheck,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    if meta.name.is_empty() {
        if meta.generate_name.is_empty() {
            errs.push(FieldError::required(&path.child("name"), "name or generateName is required"));
        } else {
            // A prefix may end in '-'; the generated suffix completes it.
            for msg in name_check(meta.generate_name.trim_end_matches('-')) {
                errs.push(FieldError::invalid(&path.child("generateName"), quote(&meta.generate_name), &msg));
            }
        }
    } else {
        for msg in name_check(&meta.name) {
            errs.push(FieldError::invalid(&path.child("name"), quote(&meta.name), &msg));
        }
    }
    if namespaced {
        if meta.namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for msg in names::dns1123_label(&meta.namespace) {
                errs.push(FieldError::invalid(&path.child("namespace"), quote(&meta.namespace), &msg));
            }
        }
    } else if !meta.namespace.is_empty() {
        errs.push(FieldError::forbidden(&path.child("namespace"), "not allowed on this type"));
    }
    if meta.generation < 0 {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            meta.generation.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    labels(&meta.labels, &path.child("labels"), errs);
    annotations(&meta.annotations, &path.child("annotations"), errs);
    for (i, owner) in meta.owner_references.iter().enumerate() {
        let p = path.child("ownerReferences").index(i);
        for (field, value) in
            [("apiVersion", &owner.api_version), ("kind", &owner.kind), ("name", &owner.name), ("uid", &owner.uid)]
        {
            if value.is_empty() {
                errs.push(FieldError::invalid(&p.child(field), quote(value), &format!("{field} must not be empty")));
            }
        }
    }
    finalizers(&meta.finalizers, &path.child("finalizers"), errs);
}

/// apimachinery's `ValidateFinalizers` (each a qualified name; `orphan` and
/// `foregroundDeletion` not both), then core's `validateKubeFinalizerName`: a name without
/// a domain must be one of Kubernetes' own. An empty name would hold its object forever.
fn finalizers(finalizers: &[String], path: &Path, errs: &mut Vec<FieldError>) {
    for f in finalizers {
        for msg in names::qualified_name(f) {
            errs.push(FieldError::invalid(path, quote(f), &msg));
        }
    }
    if finalizers.iter().any(|f| f == "orphan") && finalizers.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            go_strings(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in finalizers.iter().enumerate() {
        if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                &path.index(i),
                quote(f),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// `ValidateLabels`: keys are qualified names, values label values.
pub fn labels(labels: &BTreeMap<String, String>, path: &Path, errs: &mut Vec<FieldError>) {
    for (k, v) in labels {
        for msg in names::qualified_name(k) {
            errs.push(FieldError::invalid(path, quote(k), &msg));
        }
        for msg in names::label_value(v) {
            errs.push(FieldError::invalid(path, quote(v), &msg));
        }
    }
}

fn annotations(annotations: &BTreeMap<String, String>, path: &Path, errs: &mut Vec<FieldError>) {
    let mut size = 0;
    for (k, v) in annotations {
        for msg in names::qualified_name(&k.to_ascii_lowercase()) {
            errs.push(FieldError::invalid(path, quote(k), &msg));
        }
        size += k.len() + v.len();
    }
    if size > ANNOTATIONS_MAX_BYTES {
        errs.push(FieldError::too_long(path, &format!("must have at most {ANNOTATIONS_MAX_BYTES} bytes")));
    }
}

/// `ValidateLabelSelector`: matchLabels as labels; each expression's key, operator and values.
pub fn label_selector(sel: &LabelSelector, path: &Path, errs: &mut Vec<FieldError>) {
    labels(&sel.match_labels, &path.child("matchLabels"), errs);
    for (i, req) in sel.match_expressions.iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if req.values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !req.values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => {
                errs.push(FieldError::invalid(&p.child("operator"), quote(other), "not a valid selector operator"))
            }
        }
        for msg in names::qualified_name(&req.key) {
            errs.push(FieldError::invalid(&p.child("key"), quote(&req.key), &msg));
        }
        for v in &req.values {
            for msg in names::label_value(v) {
                errs.push(FieldError::invalid(&p.child("values"), quote(v), &msg));
            }
        }
    }
}

/// A selector as Go's `%#v` prints a `metav1.LabelSelector`, for immutability errors.
pub fn go_selector(sel: &LabelSelector) -> String {
    let exprs = if sel.match_expressions.is_empty() {
        "[]v1.LabelSelectorRequirement(nil)".to_string()
    } else {
        let items: Vec<String> = sel
            .match_expressions
            .iter()
            .map(|r| {
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                    quote(&r.key),
                    quote(&r.operator),
                    go_strings(&r.values)
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}", go_map(&sel.match_labels))
}
