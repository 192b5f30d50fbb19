//! `coracle autoscale deploy/NAME --min --max --cpu-percent`: POST an autoscaling/v2
//! HorizontalPodAutoscaler aimed at the deployment, named after it.

use super::scale::SCALABLE;
use super::target::{parse_target, Target};
use super::Context;
use crate::cli::AutoscaleArgs;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use coracle_config::autoscaling::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HpaSpec, MetricSpec, MetricTarget, ResourceMetricSource,
};
use coracle_config::{Object, ResourceInfo};

/// Runs `autoscale`.
pub fn run(ctx: &Context, args: &AutoscaleArgs) -> Result<(), CtlError> {
    let target = parse_target(&args.resource, SCALABLE, "autoscale")?;
    // kubectl reads the target first, so a typo is NotFound rather than a dangling autoscaler.
    ctx.get(target.info, &ctx.namespace, &target.name)?;
    let hpa = autoscaler(&target, args)?;
    let info = ResourceInfo::lookup("hpa").expect("autoscalers are registered");
    let path = format!("{}?fieldManager=kubectl-autoscale", info.collection_path(Some(&ctx.namespace)));
    let object = Object::HorizontalPodAutoscaler(hpa);
    ctx.client.json("POST", &path, Some(&object.to_json()))?;
    outln!("{} autoscaled", resource_name(info, &object.metadata().name));
    Ok(())
}

/// The autoscaler kubectl would create for `target`.
pub fn autoscaler(target: &Target, args: &AutoscaleArgs) -> Result<HorizontalPodAutoscaler, CtlError> {
    if args.max < 1 {
        return Err(CtlError::client(format!("--max=MAXPODS is required and must be at least 1, max: {}", args.max)));
    }
    if args.max < args.min {
        return Err(CtlError::client(format!(
            "--max=MAXPODS must be larger or equal to --min=MINPODS, max: {}, min: {}",
            args.max, args.min
        )));
    }
    let mut hpa = HorizontalPodAutoscaler {
        api_version: "autoscaling/v2".into(),
        kind: "HorizontalPodAutoscaler".into(),
        ..Default::default()
    };
    hpa.metadata.name = args.name.clone().unwrap_or_else(|| target.name.clone());
    hpa.spec = HpaSpec {
        scale_target_ref: CrossVersionObjectReference {
            api_version: target.info.api_version(),
            kind: target.info.kind.to_string(),
            name: target.name.clone(),
        },
        min_replicas: (args.min >= 0).then_some(args.min),
        max_replicas: args.max,
        ..Default::default()
    };
    if args.cpu_percent >= 0 {
        hpa.spec.metrics.push(MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(args.cpu_percent),
                    ..Default::default()
                },
            }),
        });
    }
    Ok(hpa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn args(extra: &[&str]) -> AutoscaleArgs {
        let mut argv = vec!["coracle", "autoscale", "deploy/web"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Autoscale(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn builds_a_v2_autoscaler_named_after_the_target() {
        let a = args(&["--min=2", "--max=5", "--cpu-percent=80"]);
        let target = parse_target(&a.resource, SCALABLE, "autoscale").unwrap();
        let v = Object::HorizontalPodAutoscaler(autoscaler(&target, &a).unwrap()).to_json();
        assert_eq!(v["apiVersion"], "autoscaling/v2");
        assert_eq!(v["metadata"]["name"], "web");
        assert_eq!(v["spec"]["scaleTargetRef"], json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}));
        assert_eq!((v["spec"]["minReplicas"].clone(), v["spec"]["maxReplicas"].clone()), (json!(2), json!(5)));
        assert_eq!(
            v["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        let bare = autoscaler(&target, &args(&["--max=3"])).unwrap();
        assert_eq!((bare.spec.min_replicas, bare.spec.metrics.len()), (None, 0));
    }

    #[test]
    fn bounds_are_checked() {
        let target = parse_target(&["deploy/web".to_string()], SCALABLE, "autoscale").unwrap();
        let err = autoscaler(&target, &args(&["--max=0"])).unwrap_err();
        assert_eq!(err.to_string(), "error: --max=MAXPODS is required and must be at least 1, max: 0");
        let err = autoscaler(&target, &args(&["--min=4", "--max=2"])).unwrap_err();
        assert_eq!(err.to_string(), "error: --max=MAXPODS must be larger or equal to --min=MINPODS, max: 2, min: 4");
    }
}
