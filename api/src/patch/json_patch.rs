//! JSON patch (RFC 6902): add, remove, replace, move, copy and test operations addressed by
//! JSON pointers (RFC 6901, `~1` for `/` and `~0` for `~`).

use serde_json::Value;

/// Decodes one pointer token: `~1` → `/`, then `~0` → `~`.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The pointer's tokens; `""` is the whole document.
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| format!("path {pointer:?} must start with \"/\""))?;
    Ok(rest.split('/').map(unescape).collect())
}

/// An array index token: digits only, no leading zeros; `-` is the end (only where allowed).
fn index(token: &str, len: usize, allow_end: bool, pointer: &str) -> Result<usize, String> {
    if token == "-" && allow_end {
        return Ok(len);
    }
    let valid =
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) && (token == "0" || !token.starts_with('0'));
    let i: usize = if valid {
        token.parse().map_err(|_| format!("invalid index {token:?} in {pointer:?}"))?
    } else {
        return Err(format!("invalid array index {token:?} in path {pointer:?}"));
    };
    let limit = if allow_end { len } else { len.saturating_sub(1) };
    if i > limit || (!allow_end && len == 0) {
        return Err(format!("index {i} out of range in path {pointer:?} (array has {len} elements)"));
    }
    Ok(i)
}

fn resolve<'v>(doc: &'v Value, pointer: &str) -> Result<&'v Value, String> {
    let mut at = doc;
    for token in tokens(pointer)? {
        at = match at {
            Value::Object(map) => map.get(&token).ok_or_else(|| format!("path {pointer:?}: no member {token:?}"))?,
            Value::Array(items) => &items[index(&token, items.len(), false, pointer)?],
            _ => return Err(format!("path {pointer:?}: {token:?} is inside a value that is not an object or array")),
        };
    }
    Ok(at)
}

/// The container a pointer's last token lives in, and that token.
fn parent_mut<'v>(doc: &'v mut Value, pointer: &str) -> Result<(&'v mut Value, String), String> {
    let mut parts = tokens(pointer)?;
    let last = parts.pop().ok_or_else(|| format!("path {pointer:?} names the whole document"))?;
    let mut at = doc;
    for token in parts {
        at = match at {
            Value::Object(map) => {
                map.get_mut(&token).ok_or_else(|| format!("path {pointer:?}: no member {token:?}"))?
            }
            Value::Array(items) => {
                let i = index(&token, items.len(), false, pointer)?;
                &mut items[i]
            }
            _ => return Err(format!("path {pointer:?}: {token:?} is inside a value that is not an object or array")),
        };
    }
    Ok((at, last))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, pointer)?;
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
        }
        Value::Array(items) => {
            let i = index(&last, items.len(), true, pointer)?;
            items.insert(i, value);
        }
        _ => return Err(format!("path {pointer:?}: the parent is not an object or array")),
    }
    Ok(())
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, String> {
    let (parent, last) = parent_mut(doc, pointer)?;
    match parent {
        Value::Object(map) => {
            map.remove(&last).ok_or_else(|| format!("path {pointer:?}: no member {last:?} to remove"))
        }
        Value::Array(items) => {
            let i = index(&last, items.len(), false, pointer)?;
            Ok(items.remove(i))
        }
        _ => Err(format!("path {pointer:?}: the parent is not an object or array")),
    }
}

fn replace(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, pointer)?;
    let slot = match parent {
        Value::Object(map) => {
            map.get_mut(&last).ok_or_else(|| format!("path {pointer:?}: no member {last:?} to replace"))?
        }
        Value::Array(items) => {
            let i = index(&last, items.len(), false, pointer)?;
            &mut items[i]
        }
        _ => return Err(format!("path {pointer:?}: the parent is not an object or array")),
    };
    *slot = value;
    Ok(())
}

fn field<'o>(op: &'o Value, name: &str, n: usize) -> Result<&'o Value, String> {
    op.get(name).ok_or_else(|| format!("operation {n}: missing {name:?}"))
}

fn string_field<'o>(op: &'o Value, name: &str, n: usize) -> Result<&'o str, String> {
    field(op, name, n)?.as_str().ok_or_else(|| format!("operation {n}: {name:?} must be a string"))
}

