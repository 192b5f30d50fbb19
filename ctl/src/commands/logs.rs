//! `coracle logs POD|deploy/NAME`: the container's log streamed from
//! `pods/{name}/log` to stdout, following it with `-f`.

use super::{decode, resolve_type, Context};
use crate::cli::LogsArgs;
use crate::client::{status_from_response, with_query};
use crate::error::CtlError;
use crate::selector::Selector;
use coracle_config::core::Pod;
use coracle_config::meta::LabelSelector;
use coracle_config::{Object, ResourceInfo};
use std::io::Write;

/// The annotation naming the container kubectl logs by default.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// Runs `logs`.
pub fn run(ctx: &Context, args: &LogsArgs) -> Result<(), CtlError> {
    let pods = ResourceInfo::lookup("po").expect("pods are registered");
    let pod = match args.target.split_once('/') {
        None => pod(ctx, pods, &args.target)?,
        Some((type_, name)) => {
            let info = resolve_type(type_)?;
            match info.kind {
                "Pod" => pod(ctx, pods, name)?,
                "Deployment" | "ReplicaSet" => first_pod_of(ctx, info, name)?,
                other => {
                    return Err(CtlError::client(format!(
                        "cannot get the logs of a {other}: use a pod, deployment or replica set"
                    )))
                }
            }
        }
    };
    let container = match &args.container {
        Some(c) => c.clone(),
        None => {
            let (container, note) = default_container(&pod)?;
            if let Some(note) = note {
                errln!("{note}");
            }
            container
        }
    };
    let since = args.since.as_deref().map(since_seconds).transpose()?;
    let path = log_path(pods, &ctx.namespace, &pod.metadata.name, &container, args, since);
    let response = if args.follow { ctx.client.stream("GET", &path)? } else { ctx.client.send("GET", &path, None)? };
    if !response.is_success() {
        let status = response.status;
        let body = response.body.into_bytes().unwrap_or_default();
        return Err(CtlError::Api { status: Box::new(status_from_response(status, &body)), context: None });
    }
    let mut body = response.body;
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut body, &mut out) {
        Ok(_) => {}
        // `coracle logs … | head` closes the pipe: the ctl ends as every other print does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::output::failed("stdout", e),
        Err(e) => return Err(CtlError::client(format!("reading the log of pod {:?}: {e}", pod.metadata.name))),
    }
    out.flush().ok();
    Ok(())
}

fn pod(ctx: &Context, info: &'static ResourceInfo, name: &str) -> Result<Pod, CtlError> {
    match decode(info, &ctx.get(info, &ctx.namespace, name)?)? {
        Object::Pod(p) => Ok(p),
        other => Err(CtlError::client(format!("expected a Pod, the server sent a {}", other.info().kind))),
    }
}

/// The pod kubectl would pick for `logs deploy/NAME`: selected by the owner's selector,
/// running and ready pods first, then the oldest.
fn first_pod_of(ctx: &Context, info: &'static ResourceInfo, name: &str) -> Result<Pod, CtlError> {
    let selector: LabelSelector = match decode(info, &ctx.get(info, &ctx.namespace, name)?)? {
        Object::Deployment(d) => d.spec.selector,
        Object::ReplicaSet(rs) => rs.spec.selector,
        other => return Err(CtlError::client(format!("cannot get the logs of a {}", other.info().kind))),
    };
    let pods = ResourceInfo::lookup("po").expect("pods are registered");
    let selector = Selector::parse(&selector.to_sorted_query())?;
    let mut found = Vec::new();
    for item in ctx.list(pods, Some(&ctx.namespace), Some(&selector))? {
        if let Object::Pod(p) = decode(pods, &item)? {
            found.push(p);
        }
    }
    let total = found.len();
    found.sort_by_key(logging_rank);
    let pod = found
        .into_iter()
        .next()
        .ok_or_else(|| CtlError::client(format!("no pods found for {}/{name}", info.singular)))?;
    if total > 1 {
        errln!("Found {total} pods, using pod/{}", pod.metadata.name);
    }
    Ok(pod)
}

