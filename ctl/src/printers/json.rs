//! `-o json`: four-space indentation, keys sorted, as kubectl prints.

use serde::Serialize;
use serde_json::Value;

/// The value as kubectl's JSON printer writes it, with a trailing newline.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).expect("JSON values serialize");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_with_four_spaces() {
        let v = serde_json::json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": []}});
        assert_eq!(
            to_json(&v),
            "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n    \"spec\": {\n        \"containers\": []\n    }\n}\n"
        );
    }
}
