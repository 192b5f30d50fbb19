//! `coracle expose deploy/NAME --port=80`: a Service selecting the target's pods, built the
//! way kubectl's expose does (selector from the target, ports introspected when not given).

use super::target::{parse_labels, parse_target, Target};
use super::{decode, Context};
use crate::cli::ExposeArgs;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use coracle_config::core::{Container, Service, ServicePort};
use coracle_config::intstr::IntOrString;
use coracle_config::meta::LabelSelector;
use coracle_config::Object;
use std::collections::BTreeMap;

/// The kinds expose accepts.
const EXPOSABLE: &[&str] = &["Deployment", "ReplicaSet", "Pod", "Service"];

/// Runs `expose`.
pub fn run(ctx: &Context, args: &ExposeArgs) -> Result<(), CtlError> {
    let target = parse_target(&args.resource, EXPOSABLE, "expose")?;
    let live = decode(target.info, &ctx.get(target.info, &ctx.namespace, &target.name)?)?;
    let service = Object::Service(service_for(&target, &live, args)?);
    let info = service.info();
    let path = format!("{}?fieldManager=kubectl-expose", info.collection_path(Some(&ctx.namespace)));
    ctx.client.json("POST", &path, Some(&service.to_json()))?;
    outln!("{} exposed", resource_name(info, &service.metadata().name));
    Ok(())
}

/// What the target offers a service: its pods' selector, labels and ports.
struct Introspected {
    selector: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    /// (name, port, protocol) of each port found.
    ports: Vec<(Option<String>, i32, Option<String>)>,
}

fn introspect(target: &Target, live: &Object) -> Result<Introspected, CtlError> {
    let from_containers = |containers: &[Container]| {
        containers
            .iter()
            .flat_map(|c| c.ports.iter())
            .map(|p| (p.name.clone(), p.container_port, p.protocol.clone()))
            .collect::<Vec<_>>()
    };
    let match_labels = |s: &LabelSelector| {
        if s.match_expressions.is_empty() {
            Ok(s.match_labels.clone())
        } else {
            Err(CtlError::client(format!(
                "couldn't retrieve selectors via --selector flag or introspection: the {} {:?} has match expressions, which a service selector cannot express",
                target.info.singular, target.name
            )))
        }
    };
    Ok(match live {
        Object::Deployment(d) => Introspected {
            selector: match_labels(&d.spec.selector)?,
            labels: d.metadata.labels.clone(),
            ports: from_containers(&d.spec.template.spec.containers),
        },
        Object::ReplicaSet(rs) => Introspected {
            selector: match_labels(&rs.spec.selector)?,
            labels: rs.metadata.labels.clone(),
            ports: from_containers(&rs.spec.template.spec.containers),
        },
        Object::Pod(p) => Introspected {
            selector: p.metadata.labels.clone(),
            labels: p.metadata.labels.clone(),
            ports: from_containers(&p.spec.containers),
        },
        Object::Service(s) => Introspected {
            selector: s.spec.selector.clone(),
            labels: s.metadata.labels.clone(),
            ports: s.spec.ports.iter().map(|p| (p.name.clone(), p.port, p.protocol.clone())).collect(),
        },
        other => return Err(CtlError::client(format!("cannot expose a {}", other.info().kind))),
    })
}

