//! `create`'s forms and their flags: from manifests, or a ConfigMap or Secret from values.

use super::ManifestArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `create -f FILE`, or `create configmap|secret …` from values.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    #[command(subcommand)]
    pub kind: Option<CreateKind>,
}

/// What `create` makes from values rather than manifests.
#[derive(Debug, Subcommand)]
pub enum CreateKind {
    /// Create a config map from a local file, directory or literal value
    #[command(visible_alias = "cm")]
    Configmap(CreateConfigMapArgs),
    /// Create a secret using a specified subcommand
    #[command(subcommand)]
    Secret(CreateSecretKind),
}

/// `create secret generic|docker-registry|tls`.
#[derive(Debug, Subcommand)]
pub enum CreateSecretKind {
    /// Create a secret from a local file, directory, or literal value
    Generic(CreateGenericSecretArgs),
    /// Create a secret for use with a Docker registry
    DockerRegistry(CreateDockerRegistryArgs),
    /// Create a TLS secret
    Tls(CreateTlsSecretArgs),
}

/// `--dry-run` and `-o`, as every `create` subcommand takes them.
#[derive(Debug, Args)]
pub struct CreateOutputArgs {
    /// Must be "none", "server", or "client"; "client" only prints what would be sent
    #[arg(long = "dry-run", default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml or name
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

/// Where a config map's or secret's keys and values come from.
#[derive(Debug, Args)]
pub struct DataSourceArgs {
    /// Specify a key and literal value to insert (i.e. mykey=somevalue)
    #[arg(long = "from-literal")]
    pub from_literal: Vec<String>,
    /// Key file: a file's name (or the given key=) is the key, its content the value; a directory adds each of its files
    #[arg(long = "from-file")]
    pub from_file: Vec<String>,
    /// Specify the path to a file to read lines of key=val pairs from
    #[arg(long = "from-env-file")]
    pub from_env_file: Vec<String>,
}

/// `create configmap NAME [--from-file=[key=]source] [--from-literal=key1=value1] …`.
#[derive(Debug, Args)]
pub struct CreateConfigMapArgs {
    pub name: String,
    #[command(flatten)]
    pub sources: DataSourceArgs,
    #[command(flatten)]
    pub output: CreateOutputArgs,
}

/// `create secret generic NAME [--type=string] [--from-file=…] [--from-literal=…] …`.
#[derive(Debug, Args)]
pub struct CreateGenericSecretArgs {
    pub name: String,
    #[command(flatten)]
    pub sources: DataSourceArgs,
    /// The type of secret to create
    #[arg(long = "type")]
    pub type_: Option<String>,
    #[command(flatten)]
    pub output: CreateOutputArgs,
}

/// `create secret docker-registry NAME --docker-username=… --docker-password=… …`.
#[derive(Debug, Args)]
pub struct CreateDockerRegistryArgs {
    pub name: String,
    /// Server location for Docker registry
    #[arg(long = "docker-server", default_value = "https://index.docker.io/v1/")]
    pub server: String,
    /// Username for Docker registry authentication
    #[arg(long = "docker-username")]
    pub username: Option<String>,
    /// Password for Docker registry authentication
    #[arg(long = "docker-password")]
    pub password: Option<String>,
    /// Email for Docker registry
    #[arg(long = "docker-email")]
    pub email: Option<String>,
    /// Key files (a .dockerconfigjson), as for generic secrets
    #[arg(long = "from-file")]
    pub from_file: Vec<String>,
    #[command(flatten)]
    pub output: CreateOutputArgs,
}

/// `create secret tls NAME --cert=path/to/cert/file --key=path/to/key/file`.
#[derive(Debug, Args)]
pub struct CreateTlsSecretArgs {
    pub name: String,
    /// Path to PEM encoded public key certificate
    #[arg(long = "cert")]
    pub cert: Option<PathBuf>,
    /// Path to private key associated with given certificate
    #[arg(long = "key")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub output: CreateOutputArgs,
}
