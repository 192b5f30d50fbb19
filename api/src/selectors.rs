//! `labelSelector` and `fieldSelector` query parameters: parsing, and matching objects.
//! Label selectors are the shared `coracle_config::label_selector`; field selectors,
//! whose fields depend on the kind served, are parsed here.

use coracle_config::label_selector;
use coracle_config::object::Object;

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
    pub labels: label_selector::Selector,
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

    #[test]
    fn selectors_need_both_labels_and_fields() {
        let mut pod = Pod::default();
        pod.metadata.name = "web".into();
        pod.metadata.labels.insert("app".into(), "web".into());
        let pod = Object::Pod(pod);
        let selectors = |labels: &str, fields: &str| Selectors {
            labels: label_selector::Selector::parse(labels).unwrap(),
            fields: FieldQuery::parse(fields, "Pod").unwrap(),
        };
        assert!(selectors("app=web", "metadata.name=web").matches(&pod));
        assert!(!selectors("app=db", "metadata.name=web").matches(&pod));
        assert!(!selectors("app=web", "metadata.name=db").matches(&pod));
        assert!(Selectors::default().matches(&pod));
    }
}
