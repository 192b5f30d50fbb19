//! `rollout status`: watch the deployment until kubectl's completion condition holds,
//! printing each new progress line; a progress deadline exceeded fails.

use super::{deployment_target, get_deployment};
use crate::cli::RolloutStatusArgs;
use crate::commands::watch::{deadline_after, error_status, parse_timeout, watch_path, Next, Watch};
use crate::commands::{decode, Context};
use crate::error::CtlError;
use coracle_config::apps::Deployment;
use coracle_config::Object;
use serde_json::Value;
use std::time::Instant;

/// Where a rollout stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not finished; the line to print.
    Waiting(String),
    /// Finished; the line to print.
    Done(String),
}

/// kubectl's DeploymentStatusViewer: the line for `d`'s current state, or the progress
/// deadline error.
pub fn rollout_progress(d: &Deployment) -> Result<Progress, CtlError> {
    let name = &d.metadata.name;
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation > status.observed_generation.unwrap_or(0) {
        return Ok(Progress::Waiting("Waiting for deployment spec update to be observed...".into()));
    }
    let progressing = status.conditions.iter().find(|c| c.type_ == "Progressing");
    if progressing.is_some_and(|c| c.reason == "ProgressDeadlineExceeded") {
        return Err(CtlError::client(format!("deployment {name:?} exceeded its progress deadline")));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(wanted) = d.spec.replicas.filter(|w| updated < *w) {
        return Ok(Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {wanted} new replicas have been updated..."
        )));
    }
    if replicas > updated {
        return Ok(Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        )));
    }
    if available < updated {
        return Ok(Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        )));
    }
    Ok(Progress::Done(format!("deployment {name:?} successfully rolled out")))
}

/// Runs `rollout status`.
pub fn run(ctx: &Context, args: &RolloutStatusArgs) -> Result<(), CtlError> {
    let target = deployment_target(&args.target.resource, "status viewer")?;
    let deadline = deadline_after(parse_timeout(&args.timeout)?);
    let mut printer = LinePrinter::default();
    loop {
        // (Re)list: the current state, and the resourceVersion to watch from.
        let d = get_deployment(ctx, &target)?;
        if printer.show(rollout_progress(&d)?) || !args.watch {
            return Ok(());
        }
        let mut from = d.metadata.resource_version.clone();
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining.is_some_and(|r| r.is_zero()) {
                return Err(timed_out());
            }
            let path = watch_path(
                target.info,
                Some(&ctx.namespace),
                &format!("metadata.name={}", target.name),
                "",
                &from,
                remaining,
            );
            let mut watch = Watch::open(ctx, target.info, &path, deadline)?;
            let relist = loop {
                match watch.next_event()? {
                    Next::TimedOut => return Err(timed_out()),
                    Next::Closed => break false,
                    Next::Event(e) => match e.type_.as_str() {
                        "ADDED" | "MODIFIED" => {
                            let Object::Deployment(d) = decode(target.info, &e.object)? else { continue };
                            from = d.metadata.resource_version.clone();
                            if printer.show(rollout_progress(&d)?) {
                                return Ok(());
                            }
                        }
                        "DELETED" => {
                            return Err(CtlError::client(format!(
                                "deployment {:?} was deleted while waiting for its rollout",
                                target.name
                            )))
                        }
                        "ERROR" if error_status(&e).code == 410 => break true,
                        "ERROR" => return Err(CtlError::Api { status: Box::new(error_status(&e)), context: None }),
                        // BOOKMARK: only the resourceVersion moves.
                        _ => {
                            if let Some(rv) = e.object.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                                from = rv.to_string();
                            }
                        }
                    },
                }
            };
            if relist {
                break;
            }
        }
    }
}

fn timed_out() -> CtlError {
    CtlError::client("timed out waiting for the condition")
}

/// Prints each progress line once, even when several events leave it unchanged.
#[derive(Default)]
struct LinePrinter {
    last: Option<String>,
}

impl LinePrinter {
    /// Prints the line if new; true when the rollout is done.
    fn show(&mut self, progress: Progress) -> bool {
        let (line, done) = match progress {
            Progress::Waiting(l) => (l, false),
            Progress::Done(l) => (l, true),
        };
        if self.last.as_deref() != Some(line.as_str()) {
            outln!("{line}");
            self.last = Some(line);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, replicas: i32, status: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "x", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {"spec": {"containers": []}}},
            "status": status
        }))
        .unwrap()
    }

    fn waiting(d: &Deployment) -> String {
        match rollout_progress(d).unwrap() {
            Progress::Waiting(l) => l,
            Progress::Done(l) => panic!("done: {l}"),
        }
    }

    #[test]
    fn messages_follow_kubectl_through_a_rollout() {
        let d = deployment(2, 3, json!({"observedGeneration": 1}));
        assert_eq!(waiting(&d), "Waiting for deployment spec update to be observed...");
        let d = deployment(2, 3, json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1}));
        assert_eq!(
            waiting(&d),
            "Waiting for deployment \"x\" rollout to finish: 1 out of 3 new replicas have been updated..."
        );
        let d = deployment(2, 3, json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3}));
        assert_eq!(
            waiting(&d),
            "Waiting for deployment \"x\" rollout to finish: 1 old replicas are pending termination..."
        );
        let d = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
        );
        assert_eq!(
            waiting(&d),
            "Waiting for deployment \"x\" rollout to finish: 2 of 3 updated replicas are available..."
        );
        let d = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(rollout_progress(&d).unwrap(), Progress::Done("deployment \"x\" successfully rolled out".into()));
    }

    #[test]
    fn an_exceeded_progress_deadline_fails() {
        let d = deployment(
            1,
            1,
            json!({"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            rollout_progress(&d).unwrap_err().to_string(),
            "error: deployment \"x\" exceeded its progress deadline"
        );
    }

    #[test]
    fn repeated_lines_print_once() {
        let mut p = LinePrinter::default();
        assert!(!p.show(Progress::Waiting("a".into())));
        assert!(!p.show(Progress::Waiting("a".into())));
        assert_eq!(p.last.as_deref(), Some("a"));
        assert!(p.show(Progress::Done("b".into())));
    }
}
