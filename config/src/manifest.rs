//! Manifest parsing: JSON or YAML text (multi-document, `kind: List`) into typed objects.
//! Fields the types lack are dropped and reported, told apart as the Kubernetes API would
//! see them: no field of Kubernetes' at all (`unknown field "spec.replica"`), or one of
//! Kubernetes' that Coracle does not implement (`spec.affinity`). What becomes of each is
//! the caller's choice (`fieldValidation`).

use crate::apps::{Deployment, ReplicaSet};
use crate::autoscaling::{HorizontalPodAutoscaler, HorizontalPodAutoscalerV1};
use crate::core::{ConfigMap, Endpoints, Event, Namespace, Pod, Secret, Service, ServiceAccount};
use crate::k8s_fields;
use crate::object::{Object, ALL};
use crate::tracked::Unknown;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// One decoded object and what its decoding dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub object: Object,
    /// Fields that are no field of the kind in Kubernetes either, in the API server's
    /// words: `unknown field "spec.replica"`.
    pub warnings: Vec<String>,
    /// Paths of fields of Kubernetes' API that Coracle does not implement
    /// (`spec.affinity`, `spec.volumes[0].configMap`).
    pub unsupported: Vec<String>,
}

/// What becomes of an unsupported field, in Kubernetes' field-error words.
pub const NOT_SUPPORTED: &str = "not supported by Coracle";

/// Why a manifest could not be decoded. The message names the document and the field.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestError {
    pub message: String,
}

impl ManifestError {
    fn new(message: impl Into<String>) -> ManifestError {
        ManifestError { message: message.into() }
    }

    /// The same error with `prefix: ` in front, naming where it happened.
    pub fn within(self, prefix: &str) -> ManifestError {
        ManifestError { message: format!("{prefix}: {}", self.message) }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

/// Parses every object in `text` (JSON, YAML, multi-document YAML, `kind: List`).
/// Empty documents are skipped, so empty text gives no objects.
pub fn parse_documents(text: &str) -> Result<Vec<Parsed>, ManifestError> {
    split_objects(text)?
        .into_iter()
        .map(|(where_, value)| decode_object(value).map_err(|e| e.within(&where_)))
        .collect()
}

/// The objects of `text` as JSON values, as written, each with where it is
/// (`document 2`, `document 1: items[3]`): what a client sends to the server as is.
pub fn split_objects(text: &str) -> Result<Vec<(String, Value)>, ManifestError> {
    let mut out = Vec::new();
    for (i, doc) in split_documents(text)?.into_iter().enumerate() {
        let where_ = format!("document {}", i + 1);
        match list_items(&doc) {
            Some(items) => {
                for (j, item) in items.iter().enumerate() {
                    out.push((format!("{where_}: items[{j}]"), item.clone()));
                }
            }
            None => out.push((where_, doc)),
        }
    }
    Ok(out)
}

/// The documents of a JSON stream or a YAML file, as JSON values; null (empty) ones dropped.
fn split_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut docs = Vec::new();
    // kubectl sniffs the same way: a leading brace means JSON, anything else YAML.
    if text.trim_start().starts_with('{') {
        for (i, doc) in serde_json::Deserializer::from_str(text).into_iter::<Value>().enumerate() {
            let doc = doc.map_err(|e| ManifestError::new(format!("document {}: {e}", i + 1)))?;
            docs.push(doc);
        }
    } else {
        for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let doc = Value::deserialize(de).map_err(|e| ManifestError::new(format!("document {}: {e}", i + 1)))?;
            if !doc.is_null() {
                docs.push(doc);
            }
        }
    }
    Ok(docs)
}

/// The `items` of a `kind: List` (or `PodList`, `DeploymentList`, …) document.
fn list_items(doc: &Value) -> Option<&Vec<Value>> {
    let kind = doc.get("kind")?.as_str()?;
    let is_list = kind == "List" || ALL.iter().any(|info| info.list_kind == kind);
    if !is_list {
        return None;
    }
    doc.get("items")?.as_array()
}

