//! Environment from ConfigMaps and Secrets, read from the store when a container starts
//! (later changes reach only the next start, as in Kubernetes). A missing object or key
//! that is not `optional` fails the start with the kubelet's own message
//! (`configmap "x" not found`), shown as `CreateContainerConfigError`; the worker retries,
//! so the container starts by itself once the object exists.

use super::container_spec::SpecError;
use coracle_config::core::{ConfigMap, Container, EnvFromSource, KeySelector, Pod, Secret};
use coracle_config::validation::names;
use coracle_store::Store;

fn config_error(message: String) -> SpecError {
    SpecError { reason: "CreateContainerConfigError", message }
}

/// A ConfigMap's or Secret's entries as text (kubelet converts bytes as Go's `string()`).
fn entries_of(store: &Store, kind: Kind, namespace: &str, name: &str) -> Option<Vec<(String, String)>> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match kind {
        Kind::ConfigMap => store
            .get_as::<ConfigMap>(namespace, name)
            .map(|cm| cm.entries().map(|(k, v)| (k.to_string(), text(v))).collect()),
        Kind::Secret => store
            .get_as::<Secret>(namespace, name)
            .map(|s| s.data.iter().map(|(k, v)| (k.clone(), text(&v.0))).collect()),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    /// As the kubelet's messages name it: `configmap "x" not found`.
    fn lower(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }
}

/// The value of `env[].valueFrom.configMapKeyRef` or `secretKeyRef`; None when the object
/// or key is missing and `optional` (the variable is then not set).
pub fn key_ref(store: &Store, pod: &Pod, secret: bool, selector: &KeySelector) -> Result<Option<String>, SpecError> {
    let kind = if secret { Kind::Secret } else { Kind::ConfigMap };
    let optional = selector.optional == Some(true);
    let namespace = &pod.metadata.namespace;
    let Some(entries) = entries_of(store, kind, namespace, &selector.name) else {
        return if optional {
            Ok(None)
        } else {
            Err(config_error(format!("{} {:?} not found", kind.lower(), selector.name)))
        };
    };
    match entries.into_iter().find(|(k, _)| *k == selector.key) {
        Some((_, v)) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(config_error(format!(
            "couldn't find key {} in {} {namespace}/{}",
            selector.key,
            kind.title(),
            selector.name
        ))),
    }
}

/// What `envFrom` gives a container: the variables in order, and the kubelet's warning for
/// each source whose keys were skipped as invalid variable names.
#[derive(Debug, Default, PartialEq)]
pub struct FromSources {
    pub vars: Vec<(String, String)>,
    pub skipped: Vec<String>,
}

/// Every key of each `envFrom` source, prefixed; a missing source fails the start unless
/// `optional`.
pub fn env_from(store: &Store, pod: &Pod, container: &Container) -> Result<FromSources, SpecError> {
    let mut out = FromSources::default();
    for source in &container.env_from {
        one_source(store, pod, source, &mut out)?;
    }
    Ok(out)
}

fn one_source(store: &Store, pod: &Pod, source: &EnvFromSource, out: &mut FromSources) -> Result<(), SpecError> {
    let (kind, named) = match (&source.config_map_ref, &source.secret_ref) {
        (Some(cm), _) => (Kind::ConfigMap, cm),
        (None, Some(s)) => (Kind::Secret, s),
        (None, None) => return Ok(()),
    };
    let namespace = &pod.metadata.namespace;
    let Some(entries) = entries_of(store, kind, namespace, &named.name) else {
        if named.optional == Some(true) {
            return Ok(());
        }
        return Err(config_error(format!("{} {:?} not found", kind.lower(), named.name)));
    };
    let prefix = source.prefix.as_deref().unwrap_or("");
    let mut invalid = Vec::new();
    for (key, value) in entries {
        let name = format!("{prefix}{key}");
        if names::env_var_name(&name).is_empty() {
            out.vars.push((name, value));
        } else {
            invalid.push(name);
        }
    }
    if !invalid.is_empty() {
        out.skipped.push(format!(
            "Keys [{}] from the EnvFrom {} {namespace}/{} were skipped since they are considered invalid environment variable names.",
            invalid.join(", "),
            kind.lower(),
            named.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::base64::Base64Bytes;
    use coracle_config::core::NamedSource;
    use coracle_config::Object;

    fn store_with_config(dir: &std::path::Path) -> Store {
        let store = Store::open(dir).unwrap();
        let mut cm = ConfigMap::default();
        cm.metadata.name = "cfg".into();
        cm.metadata.namespace = "prod".into();
        cm.data.insert("LEVEL".into(), "debug".into());
        cm.data.insert("1bad".into(), "x".into());
        store.create(Object::ConfigMap(cm)).unwrap();
        let mut s = Secret::default();
        s.metadata.name = "db".into();
        s.metadata.namespace = "prod".into();
        s.data.insert("password".into(), Base64Bytes(b"pw".to_vec()));
        store.create(Object::Secret(s)).unwrap();
        store
    }

    fn pod() -> Pod {
        let mut pod = Pod::default();
        pod.metadata.namespace = "prod".into();
        pod
    }

    fn selector(name: &str, key: &str, optional: Option<bool>) -> KeySelector {
        KeySelector { name: name.into(), key: key.into(), optional }
    }

    #[test]
    fn key_refs_read_values_and_word_misses_as_the_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_config(dir.path());
        let pod = pod();
        assert_eq!(key_ref(&store, &pod, false, &selector("cfg", "LEVEL", None)).unwrap().as_deref(), Some("debug"));
        assert_eq!(key_ref(&store, &pod, true, &selector("db", "password", None)).unwrap().as_deref(), Some("pw"));
        let e = key_ref(&store, &pod, false, &selector("nope", "k", None)).unwrap_err();
        assert_eq!((e.reason, e.message.as_str()), ("CreateContainerConfigError", "configmap \"nope\" not found"));
        let e = key_ref(&store, &pod, true, &selector("db", "user", None)).unwrap_err();
        assert_eq!(e.message, "couldn't find key user in Secret prod/db");
        assert_eq!(key_ref(&store, &pod, true, &selector("nope", "k", Some(true))).unwrap(), None);
        assert_eq!(key_ref(&store, &pod, false, &selector("cfg", "k", Some(true))).unwrap(), None);
    }

    #[test]
    fn env_from_prefixes_keys_and_skips_invalid_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_config(dir.path());
        let mut c = Container::default();
        let named = |name: &str, optional| Some(NamedSource { name: name.into(), optional });
        c.env_from.push(EnvFromSource { prefix: None, config_map_ref: named("cfg", None), secret_ref: None });
        c.env_from.push(EnvFromSource {
            prefix: Some("DB_".into()),
            config_map_ref: None,
            secret_ref: named("db", None),
        });
        c.env_from.push(EnvFromSource { prefix: None, config_map_ref: named("absent", Some(true)), secret_ref: None });
        let got = env_from(&store, &pod(), &c).unwrap();
        assert_eq!(got.vars, [("LEVEL".to_string(), "debug".to_string()), ("DB_password".into(), "pw".into())]);
        assert_eq!(
            got.skipped,
            ["Keys [1bad] from the EnvFrom configmap prod/cfg were skipped since they are considered invalid environment variable names."]
        );
        c.env_from.push(EnvFromSource { prefix: None, config_map_ref: None, secret_ref: named("absent", None) });
        assert_eq!(env_from(&store, &pod(), &c).unwrap_err().message, "secret \"absent\" not found");
    }
}
