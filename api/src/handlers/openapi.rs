//! Minimal OpenAPI v3 documents: enough for `kubectl create`/`apply` to find, per kind, a
//! `patch` operation with `x-kubernetes-group-version-kind` and a `fieldValidation`
//! parameter, and so leave validation to the server (`fieldValidation=Strict`).

use crate::errors::ApiError;
use crate::routes::group_versions;
use coracle_config::object::ALL;
use serde_json::{json, Map, Value};

/// The group-versions with documents, as `(group, version, path)`.
fn documents() -> Vec<(&'static str, &'static str, String)> {
    let mut out = vec![("", "v1", "api/v1".to_string())];
    for group in ["apps", "autoscaling"] {
        for version in group_versions(group) {
            out.push((group, version, format!("apis/{group}/{version}")));
        }
    }
    out
}

/// A stable content hash of a document, for its `serverRelativeURL`.
fn hash(doc: &Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(doc.to_string().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02X}")).collect()
}

fn group_version_doc(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for info in ALL.iter().filter(|i| i.group == group) {
        let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let object_path = if info.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", info.plural)
        } else {
            format!("{prefix}/{}/{{name}}", info.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": info.kind});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", info.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(
            object_path,
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", super::discovery::KUBE_MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

/// `/openapi/v3` (None) or one group-version document.
pub fn document(which: Option<&str>) -> Result<Value, ApiError> {
    let docs = documents();
    match which {
        None => {
            let mut paths = Map::new();
            for (group, version, path) in &docs {
                let doc = group_version_doc(group, version);
                paths.insert(
                    path.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc))}),
                );
            }
            Ok(json!({"paths": paths}))
        }
        Some(path) => docs
            .iter()
            .find(|(_, _, p)| p == path)
            .map(|(group, version, _)| group_version_doc(group, version))
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
        assert!(root["paths"]["api/v1"].is_object());
        assert!(root["paths"]["apis/autoscaling/v1"].is_object());
        assert_eq!(document(Some("apis/batch/v1")).unwrap_err().code(), 404);
    }

    #[test]
    fn patch_operations_name_their_kind_and_take_field_validation() {
        let doc = document(Some("apis/apps/v1")).unwrap();
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
        let core = document(Some("api/v1")).unwrap();
        assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
    }
}
