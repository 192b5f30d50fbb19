//! JSON merge patch (RFC 7386): objects merge key by key, `null` deletes, anything else
//! (arrays included) replaces.

use serde_json::{Map, Value};

/// Applies `patch` to `target` in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut t = target;
        merge_patch(&mut t, &patch);
        t
    }

    #[test]
    fn rfc7386_examples() {
        // The table in RFC 7386 appendix A, a selection.
        assert_eq!(merged(json!({"a": "b"}), json!({"a": "c"})), json!({"a": "c"}));
        assert_eq!(merged(json!({"a": "b"}), json!({"b": "c"})), json!({"a": "b", "b": "c"}));
        assert_eq!(merged(json!({"a": "b"}), json!({"a": null})), json!({}));
        assert_eq!(merged(json!({"a": ["b"]}), json!({"a": "c"})), json!({"a": "c"}));
        assert_eq!(merged(json!({"a": "c"}), json!({"a": ["b"]})), json!({"a": ["b"]}));
        assert_eq!(merged(json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}})), json!({"a": {"b": "d"}}));
        assert_eq!(merged(json!({"a": [{"b": "c"}]}), json!({"a": [1]})), json!({"a": [1]}));
        assert_eq!(merged(json!({"e": null}), json!({"a": 1})), json!({"e": null, "a": 1}));
        assert_eq!(merged(json!([1, 2]), json!({"a": "b", "c": null})), json!({"a": "b"}));
        assert_eq!(merged(json!({}), json!({"a": {"bb": {"ccc": null}}})), json!({"a": {"bb": {}}}));
    }

    #[test]
    fn scale_patch_sets_only_replicas() {
        let out = merged(json!({"spec": {"replicas": 1, "selector": "x"}}), json!({"spec": {"replicas": 5}}));
        assert_eq!(out, json!({"spec": {"replicas": 5, "selector": "x"}}));
    }
}
