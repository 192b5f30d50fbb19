//! The schemas the OpenAPI documents name, under Kubernetes' definition names, each kind
//! with its `x-kubernetes-group-version-kind`. Object kinds describe their envelope
//! (`apiVersion`, `kind`, `metadata`) and leave `spec` and `status` open: the server
//! validates them, as kubectl leaves it to with `fieldValidation=Strict`.
//! References are written `#/definitions/NAME` (Swagger 2.0); the OpenAPI 3 documents
//! rewrite them to `#/components/schemas/NAME`.

use super::openapi_paths::{all, GroupVersion};
use crate::routes::METRICS_GROUP;
use coracle_config::object::ResourceInfo;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The prefix of `metav1` definitions.
pub const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
/// The scale subresource's kind.
pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
/// The prefix of the metrics API's definitions.
pub const METRICS: &str = "io.k8s.metrics.pkg.apis.metrics.v1beta1";

/// `{"$ref": "#/definitions/NAME"}`.
pub fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/definitions/{name}")})
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn integer(format: &str, description: &str) -> Value {
    json!({"type": "integer", "format": format, "description": description})
}

fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

fn open_object(description: &str) -> Value {
    json!({"type": "object", "description": description})
}

fn string_map(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}, "description": description})
}

fn array(items: Value, description: &str) -> Value {
    json!({"type": "array", "items": items, "description": description})
}

/// A `metav1.Time` (a `$ref` takes no sibling description in either dialect).
fn time() -> Value {
    reference(&format!("{META}.Time"))
}

fn object(description: &str, properties: Value, required: &[&str]) -> Value {
    let mut o = json!({"type": "object", "description": description, "properties": properties});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// `apiVersion`, `kind` and `metadata`, and the kind's own top-level fields.
fn envelope(extra: Map<String, Value>, list: bool) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "apiVersion".into(),
        string("APIVersion defines the versioned schema of this representation of an object."),
    );
    properties
        .insert("kind".into(), string("Kind is a string value representing the REST resource this object represents."));
    let meta = if list { "ListMeta" } else { "ObjectMeta" };
    properties.insert("metadata".into(), reference(&format!("{META}.{meta}")));
    properties.extend(extra);
    Value::Object(properties)
}

