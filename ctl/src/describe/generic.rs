//! `describe` for kinds without a dedicated describer (endpoints, namespaces, events):
//! the common metadata block, then the object's remaining fields as YAML.

use super::events::write_events;
use super::{timestamp, Describer};
use coracle_config::core::Event;
use coracle_config::Object;
use std::time::SystemTime;

/// Name, namespace, labels, annotations, the rest of the object, and events.
pub fn describe(object: &Object, events: &[Event], now: SystemTime) -> String {
    let mut w = Describer::default();
    let meta = object.metadata();
    w.field(0, "Name", &meta.name);
    if object.info().namespaced {
        w.field(0, "Namespace", &meta.namespace);
    }
    w.labels(0, "Labels", &meta.labels);
    w.annotations(0, &meta.annotations);
    if let Some(t) = &meta.creation_timestamp {
        w.field(0, "CreationTimestamp", timestamp(t));
    }
    let mut rest = object.to_json();
    if let Some(map) = rest.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            map.remove(k);
        }
    }
    let body = crate::printers::yaml::to_yaml(&rest);
    if body.trim() != "{}" {
        for line in body.lines() {
            // YAML's own indentation must not be taken for columns.
            w.line(0, &line.replace('\t', " "));
        }
    }
    write_events(&mut w, events, now);
    w.finish()
}
