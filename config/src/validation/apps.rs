//! `apps/v1` validation: Deployment and ReplicaSet specs.

use super::field::{go_map, quote, FieldError, Path};
use super::meta;
use super::names;
use super::pod::{nonnegative, validate_pod_spec, PodSpecOwner};
use crate::apps::{DeploymentSpec, ReplicaSetSpec, RollingUpdateDeployment};
use crate::core::PodTemplateSpec;
use crate::meta::LabelSelector;
use crate::IntOrString;

/// `ValidateDeploymentSpec`: replicas, selector, template, strategy and deadlines.
pub fn deployment_spec(spec: &DeploymentSpec, errs: &mut Vec<FieldError>) {
    let path = Path::new("spec");
    if let Some(r) = spec.replicas {
        nonnegative(r as i64, &path.child("replicas"), errs);
    }
    selector_and_template(&spec.selector, &spec.template, &path, errs);
    if let Some(strategy) = &spec.strategy {
        let p = path.child("strategy");
        match strategy.type_.as_deref() {
            None | Some("RollingUpdate") => {
                if let Some(ru) = &strategy.rolling_update {
                    rolling_update(ru, &p.child("rollingUpdate"), errs);
                }
            }
            Some("Recreate") => {
                if strategy.rolling_update.is_some() {
                    errs.push(FieldError::forbidden(
                        &p.child("rollingUpdate"),
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            Some("") => errs.push(FieldError::required(&p.child("type"), "")),
            Some(other) => {
                errs.push(FieldError::not_supported(&p.child("type"), other, &["Recreate", "RollingUpdate"]))
            }
        }
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    nonnegative(min_ready as i64, &path.child("minReadySeconds"), errs);
    if let Some(limit) = spec.revision_history_limit {
        nonnegative(limit as i64, &path.child("revisionHistoryLimit"), errs);
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let p = path.child("progressDeadlineSeconds");
        nonnegative(deadline as i64, &p, errs);
        if deadline <= min_ready {
            errs.push(FieldError::invalid(&p, deadline.to_string(), "must be greater than minReadySeconds"));
        }
    }
}

/// `ValidateReplicaSetSpec`: replicas, selector and template.
pub fn replica_set_spec(spec: &ReplicaSetSpec, errs: &mut Vec<FieldError>) {
    let path = Path::new("spec");
    if let Some(r) = spec.replicas {
        nonnegative(r as i64, &path.child("replicas"), errs);
    }
    if let Some(m) = spec.min_ready_seconds {
        nonnegative(m as i64, &path.child("minReadySeconds"), errs);
    }
    selector_and_template(&spec.selector, &spec.template, &path, errs);
}

/// A non-empty selector that selects the template's own labels, and a template whose pods
/// restart forever.
fn selector_and_template(sel: &LabelSelector, template: &PodTemplateSpec, path: &Path, errs: &mut Vec<FieldError>) {
    let sel_path = path.child("selector");
    if sel.is_empty() {
        errs.push(FieldError::required(&sel_path, ""));
    } else {
        meta::label_selector(sel, &sel_path, errs);
        if !sel.matches(&template.metadata.labels) {
            errs.push(FieldError::invalid(
                &path.child("template").child("metadata").child("labels"),
                go_map(&template.metadata.labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    let t = path.child("template");
    meta::labels(&template.metadata.labels, &t.child("metadata").child("labels"), errs);
    super::security::app_armor_annotations(
        &template.metadata.annotations,
        &t.child("metadata").child("annotations"),
        errs,
    );
    validate_pod_spec(&template.spec, PodSpecOwner::Workload, &t.child("spec"), errs);
}

fn rolling_update(ru: &RollingUpdateDeployment, path: &Path, errs: &mut Vec<FieldError>) {
    let unavailable = path.child("maxUnavailable");
    let surge = path.child("maxSurge");
    for (v, p) in [(&ru.max_unavailable, &unavailable), (&ru.max_surge, &surge)] {
        if let Some(v) = v {
            int_or_percent(v, p, errs);
        }
    }
    let is_zero = |v: &Option<IntOrString>| match v {
        Some(IntOrString::Int(0)) => true,
        Some(IntOrString::String(s)) => s.strip_suffix('%').and_then(|n| n.parse::<u64>().ok()) == Some(0),
        _ => false,
    };
    if is_zero(&ru.max_unavailable) && is_zero(&ru.max_surge) {
        let shown = ru.max_unavailable.as_ref().map(render).unwrap_or_default();
        errs.push(FieldError::invalid(&unavailable, shown, "may not be 0 when `maxSurge` is 0"));
    }
    if let Some(IntOrString::String(s)) = &ru.max_unavailable {
        if s.strip_suffix('%').and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 100) {
            errs.push(FieldError::invalid(&unavailable, quote(s), "must not be greater than 100%"));
        }
    }
}

/// `ValidatePositiveIntOrPercent`.
fn int_or_percent(v: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    match v {
        IntOrString::Int(n) => nonnegative(*n as i64, path, errs),
        IntOrString::String(s) => {
            for msg in names::percent(s) {
                errs.push(FieldError::invalid(path, quote(s), &msg));
            }
        }
    }
}

fn render(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => quote(s),
    }
}
