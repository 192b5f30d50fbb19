//! The one object a verb acts on, named `TYPE/NAME` or `TYPE NAME` as kubectl accepts.

use super::resolve_type;
use crate::error::CtlError;
use coracle_config::ResourceInfo;

/// A resolved `TYPE/NAME`.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub info: &'static ResourceInfo,
    pub name: String,
}

/// Parses `["deploy/web"]` or `["deployment", "web"]`; `kinds` lists the kinds the verb
/// supports, anything else is kubectl's "cannot …" error for `verb`.
pub fn parse_target(args: &[String], kinds: &[&str], verb: &str) -> Result<Target, CtlError> {
    let (type_, name) = match args {
        [one] => one.split_once('/').ok_or_else(|| {
            CtlError::client(format!(
                "you must specify the resource as TYPE/NAME or TYPE NAME (e.g. deployment/{one}), got {one:?}"
            ))
        })?,
        [type_, name] if !name.contains('/') => (type_.as_str(), name.as_str()),
        [_, name] => {
            return Err(CtlError::client(format!(
                "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form: {name:?}"
            )))
        }
        _ => return Err(CtlError::client(format!("{verb} takes exactly one resource, got {}", args.len()))),
    };
    if type_.is_empty() || name.is_empty() {
        return Err(CtlError::client(format!("resource name may not be empty: {:?}", args.join(" "))));
    }
    let info = resolve_type(type_)?;
    if !kinds.contains(&info.kind) {
        return Err(CtlError::client(format!(
            "cannot {verb} a {}: only {} are supported",
            info.kind,
            kinds.join(", ")
        )));
    }
    Ok(Target { info, name: name.to_string() })
}

/// Parses `key=value,key=value` (labels and selectors given as flags).
pub fn parse_labels(text: &str, flag: &str) -> Result<std::collections::BTreeMap<String, String>, CtlError> {
    let mut out = std::collections::BTreeMap::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| CtlError::client(format!("invalid {flag} {pair:?}: expected key=value")))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_kubectl_forms_resolve() {
        let kinds = ["Deployment", "ReplicaSet"];
        let t = parse_target(&args(&["deploy/web"]), &kinds, "scale").unwrap();
        assert_eq!((t.info.kind, t.name.as_str()), ("Deployment", "web"));
        let t = parse_target(&args(&["rs", "web-1"]), &kinds, "scale").unwrap();
        assert_eq!((t.info.kind, t.name.as_str()), ("ReplicaSet", "web-1"));
        let err = parse_target(&args(&["svc/web"]), &kinds, "scale").unwrap_err();
        assert_eq!(err.to_string(), "error: cannot scale a Service: only Deployment, ReplicaSet are supported");
        assert!(parse_target(&args(&["web"]), &kinds, "scale").is_err());
        assert!(parse_target(&args(&["deploy", "x/y"]), &kinds, "scale").is_err());
        assert!(parse_target(&args(&["deploy/"]), &kinds, "scale").is_err());
    }

    #[test]
    fn label_flags_parse() {
        let l = parse_labels("app=web,tier=front", "--labels").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l["tier"], "front");
        assert!(parse_labels("app", "--labels").unwrap_err().to_string().contains("--labels \"app\""));
    }
}
