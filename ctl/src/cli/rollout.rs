//! `rollout`'s verbs and their flags.

use clap::{Args, Subcommand};

/// `rollout SUBCOMMAND`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

/// The rollout verbs.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show the status of the rollout
    Status(RolloutStatusArgs),
    /// View rollout history
    History(RolloutHistoryArgs),
    /// Undo a previous rollout
    Undo(RolloutUndoArgs),
    /// Mark the provided resource as paused
    Pause(RolloutTargetArgs),
    /// Resume a paused resource
    Resume(RolloutTargetArgs),
    /// Restart a resource
    Restart(RolloutTargetArgs),
}

/// The deployment a rollout verb acts on.
#[derive(Debug, Args)]
pub struct RolloutTargetArgs {
    /// The deployment: TYPE/NAME or TYPE NAME
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
}

/// `rollout status`.
#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    #[command(flatten)]
    pub target: RolloutTargetArgs,
    /// Watch the status of the rollout until it's done
    #[arg(short = 'w', long, default_value = "true", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub watch: bool,
    /// The length of time to wait before ending watch (e.g. 5m); zero means never
    #[arg(long, default_value = "0s")]
    pub timeout: String,
}

/// `rollout history`.
#[derive(Debug, Args)]
pub struct RolloutHistoryArgs {
    #[command(flatten)]
    pub target: RolloutTargetArgs,
    /// See the details, including the pod template, of the revision specified
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

/// `rollout undo`.
#[derive(Debug, Args)]
pub struct RolloutUndoArgs {
    #[command(flatten)]
    pub target: RolloutTargetArgs,
    /// The revision to roll back to; 0 rolls back to the previous revision
    #[arg(long = "to-revision", default_value_t = 0)]
    pub to_revision: i64,
}
