//! `/openapi/v2`: every group-version's paths in one Swagger 2.0 document, as JSON (the
//! protobuf form kubectl 1.27/1.28 ask for is not served: they get a 406 and fall back as
//! they do on a 404).

use super::openapi::{info, security_scheme, type_schema};
use super::openapi_paths::{self, In, Operation, Param, Payload};
use super::openapi_schemas::{closure, definitions, reference};
use serde_json::{json, Map, Value};

fn parameter(p: &Param) -> Value {
    let location = if p.location == In::Path { "path" } else { "query" };
    let mut v = type_schema(p.ty);
    v["name"] = json!(p.name);
    v["in"] = json!(location);
    v["description"] = json!(p.description);
    if p.location == In::Path {
        v["required"] = json!(true);
    }
    v
}

fn operation(op: &Operation) -> Value {
    let (group, version, kind) = op.gvk;
    let mut parameters: Vec<Value> = op.params.iter().map(parameter).collect();
    let mut responses = Map::new();
    let mut produces = "application/json";
    for (code, payload) in &op.responses {
        let schema = match payload {
            Payload::Json(def) => reference(def),
            Payload::Text => {
                produces = "text/plain";
                json!({"type": "string"})
            }
        };
        let description = if *code == 201 { "Created" } else { "OK" };
        responses.insert(code.to_string(), json!({"description": description, "schema": schema}));
    }
    let mut v = json!({
        "operationId": op.id,
        "description": op.description,
        "tags": [op.tag],
        "produces": [produces],
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
    });
    if let Some(body) = &op.body {
        parameters.push(
            json!({"name": "body", "in": "body", "required": body.required, "schema": reference(&body.definition)}),
        );
        v["consumes"] = json!(body.media_types);
    }
    v["parameters"] = Value::Array(parameters);
    v
}

/// The Swagger 2.0 document of the whole API.
pub fn document() -> Value {
    let mut paths = Map::new();
    for gv in openapi_paths::all() {
        openapi_paths::render_into(&mut paths, openapi_paths::paths(gv), parameter, operation);
    }
    let paths = Value::Object(paths);
    let definitions: Map<String, Value> = closure(&paths, &definitions()).into_iter().collect();
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": security_scheme(),
        "security": [{"BearerToken": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_holds_every_group_version_with_bodies_as_parameters() {
        let doc = document();
        assert_eq!(doc["swagger"], "2.0");
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers",
            "/apis/autoscaling/v2/horizontalpodautoscalers",
            "/apis/metrics.k8s.io/v1beta1/nodes/{name}",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        let create = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
        let body = create["parameters"].as_array().unwrap().iter().find(|p| p["in"] == "body").unwrap();
        assert_eq!(body["schema"]["$ref"], "#/definitions/io.k8s.api.apps.v1.Deployment");
        assert_eq!(create["consumes"], json!(["application/json", "application/yaml"]));
        let log = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"];
        assert_eq!(log["produces"], json!(["text/plain"]));
        let defs = doc["definitions"].as_object().unwrap();
        assert_eq!(
            defs["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"],
            json!([{"group": "autoscaling", "version": "v1", "kind": "Scale"}])
        );
        // Operation ids are unique across the document, as Swagger 2.0 requires.
        let mut ids: Vec<&str> = paths
            .values()
            .flat_map(|item| item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters"))
            .map(|(_, op)| op["operationId"].as_str().unwrap())
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
