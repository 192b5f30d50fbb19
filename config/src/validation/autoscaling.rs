//! `autoscaling/v2` validation of HorizontalPodAutoscaler specs.

use super::field::{quote, FieldError, Path};
use super::names;
use crate::autoscaling::{HpaScalingRules, HpaSpec, MetricTarget};

/// `validateHorizontalPodAutoscalerSpec`: target, replica bounds, metrics, behavior.
pub fn hpa_spec(spec: &HpaSpec, errs: &mut Vec<FieldError>) {
    let path = Path::new("spec");
    let target = path.child("scaleTargetRef");
    for (field, value) in [("kind", &spec.scale_target_ref.kind), ("name", &spec.scale_target_ref.name)] {
        if value.is_empty() {
            errs.push(FieldError::required(&target.child(field), ""));
        } else {
            for msg in names::path_segment_name(value) {
                errs.push(FieldError::invalid(&target.child(field), quote(value), &msg));
            }
        }
    }
    if let Some(min) = spec.min_replicas.filter(|&m| m < 1) {
        errs.push(FieldError::invalid(
            &path.child("minReplicas"),
            min.to_string(),
            "must be greater than or equal to 1",
        ));
    }
    let max = path.child("maxReplicas");
    if spec.max_replicas < 1 {
        errs.push(FieldError::invalid(&max, spec.max_replicas.to_string(), "must be greater than 0"));
    }
    if spec.min_replicas.is_some_and(|min| spec.max_replicas < min) {
        errs.push(FieldError::invalid(
            &max,
            spec.max_replicas.to_string(),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    for (i, m) in spec.metrics.iter().enumerate() {
        let p = path.child("metrics").index(i);
        if m.type_ != "Resource" {
            if m.type_.is_empty() {
                errs.push(FieldError::required(&p.child("type"), "must specify a metric source type"));
            } else {
                errs.push(FieldError::not_supported(&p.child("type"), &m.type_, &["Resource"]));
            }
            continue;
        }
        let Some(r) = &m.resource else {
            errs.push(FieldError::required(
                &p.child("resource"),
                "must populate information for the given metric source",
            ));
            continue;
        };
        let rp = p.child("resource");
        if r.name.is_empty() {
            errs.push(FieldError::required(&rp.child("name"), "must specify a resource name"));
        }
        metric_target(&r.target, &rp.child("target"), errs);
    }
    if let Some(b) = &spec.behavior {
        let p = path.child("behavior");
        for (field, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            if let Some(r) = rules {
                scaling_rules(r, &p.child(field), errs);
            }
        }
    }
}

fn metric_target(t: &MetricTarget, path: &Path, errs: &mut Vec<FieldError>) {
    const TYPES: &[&str] = &["AverageValue", "Utilization", "Value"];
    if t.type_.is_empty() {
        errs.push(FieldError::required(&path.child("type"), "must specify a metric target type"));
    } else if !TYPES.contains(&t.type_.as_str()) {
        errs.push(FieldError::not_supported(&path.child("type"), &t.type_, TYPES));
    }
    for (field, q) in [("value", &t.value), ("averageValue", &t.average_value)] {
        if let Some(q) = q.as_ref().filter(|q| q.is_zero() || q.is_negative()) {
            errs.push(FieldError::invalid(&path.child(field), quote(&q.to_string()), "must be positive"));
        }
    }
    if let Some(u) = t.average_utilization.filter(|&u| u < 1) {
        errs.push(FieldError::invalid(&path.child("averageUtilization"), u.to_string(), "must be greater than 0"));
    }
    match (&t.average_utilization, &t.average_value, &t.value) {
        (None, None, None) => errs.push(FieldError::required(
            &path.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        )),
        (Some(_), Some(_), _) => errs.push(FieldError::forbidden(
            &path.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        )),
        _ => {}
    }
}

fn scaling_rules(r: &HpaScalingRules, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(w) = r.stabilization_window_seconds {
        let p = path.child("stabilizationWindowSeconds");
        if w < 0 {
            errs.push(FieldError::invalid(&p, w.to_string(), "must be greater than or equal to zero"));
        } else if w > 3600 {
            errs.push(FieldError::invalid(&p, w.to_string(), "must be less than or equal to 3600"));
        }
    }
    if let Some(s) = r.select_policy.as_deref().filter(|s| !["Disabled", "Max", "Min"].contains(s)) {
        errs.push(FieldError::not_supported(&path.child("selectPolicy"), s, &["Disabled", "Max", "Min"]));
    }
    if r.policies.is_empty() && r.select_policy.as_deref() != Some("Disabled") && r.select_policy.is_some() {
        errs.push(FieldError::required(&path.child("policies"), "must specify at least one Policy"));
    }
    for (i, policy) in r.policies.iter().enumerate() {
        let p = path.child("policies").index(i);
        if policy.type_ != "Pods" && policy.type_ != "Percent" {
            errs.push(FieldError::not_supported(&p.child("type"), &policy.type_, &["Percent", "Pods"]));
        }
        if policy.value <= 0 {
            errs.push(FieldError::invalid(&p.child("value"), policy.value.to_string(), "must be greater than zero"));
        }
        if !(1..=1800).contains(&policy.period_seconds) {
            errs.push(FieldError::invalid(
                &p.child("periodSeconds"),
                policy.period_seconds.to_string(),
                if policy.period_seconds <= 0 {
                    "must be greater than zero"
                } else {
                    "must be less than or equal to 1800"
                },
            ));
        }
    }
}
