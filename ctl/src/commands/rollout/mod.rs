//! `coracle rollout status|history|undo|pause|resume|restart` on deployments.

pub mod history;
pub mod pause;
pub mod restart;
pub mod status;
pub mod undo;

use super::target::{parse_target, Target};
use super::{decode, Context};
use crate::cli::{RolloutArgs, RolloutCommand};
use crate::error::CtlError;
use crate::selector::Selector;
use coracle_config::apps::{Deployment, ReplicaSet};
use coracle_config::{Object, ResourceInfo};

/// The annotation holding a replica set's (and deployment's) revision number.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The annotation `--record` used to fill, shown as CHANGE-CAUSE.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// Runs a `rollout` subcommand.
pub fn run(ctx: &Context, args: &RolloutArgs) -> Result<(), CtlError> {
    match &args.command {
        RolloutCommand::Status(a) => status::run(ctx, a),
        RolloutCommand::History(a) => history::run(ctx, a),
        RolloutCommand::Undo(a) => undo::run(ctx, a),
        RolloutCommand::Pause(a) => pause::run(ctx, a, true),
        RolloutCommand::Resume(a) => pause::run(ctx, a, false),
        RolloutCommand::Restart(a) => restart::run(ctx, a),
    }
}

/// The deployment a rollout verb names; other kinds get kubectl's "no … has been implemented".
pub fn deployment_target(resource: &[String], what: &str) -> Result<Target, CtlError> {
    let any = parse_target(resource, &["Deployment", "ReplicaSet", "Pod", "Service"], "roll out")?;
    if any.info.kind != "Deployment" {
        return Err(CtlError::client(format!("no {what} has been implemented for {}", qualified_kind(any.info))));
    }
    Ok(any)
}

/// `ReplicaSet.apps`, as kubectl names a kind in these errors.
fn qualified_kind(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.kind.to_string()
    } else {
        format!("{}.{}", info.kind, info.group)
    }
}

/// GETs and decodes the deployment.
pub fn get_deployment(ctx: &Context, target: &Target) -> Result<Deployment, CtlError> {
    match decode(target.info, &ctx.get(target.info, &ctx.namespace, &target.name)?)? {
        Object::Deployment(d) => Ok(d),
        other => Err(CtlError::client(format!("expected a Deployment, the server sent a {}", other.info().kind))),
    }
}

/// The replica sets the deployment controls: selected by its selector and carrying a
/// controller ownerReference to its uid, as kubectl's history viewer finds them.
pub fn owned_replica_sets(ctx: &Context, d: &Deployment) -> Result<Vec<ReplicaSet>, CtlError> {
    let info = ResourceInfo::lookup("rs").expect("replica sets are registered");
    let selector = Selector::parse(&d.spec.selector.to_sorted_query())?;
    let namespace = if d.metadata.namespace.is_empty() { ctx.namespace.as_str() } else { &d.metadata.namespace };
    let mut out = Vec::new();
    for item in ctx.list(info, Some(namespace), Some(&selector))? {
        if let Object::ReplicaSet(rs) = decode(info, &item)? {
            out.push(rs);
        }
    }
    Ok(controlled_by(out, d))
}

/// Keeps the replica sets whose controller is `d`.
pub fn controlled_by(sets: Vec<ReplicaSet>, d: &Deployment) -> Vec<ReplicaSet> {
    sets.into_iter()
        .filter(|rs| rs.metadata.owner_references.iter().any(|o| o.controller == Some(true) && o.uid == d.metadata.uid))
        .collect()
}

/// A replica set's revision, 0 when unset or unreadable.
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}
