//! `rollout pause|resume`: a merge patch of `spec.paused`.

use super::{deployment_target, get_deployment};
use crate::cli::RolloutTargetArgs;
use crate::commands::Context;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use serde_json::json;

/// Runs `rollout pause` (`pause` true) or `rollout resume`.
pub fn run(ctx: &Context, args: &RolloutTargetArgs, pause: bool) -> Result<(), CtlError> {
    let (what, verb) = if pause { ("pauser", "paused") } else { ("resumer", "resumed") };
    let target = deployment_target(&args.resource, what)?;
    let name = resource_name(target.info, &target.name);
    let d = get_deployment(ctx, &target)?;
    if d.spec.paused.unwrap_or(false) == pause {
        // kubectl's wording when there is nothing to change.
        let state = if pause { "is already paused" } else { "is not paused" };
        return Err(CtlError::client(format!("{} {:?} {state}", target.info.qualified_plural(), target.name)));
    }
    let path = target.info.object_path(&ctx.namespace, &target.name);
    ctx.client.patch(&path, "application/merge-patch+json", &json!({"spec": {"paused": pause}}))?;
    outln!("{name} {verb}");
    Ok(())
}
