//! `coracle scale deploy/NAME --replicas=N`: a merge patch on the `/scale` subresource, as
//! kubectl sends it, after checking `--current-replicas` against the live Scale.

use super::target::parse_target;
use super::Context;
use crate::cli::ScaleArgs;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use coracle_config::autoscaling::Scale;
use serde_json::json;

/// The kinds with a `/scale` subresource.
pub const SCALABLE: &[&str] = &["Deployment", "ReplicaSet"];

/// Runs `scale`.
pub fn run(ctx: &Context, args: &ScaleArgs) -> Result<(), CtlError> {
    if args.replicas < 0 {
        return Err(CtlError::client(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        ));
    }
    let target = parse_target(&args.resource, SCALABLE, "scale")?;
    let path = format!("{}/scale", target.info.object_path(&ctx.namespace, &target.name));
    if args.current_replicas >= 0 {
        let live = Scale::from_json(ctx.client.get(&path)?)
            .map_err(|e| CtlError::client(format!("decoding the Scale of {}: {e}", target.name)))?;
        check_precondition(args.current_replicas, live.spec.replicas.unwrap_or(0))?;
    }
    ctx.client.patch(&path, "application/merge-patch+json", &scale_patch(args.replicas))?;
    outln!("{} scaled", resource_name(target.info, &target.name));
    Ok(())
}

/// The body kubectl sends.
pub fn scale_patch(replicas: i32) -> serde_json::Value {
    json!({"spec": {"replicas": replicas}})
}

/// `--current-replicas`: kubectl's precondition error when the live size differs.
fn check_precondition(expected: i32, actual: i32) -> Result<(), CtlError> {
    if expected == actual {
        Ok(())
    } else {
        Err(CtlError::client(format!("Expected replicas to be {expected}, was {actual}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_and_preconditions_read_like_kubectl() {
        assert_eq!(scale_patch(5).to_string(), r#"{"spec":{"replicas":5}}"#);
        assert!(check_precondition(3, 3).is_ok());
        assert_eq!(check_precondition(3, 2).unwrap_err().to_string(), "error: Expected replicas to be 3, was 2");
    }
}
