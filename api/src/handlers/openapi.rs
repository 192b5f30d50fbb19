//! The OpenAPI v3 documents: `/openapi/v3`, Kubernetes' index of group-version documents
//! (each with a hashed `serverRelativeURL`), and one valid OpenAPI 3.0 document per
//! group-version with every path, its parameters, bodies and responses. kubectl reads the
//! patch operations' `x-kubernetes-group-version-kind` and `fieldValidation` parameter to
//! leave validation to the server (`fieldValidation=Strict`). `/openapi/v2` is in
//! `openapi_v2.rs`; both render `openapi_paths.rs`.

use super::openapi_paths::{self, GroupVersion, In, Operation, Param, Payload, Type};
use super::openapi_schemas::{closure, definitions, reference};
use crate::errors::ApiError;
use serde_json::{json, Map, Value};

/// `info` of every document.
pub fn info() -> Value {
    json!({"title": "Kubernetes", "version": format!("v1.{}.0", super::discovery::KUBE_MINOR)})
}

/// The bearer token the TCP listener requires (the unix socket needs none).
pub fn security_scheme() -> Value {
    json!({"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header",
                           "description": "Bearer Token authentication"}})
}

/// A stable content hash of a document, for its `serverRelativeURL`.
fn hash(doc: &Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(doc.to_string().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02X}")).collect()
}

/// A parameter's JSON Schema type.
pub fn type_schema(ty: Type) -> Value {
    match ty {
        Type::String => json!({"type": "string"}),
        Type::Boolean => json!({"type": "boolean"}),
        Type::Integer => json!({"type": "integer"}),
        Type::IntegerFrom(min) => json!({"type": "integer", "minimum": min}),
        Type::OneOf(values) => json!({"type": "string", "enum": values}),
    }
}

fn parameter(p: &Param) -> Value {
    let location = if p.location == In::Path { "path" } else { "query" };
    let mut v = json!({"name": p.name, "in": location, "description": p.description, "schema": type_schema(p.ty)});
    if p.location == In::Path {
        v["required"] = json!(true);
    }
    v
}

/// `"200": {"description": "OK", "content": …}`.
fn responses(op: &Operation) -> Value {
    let mut out = Map::new();
    for (code, payload) in &op.responses {
        let content = match payload {
            Payload::Json(def) => json!({"application/json": {"schema": reference(def)}}),
            Payload::Text => json!({"text/plain": {"schema": {"type": "string"}}}),
        };
        let description = if *code == 201 { "Created" } else { "OK" };
        out.insert(code.to_string(), json!({"description": description, "content": content}));
    }
    Value::Object(out)
}

fn operation(op: &Operation) -> Value {
    let (group, version, kind) = op.gvk;
    let mut v = json!({
        "operationId": op.id,
        "description": op.description,
        "tags": [op.tag],
        "parameters": op.params.iter().map(parameter).collect::<Vec<_>>(),
        "responses": responses(op),
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
    });
    if let Some(body) = &op.body {
        let content: Map<String, Value> =
            body.media_types.iter().map(|m| (m.to_string(), json!({"schema": reference(&body.definition)}))).collect();
        v["requestBody"] = json!({"content": content, "required": body.required});
    }
    v
}

/// Rewrites Swagger 2.0 references (`#/definitions/X`) to OpenAPI 3 ones.
fn to_components(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/definitions/") {
                    *r = format!("#/components/schemas/{name}");
                }
            }
            o.values_mut().for_each(to_components);
        }
        Value::Array(a) => a.iter_mut().for_each(to_components),
        _ => {}
    }
}

/// The OpenAPI 3.0 document of one group-version.
fn group_version_doc(gv: GroupVersion) -> Value {
    let mut paths = Map::new();
    openapi_paths::render_into(&mut paths, openapi_paths::paths(gv), parameter, operation);
    let paths = Value::Object(paths);
    let schemas: Map<String, Value> = closure(&paths, &definitions()).into_iter().collect();
    let mut doc = json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security_scheme()},
        "security": [{"BearerToken": []}],
    });
    to_components(&mut doc);
    doc
}

/// `/openapi/v3` (None) or one group-version document.
pub fn document(which: Option<&str>) -> Result<Value, ApiError> {
    let docs = openapi_paths::all();
    match which {
        None => {
            let mut paths = Map::new();
            for gv in docs {
                let doc = group_version_doc(gv);
                let path = gv.doc_path();
                let url = format!("/openapi/v3/{path}?hash={}", hash(&doc));
                paths.insert(path, json!({"serverRelativeURL": url}));
            }
            Ok(json!({"paths": paths}))
        }
        Some(path) => docs
            .into_iter()
            .find(|gv| gv.doc_path() == path)
            .map(group_version_doc)
            .ok_or_else(|| ApiError::PathNotFound(format!("/openapi/v3/{path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_points_at_hashed_group_version_documents() {
        let root = document(None).unwrap();
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        for gv in ["api/v1", "apis/autoscaling/v1", "apis/autoscaling/v2", "apis/metrics.k8s.io/v1beta1"] {
            assert!(root["paths"][gv].is_object(), "{gv}");
        }
        assert_eq!(document(Some("apis/batch/v1")).unwrap_err().code(), 404);
    }

    #[test]
    fn patch_operations_name_their_kind_and_take_field_validation() {
        let doc = document(Some("apis/apps/v1")).unwrap();
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let patch = &item["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        // kubectl gives up on the first patch of the kind without it: every patch has it.
        for (path, item) in doc["paths"].as_object().unwrap() {
            if let Some(patch) = item.get("patch") {
                let params = patch["parameters"].as_array().unwrap();
                assert!(params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"), "{path}");
                // No strategic merge: kubectl would compute its patches from these schemas.
                assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none());
            }
        }
        let core = document(Some("api/v1")).unwrap();
        assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
    }

    #[test]
    fn every_path_template_declares_its_parameters() {
        for gv in openapi_paths::all() {
            let doc = document(Some(&gv.doc_path())).unwrap();
            for (path, item) in doc["paths"].as_object().unwrap() {
                let declared: Vec<&str> = item["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let templated: Vec<&str> =
                    path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
                let mut want = templated.clone();
                want.sort_unstable();
                let mut have = declared.clone();
                have.sort_unstable();
                assert_eq!(have, want, "{path}");
            }
        }
    }

    #[test]
    fn schemas_are_every_definition_referenced_and_carry_their_kinds() {
        let doc = document(Some("api/v1")).unwrap();
        let text = doc.to_string();
        assert!(!text.contains("#/definitions/"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &r[..r.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        assert_eq!(
            schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "Pod"}])
        );
        let log = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"];
        assert_eq!(log["operationId"], "readCoreV1NamespacedPodLog");
        let names: Vec<&str> =
            log["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        assert!(names.contains(&"sinceSeconds") && names.contains(&"tailLines") && names.contains(&"limitBytes"));
        let delete = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"];
        let names: Vec<&str> =
            delete["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"]);
        let ids = ["deleteCoreV1CollectionNamespacedPod", "listCoreV1PodForAllNamespaces", "createCoreV1Namespace"];
        for id in ids {
            assert!(text.contains(&format!("\"operationId\":\"{id}\"")), "{id}");
        }
    }
}