/// One object kind of a group-version.
pub fn kind_definition(gv: GroupVersion, info: &ResourceInfo) -> Value {
    let kind = info.kind;
    let mut extra = Map::new();
    match kind {
        "Endpoints" => {
            extra.insert("subsets".into(), array(open_object("EndpointSubset"), "The set of all endpoints."));
        }
        "Event" => {
            extra.insert(
                "involvedObject".into(),
                open_object("The object that this event is about (an ObjectReference)."),
            );
            extra.insert("reason".into(), string("A short, machine understandable string for the transition."));
            extra.insert("message".into(), string("A human-readable description of the status of this operation."));
            extra.insert("type".into(), string("Type of this event (Normal, Warning)."));
            extra.insert("count".into(), integer("int32", "The number of times this event has occurred."));
            extra.insert("source".into(), open_object("The component reporting this event (an EventSource)."));
            extra.insert("firstTimestamp".into(), time());
            extra.insert("lastTimestamp".into(), time());
            extra.insert("reportingComponent".into(), string("Name of the controller that emitted this Event."));
            extra.insert("reportingInstance".into(), string("ID of the controller instance."));
        }
        "ConfigMap" => {
            extra.insert("data".into(), string_map("Configuration data, UTF-8 values."));
            extra.insert(
                "binaryData".into(),
                json!({"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                       "description": "Binary configuration data, base64-encoded."}),
            );
            extra.insert("immutable".into(), boolean("If true, data and binaryData cannot be updated."));
        }
        "Secret" => {
            extra.insert(
                "data".into(),
                json!({"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                       "description": "Secret data, base64-encoded."}),
            );
            extra.insert("stringData".into(), string_map("Write-only data in plain text, merged into data on write."));
            extra.insert("type".into(), string("Used to facilitate programmatic handling of secret data."));
            extra.insert("immutable".into(), boolean("If true, data cannot be updated."));
        }
        "ServiceAccount" => {
            extra.insert("secrets".into(), array(open_object("ObjectReference"), "Secrets of this account."));
            extra.insert(
                "imagePullSecrets".into(),
                array(open_object("LocalObjectReference"), "Secrets for pulling the pods' images."),
            );
            extra.insert(
                "automountServiceAccountToken".into(),
                boolean("Whether pods get an API token mounted (Coracle mounts none)."),
            );
        }
        _ => {
            extra.insert("spec".into(), open_object(&format!("The desired behavior of the {kind} ({kind}Spec).")));
            extra.insert("status".into(), open_object(&format!("The observed status of the {kind} ({kind}Status).")));
        }
    }
    let group = if gv.group.is_empty() { "core" } else { gv.group };
    let description = format!("A {kind}, with the fields of Kubernetes' {group}/{}.", gv.version);
    let mut def = object(&description, envelope(extra, false), &[]);
    def["x-kubernetes-group-version-kind"] = json!([gvk(gv.group, gv.version, kind)]);
    def
}

/// A list kind: `items` of `item` (a definition name).
pub fn list_definition(gv: GroupVersion, list_kind: &str, item: &str) -> Value {
    let mut extra = Map::new();
    extra.insert("items".into(), array(reference(item), "List of objects."));
    let mut def = object(&format!("{list_kind} is a list of objects."), envelope(extra, true), &["items"]);
    def["x-kubernetes-group-version-kind"] = json!([gvk(gv.group, gv.version, list_kind)]);
    def
}

/// `metav1` types, the scale subresource's and the metrics API's.
fn shared() -> Vec<(String, Value)> {
    let every_gv: Vec<Value> =
        all().iter().filter(|gv| gv.group != METRICS_GROUP).map(|gv| gvk(gv.group, gv.version, "")).collect();
    let kinds = |kind: &str| -> Value {
        Value::Array(
            every_gv
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    v["kind"] = json!(kind);
                    v
                })
                .collect(),
        )
    };
    let mut out = vec![
        (
            format!("{META}.Time"),
            json!({"type": "string", "format": "date-time", "description": "RFC 3339 time in UTC."}),
        ),
        (
            format!("{META}.ObjectMeta"),
            object(
                "Standard object's metadata.",
                json!({
                    "name": string("Name must be unique within a namespace."),
                    "generateName": string("A prefix the server uses to generate a unique name when none is given."),
                    "namespace": string("The namespace the object is in."),
                    "uid": string("The unique in time and space value for this object, set by the server."),
                    "resourceVersion": string("The version of this object, set by the server."),
                    "generation": integer("int64", "A sequence number representing a specific generation of the desired state."),
                    "creationTimestamp": time(),
                    "deletionTimestamp": time(),
                    "deletionGracePeriodSeconds": integer("int64", "Seconds allowed for this object to terminate gracefully."),
                    "labels": string_map("Map of string keys and values used to organize and select objects."),
                    "annotations": string_map("Unstructured key value map stored with a resource."),
                    "ownerReferences": array(reference(&format!("{META}.OwnerReference")), "Objects this object depends on."),
                    "finalizers": array(json!({"type": "string"}), "Must be empty before the object is deleted from the registry."),
                }),
                &[],
            ),
        ),
        (
            format!("{META}.OwnerReference"),
            object(
                "Enough information to identify an owning object.",
                json!({
                    "apiVersion": string("API version of the referent."),
                    "kind": string("Kind of the referent."),
                    "name": string("Name of the referent."),
                    "uid": string("UID of the referent."),
                    "controller": boolean("If true, this reference points to the managing controller."),
                    "blockOwnerDeletion": boolean("If true, the owner cannot be deleted before this object."),
                }),
                &["apiVersion", "kind", "name", "uid"],
            ),
        ),
        (
            format!("{META}.ListMeta"),
            object(
                "Metadata of a list.",
                json!({
                    "resourceVersion": string("The version the list is consistent at."),
                    "continue": string("Never set: this server returns whole lists."),
                }),
                &[],
            ),
        ),
        (
            format!("{META}.Preconditions"),
            object(
                "Must be fulfilled before an operation (update, delete, etc.) is carried out.",
                json!({"uid": string("Specifies the target UID."), "resourceVersion": string("Specifies the target ResourceVersion.")}),
                &[],
            ),
        ),
        (format!("{META}.DeleteOptions"), {
            let mut d = object(
                "DeleteOptions may be provided when deleting an API object.",
                json!({
                    "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
                    "kind": string("Kind is a string value representing the REST resource this object represents."),
                    "dryRun": array(json!({"type": "string", "enum": ["All"]}), "\"All\": answer what the delete would do, change nothing."),
                    "gracePeriodSeconds": integer("int64", "Seconds before a pod is killed; 0 deletes at once."),
                    "orphanDependents": boolean("Deprecated: true orphans the dependents."),
                    "preconditions": reference(&format!("{META}.Preconditions")),
                    "propagationPolicy": {"type": "string", "enum": ["Orphan", "Background", "Foreground"],
                                          "description": "What becomes of the dependents; \"Background\" by default."},
                }),
                &[],
            );
            d["x-kubernetes-group-version-kind"] = kinds("DeleteOptions");
            d
        }),
        (
            format!("{META}.Patch"),
            json!({"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."}),
        ),
        (
            format!("{META}.StatusCause"),
            object(
                "More information about a failure.",
                json!({"field": string("The field of the resource that caused this error."),
                       "message": string("A human-readable description of the cause."),
                       "reason": string("A machine-readable description of the cause.")}),
                &[],
            ),
        ),
        (
            format!("{META}.StatusDetails"),
            object(
                "Extended data of a Status.",
                json!({
                    "name": string("The name attribute of the resource associated with the status."),
                    "group": string("The group attribute of the resource."),
                    "kind": string("The kind attribute of the resource."),
                    "uid": string("UID of the resource."),
                    "causes": array(reference(&format!("{META}.StatusCause")), "More information about the error."),
                    "retryAfterSeconds": integer("int32", "Seconds before the operation should be retried."),
                }),
                &[],
            ),
        ),
        (format!("{META}.Status"), {
            let mut s = object(
                "Status is a return value for calls that don't return other objects.",
                json!({
                    "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
                    "kind": string("Kind is a string value representing the REST resource this object represents."),
                    "metadata": reference(&format!("{META}.ListMeta")),
                    "status": string("\"Success\" or \"Failure\"."),
                    "message": string("A human-readable description of the status of this operation."),
                    "reason": string("A machine-readable description of why this operation is in the \"Failure\" status."),
                    "details": reference(&format!("{META}.StatusDetails")),
                    "code": integer("int32", "Suggested HTTP return code for this status."),
                }),
                &[],
            );
            s["x-kubernetes-group-version-kind"] = json!([gvk("", "v1", "Status")]);
            s
        }),
        (SCALE.to_string(), {
            let mut s = object(
                "Scale represents a scaling request for a resource.",
                json!({
                    "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
                    "kind": string("Kind is a string value representing the REST resource this object represents."),
                    "metadata": reference(&format!("{META}.ObjectMeta")),
                    "spec": object("The desired scale.", json!({"replicas": integer("int32", "The desired number of instances.")}), &[]),
                    "status": object(
                        "The current status of the scale.",
                        json!({"replicas": integer("int32", "The actual number of observed instances."),
                               "selector": string("Label query over pods that should match the replicas count.")}),
                        &["replicas"],
                    ),
                }),
                &[],
            );
            s["x-kubernetes-group-version-kind"] = json!([gvk("autoscaling", "v1", "Scale")]);
            s
        }),
    ];
    let usage = string_map("Resource usage (cpu, memory) as quantities.");
    let metrics = [
        (
            "PodMetrics",
            json!({"timestamp": time(), "window": string("The sampling window."),
                   "containers": array(
                       object("Metrics of one container.", json!({"name": string("Container name."), "usage": usage.clone()}), &["name", "usage"]),
                       "Metrics of each container.")}),
        ),
        ("NodeMetrics", json!({"timestamp": time(), "window": string("The sampling window."), "usage": usage})),
    ];
    for (kind, fields) in metrics {
        let mut extra = Map::new();
        if let Value::Object(f) = fields {
            extra.extend(f);
        }
        let mut def = object(&format!("{kind}: resource usage metrics."), envelope(extra, false), &[]);
        def["x-kubernetes-group-version-kind"] = json!([gvk(METRICS_GROUP, "v1beta1", kind)]);
        out.push((format!("{METRICS}.{kind}"), def));
        let list_kind = format!("{kind}List");
        let mut extra = Map::new();
        extra.insert("items".into(), array(reference(&format!("{METRICS}.{kind}")), "List of metrics."));
        let mut list = object(&format!("{list_kind} is a list of {kind}."), envelope(extra, true), &["items"]);
        list["x-kubernetes-group-version-kind"] = json!([gvk(METRICS_GROUP, "v1beta1", &list_kind)]);
        out.push((format!("{METRICS}.{list_kind}"), list));
    }
    out
}

/// Every definition any document may name.
pub fn definitions() -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = shared().into_iter().collect();
    for gv in all() {
        out.extend(super::openapi_paths::kind_definitions(gv));
    }
    out
}

/// The definitions `roots` name, and those they name in turn.
pub fn closure(roots: &Value, all: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    if let Some(name) = r.strip_prefix("#/definitions/") {
                        out.push(name.to_string());
                    }
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    refs(roots, &mut todo);
    let mut found = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if found.contains_key(&name) {
            continue;
        }
        if let Some(def) = all.get(&name) {
            refs(def, &mut todo);
            found.insert(name, def.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::openapi_paths::definition_name;
    use super::*;

    #[test]
    fn every_kind_definition_carries_its_group_version_kind() {
        let defs = definitions();
        let deployment = &defs[&definition_name("apps", "v1", "Deployment")];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        let hpa = &defs[&definition_name("autoscaling", "v1", "HorizontalPodAutoscaler")];
        assert_eq!(hpa["x-kubernetes-group-version-kind"][0]["version"], "v1");
        let list = &defs["io.k8s.api.core.v1.PodList"];
        assert_eq!(list["properties"]["items"]["items"]["$ref"], "#/definitions/io.k8s.api.core.v1.Pod");
        for (name, def) in &defs {
            let named = def.get("x-kubernetes-group-version-kind").is_some();
            let meta_or_time = name.ends_with(".Time") || name.contains(".meta.v1.");
            assert!(named || meta_or_time, "{name} has no x-kubernetes-group-version-kind");
        }
    }

    #[test]
    fn the_closure_follows_references() {
        let defs = definitions();
        let found = closure(&reference("io.k8s.api.core.v1.PodList"), &defs);
        let names: Vec<&str> = found.keys().map(String::as_str).collect();
        assert!(names.contains(&"io.k8s.api.core.v1.Pod"));
        assert!(names.contains(&"io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"));
        assert!(!names.contains(&"io.k8s.api.apps.v1.Deployment"));
    }
}
