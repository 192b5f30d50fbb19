//! The command line, as a plain clap `Command` so completions and a man page can be
//! generated from the same definition (`Cli::command()`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// coracle: kubectl's verbs for a Coracle board.
#[derive(Debug, Parser)]
#[command(name = "coracle", about = "coracle controls the Coracle board daemon (coracled), the way kubectl does")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// If present, the namespace scope for this CLI request
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Path of coracled's unix socket
    #[arg(long, global = true, env = "CORACLE_SOCKET", default_value = "/run/coracle/coracle.sock")]
    pub socket: PathBuf,
    /// Address of coracled's TCP listener (http://HOST:PORT); overrides --socket
    #[arg(long, global = true, env = "CORACLE_SERVER")]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server
    #[arg(long, global = true, env = "CORACLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Number for the log level verbosity (6 logs requests, 8 and up traces)
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    pub verbosity: u8,
}

/// The verbs. New verbs add a variant here and a file in `commands/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a configuration to a resource by file name or stdin
    Apply(ApplyArgs),
    /// Create a resource from a file or from stdin
    Create(CreateArgs),
    /// Display one or many resources
    Get(GetArgs),
    /// Show details of a specific resource or group of resources
    Describe(DescribeArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector
    Delete(DeleteArgs),
    /// Print the client and server version information
    Version(VersionArgs),
}

/// `apply -f`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The files or directories that contain the configuration to apply (- for stdin)
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Must be "none" or "client"; "client" only prints what would be sent
    #[arg(long = "dry-run", default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: only "name" is supported here
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

/// `create -f`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The files or directories that contain the configuration to create (- for stdin)
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Must be "none" or "client"; "client" only prints what would be sent
    #[arg(long = "dry-run", default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml or name
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

/// `get TYPE[,TYPE…] [NAME…]` or `get TYPE/NAME…`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource type (po, deploy, rs, svc, ep, hpa, ev, ns, all) and optional names
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// Output format: wide, json, yaml or name
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin' and 'key'/'!key'
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// List the requested objects across all namespaces
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// When printing, show all labels as the last column
    #[arg(long = "show-labels")]
    pub show_labels: bool,
    /// When using the default output format, don't print headers
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// If the requested object does not exist the command will return exit code 0
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
}

/// `describe TYPE NAME…` or `describe TYPE/NAME`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Resource type and name(s)
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
}

/// `delete TYPE NAME… | -f FILE | TYPE --all`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Resource type and name(s)
    pub resources: Vec<String>,
    /// Files or directories with the objects to delete (- for stdin)
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Delete all resources of the type in the namespace
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Seconds given to the resource to terminate gracefully; -1 uses the object's default
    #[arg(long = "grace-period", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// If true, resources are signaled for immediate shutdown (same as --grace-period=1)
    #[arg(long)]
    pub now: bool,
    /// Immediate removal (with --grace-period=0)
    #[arg(long)]
    pub force: bool,
    /// "background", "foreground" or "orphan": how dependents are deleted
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// If true, wait for resources to be gone before returning
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub wait: bool,
    /// How long to wait for the deletion (e.g. 30s); 0 waits a week
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Treat "resource not found" as a successful delete
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
}

/// `version [--client]`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// If true, shows client version only (no server required)
    #[arg(long)]
    pub client: bool,
    /// One of 'yaml' or 'json'
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubectl_style_flags_parse() {
        let cli =
            Cli::try_parse_from(["coracle", "-n", "kube-system", "get", "po", "-o", "wide", "-l", "app=web"]).unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("kube-system"));
        let Command::Get(get) = cli.command else { panic!("not get") };
        assert_eq!(get.resources, ["po"]);
        assert_eq!(get.output.as_deref(), Some("wide"));

        let cli =
            Cli::try_parse_from(["coracle", "delete", "deploy", "web", "--wait=false", "--grace-period=0"]).unwrap();
        let Command::Delete(del) = cli.command else { panic!("not delete") };
        assert!(!del.wait);
        assert_eq!(del.grace_period, 0);

        let cli = Cli::try_parse_from(["coracle", "apply", "-f", "-", "--dry-run=client"]).unwrap();
        let Command::Apply(apply) = cli.command else { panic!("not apply") };
        assert_eq!((apply.filenames.as_slice(), apply.dry_run.as_str()), (&["-".to_string()][..], "client"));
    }
}
