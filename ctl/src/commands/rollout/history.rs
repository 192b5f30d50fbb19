//! `rollout history`: the REVISION / CHANGE-CAUSE table from the deployment's replica sets,
//! or one revision's pod template with `--revision`.

use super::{deployment_target, get_deployment, owned_replica_sets, revision, CHANGE_CAUSE};
use crate::cli::RolloutHistoryArgs;
use crate::commands::Context;
use crate::describe::deployment::pod_template;
use crate::describe::Describer;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use crate::printers::tabwriter::DESCRIBE;
use coracle_config::apps::ReplicaSet;
use coracle_config::core::PodTemplateSpec;
use std::collections::BTreeMap;

/// Runs `rollout history`.
pub fn run(ctx: &Context, args: &RolloutHistoryArgs) -> Result<(), CtlError> {
    let target = deployment_target(&args.target.resource, "history viewer")?;
    let d = get_deployment(ctx, &target)?;
    let history = history(&owned_replica_sets(ctx, &d)?);
    let name = resource_name(target.info, &target.name);
    if args.revision > 0 {
        let template = history
            .get(&args.revision)
            .ok_or_else(|| CtlError::client(format!("unable to find the specified revision {}", args.revision)))?;
        out!("{name} with revision #{}\n{}", args.revision, revision_details(&template.template));
    } else {
        out!("{name} \n{}\n", history_table(&history));
    }
    Ok(())
}

/// One revision: its pod template and the change cause recorded with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    pub template: PodTemplateSpec,
    pub change_cause: Option<String>,
}

/// Revision number → template, from the replica sets (those without a revision are skipped).
pub fn history(sets: &[ReplicaSet]) -> BTreeMap<i64, Revision> {
    let mut out = BTreeMap::new();
    for rs in sets {
        let r = revision(rs);
        if r <= 0 {
            continue;
        }
        let mut template = rs.spec.template.clone();
        let change_cause = rs.metadata.annotations.get(CHANGE_CAUSE).cloned().filter(|c| !c.is_empty());
        if let Some(cause) = &change_cause {
            // kubectl shows the cause among the template's annotations too.
            template.metadata.annotations.insert(CHANGE_CAUSE.into(), cause.clone());
        }
        out.insert(r, Revision { template, change_cause });
    }
    out
}

/// `REVISION  CHANGE-CAUSE` rows, aligned as kubectl's tabbedString (padding 2).
pub fn history_table(history: &BTreeMap<i64, Revision>) -> String {
    let mut text = String::from("REVISION\tCHANGE-CAUSE\n");
    for (r, rev) in history {
        text.push_str(&format!("{r}\t{}\n", rev.change_cause.as_deref().unwrap_or("<none>")));
    }
    DESCRIBE.align(&text)
}

/// `--revision=N`: the revision's pod template, describe-style.
pub fn revision_details(template: &PodTemplateSpec) -> String {
    let mut w = Describer::default();
    pod_template(&mut w, template);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(revision: &str, cause: Option<&str>, image: &str) -> ReplicaSet {
        let mut annotations = json!({"deployment.kubernetes.io/revision": revision});
        if let Some(c) = cause {
            annotations[CHANGE_CAUSE] = json!(c);
        }
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{revision}"), "annotations": annotations},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn table_lists_revisions_in_order_with_causes() {
        let h =
            history(&[rs("3", None, "b"), rs("1", Some("coracle set image deploy/web web=a"), "a"), rs("", None, "c")]);
        assert_eq!(h.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(
            history_table(&h),
            "REVISION  CHANGE-CAUSE\n1         coracle set image deploy/web web=a\n3         <none>\n"
        );
    }

    #[test]
    fn one_revision_shows_its_template() {
        let h = history(&[rs("2", None, "nginx:1.25")]);
        let text = revision_details(&h[&2].template);
        assert!(text.starts_with("Pod Template:\n  Labels:  app=web\n"), "{text}");
        assert!(text.contains("Image:") && text.contains("nginx:1.25"), "{text}");
    }
}
