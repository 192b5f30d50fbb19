//! `coracle apply -f`: client-side apply. For each object: GET; absent → POST it with the
//! `last-applied-configuration` annotation; present → three-way merge over the live object
//! and PUT (with the live `resourceVersion`, retried on conflict), or report `unchanged`.

use super::{report, Context};
use crate::cli::ManifestArgs;
use crate::error::CtlError;
use crate::input::{read_manifests, Manifest};
use crate::merge::three_way;
use crate::printers::name::resource_name;
use serde_json::Value;

/// kubectl's annotation holding the manifest as last applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How a dry run was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl DryRun {
    /// Parses `--dry-run`.
    pub fn parse(flag: &str) -> Result<DryRun, CtlError> {
        match flag {
            "none" | "" => Ok(DryRun::None),
            "client" => Ok(DryRun::Client),
            "server" => Ok(DryRun::Server),
            other => Err(CtlError::client(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            ))),
        }
    }

    /// The suffix kubectl puts after the outcome.
    pub fn suffix(&self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }

    /// The query of a write: `fieldValidation` as `--validate` asked, and `dryRun=All` for
    /// a server dry run (the server validates without persisting).
    pub fn query(&self, validation: Validation) -> String {
        let dry_run = if *self == DryRun::Server { "&dryRun=All" } else { "" };
        format!("?fieldValidation={}{dry_run}", validation.as_str())
    }
}

/// `--validate`: the `fieldValidation` kubectl sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    Strict,
    Warn,
    Ignore,
}

