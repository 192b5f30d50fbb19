//! Label selectors as `-l` takes them (`app=web,tier!=db,env in (a,b),!legacy`): parsed
//! and checked before they reach the server, and matched locally as well.

use crate::error::CtlError;
use std::collections::BTreeMap;

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

/// One term of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// The relation a requirement checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Parses the `-l` syntax; the error names the offending term.
    pub fn parse(text: &str) -> Result<Selector, CtlError> {
        let mut requirements = Vec::new();
        for term in split_terms(text)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_term(term).map_err(|why| {
                CtlError::client(format!("unable to parse requirement {term:?} in selector {text:?}: {why}"))
            })?);
        }
        Ok(Selector { requirements })
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let got = labels.get(&r.key);
            match r.operator {
                Operator::Equals => got == r.values.first(),
                Operator::NotEquals => got != r.values.first(),
                Operator::In => got.is_some_and(|v| r.values.contains(v)),
                Operator::NotIn => got.is_none_or(|v| !r.values.contains(v)),
                Operator::Exists => got.is_some(),
                Operator::DoesNotExist => got.is_none(),
            }
        })
    }

    /// The canonical `labelSelector=` form.
    pub fn to_query(&self) -> String {
        self.requirements
            .iter()
            .map(|r| match r.operator {
                Operator::Equals => format!("{}={}", r.key, r.values[0]),
                Operator::NotEquals => format!("{}!={}", r.key, r.values[0]),
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Result<Vec<&str>, CtlError> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(CtlError::client(format!("unbalanced parentheses in selector {text:?}")));
        }
    }
    if depth != 0 {
        return Err(CtlError::client(format!("unbalanced parentheses in selector {text:?}")));
    }
    terms.push(&text[start..]);
    Ok(terms)
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    let req = |key: &str, operator, values: Vec<String>| -> Result<Requirement, String> {
        check_key(key)?;
        for v in &values {
            check_value(v)?;
        }
        Ok(Requirement { key: key.to_string(), operator, values })
    };
    if let Some(key) = term.strip_prefix('!') {
        return req(key.trim(), Operator::DoesNotExist, vec![]);
    }
    if let Some(open) = term.find('(') {
        let close = term.rfind(')').filter(|c| *c == term.len() - 1).ok_or("expected ')' at the end")?;
        let mut head = term[..open].split_whitespace();
        let (Some(key), Some(op), None) = (head.next(), head.next(), head.next()) else {
            return Err("expected KEY in|notin (VALUES)".into());
        };
        let operator = match op {
            "in" => Operator::In,
            "notin" => Operator::NotIn,
            other => return Err(format!("unknown operator {other:?}, expected in or notin")),
        };
        let values: Vec<String> = term[open + 1..close].split(',').map(|v| v.trim().to_string()).collect();
        if operator == Operator::In && values.iter().all(String::is_empty) {
            return Err("for 'in' operator, values set can't be empty".into());
        }
        return req(key, operator, values);
    }
    for (token, operator) in [("!=", Operator::NotEquals), ("==", Operator::Equals), ("=", Operator::Equals)] {
        if let Some((key, value)) = term.split_once(token) {
            return req(key.trim(), operator, vec![value.trim().to_string()]);
        }
    }
    req(term, Operator::Exists, vec![])
}

/// A label key: optional DNS prefix and `/`, then a name of up to 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let name = key.rsplit_once('/').map_or(key, |(prefix, name)| if prefix.is_empty() { "" } else { name });
    if name.is_empty()
        || name.len() > 63
        || !is_label_text(name)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(format!("invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if value.len() > 63 || !is_label_text(value) {
        return Err(format!("invalid label value: {value:?}: must be 63 characters or less and consist of alphanumeric characters, '-', '_' or '.'"));
    }
    Ok(())
}

fn is_label_text(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = Selector::parse("app=web, tier!=db,env in (prod, staging),zone notin (a),legacy,!canary,x==y").unwrap();
        let ops: Vec<Operator> = s.requirements.iter().map(|r| r.operator).collect();
        use Operator::*;
        assert_eq!(ops, [Equals, NotEquals, In, NotIn, Exists, DoesNotExist, Equals]);
        assert_eq!(s.requirements[2].values, ["prod", "staging"]);
        assert_eq!(s.to_query(), "app=web,tier!=db,env in (prod,staging),zone notin (a),legacy,!canary,x=y");
    }

    #[test]
    fn matches_labels() {
        let s = Selector::parse("app=web,env in (prod,staging),!canary").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("canary", "1")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        assert!(Selector::parse("tier!=db").unwrap().matches(&labels(&[])));
        assert!(Selector::parse("example.com/team").unwrap().matches(&labels(&[("example.com/team", "x")])));
    }

    #[test]
    fn rejects_malformed_terms_naming_them() {
        for bad in ["app=we b", "env in (a", "env within (a)", "=x", "a in ()", "-x=1"] {
            let err = Selector::parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("error: "), "{err}");
        }
        let err = Selector::parse("app=web,env in (a").unwrap_err().to_string();
        assert!(err.contains("selector \"app=web,env in (a\""), "{err}");
    }
}