fn apply_one(doc: &mut Value, op: &Value, n: usize) -> Result<(), String> {
    let kind = string_field(op, "op", n)?;
    let path = string_field(op, "path", n)?;
    match kind {
        "add" => add(doc, path, field(op, "value", n)?.clone()),
        "remove" => remove(doc, path).map(drop),
        "replace" => replace(doc, path, field(op, "value", n)?.clone()),
        "move" => {
            let from = string_field(op, "from", n)?;
            if path.starts_with(&format!("{from}/")) {
                return Err(format!("cannot move {from:?} into its own child {path:?}"));
            }
            let value = remove(doc, from)?;
            add(doc, path, value)
        }
        "copy" => {
            let value = resolve(doc, string_field(op, "from", n)?)?.clone();
            add(doc, path, value)
        }
        "test" => {
            let expected = field(op, "value", n)?;
            let actual = resolve(doc, path)?;
            if actual == expected {
                Ok(())
            } else {
                Err(format!("test failed: {path:?} is {actual}, not {expected}"))
            }
        }
        other => Err(format!("unknown op {other:?}: must be add, remove, replace, move, copy or test")),
    }
    .map_err(|e| if e.starts_with("operation ") { e } else { format!("operation {n} ({kind} {path}): {e}") })
}

/// Applies the operations in order to a copy of `doc`; any failure leaves nothing applied.
pub fn apply(doc: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array of operations")?;
    let mut out = doc.clone();
    for (n, op) in ops.iter().enumerate() {
        apply_one(&mut out, op, n)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Result<Value, String> {
        apply(&doc, &ops)
    }

    #[test]
    fn add_remove_replace() {
        let out = run(
            json!({"a": [1, 2]}),
            json!([
                {"op": "add", "path": "/a/1", "value": 9},
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "add", "path": "/b", "value": {"c": 1}},
                {"op": "replace", "path": "/b/c", "value": 2},
                {"op": "remove", "path": "/a/0"}
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"a": [9, 2, 3], "b": {"c": 2}}));
    }

    #[test]
    fn move_copy_and_test() {
        let out = run(
            json!({"a": {"x": 1}, "b": []}),
            json!([
                {"op": "copy", "from": "/a/x", "path": "/b/0"},
                {"op": "move", "from": "/a", "path": "/c"},
                {"op": "test", "path": "/c/x", "value": 1}
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"b": [1], "c": {"x": 1}}));
        let err = run(json!({"a": 1}), json!([{"op": "test", "path": "/a", "value": 2}])).unwrap_err();
        assert!(err.contains("test failed"), "{err}");
    }

    #[test]
    fn escaped_pointer_tokens() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}});
        let out = run(
            doc,
            json!([
                {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
                {"op": "remove", "path": "/metadata/annotations/m~0n"}
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"metadata": {"annotations": {"a/b": "x"}}}));
    }

    #[test]
    fn failures_name_the_operation_and_leave_nothing_applied() {
        let doc = json!({"a": 1});
        let err = run(
            doc.clone(),
            json!([
                {"op": "replace", "path": "/a", "value": 2},
                {"op": "replace", "path": "/missing", "value": 1}
            ]),
        )
        .unwrap_err();
        assert!(err.contains("operation 1") && err.contains("missing"), "{err}");
        assert!(run(doc.clone(), json!([{"op": "remove", "path": "/a/0"}])).is_err());
        assert!(run(json!({"a": [1]}), json!([{"op": "add", "path": "/a/5", "value": 1}])).is_err());
        assert!(run(json!({"a": [1]}), json!([{"op": "remove", "path": "/a/01"}])).is_err());
        assert!(run(doc.clone(), json!([{"op": "frobnicate", "path": "/a"}])).is_err());
        assert!(run(doc, json!({"op": "add"})).is_err());
    }

    #[test]
    fn rollout_undo_replaces_the_template_and_annotations() {
        let doc = json!({"metadata": {"annotations": {"x": "1"}}, "spec": {"template": {"old": true}}});
        let out = run(
            doc,
            json!([
                {"op": "replace", "path": "/spec/template", "value": {"new": true}},
                {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "2"}}
            ]),
        )
        .unwrap();
        assert_eq!(out["spec"]["template"], json!({"new": true}));
        assert_eq!(out["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    }
}