/// Decodes one object from a JSON value, as the API receives it in a request body.
pub fn decode_object(value: Value) -> Result<Parsed, ManifestError> {
    let Value::Object(map) = &value else {
        return Err(ManifestError::new(format!(
            "expected an object with apiVersion and kind, got {}",
            describe(&value)
        )));
    };
    let type_field = |name: &str| -> Result<String, ManifestError> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => {
                Err(ManifestError::new(format!("{name}: invalid type: {}, expected a string", describe(other))))
            }
        }
    };
    let api_version = type_field("apiVersion")?;
    let kind = type_field("kind")?;
    if kind.is_empty() {
        return Err(ManifestError::new(format!("Object 'Kind' is missing in '{}'", snippet(&value))));
    }
    if api_version.is_empty() {
        return Err(ManifestError::new(format!("Object 'apiVersion' is missing in '{}'", snippet(&value))));
    }
    let (object, dropped) = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Pod") => typed::<Pod>(value)?,
        ("v1", "Service") => typed::<Service>(value)?,
        ("v1", "Endpoints") => typed::<Endpoints>(value)?,
        ("v1", "Event") => typed::<Event>(value)?,
        ("v1", "Namespace") => typed::<Namespace>(value)?,
        ("v1", "ConfigMap") => typed::<ConfigMap>(value)?,
        ("v1", "Secret") => typed::<Secret>(value)?,
        ("v1", "ServiceAccount") => typed::<ServiceAccount>(value)?,
        ("apps/v1", "Deployment") => typed::<Deployment>(value)?,
        ("apps/v1", "ReplicaSet") => typed::<ReplicaSet>(value)?,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => typed::<HorizontalPodAutoscaler>(value)?,
        ("autoscaling/v1", "HorizontalPodAutoscaler") => {
            let (v1, dropped) = decode_tracked::<HorizontalPodAutoscalerV1>(value)?;
            (Object::HorizontalPodAutoscaler(v1.to_v2()), dropped)
        }
        _ => return Err(ManifestError::new(format!("no kind {kind:?} is registered for version {api_version:?}"))),
    };
    let mut object = object;
    object.set_type_meta();
    let (unsupported, unknown): (Vec<Unknown>, Vec<Unknown>) = dropped
        .into_iter()
        .partition(|u| u.within.is_some_and(|within| k8s_fields::is_kubernetes_field(within, &u.field)));
    Ok(Parsed {
        object,
        warnings: unknown.iter().map(|u| format!("unknown field {:?}", u.path)).collect(),
        unsupported: unsupported.into_iter().map(|u| u.path).collect(),
    })
}

fn typed<T>(value: Value) -> Result<(Object, Vec<Unknown>), ManifestError>
where
    T: DeserializeOwned + Into<Object>,
{
    decode_tracked::<T>(value).map(|(t, dropped)| (t.into(), dropped))
}

/// Decodes `T`, collecting the fields `T` does not know and naming the field path of a
/// type error.
fn decode_tracked<T: DeserializeOwned>(value: Value) -> Result<(T, Vec<Unknown>), ManifestError> {
    crate::tracked::decode::<T>(value).map_err(|e| ManifestError::new(e.to_string()))
}

/// Names a JSON value's type the way serde's `invalid type` messages do.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a sequence".into(),
        Value::Object(_) => "a map".into(),
    }
}

