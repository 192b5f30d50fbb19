//! `coracle delete`: DELETE with kubectl's options (propagation policy, grace period), then
//! wait until the objects are gone, as kubectl's `--wait` does.

use super::{report, resource_groups, Context};
use crate::cli::DeleteArgs;
use crate::error::CtlError;
use crate::input::read_manifests;
use crate::printers::name::kind_prefix;
use crate::selector::Selector;
use coracle_config::ResourceInfo;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One object to delete, and the file it came from (for error context).
struct Target {
    info: &'static ResourceInfo,
    namespace: String,
    name: String,
    source: Option<String>,
}

/// Runs `delete`.
pub fn run(ctx: &Context, args: &DeleteArgs) -> Result<(), CtlError> {
    let options = delete_options(args)?;
    let timeout = wait_timeout(&args.timeout)?;
    let mut failed = false;
    let targets = targets(ctx, args)?;
    if targets.is_empty() {
        errln!("No resources found");
        return Ok(());
    }
    let force = args.force && options.get("gracePeriodSeconds") == Some(&json!(0));
    if force {
        errln!("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.");
    }
    let mut deleted = Vec::new();
    for t in targets {
        let path = t.info.object_path(&t.namespace, &t.name);
        match ctx.client.json("DELETE", &path, Some(&options)) {
            Ok(_) => {
                let verb = if force { "force deleted" } else { "deleted" };
                outln!("{} \"{}\" {verb}", kind_prefix(t.info), t.name);
                deleted.push(t);
            }
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) => {
                let e = match &t.source {
                    Some(source) => e.with_context(format!("error when deleting {source:?}")),
                    None => e,
                };
                report(&mut failed, e);
            }
        }
    }
    if args.wait {
        for t in &deleted {
            if let Err(e) = wait_until_gone(ctx, t, timeout) {
                report(&mut failed, e);
            }
        }
    }
    if failed {
        Err(CtlError::Reported)
    } else {
        Ok(())
    }
}

/// The `DeleteOptions` body.
fn delete_options(args: &DeleteArgs) -> Result<Value, CtlError> {
    let policy = match args.cascade.as_str() {
        "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => {
            return Err(CtlError::client(format!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
            )))
        }
    };
    let mut grace = args.grace_period;
    if args.now {
        if grace >= 0 {
            return Err(CtlError::client("--now and --grace-period cannot be specified together"));
        }
        grace = 1;
    }
    // kubectl turns --grace-period=0 into 1 unless --force, to avoid accidental data loss.
    if grace == 0 && !args.force {
        grace = 1;
    }
    if args.force && grace < 0 {
        grace = 0;
    }
    let mut options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
    if grace >= 0 {
        options["gracePeriodSeconds"] = json!(grace);
    }
    Ok(options)
}

/// `--timeout`; zero means kubectl's "a week".
fn wait_timeout(text: &str) -> Result<Duration, CtlError> {
    let d = humantime::parse_duration(text)
        .or_else(|e| text.parse::<u64>().map(Duration::from_secs).map_err(|_| e))
        .map_err(|e| CtlError::client(format!("invalid --timeout {text:?}: {e}")))?;
    Ok(if d.is_zero() { Duration::from_secs(168 * 3600) } else { d })
}

fn targets(ctx: &Context, args: &DeleteArgs) -> Result<Vec<Target>, CtlError> {
    if !args.filenames.is_empty() {
        if !args.resources.is_empty() {
            return Err(CtlError::client("resources and -f cannot be given together"));
        }
        let manifests = read_manifests(&args.filenames, "delete")?;
        return manifests
            .into_iter()
            .map(|m| {
                Ok(Target {
                    info: m.object.info(),
                    namespace: ctx.namespace_for(&m.object)?,
                    name: m.object.metadata().name.clone(),
                    source: Some(m.source),
                })
            })
            .collect();
    }
    if args.resources.is_empty() {
        return Err(CtlError::client(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let selector = args.selector.as_deref().map(Selector::parse).transpose()?;
    let mut out = Vec::new();
    for group in resource_groups(&args.resources)? {
        if group.names.is_empty() {
            if !args.all && selector.is_none() {
                return Err(CtlError::client(format!(
                    "resource(s) were provided, but no name was specified; use --all to delete every {}",
                    group.info.singular
                )));
            }
            for item in ctx.list(group.info, Some(&ctx.namespace), selector.as_ref())? {
                let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                let namespace = item.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
                out.push(Target { info: group.info, namespace: namespace.to_string(), name, source: None });
            }
        } else {
            if args.all {
                return Err(CtlError::client("--all cannot be combined with names"));
            }
            for name in group.names {
                out.push(Target { info: group.info, namespace: ctx.namespace.clone(), name, source: None });
            }
        }
    }
    Ok(out)
}

/// Polls until GET answers 404 or the timeout passes (never, for a timeout beyond what
/// the clock can hold).
fn wait_until_gone(ctx: &Context, t: &Target, timeout: Duration) -> Result<(), CtlError> {
    let deadline = crate::commands::watch::deadline_after(timeout);
    let mut pause = Duration::from_millis(100);
    loop {
        match ctx.get(t.info, &t.namespace, &t.name) {
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Err(CtlError::client(format!(
                    "timed out waiting for the condition on {}/{}",
                    t.info.qualified_plural(),
                    t.name
                )))
            }
            Ok(_) => {
                std::thread::sleep(deadline.map_or(pause, |d| pause.min(d.saturating_duration_since(Instant::now()))));
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn delete_args(extra: &[&str]) -> DeleteArgs {
        let mut argv = vec!["coracle", "delete", "pod", "x"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Delete(d) => d,
            _ => unreachable!(),
        }
    }

    #[test]
    fn options_follow_kubectl_rules() {
        let o = delete_options(&delete_args(&[])).unwrap();
        assert_eq!(o, json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}));
        let o = delete_options(&delete_args(&["--now", "--cascade=foreground"])).unwrap();
        assert_eq!((o["gracePeriodSeconds"].clone(), o["propagationPolicy"].clone()), (json!(1), json!("Foreground")));
        assert_eq!(delete_options(&delete_args(&["--grace-period=0"])).unwrap()["gracePeriodSeconds"], json!(1));
        assert_eq!(
            delete_options(&delete_args(&["--grace-period=0", "--force"])).unwrap()["gracePeriodSeconds"],
            json!(0)
        );
        assert_eq!(delete_options(&delete_args(&["--cascade=orphan"])).unwrap()["propagationPolicy"], json!("Orphan"));
        assert!(delete_options(&delete_args(&["--cascade=sideways"])).is_err());
    }

    #[test]
    fn timeouts_parse() {
        assert_eq!(wait_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(wait_timeout("0s").unwrap(), Duration::from_secs(168 * 3600));
        assert!(wait_timeout("soon").is_err());
    }
}
