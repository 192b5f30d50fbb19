//! The parts of a pod's describe text about ConfigMaps and Secrets, as kubectl prints them:
//! `<set to the key 'k' of config map 'c'>`, `Environment Variables from:`, and the
//! ConfigMap, Secret and Projected volume blocks.

use super::Describer;
use coracle_config::core::{Container, EnvVarSource, Volume};

fn optional(o: Option<bool>) -> bool {
    o == Some(true)
}

/// An env value taken from a ConfigMap or Secret key (tab-separated `Optional:` column).
pub fn key_ref(from: &EnvVarSource) -> String {
    if let Some(k) = &from.secret_key_ref {
        format!("<set to the key '{}' in secret '{}'>\tOptional: {}", k.key, k.name, optional(k.optional))
    } else if let Some(k) = &from.config_map_key_ref {
        format!("<set to the key '{}' of config map '{}'>\tOptional: {}", k.key, k.name, optional(k.optional))
    } else {
        String::new()
    }
}

/// `Environment Variables from:`, only for a container that has envFrom.
pub fn env_from(d: &mut Describer, c: &Container) {
    if c.env_from.is_empty() {
        return;
    }
    d.line(2, "Environment Variables from:");
    for e in &c.env_from {
        let (from, named) = match (&e.config_map_ref, &e.secret_ref) {
            (Some(n), _) => ("ConfigMap", n),
            (None, Some(n)) => ("Secret", n),
            (None, None) => continue,
        };
        let prefix = e.prefix.as_deref().unwrap_or("");
        let what = if prefix.is_empty() { from.to_string() } else { format!("{from} with prefix '{prefix}'") };
        d.line(3, &format!("{}\t{what}\tOptional: {}", named.name, optional(named.optional)));
    }
}

/// Go's `%v` of a `*bool`: `<nil>` or the value.
fn pointer(o: Option<bool>) -> String {
    o.map_or_else(|| "<nil>".into(), |b| b.to_string())
}

/// A configMap, secret or projected volume's block.
pub fn config_volume(d: &mut Describer, v: &Volume) {
    if let Some(cm) = &v.config_map {
        d.field(2, "Type", "ConfigMap (a volume populated by a ConfigMap)");
        d.field(2, "Name", &cm.name);
        d.field(2, "Optional", optional(cm.optional));
    } else if let Some(s) = &v.secret {
        d.field(2, "Type", "Secret (a volume populated by a Secret)");
        d.field(2, "SecretName", s.secret_name.as_deref().unwrap_or(""));
        d.field(2, "Optional", optional(s.optional));
    } else if let Some(p) = &v.projected {
        d.field(2, "Type", "Projected (a volume that contains injected data from multiple sources)");
        for source in &p.sources {
            if let Some(s) = &source.secret {
                d.field(2, "SecretName", &s.name);
                d.field(2, "SecretOptionalName", pointer(s.optional));
            } else if let Some(cm) = &source.config_map {
                d.field(2, "ConfigMapName", &cm.name);
                d.field(2, "ConfigMapOptional", pointer(cm.optional));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{EnvFromSource, KeySelector, NamedSource};

    #[test]
    fn key_refs_and_env_from_read_as_kubectl() {
        let from = EnvVarSource {
            config_map_key_ref: Some(KeySelector { name: "cfg".into(), key: "level".into(), optional: None }),
            ..Default::default()
        };
        assert_eq!(key_ref(&from), "<set to the key 'level' of config map 'cfg'>\tOptional: false");
        let mut d = Describer::default();
        let c = Container {
            env_from: vec![EnvFromSource {
                prefix: Some("DB_".into()),
                secret_ref: Some(NamedSource { name: "db".into(), optional: Some(true) }),
                config_map_ref: None,
            }],
            ..Default::default()
        };
        env_from(&mut d, &c);
        assert_eq!(d.finish(), "    Environment Variables from:\n      db  Secret with prefix 'DB_'  Optional: true\n");
    }
}
