//! Discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`) and `/version`: what
//! kubectl reads to learn resource names, short names, categories and verbs.

use crate::errors::ApiError;
use crate::routes::{group_versions, DiscoveryDoc, GROUPS, METRICS_GROUP};
use coracle_config::object::{ResourceInfo, ALL};
use serde_json::{json, Value};

/// The Kubernetes minor version reported; the kubectl dispatcher picks its client by it.
pub const KUBE_MINOR: &str = "32";

/// `GOARCH` spelling of the build target.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The `/version` document.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-coracle.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("linux/{}", goarch()),
    })
}

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

fn resource_entries(info: &ResourceInfo) -> Vec<Value> {
    let mut entries = vec![json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": VERBS,
        "shortNames": info.short_names,
        "categories": info.categories,
    })];
    for sub in info.subresources {
        let mut entry = json!({
            "name": format!("{}/{sub}", info.plural),
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": ["get", "patch", "update"],
        });
        match *sub {
            "scale" => {
                entry["group"] = json!("autoscaling");
                entry["version"] = json!("v1");
                entry["kind"] = json!("Scale");
            }
            "log" => {
                entry["kind"] = json!("Pod");
                entry["verbs"] = json!(["get"]);
            }
            _ => {}
        }
        entries.push(entry);
    }
    entries
}

/// `metrics.k8s.io/v1beta1`: read-only pod and node metrics.
fn metrics_resources() -> Vec<Value> {
    vec![
        json!({"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}),
        json!({"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]}),
    ]
}

fn group_version_json(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// The discovery document asked for; an unknown group-version is 404.
pub fn document(doc: &DiscoveryDoc) -> Result<Value, ApiError> {
    Ok(match doc {
        DiscoveryDoc::CoreVersions => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }),
        DiscoveryDoc::Groups => {
            let groups: Vec<Value> = GROUPS
                .iter()
                .map(|g| {
                    let versions = group_versions(g);
                    json!({
                        "name": g,
                        "versions": versions.iter().map(|v| group_version_json(g, v)).collect::<Vec<_>>(),
                        "preferredVersion": group_version_json(g, versions[0]),
                    })
                })
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        DiscoveryDoc::Resources { group, version } => {
            if !group_versions(group).contains(&version.as_str()) {
                return Err(ApiError::PathNotFound(format!("/apis/{group}/{version}")));
            }
            let resources: Vec<Value> = if group == METRICS_GROUP {
                metrics_resources()
            } else {
                ALL.iter().filter(|i| i.group == group).flat_map(|i| resource_entries(i)).collect()
            };
            let group_version = if group.is_empty() { version.clone() } else { format!("{group}/{version}") };
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(group: &str, version: &str) -> Vec<Value> {
        let doc = document(&DiscoveryDoc::Resources { group: group.into(), version: version.into() }).unwrap();
        doc["resources"].as_array().unwrap().clone()
    }

    fn named<'a>(list: &'a [Value], name: &str) -> &'a Value {
        list.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn apps_lists_deployments_with_short_names_categories_and_scale() {
        let list = resources("apps", "v1");
        let deploy = named(&list, "deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        let scale = named(&list, "deployments/scale");
        assert_eq!((scale["group"].as_str(), scale["kind"].as_str()), (Some("autoscaling"), Some("Scale")));
    }

    #[test]
    fn core_and_autoscaling_groups() {
        let core = resources("", "v1");
        assert_eq!(named(&core, "pods")["shortNames"], json!(["po"]));
        assert_eq!(named(&core, "namespaces")["namespaced"], json!(false));
        assert!(named(&resources("autoscaling", "v1"), "horizontalpodautoscalers")["categories"] == json!(["all"]));
        let groups = document(&DiscoveryDoc::Groups).unwrap();
        assert_eq!(groups["groups"][1]["preferredVersion"]["groupVersion"], "autoscaling/v2");
    }

    #[test]
    fn metrics_group_is_discoverable() {
        let groups = document(&DiscoveryDoc::Groups).unwrap();
        assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == "metrics.k8s.io"));
        let list = resources("metrics.k8s.io", "v1beta1");
        assert_eq!(named(&list, "pods")["kind"], "PodMetrics");
        assert_eq!(named(&list, "nodes")["namespaced"], false);
    }

    #[test]
    fn version_reports_the_kubernetes_minor() {
        let v = version();
        assert_eq!(v["minor"], "32");
        assert!(v["platform"].as_str().unwrap().starts_with("linux/"));
    }
}
