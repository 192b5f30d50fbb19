//! `describe hpa`.

use super::events::write_events;
use super::{timestamp, Describer};
use coracle_config::autoscaling::HorizontalPodAutoscaler;
use coracle_config::core::Event;
use std::time::SystemTime;

/// The describe text of an autoscaler.
pub fn describe(h: &HorizontalPodAutoscaler, events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    let meta = &h.metadata;
    let status = h.status.clone().unwrap_or_default();
    w.field(0, "Name", &meta.name);
    w.field(0, "Namespace", &meta.namespace);
    w.labels(0, "Labels", &meta.labels);
    w.annotations(0, &meta.annotations);
    w.field(0, "CreationTimestamp", meta.creation_timestamp.as_deref().map(timestamp).unwrap_or_default());
    let target = &h.spec.scale_target_ref;
    w.field(0, "Reference", format!("{}/{}", target.kind, target.name));
    if h.spec.metrics.is_empty() {
        w.field(0, "Metrics", "<none>");
    } else {
        w.field(0, "Metrics", "( current / target )");
    }
    for (i, m) in h.spec.metrics.iter().enumerate() {
        let Some(r) = m.resource.as_ref().filter(|_| m.type_ == "Resource") else {
            w.field(1, &format!("\"{}\" (unsupported metric type)", m.type_), "<unknown>");
            continue;
        };
        let current = status.current_metrics.get(i).and_then(|s| s.resource.as_ref()).map(|s| &s.current);
        if let Some(target) = &r.target.average_value {
            let cur =
                current.and_then(|c| c.average_value).map(|q| q.to_string()).unwrap_or_else(|| "<unknown>".into());
            w.field(1, &format!("resource {} on pods", r.name), format!("{cur} / {target}"));
        } else {
            let cur = match current {
                Some(c) => match (c.average_utilization, c.average_value) {
                    (Some(u), Some(v)) => format!("{u}% ({v})"),
                    (Some(u), None) => format!("{u}%"),
                    _ => "<unknown>".into(),
                },
                None => "<unknown>".into(),
            };
            let target = r.target.average_utilization.map(|u| format!("{u}%")).unwrap_or_else(|| "<auto>".into());
            w.field(
                1,
                &format!("resource {} on pods  (as a percentage of request)", r.name),
                format!("{cur} / {target}"),
            );
        }
    }
    w.field(0, "Min replicas", h.spec.min_replicas.unwrap_or(1));
    w.field(0, "Max replicas", h.spec.max_replicas);
    w.field(
        0,
        &format!("{} pods", target.kind),
        format!("{} current / {} desired", status.current_replicas, status.desired_replicas),
    );
    if !status.conditions.is_empty() {
        w.line(0, "Conditions:");
        w.line(1, "Type\tStatus\tReason\tMessage");
        w.line(1, "----\t------\t------\t-------");
        for c in &status.conditions {
            w.line(1, &format!("{}\t{}\t{}\t{}", c.type_, c.status, c.reason, c.message));
        }
    }
    write_events(&mut w, events, now);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_current_against_target() {
        let h: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 1, "desiredReplicas": 1}
        }))
        .unwrap();
        let now = coracle_config::time::parse("2024-05-01T12:00:00Z").unwrap();
        let text = describe(&h, &[], now);
        assert!(text.contains("Reference:                                             Deployment/web\n"), "{text}");
        assert!(text.contains("  resource cpu on pods  (as a percentage of request):  <unknown> / 50%\n"), "{text}");
        assert!(
            text.contains("Deployment pods:                                       1 current / 1 desired\n"),
            "{text}"
        );
    }
}
