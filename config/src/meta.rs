//! `meta/v1`: object metadata, owner references, label selectors and the `Status` error shape.

use crate::label_selector::{Operator, Requirement};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every stored object's `metadata`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl ObjectMeta {
    /// The owner that manages this object (`controller: true`), if any.
    pub fn controller_ref(&self) -> Option<&OwnerReference> {
        self.owner_references.iter().find(|o| o.controller == Some(true))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

/// `metav1.LabelSelector`: `matchLabels` AND every `matchExpressions` requirement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Decodes one from JSON with the object model's decoder (`tracked`; the error names the
    /// field's path). Not generic, so the crates above share this one copy of the decoding
    /// code instead of each instantiating serde's for their own deserializer.
    #[inline(never)]
    pub fn from_json(value: serde_json::Value) -> Result<LabelSelector, crate::tracked::DecodeError> {
        crate::tracked::from_value(value)
    }

    /// True when `labels` satisfy the selector. An empty selector matches everything,
    /// as in Kubernetes; callers that must refuse empty selectors validate first. A
    /// selector with an unknown operator (which validation refuses) matches nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        // Borrowed, not through `requirements()`: controllers match every object on every
        // pass, and building requirements would clone each key and value every time.
        self.match_labels.iter().all(|(k, v)| Operator::Equals.holds(labels.get(k), std::slice::from_ref(v)))
            && self
                .match_expressions
                .iter()
                .all(|r| r.operator().is_some_and(|op| op.holds(labels.get(&r.key), &r.values)))
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// The selector as `label_selector` requirements: each `matchLabels` pair as `key=value`
    /// in key order, then each expression in order with its values as written. An
    /// expression with an operator other than In, NotIn, Exists and DoesNotExist is `Err`.
    pub fn requirements(&self) -> impl Iterator<Item = Result<Requirement, &LabelSelectorRequirement>> {
        let labels = self.match_labels.iter().map(|(key, value)| {
            Ok(Requirement { key: key.clone(), operator: Operator::Equals, values: vec![value.clone()] })
        });
        labels.chain(self.match_expressions.iter().map(|r| r.to_requirement().ok_or(r)))
    }

    /// The selector in the `labelSelector=` query form (`app=nginx,tier in (web)`):
    /// `matchLabels` in key order, then the expressions as written.
    pub fn to_query(&self) -> String {
        self.query_terms(false).into_iter().map(|(_, term)| term).collect::<Vec<_>>().join(",")
    }

    /// The selector as `labels.Selector.String()` writes it once converted (kubectl's
    /// form): terms sorted by key, each set's values sorted (`a in (x,y),!m,z=1`).
    pub fn to_sorted_query(&self) -> String {
        let mut terms = self.query_terms(true);
        terms.sort();
        terms.into_iter().map(|(_, term)| term).collect::<Vec<_>>().join(",")
    }

    /// Each requirement's key and text. An expression with an unknown operator reads as
    /// `!key`, as it always has (validation refuses such selectors).
    fn query_terms(&self, sort_values: bool) -> Vec<(String, String)> {
        let term = |r: Result<Requirement, &LabelSelectorRequirement>| match r {
            Ok(mut r) => {
                if sort_values {
                    r.values.sort();
                }
                let text = r.to_query();
                (r.key, text)
            }
            Err(r) => (r.key.clone(), format!("!{}", r.key)),
        };
        self.requirements().map(term).collect()
    }
}

impl LabelSelectorRequirement {
    /// The expression's operator; None when it is not In, NotIn, Exists or DoesNotExist.
    pub fn operator(&self) -> Option<Operator> {
        match self.operator.as_str() {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }

    /// This expression as a `label_selector` requirement, its values as written; None when
    /// the operator is not In, NotIn, Exists or DoesNotExist.
    pub fn to_requirement(&self) -> Option<Requirement> {
        let operator = self.operator()?;
        Some(Requirement { key: self.key.clone(), operator, values: self.values.clone() })
    }
}

/// `metav1.Status`: the body of every API error, and of a successful delete.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    #[serde(default)]
    pub code: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl Status {
    /// A failure `Status` as the API server writes it.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Status {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            code,
            ..Default::default()
        }
    }

    pub fn success() -> Status {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            status: "Success".into(),
            code: 200,
            ..Default::default()
        }
    }
}

/// `core/v1.ObjectReference`, as events and endpoints point at objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

