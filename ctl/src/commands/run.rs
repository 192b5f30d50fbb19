//! `coracle run NAME --image=I`: one pod, labelled `run=NAME`, as kubectl run creates it.

use super::apply::DryRun;
use super::target::parse_labels;
use super::{with_type_meta, Context};
use crate::cli::RunArgs;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use crate::printers::OutputFormat;
use coracle_config::core::{Container, ContainerPort, EnvVar, Pod};
use coracle_config::Object;

/// Runs `run`.
pub fn run(ctx: &Context, args: &RunArgs) -> Result<(), CtlError> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    let format = match args.output.as_deref() {
        None => None,
        Some(o @ ("json" | "yaml" | "name")) => Some(OutputFormat::parse(Some(o))?),
        Some(other) => return Err(CtlError::client(format!("unsupported output format {other:?} for run"))),
    };
    let pod = Object::Pod(pod_for(args)?);
    let info = pod.info();
    let mut body = pod.to_json();
    body["metadata"]["namespace"] = ctx.namespace.clone().into();
    let answer = if dry_run == DryRun::Client {
        body
    } else {
        let query = if dry_run == DryRun::Server { "&dryRun=All" } else { "" };
        let path = format!("{}?fieldManager=kubectl-run{query}", info.collection_path(Some(&ctx.namespace)));
        let mut answer = ctx.client.json("POST", &path, Some(&body))?;
        with_type_meta(&mut answer, info);
        answer
    };
    let name = resource_name(info, &args.name);
    match format {
        None => outln!("{name} created{}", dry_run.suffix()),
        Some(OutputFormat::Name) => outln!("{name}"),
        Some(f) => out!("{}", f.document(&answer)),
    }
    Ok(())
}

/// The pod kubectl run would create.
fn pod_for(args: &RunArgs) -> Result<Pod, CtlError> {
    if !matches!(args.restart.as_str(), "Always" | "OnFailure" | "Never") {
        return Err(CtlError::client(format!("invalid restart policy: {}", args.restart)));
    }
    if args.command && args.args.is_empty() {
        return Err(CtlError::client(
            "--command requires the command after --, e.g. coracle run x --image=i --command -- sleep 60",
        ));
    }
    let mut env = Vec::new();
    for pair in &args.env {
        let (name, value) = pair
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| CtlError::client(format!("invalid env: {pair:?} (expected NAME=VALUE)")))?;
        env.push(EnvVar { name: name.to_string(), value: Some(value.to_string()), ..Default::default() });
    }
    let mut container = Container {
        name: args.name.clone(),
        image: args.image.clone(),
        image_pull_policy: args.image_pull_policy.clone(),
        env,
        ..Default::default()
    };
    if let Some(port) = args.port {
        container.ports.push(ContainerPort { container_port: port, ..Default::default() });
    }
    if !args.args.is_empty() {
        if args.command {
            container.command = Some(args.args.clone());
        } else {
            container.args = Some(args.args.clone());
        }
    }
    let mut pod = Pod { api_version: "v1".into(), kind: "Pod".into(), ..Default::default() };
    pod.metadata.name = args.name.clone();
    pod.metadata.labels = match &args.labels {
        Some(l) => parse_labels(l, "--labels")?,
        None => [("run".to_string(), args.name.clone())].into(),
    };
    pod.spec.containers.push(container);
    pod.spec.restart_policy = Some(args.restart.clone());
    pod.spec.dns_policy = Some("ClusterFirst".into());
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn args(argv: &[&str]) -> RunArgs {
        let mut full = vec!["coracle", "run"];
        full.extend(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Run(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn pods_carry_run_label_ports_env_and_args() {
        let pod = pod_for(&args(&[
            "web",
            "--image=busybox",
            "--port=80",
            "--env=A=1",
            "--restart=Never",
            "--",
            "sleep",
            "9",
        ]))
        .unwrap();
        let v = Object::Pod(pod).to_json();
        assert_eq!(v["metadata"]["labels"], json!({"run": "web"}));
        let c = &v["spec"]["containers"][0];
        assert_eq!((c["name"].clone(), c["image"].clone()), (json!("web"), json!("busybox")));
        assert_eq!(c["ports"], json!([{"containerPort": 80}]));
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(c["args"], json!(["sleep", "9"]));
        assert!(c.get("command").is_none());
        assert_eq!(v["spec"]["restartPolicy"], "Never");
        assert_eq!(v["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn command_labels_and_bad_flags() {
        let pod =
            pod_for(&args(&["x", "--image=i", "--labels=app=x,tier=t", "--command", "--", "/bin/sh", "-c", "true"]))
                .unwrap();
        assert_eq!(
            pod.spec.containers[0].command.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".into(), "true".into()][..])
        );
        assert_eq!(pod.metadata.labels.len(), 2);
        assert_eq!(
            pod_for(&args(&["x", "--image=i", "--restart=Sometimes"])).unwrap_err().to_string(),
            "error: invalid restart policy: Sometimes"
        );
        assert!(pod_for(&args(&["x", "--image=i", "--env=novalue"])).is_err());
    }
}
