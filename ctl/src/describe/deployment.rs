//! `describe deployment`: spec summary, pod template, conditions, its replica sets, events.

use super::events::write_events;
use super::pod::template_container_body;
use super::{timestamp, Describer};
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::core::{Event, PodTemplateSpec};
use coracle_config::meta::Condition;
use std::time::SystemTime;

/// The describe text of a deployment; `replica_sets` are those it controls.
pub fn describe(d: &Deployment, replica_sets: &[ReplicaSet], events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    let meta = &d.metadata;
    let status = d.status.clone().unwrap_or_default();
    w.field(0, "Name", &meta.name);
    w.field(0, "Namespace", &meta.namespace);
    w.field(0, "CreationTimestamp", meta.creation_timestamp.as_deref().map(timestamp).unwrap_or_default());
    w.labels(0, "Labels", &meta.labels);
    w.annotations(0, &meta.annotations);
    w.field(0, "Selector", d.spec.selector.to_sorted_query());
    let desired = d.spec.replicas.unwrap_or(1);
    let total = status.replicas.unwrap_or(0);
    w.field(
        0,
        "Replicas",
        format!(
            "{desired} desired | {} updated | {total} total | {} available | {} unavailable",
            status.updated_replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
            status.unavailable_replicas.unwrap_or(0)
        ),
    );
    let strategy = d.spec.strategy.clone().unwrap_or_default();
    let strategy_type = strategy.type_.clone().unwrap_or_else(|| "RollingUpdate".into());
    w.field(0, "StrategyType", &strategy_type);
    w.field(0, "MinReadySeconds", d.spec.min_ready_seconds.unwrap_or(0));
    if strategy_type == "RollingUpdate" {
        let ru = strategy.rolling_update.unwrap_or_default();
        let unavailable = ru.max_unavailable.map(|v| v.to_string()).unwrap_or_else(|| "25%".into());
        let surge = ru.max_surge.map(|v| v.to_string()).unwrap_or_else(|| "25%".into());
        w.field(0, "RollingUpdateStrategy", format!("{unavailable} max unavailable, {surge} max surge"));
    }
    pod_template(&mut w, &d.spec.template);
    conditions(&mut w, &status.conditions);
    let controlled: Vec<&ReplicaSet> = replica_sets
        .iter()
        .filter(|rs| {
            rs.metadata
                .controller_ref()
                .is_some_and(|o| o.uid == meta.uid || (meta.uid.is_empty() && o.name == meta.name))
        })
        .collect();
    let (new, old): (Vec<&ReplicaSet>, Vec<&ReplicaSet>) =
        controlled.into_iter().partition(|rs| rs.spec.template.spec == d.spec.template.spec);
    let summary = |sets: &[&ReplicaSet]| {
        if sets.is_empty() {
            return "<none>".to_string();
        }
        sets.iter()
            .map(|rs| {
                let created = rs.status.as_ref().map(|s| s.replicas).unwrap_or(0);
                format!("{} ({created}/{} replicas created)", rs.metadata.name, rs.spec.replicas.unwrap_or(1))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    w.field(0, "OldReplicaSets", summary(&old));
    w.field(0, "NewReplicaSet", summary(&new));
    write_events(&mut w, events, now);
    w.finish()
}

/// `Pod Template:` with labels and containers, shared with replica sets.
pub fn pod_template(w: &mut Describer, t: &PodTemplateSpec) {
    w.line(0, "Pod Template:");
    w.labels(1, "Labels", &t.metadata.labels);
    if !t.metadata.annotations.is_empty() {
        w.annotations(1, &t.metadata.annotations);
    }
    w.line(1, "Containers:");
    for c in &t.spec.containers {
        w.line(1, &format!(" {}:", c.name));
        w.field(2, "Image", &c.image);
        template_container_body(w, c, None);
    }
    if t.spec.volumes.is_empty() {
        w.field(1, "Volumes", "<none>");
    } else {
        w.line(1, "Volumes:");
        for v in &t.spec.volumes {
            w.line(2, &format!("{}:", v.name));
        }
    }
    let selectors: Vec<String> = t.spec.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    w.field(1, "Node-Selectors", super::or_none(&selectors.join(",")));
    w.field(1, "Tolerations", "<none>");
}

/// The `Conditions:` table of deployments and replica sets.
pub fn conditions(w: &mut Describer, conditions: &[Condition]) {
    if conditions.is_empty() {
        return;
    }
    w.line(0, "Conditions:");
    w.line(1, "Type\tStatus\tReason");
    w.line(1, "----\t------\t------");
    for c in conditions {
        w.line(1, &format!("{} \t{}\t{}", c.type_, c.status, c.reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_the_rollout() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nginx", "namespace": "default", "uid": "d1", "creationTimestamp": "2024-05-01T11:00:00Z",
                "labels": {"app": "nginx"}, "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}},
            "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}
        }))
        .unwrap();
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "nginx-5f8c", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx", "uid": "d1", "controller": true}]},
            "spec": {"replicas": 2, "template": d.spec.template},
            "status": {"replicas": 2}
        }))
        .unwrap();
        let now = coracle_config::time::parse("2024-05-01T12:00:00Z").unwrap();
        let text = describe(&d, &[rs], &[], now);
        let expected = "\
Name:                   nginx
Namespace:              default
CreationTimestamp:      Wed, 01 May 2024 11:00:00 +0000
Labels:                 app=nginx
Annotations:            deployment.kubernetes.io/revision: 1
Selector:               app=nginx
Replicas:               2 desired | 2 updated | 2 total | 2 available | 0 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=nginx
  Containers:
   nginx:
    Image:         nginx:1.14.2
    Port:          80/TCP
    Host Port:     0/TCP
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
OldReplicaSets:  <none>
NewReplicaSet:   nginx-5f8c (2/2 replicas created)
Events:          <none>
";
        assert_eq!(text, expected);
    }
}