/// The start of a document, enough for a user to recognise it in an error.
fn snippet(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_documents(text).expect_err(text).message
    }

    #[test]
    fn yaml_streams_and_lists_expand_to_objects() {
        let text = "---\n# leading empty document\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n\
                    - {apiVersion: v1, kind: Pod, metadata: {name: c}}\n---\n";
        let parsed = parse_documents(text).unwrap();
        let names: Vec<_> = parsed.iter().map(|p| p.object.metadata().name.clone()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(parse_documents("").unwrap(), vec![]);
    }

    #[test]
    fn json_streams_decode() {
        let text = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}
                      {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}"#;
        assert_eq!(parse_documents(text).unwrap().len(), 2);
        let e = err(r#"{"apiVersion":"v1","kind":"Namespace","#);
        assert!(e.starts_with("document 1: EOF while parsing"), "{e}");
    }

    #[test]
    fn unknown_fields_become_warnings_with_full_paths() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  replica: 3\n  template:\n    \
                    spec:\n      containers:\n      - {name: c, image: i, imagee: x}\n";
        let parsed = parse_documents(text).unwrap();
        assert_eq!(
            parsed[0].warnings,
            ["unknown field \"spec.replica\"", "unknown field \"spec.template.spec.containers[0].imagee\""]
        );
        // Dropped from the stored object.
        let json = parsed[0].object.to_json();
        assert!(json["spec"].get("replica").is_none());
    }

    #[test]
    fn kubernetes_fields_coracle_lacks_are_told_from_unknown_ones() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  affinity: {}\n  affinty: {}\n  \
                    containers:\n  - {name: c, image: i, resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]}\n  \
                    volumes:\n  - {name: v, nfs: {server: s, path: /}}\n";
        let parsed = parse_documents(text).unwrap();
        assert_eq!(parsed[0].warnings, ["unknown field \"spec.affinty\""]);
        assert_eq!(parsed[0].unsupported, ["spec.affinity", "spec.containers[0].resizePolicy", "spec.volumes[0].nfs"]);
    }

    #[test]
    fn explicit_null_means_absent() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w, annotations: null, labels: null}\n\
                    spec:\n  replicas: null\n  selector: {matchLabels: {app: w}}\n  template:\n    \
                    metadata: {labels: {app: w}, annotations: null}\n    spec:\n      volumes: null\n      \
                    containers:\n      - name: c\n        image: i\n        resources: null\n        \
                    args: null\n        env: null\n        ports: null\n        command: null\n        \
                    securityContext: null\n        imagePullPolicy: null\n";
        let parsed = parse_documents(text).unwrap();
        assert!(parsed[0].warnings.is_empty() && parsed[0].unsupported.is_empty(), "{parsed:?}");
        let same = parse_documents(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  selector: {matchLabels: {app: w}}\n  \
             template:\n    metadata: {labels: {app: w}}\n    spec:\n      containers:\n      - {name: c, image: i}\n",
        )
        .unwrap();
        assert_eq!(parsed[0].object, same[0].object);
        // A null where an object is wanted at the top is still no object.
        assert!(err("null\n---\n[null]\n").contains("expected an object"));
    }

    #[test]
    fn type_errors_name_document_and_field() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\n\
                    metadata: {name: w}\nspec:\n  replicas: three\n";
        assert_eq!(err(text), "document 2: spec.replicas: invalid type: string \"three\", expected i32");
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    \
                    resources: {limits: {cpu: 12kk}}\n";
        assert_eq!(
            err(text),
            "document 1: spec.containers[0].resources.limits.cpu: invalid quantity \"12kk\": unable to parse quantity's suffix"
        );
    }

    #[test]
    fn unknown_or_missing_kinds_are_named() {
        assert_eq!(
            err("apiVersion: apps/v1\nkind: Deploymnet\n"),
            "document 1: no kind \"Deploymnet\" is registered for version \"apps/v1\""
        );
        assert_eq!(
            err("apiVersion: v1\nkind: Deployment\n"),
            "document 1: no kind \"Deployment\" is registered for version \"v1\""
        );
        assert!(err("apiVersion: v1\nmetadata: {name: x}\n").starts_with("document 1: Object 'Kind' is missing in '"));
        assert!(err("kind: Pod\n").starts_with("document 1: Object 'apiVersion' is missing in '"));
        assert_eq!(
            err("just text"),
            "document 1: expected an object with apiVersion and kind, got string \"just text\""
        );
        assert_eq!(err("kind: 3\napiVersion: v1"), "document 1: kind: invalid type: number `3`, expected a string");
        assert_eq!(
            err("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Nope}\n"),
            "document 1: items[0]: no kind \"Nope\" is registered for version \"v1\""
        );
    }

    /// The fastest of a few parses of `text`: a busy machine's pauses only ever add time.
    /// The CPU time this thread spent parsing `text`, the least of five runs. CPU time, not
    /// wall time: a loaded machine preempts the thread but does not bill it for the wait.
    fn parse_cost(text: &str) -> std::time::Duration {
        (0..5)
            .map(|_| {
                let start = thread_cpu_time();
                let _ = parse_documents(text);
                thread_cpu_time().saturating_sub(start)
            })
            .min()
            .expect("five runs")
    }

    fn thread_cpu_time() -> std::time::Duration {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes one timespec, which `t` is; the clock id is valid.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    /// Nested flow collections cost time in proportion to their size (libyaml's scanner was
    /// quadratic in the nesting, vendor/unsafe-libyaml/CORACLE.md), in YAML and in JSON.
    /// 32 times the input may cost at most 256 times the time: linear is 32 (measured 40 to
    /// 100, as a bigger tree misses the caches more often), quadratic 1024 (the unpatched
    /// parser: 1500). JSON stops at serde_json's depth limit, whatever follows.
    #[test]
    fn nested_documents_cost_linear_time() {
        // A YAML document starting with '{' would be taken for JSON, hence `x: `.
        for (prefix, open, close) in
            [("x: ", "{a: ", "}"), ("", "[", "]"), ("x: ", "{a: [", "]}"), ("", "{\"a\":", "}")]
        {
            let doc = |n: usize| format!("{prefix}{}1{}", open.repeat(n), close.repeat(n));
            let (small, large) = (parse_cost(&doc(1_000)), parse_cost(&doc(32_000)));
            let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
            assert!(ratio < 256.0, "{open:?}: 32x the nesting took {ratio:.0}x the time ({small:?}, {large:?})");
        }
    }

    #[test]
    fn deep_nesting_is_refused_by_name() {
        let deep = |open: &str, close: &str| format!("{}1{}", open.repeat(200), close.repeat(200));
        for text in [deep("[", "]"), format!("x: {}", deep("{a: ", "}")), deep("{\"a\":", "}")] {
            let e = err(&text);
            assert!(e.starts_with("document 1: recursion limit exceeded at line 1 column "), "{e}");
        }
        let block: String = (0..200).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert!(err(&block).starts_with("document 1: recursion limit exceeded at line 129"), "{}", err(&block));
        // Nesting within the limit (127 levels here) is still a document.
        let ok = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: n, annotations: {{a: \"{}\"}}}}\nx: {}1{}\n",
            "[".repeat(10),
            "[".repeat(126),
            "]".repeat(126)
        );
        assert_eq!(parse_documents(&ok).unwrap()[0].warnings, ["unknown field \"x\""]);
    }

    #[test]
    fn autoscaler_v1_decodes_to_the_stored_v2() {
        let text = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  \
                    scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 5\n  \
                    targetCPUUtilizationPercentage: 50\n";
        let parsed = parse_documents(text).unwrap();
        let Object::HorizontalPodAutoscaler(h) = &parsed[0].object else { panic!("not an HPA") };
        assert_eq!(h.api_version, "autoscaling/v2");
        assert_eq!(h.cpu_target_utilization(), Some(50));
        assert!(parsed[0].warnings.is_empty());
    }
}
