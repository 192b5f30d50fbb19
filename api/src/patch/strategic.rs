//! Strategic merge patch, as kube-apiserver applies it for the kinds Coracle serves: lists
//! of named things merge element by element on their patch merge key (containers by
//! `name`, container ports by `containerPort`, …), other lists are replaced, `null`
//! deletes, and the `$patch`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and
//! `$retainKeys` directives are honoured and never stored.

use serde_json::{Map, Value};

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const RETAIN_KEYS: &str = "$retainKeys";
const PATCH: &str = "$patch";

/// How a list field merges, from the Kubernetes types' `patchStrategy`/`patchMergeKey` tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListStrategy {
    /// Objects merged by this key.
    MergeKey(&'static str),
    /// Primitive values merged as a set (finalizers).
    Primitives,
    /// The patch's list replaces the live one.
    Replace,
}

/// The strategy of the list at `path` (field names from the root, list indices left out).
fn list_strategy(path: &[String]) -> ListStrategy {
    let last = path.last().map(String::as_str).unwrap_or("");
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str()).unwrap_or("");
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => ListStrategy::MergeKey("name"),
        "ports" if matches!(parent, "containers" | "initContainers" | "ephemeralContainers") => {
            ListStrategy::MergeKey("containerPort")
        }
        // Service spec.ports; Endpoints subsets' ports are atomic in Kubernetes.
        "ports" if parent == "spec" => ListStrategy::MergeKey("port"),
        "env" | "volumes" | "imagePullSecrets" => ListStrategy::MergeKey("name"),
        "volumeMounts" => ListStrategy::MergeKey("mountPath"),
        "volumeDevices" => ListStrategy::MergeKey("devicePath"),
        "conditions" => ListStrategy::MergeKey("type"),
        "ownerReferences" => ListStrategy::MergeKey("uid"),
        "hostAliases" => ListStrategy::MergeKey("ip"),
        "topologySpreadConstraints" => ListStrategy::MergeKey("topologyKey"),
        "finalizers" => ListStrategy::Primitives,
        _ => ListStrategy::Replace,
    }
}

/// Applies a strategic merge patch to `original`, returning the merged document.
pub fn apply(original: &Value, patch: &Value) -> Result<Value, String> {
    let patch = patch.as_object().ok_or("a strategic merge patch must be a JSON object")?;
    let original = original.as_object().cloned().unwrap_or_default();
    Ok(merge_map(original, patch, &mut Vec::new())?.map(Value::Object).unwrap_or(Value::Object(Map::new())))
}

fn directive(patch: &Map<String, Value>) -> Option<&str> {
    patch.get(PATCH).and_then(Value::as_str)
}

/// Merges a map patch; None when the patch deletes the whole map (`$patch: delete`).
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Option<Map<String, Value>>, String> {
    match directive(patch) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut fresh = patch.clone();
            fresh.remove(PATCH);
            return merge_map(Map::new(), &fresh, path);
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("{}: unknown $patch directive {other:?}", at(path))),
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keys = retain.as_array().ok_or_else(|| format!("{}: $retainKeys must be a list", at(path)))?;
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key == PATCH || key == RETAIN_KEYS || key.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(list) = key.strip_prefix(DELETE_PRIMITIVE) {
            let remove = value.as_array().ok_or_else(|| format!("{}: {key} must be a list", at(path)))?;
            if let Some(Value::Array(items)) = original.get_mut(list) {
                items.retain(|v| !remove.contains(v));
            }
            continue;
        }
        path.push(key.clone());
        let merged = merge_value(original.remove(key), value, path)?;
        path.pop();
        if let Some(v) = merged {
            original.insert(key.clone(), v);
        }
    }
    for (key, order) in patch {
        if let Some(list) = key.strip_prefix(SET_ORDER) {
            let order = order.as_array().ok_or_else(|| format!("{}: {key} must be a list", at(path)))?;
            path.push(list.to_string());
            let strategy = list_strategy(path);
            path.pop();
            if let Some(Value::Array(items)) = original.get_mut(list) {
                reorder(items, order, strategy);
            }
        }
    }
    Ok(Some(original))
}

fn at(path: &[String]) -> String {
    if path.is_empty() {
        "the patch".to_string()
    } else {
        path.join(".")
    }
}