/// The condition shape shared by pods, deployments, replica sets and autoscalers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_matches_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: vec!["front".into()],
            }],
        };
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
        assert!(!sel.matches(&labels(&[("app", "db"), ("tier", "front")])));
        assert_eq!(sel.to_query(), "app=web,tier in (front)");
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// matchLabels and one expression of each operator.
    fn every_operator() -> LabelSelector {
        LabelSelector {
            match_labels: labels(&[("tier", "front"), ("app", "web")]),
            match_expressions: vec![
                expression("env", "In", &["staging", "prod"]),
                expression("zone", "NotIn", &["a"]),
                expression("gpu", "Exists", &[]),
                expression("canary", "DoesNotExist", &[]),
            ],
        }
    }

    /// Label sets around `every_operator`: each requirement held and broken in turn.
    fn label_sets() -> Vec<BTreeMap<String, String>> {
        let base = [("app", "web"), ("tier", "front"), ("env", "prod"), ("gpu", "")];
        let mut sets = vec![labels(&base), labels(&[]), labels(&[("app", "web")])];
        for (key, value) in [
            ("app", Some("db")),
            ("app", None),
            ("tier", Some("back")),
            ("env", Some("staging")),
            ("env", Some("dev")),
            ("env", None),
            ("zone", Some("a")),
            ("zone", Some("b")),
            ("gpu", Some("1")),
            ("gpu", None),
            ("canary", Some("")),
        ] {
            let mut set = labels(&base);
            match value {
                Some(value) => set.insert(key.to_string(), value.to_string()),
                None => set.remove(key),
            };
            sets.push(set);
        }
        sets
    }

    #[test]
    fn every_operator_matches_as_in_kubernetes() {
        let sel = every_operator();
        let matched: Vec<bool> = label_sets().iter().map(|l| sel.matches(l)).collect();
        assert_eq!(
            matched,
            [true, false, false, false, false, false, true, false, false, false, true, true, false, false]
        );
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().matches(&labels(&[("any", "thing")])));
    }

    #[test]
    fn the_query_lists_match_labels_then_the_expressions_as_written() {
        assert_eq!(every_operator().to_query(), "app=web,tier=front,env in (staging,prod),zone notin (a),gpu,!canary");
        assert_eq!(LabelSelector::default().to_query(), "");
    }

    #[test]
    fn a_structured_selector_and_its_query_match_the_same_labels() {
        let sel = every_operator();
        let parsed = crate::label_selector::Selector::parse(&sel.to_query()).unwrap();
        for set in label_sets() {
            assert_eq!(sel.matches(&set), parsed.matches(&set), "{set:?}");
        }
    }

    #[test]
    fn the_query_round_trips_through_the_parser() {
        let mut sel = every_operator();
        sel.match_expressions[0].values.sort();
        let query = sel.to_query();
        assert_eq!(crate::label_selector::Selector::parse(&query).unwrap().to_query(), query);
    }

    #[test]
    fn an_unknown_operator_matches_nothing_and_reads_as_does_not_exist() {
        // Validation refuses such a selector; unvalidated, it selects nothing.
        let sel = LabelSelector { match_expressions: vec![expression("gpu", "Near", &["x"])], ..Default::default() };
        assert!(!sel.matches(&labels(&[])));
        assert!(!sel.matches(&labels(&[("gpu", "x")])));
        assert_eq!(sel.to_query(), "!gpu");
    }

    // The ctl prints selectors (`get -o wide`, `describe`) and lists by them in this form.
    #[test]
    fn the_sorted_query_sorts_terms_and_values() {
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"z": "1"},
            "matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}, {"key": "m", "operator": "DoesNotExist"}]}))
        .unwrap();
        assert_eq!(sel.to_sorted_query(), "a in (x,y),!m,z=1");
    }

    #[test]
    fn the_sorted_query_keeps_repeated_values_and_orders_one_keys_terms_by_text() {
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"b": "1", "a": "2"},
            "matchExpressions": [{"key": "b", "operator": "Exists"}, {"key": "c", "operator": "NotIn", "values": ["z", "y", "z"]},
            {"key": "a", "operator": "Near", "values": ["q"]}]}))
        .unwrap();
        // Terms of one key in text order; values sorted, repeats kept; an unknown operator as `!key`.
        assert_eq!(sel.to_sorted_query(), "!a,a=2,b,b=1,c notin (y,z,z)");
        assert_eq!(LabelSelector::default().to_sorted_query(), "");
    }

    #[test]
    fn the_sorted_query_parses_back_to_itself() {
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"z": "1", "app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zone", "operator": "NotIn", "values": ["b", "a"]}, {"key": "gpu", "operator": "Exists"},
            {"key": "m", "operator": "DoesNotExist"}]}))
        .unwrap();
        let printed = sel.to_sorted_query();
        assert_eq!(printed, "app=web,env in (dev,prod),gpu,!m,z=1,zone notin (a,b)");
        let parsed = crate::label_selector::Selector::parse(&printed).unwrap();
        assert_eq!(parsed.to_query(), printed);
        for set in [
            labels(&[("app", "web"), ("z", "1"), ("env", "dev"), ("gpu", "")]),
            labels(&[("app", "web"), ("z", "1"), ("env", "dev"), ("gpu", ""), ("zone", "a")]),
            labels(&[("app", "web"), ("z", "1"), ("env", "qa"), ("gpu", "")]),
            labels(&[("app", "web"), ("z", "1"), ("env", "prod"), ("gpu", ""), ("m", "x")]),
        ] {
            assert_eq!(sel.matches(&set), parsed.matches(&set), "{set:?}");
        }
    }
}
