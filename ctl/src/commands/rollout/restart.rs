//! `rollout restart`: stamp the template with `kubectl.kubernetes.io/restartedAt`, which
//! changes the template and so rolls every pod.

use super::deployment_target;
use crate::cli::RolloutTargetArgs;
use crate::commands::Context;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use coracle_config::time;
use serde_json::{json, Value};

/// The template annotation kubectl sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Runs `rollout restart`.
pub fn run(ctx: &Context, args: &RolloutTargetArgs) -> Result<(), CtlError> {
    let target = deployment_target(&args.resource, "restarter")?;
    let path = target.info.object_path(&ctx.namespace, &target.name);
    ctx.client.patch(&path, "application/strategic-merge-patch+json", &restart_patch(&time::now()))?;
    outln!("{} restarted", resource_name(target.info, &target.name));
    Ok(())
}

/// The patch kubectl sends, stamped `now` (RFC 3339).
pub fn restart_patch(now: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_stamps_the_template() {
        assert_eq!(
            restart_patch("2024-05-01T12:00:00Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2024-05-01T12:00:00Z"}}}}}"#
        );
    }
}
