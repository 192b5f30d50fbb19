//! Client-side apply's three-way merge: the manifest (desired) over the live object, with
//! fields the previous apply set but the manifest no longer has removed. Lists of objects
//! that Kubernetes merges by key (containers by name, ports by port number, …) are merged
//! element by element, so fields the server defaulted survive and an unchanged manifest
//! yields the live object unchanged.

use serde_json::{Map, Value};

/// The object to write back: `live` changed as little as possible to agree with `desired`.
/// `last_applied` is what the previous apply wrote, if any.
pub fn three_way(live: &Value, last_applied: Option<&Value>, desired: &Value) -> Value {
    merge_value(None, Some(live), last_applied, desired)
}

fn merge_value(field: Option<&str>, live: Option<&Value>, last: Option<&Value>, desired: &Value) -> Value {
    match (live, desired) {
        (Some(Value::Object(l)), Value::Object(d)) => Value::Object(merge_map(l, last.and_then(Value::as_object), d)),
        (Some(Value::Array(l)), Value::Array(d)) => match field.and_then(|f| merge_key(f, d, l)) {
            Some(key) => Value::Array(merge_list(key, l, last.and_then(Value::as_array), d)),
            None => desired.clone(),
        },
        _ => desired.clone(),
    }
}

fn merge_map(
    live: &Map<String, Value>,
    last: Option<&Map<String, Value>>,
    desired: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = live.clone();
    for (k, d) in desired {
        // A field written as null is one the manifest leaves out (kubectl's patch deletes it).
        if d.is_null() {
            out.remove(k);
            continue;
        }
        let merged = merge_value(Some(k), live.get(k), last.and_then(|l| l.get(k)), d);
        out.insert(k.clone(), merged);
    }
    if let Some(last) = last {
        for k in last.keys().filter(|k| !desired.contains_key(*k)) {
            out.remove(k);
        }
    }
    out
}

/// The strategic-merge key for a list field, from Kubernetes' `patchMergeKey` tags.
fn merge_key(field: &str, desired: &[Value], live: &[Value]) -> Option<&'static str> {
    let has = |key: &str| desired.iter().chain(live).all(|v| v.get(key).is_some());
    let key = match field {
        "containers" | "initContainers" | "env" | "volumes" | "imagePullSecrets" | "hostAliases" => "name",
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "ports" if has("containerPort") => "containerPort",
        "ports" => "port",
        _ => return None,
    };
    has(key).then_some(key)
}

fn merge_list(key: &str, live: &[Value], last: Option<&Vec<Value>>, desired: &[Value]) -> Vec<Value> {
    let find = |items: &[Value], k: &Value| items.iter().find(|v| v.get(key) == Some(k)).cloned();
    let mut out: Vec<Value> = desired
        .iter()
        .map(|d| {
            let k = &d[key];
            let l = find(live, k);
            let p = last.and_then(|last| find(last, k));
            merge_value(None, l.as_ref(), p.as_ref(), d)
        })
        .collect();
    // Elements someone else added (not in the previous apply) stay, after the manifest's.
    for l in live {
        let k = &l[key];
        let previously_applied = last.is_some_and(|last| find(last, k).is_some());
        if find(desired, k).is_none() && !previously_applied {
            out.push(l.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_defaults_survive_and_unchanged_stays_unchanged() {
        let desired = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2"}]}}}});
        let live = json!({"metadata": {"resourceVersion": "7"}, "spec": {"replicas": 3, "revisionHistoryLimit": 10,
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 3}});
        assert_eq!(three_way(&live, Some(&desired), &desired), live);
    }

    #[test]
    fn null_in_the_manifest_is_the_field_left_out() {
        let desired = json!({"metadata": {"annotations": null}, "spec": {"replicas": 3, "paused": null}});
        let live = json!({"metadata": {"name": "w"}, "spec": {"replicas": 3, "paused": true}});
        assert_eq!(three_way(&live, None, &desired), json!({"metadata": {"name": "w"}, "spec": {"replicas": 3}}));
        let unchanged = json!({"metadata": {"name": "w"}, "spec": {"replicas": 3}});
        assert_eq!(three_way(&unchanged, Some(&desired), &desired), unchanged);
    }

    #[test]
    fn changes_apply_and_dropped_fields_are_removed() {
        let last =
            json!({"metadata": {"labels": {"app": "web", "old": "x"}}, "spec": {"replicas": 3, "paused": false}});
        let desired = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 5}});
        let live = json!({"metadata": {"labels": {"app": "web", "old": "x", "added-by-hand": "y"}, "resourceVersion": "9"},
            "spec": {"replicas": 3, "paused": false, "minReadySeconds": 0}});
        assert_eq!(
            three_way(&live, Some(&last), &desired),
            json!({"metadata": {"labels": {"app": "web", "added-by-hand": "y"}, "resourceVersion": "9"},
                "spec": {"replicas": 5, "minReadySeconds": 0}})
        );
    }

    #[test]
    fn keyed_lists_merge_by_key_and_plain_lists_are_replaced() {
        let last = json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}], "args": ["x"]});
        let desired = json!({"containers": [{"name": "a", "image": "a:2"}], "args": ["y"]});
        let live = json!({"containers": [
            {"name": "a", "image": "a:1", "imagePullPolicy": "Always"},
            {"name": "b", "image": "b:1"},
            {"name": "sidecar", "image": "s:1"}], "args": ["x", "z"]});
        assert_eq!(
            three_way(&live, Some(&last), &desired),
            json!({"containers": [{"name": "a", "image": "a:2", "imagePullPolicy": "Always"}, {"name": "sidecar", "image": "s:1"}],
                "args": ["y"]})
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let desired = json!({"ports": [{"port": 80, "targetPort": 8080}]});
        let live = json!({"ports": [{"port": 80, "targetPort": 9090, "protocol": "TCP", "nodePort": 30080}]});
        assert_eq!(
            three_way(&live, None, &desired),
            json!({"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]})
        );
    }
}