/// The Service kubectl would create for `target` (whose live object is `live`).
fn service_for(target: &Target, live: &Object, args: &ExposeArgs) -> Result<Service, CtlError> {
    let found = introspect(target, live)?;
    let selector = match &args.selector {
        Some(s) => parse_labels(s, "--selector")?,
        None => found.selector,
    };
    if selector.is_empty() {
        return Err(CtlError::client(format!(
            "couldn't retrieve selectors via --selector flag or introspection: {} {:?} has no labels to select",
            target.info.singular, target.name
        )));
    }
    if let Some(t) = &args.type_ {
        if !matches!(t.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            return Err(CtlError::client(format!(
                "invalid --type {t:?}: must be one of ClusterIP, NodePort, LoadBalancer"
            )));
        }
    }
    let target_port = args.target_port.as_deref().map(|t| match t.parse::<i32>() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(t.to_string()),
    });
    let ports: Vec<ServicePort> = match args.port {
        Some(port) => {
            let protocol = args
                .protocol
                .clone()
                .or_else(|| found.ports.iter().find(|p| p.1 == port).and_then(|p| p.2.clone()))
                .unwrap_or_else(|| "TCP".into());
            vec![ServicePort {
                protocol: Some(protocol),
                port,
                target_port: Some(target_port.unwrap_or(IntOrString::Int(port))),
                ..Default::default()
            }]
        }
        None if found.ports.is_empty() => {
            return Err(CtlError::client("couldn't find port via --port flag or introspection"));
        }
        None => {
            let several = found.ports.len() > 1;
            found
                .ports
                .iter()
                .enumerate()
                .map(|(i, (name, port, protocol))| ServicePort {
                    // kubectl names ports only when there are several: the port's own name, else port-N.
                    name: several.then(|| name.clone().unwrap_or_else(|| format!("port-{}", i + 1))),
                    protocol: Some(args.protocol.clone().or_else(|| protocol.clone()).unwrap_or_else(|| "TCP".into())),
                    port: *port,
                    target_port: Some(target_port.clone().unwrap_or(IntOrString::Int(*port))),
                    ..Default::default()
                })
                .collect()
        }
    };
    let mut service = Service { api_version: "v1".into(), kind: "Service".into(), ..Default::default() };
    service.metadata.name = args.name.clone().unwrap_or_else(|| target.name.clone());
    service.metadata.labels = match &args.labels {
        Some(l) => parse_labels(l, "--labels")?,
        None => found.labels,
    };
    service.spec.selector = selector;
    service.spec.ports = ports;
    service.spec.type_ = args.type_.clone();
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use coracle_config::ResourceInfo;
    use serde_json::json;

    fn args(extra: &[&str]) -> ExposeArgs {
        let mut argv = vec!["coracle", "expose", "deploy/web"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Expose(a) => a,
            _ => unreachable!(),
        }
    }

    fn deployment(ports: serde_json::Value) -> Object {
        let info = ResourceInfo::lookup("deploy").unwrap();
        Object::from_json(
            info,
            json!({"metadata": {"name": "web", "labels": {"app": "web", "team": "a"}},
                   "spec": {"selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}}}}),
        )
        .unwrap()
    }

    fn target() -> Target {
        parse_target(&["deploy/web".to_string()], EXPOSABLE, "expose").unwrap()
    }

    #[test]
    fn selector_and_labels_come_from_the_deployment() {
        let s = service_for(
            &target(),
            &deployment(json!([])),
            &args(&["--port=80", "--target-port=8080", "--type=NodePort"]),
        )
        .unwrap();
        let v = Object::Service(s).to_json();
        assert_eq!(v["metadata"]["labels"], json!({"app": "web", "team": "a"}));
        assert_eq!(v["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(v["spec"]["type"], "NodePort");
        assert_eq!(v["spec"]["ports"], json!([{"protocol": "TCP", "port": 80, "targetPort": 8080}]));
    }

    #[test]
    fn ports_are_introspected_when_not_given() {
        let live = deployment(json!([{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP", "name": "dns"}]));
        let s = service_for(&target(), &live, &args(&["--name=front"])).unwrap();
        assert_eq!(s.metadata.name, "front");
        let ports: Vec<_> = s.spec.ports.iter().map(|p| (p.name.clone(), p.port, p.protocol.clone())).collect();
        assert_eq!(
            ports,
            [(Some("port-1".into()), 80, Some("TCP".into())), (Some("dns".into()), 53, Some("UDP".into()))]
        );
        let err = service_for(&target(), &deployment(json!([])), &args(&[])).unwrap_err();
        assert_eq!(err.to_string(), "error: couldn't find port via --port flag or introspection");
        assert!(service_for(&target(), &live, &args(&["--port=1", "--type=Weird"])).is_err());
    }
}
