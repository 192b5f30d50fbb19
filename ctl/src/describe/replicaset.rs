//! `describe replicaset`.

use super::deployment::{conditions, pod_template};
use super::events::write_events;
use super::Describer;
use coracle_config::apps::ReplicaSet;
use coracle_config::core::{Event, Pod};
use std::time::SystemTime;

/// The describe text of a replica set; `pods` are those its selector matches.
pub fn describe(rs: &ReplicaSet, pods: &[Pod], events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    let meta = &rs.metadata;
    let status = rs.status.clone().unwrap_or_default();
    w.field(0, "Name", &meta.name);
    w.field(0, "Namespace", &meta.namespace);
    w.field(0, "Selector", rs.spec.selector.to_sorted_query());
    w.labels(0, "Labels", &meta.labels);
    w.annotations(0, &meta.annotations);
    if let Some(owner) = meta.controller_ref() {
        w.field(0, "Controlled By", format!("{}/{}", owner.kind, owner.name));
    }
    w.field(0, "Replicas", format!("{} current / {} desired", status.replicas, rs.spec.replicas.unwrap_or(1)));
    let count = |phase: &str| pods.iter().filter(|p| p.phase() == phase).count();
    w.field(
        0,
        "Pods Status",
        format!(
            "{} Running / {} Waiting / {} Succeeded / {} Failed",
            count("Running"),
            count("Pending"),
            count("Succeeded"),
            count("Failed")
        ),
    );
    pod_template(&mut w, &rs.spec.template);
    conditions(&mut w, &status.conditions);
    write_events(&mut w, events, now);
    w.finish()
}
