//! `coracle set image deploy/NAME C=IMAGE…`: a strategic merge patch naming only the
//! changed containers, with `$setElementOrder/containers` keeping the order, as kubectl sends.

use super::target::parse_target;
use super::{decode, Context};
use crate::cli::SetImageArgs;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use coracle_config::core::{Container, PodSpec};
use coracle_config::Object;
use serde_json::{json, Map, Value};

/// The kinds with containers whose image can be set.
const WITH_IMAGES: &[&str] = &["Deployment", "ReplicaSet", "Pod"];

/// Runs `set image`.
pub fn run(ctx: &Context, args: &SetImageArgs) -> Result<(), CtlError> {
    let split = if args.args[0].contains('/') { 1 } else { 2 };
    if args.args.len() <= split {
        return Err(CtlError::client("at least one image update is required, e.g. nginx=nginx:1.25"));
    }
    let target = parse_target(&args.args[..split], WITH_IMAGES, "set image on")?;
    let updates = parse_updates(&args.args[split..])?;
    let live = decode(target.info, &ctx.get(target.info, &ctx.namespace, &target.name)?)?;
    let (spec, in_template) = match &live {
        Object::Deployment(d) => (&d.spec.template.spec, true),
        Object::ReplicaSet(rs) => (&rs.spec.template.spec, true),
        Object::Pod(p) => (&p.spec, false),
        other => return Err(CtlError::client(format!("cannot set image on a {}", other.info().kind))),
    };
    let Some(patch) = image_patch(spec, &updates, in_template)? else {
        return Ok(());
    };
    let path = format!("{}?fieldManager=kubectl-set", target.info.object_path(&ctx.namespace, &target.name));
    ctx.client.patch(&path, "application/strategic-merge-patch+json", &patch)?;
    outln!("{} image updated", resource_name(target.info, &target.name));
    Ok(())
}

/// `CONTAINER=IMAGE` pairs, in order.
fn parse_updates(pairs: &[String]) -> Result<Vec<(String, String)>, CtlError> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(c, i)| !c.is_empty() && !i.is_empty())
                .map(|(c, i)| (c.to_string(), i.to_string()))
                .ok_or_else(|| CtlError::client(format!("invalid image update {pair:?}: expected CONTAINER=IMAGE")))
        })
        .collect()
}

/// The strategic merge patch, or None when every image is already what was asked.
fn image_patch(spec: &PodSpec, updates: &[(String, String)], in_template: bool) -> Result<Option<Value>, CtlError> {
    for (name, _) in updates {
        let known = name == "*" || spec.containers.iter().chain(&spec.init_containers).any(|c| c.name == *name);
        if !known {
            return Err(CtlError::client(format!("unable to find container named {name:?}")));
        }
    }
    let mut pod_patch = Map::new();
    for (field, containers) in [("containers", &spec.containers), ("initContainers", &spec.init_containers)] {
        let changed = changed_containers(containers, updates);
        if changed.is_empty() {
            continue;
        }
        let order: Vec<Value> = containers.iter().map(|c| json!({"name": c.name})).collect();
        pod_patch.insert(format!("$setElementOrder/{field}"), Value::Array(order));
        pod_patch.insert(field.to_string(), Value::Array(changed));
    }
    if pod_patch.is_empty() {
        return Ok(None);
    }
    let spec_patch = json!({"spec": Value::Object(pod_patch)});
    Ok(Some(if in_template { json!({"spec": {"template": spec_patch}}) } else { spec_patch }))
}

fn changed_containers(containers: &[Container], updates: &[(String, String)]) -> Vec<Value> {
    containers
        .iter()
        .filter_map(|c| {
            // The last matching update wins, as in kubectl; `*` matches every container.
            let image = updates.iter().rev().find(|(n, _)| n == "*" || *n == c.name).map(|(_, i)| i)?;
            (*image != c.image).then(|| json!({"image": image, "name": c.name}))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PodSpec {
        serde_json::from_value(json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "nginx", "image": "nginx:1.14"}, {"name": "side", "image": "busybox"}]
        }))
        .unwrap()
    }

    fn updates(pairs: &[&str]) -> Vec<(String, String)> {
        parse_updates(&pairs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patches_only_changed_containers_with_their_order() {
        let patch = image_patch(&spec(), &updates(&["nginx=nginx:1.25"]), true).unwrap().unwrap();
        assert_eq!(
            patch.to_string(),
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"side"}],"containers":[{"image":"nginx:1.25","name":"nginx"}]}}}}"#
        );
        let patch = image_patch(&spec(), &updates(&["*=alpine"]), false).unwrap().unwrap();
        assert_eq!(patch["spec"]["containers"].as_array().unwrap().len(), 2);
        assert_eq!(patch["spec"]["initContainers"], json!([{"image": "alpine", "name": "init"}]));
    }

    #[test]
    fn unchanged_and_unknown_containers() {
        assert!(image_patch(&spec(), &updates(&["nginx=nginx:1.14"]), true).unwrap().is_none());
        let err = image_patch(&spec(), &updates(&["web=x"]), true).unwrap_err();
        assert_eq!(err.to_string(), "error: unable to find container named \"web\"");
        assert!(parse_updates(&["nginx".to_string()]).is_err());
    }
}
