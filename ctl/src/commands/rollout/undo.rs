//! `rollout undo`: put the template of an earlier revision's replica set back into the
//! deployment with the JSON patch kubectl's DeploymentRollbacker sends.

use super::{deployment_target, get_deployment, owned_replica_sets, revision};
use crate::cli::RolloutUndoArgs;
use crate::commands::Context;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::core::PodTemplateSpec;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The label the deployment controller adds to each replica set's template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations a rollback keeps from the deployment rather than the replica set.
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// What a rollback decided.
#[derive(Debug, PartialEq)]
pub enum Rollback {
    /// The deployment already runs that template.
    Skipped(i64),
    /// The JSON patch to send.
    Patch(Value),
}

/// Runs `rollout undo`.
pub fn run(ctx: &Context, args: &RolloutUndoArgs) -> Result<(), CtlError> {
    let target = deployment_target(&args.target.resource, "rollbacker")?;
    let d = get_deployment(ctx, &target)?;
    let name = resource_name(target.info, &target.name);
    match rollback(&d, &owned_replica_sets(ctx, &d)?, args.to_revision)? {
        Rollback::Skipped(r) => {
            outln!("{name} skipped rollback (current template already matches revision {r})");
        }
        Rollback::Patch(patch) => {
            let path = target.info.object_path(&ctx.namespace, &target.name);
            ctx.client.patch(&path, "application/json-patch+json", &patch)?;
            outln!("{name} rolled back");
        }
    }
    Ok(())
}

/// Decides the rollback of `d` to `to_revision` (0: the previous revision).
pub fn rollback(d: &Deployment, sets: &[ReplicaSet], to_revision: i64) -> Result<Rollback, CtlError> {
    if to_revision < 0 {
        return Err(not_found(to_revision));
    }
    if d.spec.paused == Some(true) {
        return Err(CtlError::client(format!(
            "you cannot rollback a paused deployment; resume it first with 'coracle rollout resume deployment/{}' and try again",
            d.metadata.name
        )));
    }
    let rs = revision_set(d, sets, to_revision)?;
    let mut template = rs.spec.template.clone();
    template.metadata.labels.remove(POD_TEMPLATE_HASH);
    if without_hash(&d.spec.template) == template {
        return Ok(Rollback::Skipped(revision(rs)));
    }
    let mut annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .filter(|(k, _)| ANNOTATIONS_TO_SKIP.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &rs.metadata.annotations {
        if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let template = serde_json::to_value(&template).expect("templates serialize");
    Ok(Rollback::Patch(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ])))
}

fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    t.metadata.labels.remove(POD_TEMPLATE_HASH);
    t
}

fn not_found(r: i64) -> CtlError {
    CtlError::client(format!("unable to find specified revision {r} in history"))
}

/// The replica set of `to_revision`, or for 0 the one before the newest.
fn revision_set<'a>(d: &Deployment, sets: &'a [ReplicaSet], to_revision: i64) -> Result<&'a ReplicaSet, CtlError> {
    if to_revision > 0 {
        return sets.iter().find(|rs| revision(rs) == to_revision).ok_or_else(|| not_found(to_revision));
    }
    let mut by_revision: Vec<&ReplicaSet> = sets.iter().filter(|rs| revision(rs) > 0).collect();
    by_revision.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
    by_revision
        .get(1)
        .copied()
        .ok_or_else(|| CtlError::client(format!("no rollout history found for deployment {:?}", d.metadata.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str, paused: bool) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": {"deployment.kubernetes.io/revision": "2", "note": "x"}},
            "spec": {"paused": paused, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    }

    fn rs(revision: &str, image: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{revision}"),
                         "annotations": {"deployment.kubernetes.io/revision": revision, "kubernetes.io/change-cause": "c"}},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                     "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn undo_patches_template_and_annotations_as_kubectl() {
        let sets = [rs("1", "nginx:1.14"), rs("2", "nginx:1.25")];
        let Rollback::Patch(patch) = rollback(&deployment("nginx:1.25", false), &sets, 0).unwrap() else {
            panic!("expected a patch")
        };
        assert_eq!(patch[0]["op"], "replace");
        assert_eq!(patch[0]["path"], "/spec/template");
        assert_eq!(patch[0]["value"]["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(patch[0]["value"]["spec"]["containers"][0]["image"], "nginx:1.14");
        assert_eq!(patch[1]["path"], "/metadata/annotations");
        assert_eq!(
            patch[1]["value"],
            json!({"deployment.kubernetes.io/revision": "2", "kubernetes.io/change-cause": "c"})
        );
    }

    #[test]
    fn missing_matching_and_paused() {
        let sets = [rs("1", "nginx:1.14"), rs("2", "nginx:1.25")];
        let d = deployment("nginx:1.25", false);
        assert_eq!(
            rollback(&d, &sets, 7).unwrap_err().to_string(),
            "error: unable to find specified revision 7 in history"
        );
        assert_eq!(rollback(&d, &sets, 2).unwrap(), Rollback::Skipped(2));
        assert_eq!(
            rollback(&d, &sets[1..], 0).unwrap_err().to_string(),
            "error: no rollout history found for deployment \"web\""
        );
        assert!(rollback(&deployment("nginx:1.25", true), &sets, 1).unwrap_err().to_string().contains("paused"));
    }
}