/// Sort key: running before others, ready before not, then oldest first.
fn logging_rank(p: &Pod) -> (bool, bool, String, String) {
    let status = p.status.clone().unwrap_or_default();
    let running = status.phase.as_deref() == Some("Running");
    let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    (!running, !ready, p.metadata.creation_timestamp.clone().unwrap_or_default(), p.metadata.name.clone())
}

/// The container to log when `-c` is absent, and kubectl's note when it had to choose.
fn default_container(pod: &Pod) -> Result<(String, Option<String>), CtlError> {
    let names: Vec<&str> = pod.spec.containers.iter().map(|c| c.name.as_str()).collect();
    if let Some(annotated) = pod.metadata.annotations.get(DEFAULT_CONTAINER).filter(|a| names.contains(&a.as_str())) {
        return Ok((annotated.clone(), None));
    }
    match names.as_slice() {
        [] => Err(CtlError::client(format!("pod {:?} has no containers", pod.metadata.name))),
        [only] => Ok((only.to_string(), None)),
        [first, ..] => {
            Ok((first.to_string(), Some(format!("Defaulted container {first:?} out of: {}", names.join(", ")))))
        }
    }
}

/// `--since=5m` → seconds.
fn since_seconds(text: &str) -> Result<u64, CtlError> {
    humantime::parse_duration(text)
        .map(|d| d.as_secs().max(1))
        .map_err(|e| CtlError::client(format!("invalid --since {text:?}: {e}")))
}

/// `…/pods/NAME/log?container=C&follow=true&…`.
fn log_path(
    pods: &ResourceInfo,
    namespace: &str,
    pod: &str,
    container: &str,
    args: &LogsArgs,
    since: Option<u64>,
) -> String {
    let tail = if args.tail >= 0 { args.tail.to_string() } else { String::new() };
    let since = since.map(|s| s.to_string()).unwrap_or_default();
    let flag = |on: bool| if on { "true" } else { "" };
    with_query(
        &format!("{}/log", pods.object_path(namespace, pod)),
        &[
            ("container", container),
            ("follow", flag(args.follow)),
            ("previous", flag(args.previous)),
            ("sinceSeconds", &since),
            ("tailLines", &tail),
            ("timestamps", flag(args.timestamps)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn args(argv: &[&str]) -> LogsArgs {
        let mut full = vec!["coracle", "logs"];
        full.extend(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Logs(a) => a,
            _ => unreachable!(),
        }
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn query_carries_the_flags() {
        let pods = ResourceInfo::lookup("po").unwrap();
        let a = args(&["web", "-f", "--tail=10", "--previous", "--timestamps"]);
        assert_eq!(
            log_path(pods, "default", "web", "c", &a, Some(300)),
            "/api/v1/namespaces/default/pods/web/log?container=c&follow=true&previous=true&sinceSeconds=300&tailLines=10&timestamps=true"
        );
        assert_eq!(
            log_path(pods, "ns", "web", "c", &args(&["web"]), None),
            "/api/v1/namespaces/ns/pods/web/log?container=c"
        );
        assert_eq!(since_seconds("5m").unwrap(), 300);
    }

    #[test]
    fn containers_default_like_kubectl() {
        let one = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "i"}]}}));
        assert_eq!(default_container(&one).unwrap(), ("a".into(), None));
        let two = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}}),
        );
        assert_eq!(
            default_container(&two).unwrap(),
            ("a".into(), Some("Defaulted container \"a\" out of: a, b".into()))
        );
        let annotated = pod(json!({"metadata": {"name": "p", "annotations": {DEFAULT_CONTAINER: "b"}},
                                   "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}}));
        assert_eq!(default_container(&annotated).unwrap(), ("b".into(), None));
    }

    #[test]
    fn running_ready_pods_are_logged_first() {
        let pending = pod(json!({"metadata": {"name": "a", "creationTimestamp": "2024-01-01T00:00:00Z"},
                                "spec": {"containers": []}, "status": {"phase": "Pending"}}));
        let running = pod(json!({"metadata": {"name": "b", "creationTimestamp": "2024-01-02T00:00:00Z"},
                                "spec": {"containers": []}, "status": {"phase": "Running",
                                "conditions": [{"type": "Ready", "status": "True"}]}}));
        let mut pods = [pending, running];
        pods.sort_by_key(logging_rank);
        assert_eq!(pods[0].metadata.name, "b");
    }
}
