//! `labelSelector` and `fieldSelector` query parameters: parsing, and matching objects.

use coracle_config::object::Object;
use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelRequirement::Equals(k, v) => labels.get(k) == Some(v),
            // As in Kubernetes, `!=` and `notin` also match objects without the label.
            LabelRequirement::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelRequirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelRequirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            LabelRequirement::Exists(k) => labels.contains_key(k),
            LabelRequirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelQuery(pub Vec<LabelRequirement>);

impl LabelQuery {
    /// Parses `app=web,tier in (a,b),!canary,env!=prod`.
    pub fn parse(text: &str) -> Result<LabelQuery, String> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements
                .push(parse_label_term(term).map_err(|e| format!("unable to parse requirement {term:?}: {e}"))?);
        }
        Ok(LabelQuery(requirements))
    }

    /// True when the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelRequirement::DoesNotExist(label_key(key)?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(label_key(k)?, label_value(v)?));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(LabelRequirement::Equals(label_key(k)?, label_value(v)?));
    }
    for (word, is_in) in [(" notin ", false), (" in ", true)] {
        if let Some((k, rest)) = term.split_once(word) {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| "set values must be in parentheses".to_string())?;
            let values = inner.split(',').map(label_value).collect::<Result<Vec<_>, _>>()?;
            let key = label_key(k)?;
            return Ok(if is_in { LabelRequirement::In(key, values) } else { LabelRequirement::NotIn(key, values) });
        }
    }
    Ok(LabelRequirement::Exists(label_key(term)?))
}

fn label_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn label_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Ok(value.to_string())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A parsed `fieldSelector`: every term must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldQuery(pub Vec<FieldRequirement>);

/// Fields every kind can be selected by.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The extra fields Kubernetes indexes per kind.
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Pod" => &["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase", "status.podIP"],
        "ReplicaSet" => &["status.replicas"],
        "Namespace" => &["status.phase"],
        _ => &[],
    }
}

impl FieldQuery {
    /// Parses `metadata.name=web,status.phase!=Running` for objects of `kind`; a field the
    /// kind cannot be selected by is an error, as in Kubernetes.
    pub fn parse(text: &str, kind: &str) -> Result<FieldQuery, String> {
        let mut requirements = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, v, false)
            } else {
                return Err(format!("invalid selector: {term:?}; can't understand it"));
            };
            let field = field.trim();
            if !COMMON_FIELDS.contains(&field) && !kind_fields(kind).contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            requirements.push(FieldRequirement { field: field.into(), value: value.trim().into(), negated });
        }
        Ok(FieldQuery(requirements))
    }

    /// True when the object's fields satisfy every term; an absent field reads as "".
    pub fn matches(&self, object: &Object) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let json = object.to_json();
        self.0.iter().all(|r| {
            let pointer = format!("/{}", r.field.replace('.', "/"));
            let actual = match json.pointer(&pointer) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == r.value) != r.negated
        })
    }
}

/// Both selectors of a list or watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selectors {
    pub labels: LabelQuery,
    pub fields: FieldQuery,
}

impl Selectors {
    /// True when the object passes both selectors.
    pub fn matches(&self, object: &Object) -> bool {
        self.labels.matches(&object.metadata().labels) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::Pod;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_parses_every_operator() {
        let q = LabelQuery::parse("app=web,tier==front,env!=prod,zone in (a, b),rack notin (r1),gpu,!canary").unwrap();
        assert_eq!(q.0.len(), 7);
        assert!(q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("gpu", "")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "c"), ("gpu", "")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("gpu", ""), ("canary", "1")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("gpu", ""), ("env", "prod")])));
        assert!(!q.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "b"), ("gpu", ""), ("rack", "r1")])));
    }

    #[test]
    fn negative_label_requirements_match_absent_labels() {
        let q = LabelQuery::parse("env!=prod,rack notin (r1)").unwrap();
        assert!(q.matches(&labels(&[])));
    }

    #[test]
    fn malformed_label_selectors_are_refused() {
        assert!(LabelQuery::parse("app in a,b").is_err());
        assert!(LabelQuery::parse("a b=c").is_err());
        assert!(LabelQuery::parse("").unwrap().0.is_empty());
    }

    #[test]
    fn field_selector_knows_per_kind_fields() {
        assert!(FieldQuery::parse("metadata.name=web", "Deployment").is_ok());
        assert!(FieldQuery::parse("status.phase=Running", "Pod").is_ok());
        assert!(FieldQuery::parse("involvedObject.uid=1,involvedObject.kind=Pod", "Event").is_ok());
        let err = FieldQuery::parse("status.phase=Running", "Deployment").unwrap_err();
        assert_eq!(err, "field label not supported: status.phase");
    }

    #[test]
    fn field_selector_matches_object_fields() {
        let mut pod = Pod::default();
        pod.metadata.name = "web".into();
        pod.metadata.namespace = "default".into();
        let pod = Object::Pod(pod);
        assert!(FieldQuery::parse("metadata.name=web,metadata.namespace=default", "Pod").unwrap().matches(&pod));
        assert!(!FieldQuery::parse("metadata.name!=web", "Pod").unwrap().matches(&pod));
        assert!(FieldQuery::parse("spec.nodeName=", "Pod").unwrap().matches(&pod));
    }
}