/// Merges one field's value; None deletes the field.
fn merge_value(original: Option<Value>, patch: &Value, path: &mut Vec<String>) -> Result<Option<Value>, String> {
    match patch {
        Value::Null => Ok(None),
        Value::Object(p) => {
            let base = match original {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            Ok(merge_map(base, p, path)?.map(Value::Object))
        }
        Value::Array(p) => {
            let base = match original {
                Some(Value::Array(o)) => o,
                _ => Vec::new(),
            };
            merge_list(base, p, path).map(|l| Some(Value::Array(l)))
        }
        scalar => Ok(Some(scalar.clone())),
    }
}

fn merge_list(original: Vec<Value>, patch: &[Value], path: &mut Vec<String>) -> Result<Vec<Value>, String> {
    // A `{"$patch": "replace"}` element makes the rest of the patch list the whole list.
    let replace_all = patch.iter().any(|v| v.as_object().is_some_and(|m| directive(m) == Some("replace")));
    let strategy = list_strategy(path);
    match strategy {
        ListStrategy::MergeKey(key) => {
            let mut out = if replace_all { Vec::new() } else { original };
            for item in patch {
                let Some(map) = item.as_object() else {
                    return Err(format!("{}: list elements must be objects with {key:?}", at(path)));
                };
                if directive(map) == Some("replace") && map.len() == 1 {
                    continue;
                }
                let wanted =
                    map.get(key).ok_or_else(|| format!("{}: an element has no merge key {key:?}", at(path)))?;
                let found = out.iter().position(|o| o.get(key) == Some(wanted));
                if directive(map) == Some("delete") {
                    out.retain(|o| o.get(key) != Some(wanted));
                    continue;
                }
                let base = found.and_then(|i| out[i].as_object().cloned()).unwrap_or_default();
                let merged = merge_map(base, map, path)?;
                match (found, merged) {
                    (Some(i), Some(m)) => out[i] = Value::Object(m),
                    (Some(i), None) => {
                        out.remove(i);
                    }
                    (None, Some(m)) => out.push(Value::Object(m)),
                    (None, None) => {}
                }
            }
            Ok(out)
        }
        ListStrategy::Primitives if !replace_all => {
            let mut out = original;
            for item in patch {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(out)
        }
        _ => {
            // Atomic lists: the patch's elements, with directives applied to new maps.
            let mut out = Vec::new();
            for item in patch {
                match item {
                    Value::Object(m) if directive(m) == Some("replace") && m.len() == 1 => {}
                    Value::Object(m) => {
                        if let Some(merged) = merge_map(Map::new(), m, path)? {
                            out.push(Value::Object(merged));
                        }
                    }
                    other => out.push(other.clone()),
                }
            }
            Ok(out)
        }
    }
}

/// Orders `items` as `$setElementOrder` lists them; elements it does not mention keep
/// their relative order after those it does.
fn reorder(items: &mut [Value], order: &[Value], strategy: ListStrategy) {
    let rank = |item: &Value| -> usize {
        let position = match strategy {
            ListStrategy::MergeKey(key) => {
                order.iter().position(|o| o.get(key).is_some() && o.get(key) == item.get(key))
            }
            _ => order.iter().position(|o| o == item),
        };
        position.unwrap_or(order.len())
    };
    // A stable sort keeps unmentioned elements in their original relative order.
    items.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a"]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}, {"containerPort": 443}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "busybox"}
            ]}}}
        })
    }

    #[test]
    fn containers_merge_by_name_and_keep_unpatched_fields() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"name": "nginx", "image": "nginx:1.26"}]
        }}}});
        let out = apply(&deployment(), &patch).unwrap();
        let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "nginx:1.26");
        assert_eq!(containers[0]["ports"].as_array().unwrap().len(), 2, "ports kept");
        assert_eq!(containers[1]["name"], "sidecar");
        assert!(!out.to_string().contains('$'), "directives are removed: {out}");
    }

    #[test]
    fn set_element_order_reorders_and_new_elements_append() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}, {"name": "log"}],
            "containers": [{"name": "log", "image": "busybox"}]
        }}}});
        let out = apply(&deployment(), &patch).unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "nginx", "log"]);
    }

    #[test]
    fn nested_keys_ports_env_and_delete_directives() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "ports": [{"containerPort": 443, "$patch": "delete"}, {"containerPort": 8080}],
             "env": [{"name": "A", "value": "9"}, {"name": "B", "$patch": "delete"}]},
            {"name": "sidecar", "$patch": "delete"}
        ]}}}});
        let out = apply(&deployment(), &patch).unwrap();
        let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["ports"], json!([{"containerPort": 80}, {"containerPort": 8080}]));
        assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "9"}]));
    }

    #[test]
    fn null_deletes_and_other_lists_replace() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"args": ["z"]}});
        let out = apply(&original, &patch).unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}, "spec": {"args": ["z"]}}));
    }

    #[test]
    fn list_replace_directive_and_map_replace() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "only", "image": "busybox"}
        ]}}}, "metadata": {"labels": {"$patch": "replace", "x": "1"}}});
        let out = apply(&deployment(), &patch).unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "busybox"}]));
        assert_eq!(out["metadata"]["labels"], json!({"x": "1"}));
    }

    #[test]
    fn primitive_lists_retain_keys_and_service_ports() {
        let patch = json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = apply(&deployment(), &patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        assert_eq!(apply(&original, &patch).unwrap(), json!({"spec": {"strategy": {"type": "Recreate"}}}));
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let out = apply(&svc, &json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}})).unwrap();
        assert_eq!(out["spec"]["ports"][1], json!({"port": 443, "name": "https", "targetPort": 8443}));
    }

    #[test]
    fn conditions_merge_by_type_and_bad_directives_fail() {
        let original = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let out = apply(&original, &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})).unwrap();
        assert_eq!(out["status"]["conditions"], json!([{"type": "Ready", "status": "True"}]));
        assert!(apply(&original, &json!({"status": {"$patch": "explode"}})).is_err());
        assert!(apply(&original, &json!({"status": {"conditions": [{"status": "x"}]}})).is_err());
        assert!(apply(&original, &json!([1])).is_err());
    }
}
