//! `image`'s verbs (the board's image store) and their flags.

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `image SUBCOMMAND`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// The image store verbs.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Load images from a docker-save or OCI archive (- for stdin)
    Load(ImageLoadArgs),
    /// Import a root filesystem directory on the board as an image
    Import(ImageImportArgs),
    /// List the stored images
    #[command(visible_alias = "list")]
    Ls(ImageLsArgs),
    /// Remove images by reference or digest
    #[command(visible_alias = "remove")]
    Rm(ImageRmArgs),
}

/// `image load FILE|-`.
#[derive(Debug, Args)]
pub struct ImageLoadArgs {
    /// The archive (tar, optionally gzip or zstd compressed); - reads stdin
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
    /// Read from this archive instead of the positional argument
    #[arg(short = 'i', long = "input", conflicts_with = "file")]
    pub input: Option<String>,
}

/// `image import DIR NAME:TAG`.
#[derive(Debug, Args)]
pub struct ImageImportArgs {
    /// The root filesystem directory (on the board, where coracled runs)
    pub dir: PathBuf,
    /// The reference to store it under, e.g. myapp:1.0
    pub reference: String,
}

/// `image ls`.
#[derive(Debug, Args)]
pub struct ImageLsArgs {
    /// Print only the image references
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `image rm REF…`.
#[derive(Debug, Args)]
pub struct ImageRmArgs {
    /// Image references or digests
    #[arg(required = true)]
    pub references: Vec<String>,
}