impl Validation {
    /// Parses `--validate` as kubectl does (`true` is strict, `false` ignore).
    pub fn parse(flag: &str) -> Result<Validation, CtlError> {
        match flag.to_ascii_lowercase().as_str() {
            "strict" | "true" => Ok(Validation::Strict),
            "warn" => Ok(Validation::Warn),
            "ignore" | "false" => Ok(Validation::Ignore),
            _ => Err(CtlError::client(format!(
                "invalid - validate option {flag:?}; must be one of: strict (or true), warn, ignore (or false)"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Validation::Strict => "Strict",
            Validation::Warn => "Warn",
            Validation::Ignore => "Ignore",
        }
    }
}

/// Runs `apply`.
pub fn run(ctx: &Context, args: &ManifestArgs) -> Result<(), CtlError> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    let validation = Validation::parse(&args.validate)?;
    if let Some(o) = args.output.as_deref().filter(|o| *o != "name") {
        return Err(CtlError::client(format!("unsupported output format {o:?} for apply; use -o name")));
    }
    let manifests = read_manifests(&args.filenames, "apply")?;
    let mut failed = false;
    for m in &manifests {
        match apply_one(ctx, m, dry_run, validation) {
            Ok(outcome) => {
                let name = resource_name(m.object.info(), &m.object.metadata().name);
                if args.output.is_some() {
                    outln!("{name}");
                } else {
                    outln!("{name} {outcome}{}", dry_run.suffix());
                }
            }
            Err(e) => report(&mut failed, e),
        }
    }
    if failed {
        Err(CtlError::Reported)
    } else {
        Ok(())
    }
}

/// The manifest as sent: namespace settled, server-owned fields dropped.
fn desired_value(ctx: &Context, m: &Manifest) -> Result<(Value, String), CtlError> {
    let namespace = ctx.namespace_for(&m.object)?;
    let mut desired = m.raw.clone();
    if let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        if !namespace.is_empty() {
            meta.insert("namespace".into(), Value::String(namespace.clone()));
        }
        for server_owned in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
            meta.remove(server_owned);
        }
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.remove(LAST_APPLIED);
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(map) = desired.as_object_mut() {
        map.remove("status");
    }
    Ok((desired, namespace))
}

/// `desired` carrying itself in the last-applied annotation, as kubectl writes it. A
/// `metadata` or `annotations` written as `null` (absent) becomes an object to hold it.
fn annotated(desired: &Value) -> Value {
    let mut out = desired.clone();
    let text = format!("{}\n", serde_json::to_string(desired).expect("JSON values serialize"));
    let Some(map) = out.as_object_mut() else { return out };
    let meta = map.entry("metadata").or_insert(Value::Null);
    if !meta.is_object() {
        *meta = serde_json::json!({});
    }
    let annotations = meta.as_object_mut().expect("made an object").entry("annotations").or_insert(Value::Null);
    if !annotations.is_object() {
        *annotations = serde_json::json!({});
    }
    annotations.as_object_mut().expect("made an object").insert(LAST_APPLIED.into(), Value::String(text));
    out
}

fn apply_one(ctx: &Context, m: &Manifest, dry_run: DryRun, validation: Validation) -> Result<&'static str, CtlError> {
    let info = m.object.info();
    let name = &m.object.metadata().name;
    if name.is_empty() {
        return Err(CtlError::client(format!(
            "error when retrieving current configuration of {:?}: resource name may not be empty",
            m.source
        )));
    }
    let (desired, namespace) = desired_value(ctx, m)?;
    let to_write = annotated(&desired);
    for attempt in 0..3 {
        let live = match ctx.get(info, &namespace, name) {
            Ok(live) => live,
            Err(e) if e.is_not_found() => {
                if dry_run != DryRun::Client {
                    let path = format!("{}{}", info.collection_path(Some(&namespace)), dry_run.query(validation));
                    ctx.client
                        .json("POST", &path, Some(&to_write))
                        .map_err(|e| e.with_context(format!("error when creating {:?}", m.source)))?;
                }
                return Ok("created");
            }
            Err(e) => {
                return Err(e.with_context(format!(
                    "error when retrieving current configuration of:\nResource: \"{}, Resource={}\", GroupVersionKind: \"{}, Kind={}\"\nName: \"{name}\", Namespace: \"{namespace}\"\nfrom server for: {:?}",
                    info.api_version(), info.plural, info.api_version(), info.kind, m.source
                )))
            }
        };
        let previous: Option<Value> = live
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str(text).ok());
        if previous.is_none() && attempt == 0 {
            errln!(
                "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is required by coracle apply. coracle apply should only be used on resources created declaratively by either coracle create --save-config or coracle apply. The missing annotation will be patched automatically.",
                info.plural
            );
        }
        let merged = three_way(&live, previous.as_ref().map(annotated).as_ref(), &to_write);
        if merged == live {
            return Ok("unchanged");
        }
        if dry_run == DryRun::Client {
            return Ok("configured");
        }
        let path = format!("{}{}", info.object_path(&namespace, name), dry_run.query(validation));
        match ctx.client.json("PUT", &path, Some(&merged)) {
            Ok(_) => return Ok("configured"),
            // Someone wrote in between: recompute from the new live object.
            Err(CtlError::Api { status, .. }) if status.code == 409 && attempt < 2 => continue,
            Err(e) => return Err(e.with_context(format!("error when applying {:?}", m.source))),
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_applied_is_the_manifest_json_with_a_newline() {
        let desired = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let out = annotated(&desired);
        assert_eq!(
            out.pointer("/metadata/annotations").unwrap()[LAST_APPLIED],
            "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}\n"
        );
        assert_eq!(DryRun::parse("client").unwrap().suffix(), " (dry run)");
        let nulls = serde_json::json!({"kind": "Pod", "metadata": {"name": "p", "annotations": null}});
        assert!(annotated(&nulls).pointer("/metadata/annotations").unwrap()[LAST_APPLIED].is_string());
        let nulls = serde_json::json!({"kind": "Pod", "metadata": null});
        assert!(annotated(&nulls).pointer("/metadata/annotations").unwrap()[LAST_APPLIED].is_string());
        assert!(DryRun::parse("maybe").is_err());
        assert_eq!(DryRun::Server.query(Validation::parse("true").unwrap()), "?fieldValidation=Strict&dryRun=All");
        assert_eq!(DryRun::None.query(Validation::parse("false").unwrap()), "?fieldValidation=Ignore");
        assert_eq!(Validation::parse("warn").unwrap(), Validation::Warn);
        assert!(Validation::parse("maybe").is_err());
    }
}
