//! The command line, as a plain clap `Command` so completions and a man page can be
//! generated from the same definition (`Cli::command()`).

mod create;
mod image;
mod rollout;

pub use create::{
    CreateArgs, CreateConfigMapArgs, CreateDockerRegistryArgs, CreateGenericSecretArgs, CreateKind, CreateOutputArgs,
    CreateSecretKind, CreateTlsSecretArgs, DataSourceArgs,
};
pub use image::{ImageArgs, ImageCommand, ImageImportArgs, ImageLoadArgs, ImageLsArgs, ImageRmArgs};
pub use rollout::{
    RolloutArgs, RolloutCommand, RolloutHistoryArgs, RolloutStatusArgs, RolloutTargetArgs, RolloutUndoArgs,
};

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
    Apply(ManifestArgs),
    /// Create a resource from a file or from stdin, or a config map or secret from values
    Create(CreateArgs),
    /// Display one or many resources
    Get(GetArgs),
    /// Show details of a specific resource or group of resources
    Describe(DescribeArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector
    Delete(DeleteArgs),
    /// Print the client and server version information
    Version(VersionArgs),
    /// Set a new size for a deployment or replica set
    Scale(ScaleArgs),
    /// Auto-scale a deployment or replica set
    Autoscale(AutoscaleArgs),
    /// Take a deployment, replica set, pod or service and expose it as a new service
    Expose(ExposeArgs),
    /// Run a particular image in a pod
    Run(RunArgs),
    /// Set specific features on objects
    Set(SetArgs),
    /// Manage the rollout of a deployment
    Rollout(RolloutArgs),
    /// Print the logs for a container in a pod
    Logs(LogsArgs),
    /// Forward one or more local ports to a pod
    PortForward(PortForwardArgs),
    /// Display resource (CPU/memory) usage
    Top(TopArgs),
    /// Manage the images in coracled's image store
    Image(ImageArgs),
}

/// `apply -f` and `create -f`: the manifests to send.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The files or directories that contain the configuration (- for stdin)
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Must be "none" or "client"; "client" only prints what would be sent
    #[arg(long = "dry-run", default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml or name for create; only name for apply
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// What the server does with fields it does not know or Coracle does not support:
    /// strict (or true) refuses them, warn drops them with a warning, ignore (or false)
    /// drops unknown ones silently
    #[arg(long = "validate", default_value = "strict", num_args = 0..=1, default_missing_value = "strict")]
    pub validate: String,
}

/// `get TYPE[,TYPE…] [NAME…]` or `get TYPE/NAME…`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource type (po, deploy, rs, svc, ep, hpa, ev, ns, cm, secret, sa, all) and optional names
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
    /// After listing/getting the requested objects, watch for changes
    #[arg(short = 'w', long = "watch")]
    pub watch: bool,
    /// Watch for changes to the requested objects, without listing/getting first
    #[arg(long = "watch-only")]
    pub watch_only: bool,
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

/// `scale TYPE/NAME --replicas=N`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The deployment or replica set: TYPE/NAME or TYPE NAME
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The new desired number of replicas
    #[arg(long, required = true)]
    pub replicas: i32,
    /// Precondition for current size: scale only if the current replicas match (-1: no check)
    #[arg(long = "current-replicas", default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i32,
}

/// `autoscale TYPE/NAME --max=M [--min=N] [--cpu-percent=P]`.
#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// The deployment or replica set: TYPE/NAME or TYPE NAME
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The lower limit for the number of pods (-1: the server's default)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub min: i32,
    /// The upper limit for the number of pods
    #[arg(long, required = true)]
    pub max: i32,
    /// The target average CPU utilization over all the pods (-1: the server's default)
    #[arg(long = "cpu-percent", default_value_t = -1, allow_negative_numbers = true)]
    pub cpu_percent: i32,
    /// The name of the autoscaler (default: the target's name)
    #[arg(long)]
    pub name: Option<String>,
}

/// `expose TYPE/NAME --port=P`.
#[derive(Debug, Args)]
pub struct ExposeArgs {
    /// The deployment, replica set, pod or service: TYPE/NAME or TYPE NAME
    #[arg(required = true, num_args = 1..=2)]
    pub resource: Vec<String>,
    /// The port that the service should serve on (default: the target's first port)
    #[arg(long)]
    pub port: Option<i32>,
    /// Name or number of the port on the pods that the service directs traffic to
    #[arg(long = "target-port")]
    pub target_port: Option<String>,
    /// Type for this service: ClusterIP, NodePort or LoadBalancer
    #[arg(long = "type")]
    pub type_: Option<String>,
    /// The name of the new service (default: the target's name)
    #[arg(long)]
    pub name: Option<String>,
    /// The network protocol for the service: TCP, UDP or SCTP
    #[arg(long)]
    pub protocol: Option<String>,
    /// Labels for the service (default: the target's labels), as key=value,key=value
    #[arg(short = 'l', long = "labels")]
    pub labels: Option<String>,
    /// A label selector for the service (default: from the target)
    #[arg(long)]
    pub selector: Option<String>,
}

/// `run NAME --image=I [-- COMMAND ARGS…]`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pod's name
    pub name: String,
    /// The image for the container to run
    #[arg(long, required = true)]
    pub image: String,
    /// The port that this container exposes
    #[arg(long)]
    pub port: Option<i32>,
    /// Environment variables to set in the container, as NAME=VALUE
    #[arg(long)]
    pub env: Vec<String>,
    /// Labels to apply to the pod, as key=value,key=value (default: run=NAME)
    #[arg(short = 'l', long = "labels")]
    pub labels: Option<String>,
    /// The pod's restart policy: Always, OnFailure or Never
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// If true and extra arguments are present, use them as the command instead of the args
    #[arg(long)]
    pub command: bool,
    /// The image pull policy for the container
    #[arg(long = "image-pull-policy")]
    pub image_pull_policy: Option<String>,
    /// Must be "none", "server" or "client"; "client" only prints what would be sent
    #[arg(long = "dry-run", default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: String,
    /// Output format: json, yaml or name
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Arguments for the container (after --)
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// `set SUBCOMMAND`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(subcommand)]
    pub command: SetCommand,
}

/// What `set` can change.
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Update the image of a pod template
    Image(SetImageArgs),
}

/// `set image TYPE/NAME CONTAINER=IMAGE…`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// TYPE/NAME (or TYPE NAME) followed by CONTAINER=IMAGE pairs ('*' sets every container)
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
}

/// `logs POD|TYPE/NAME [-c C]`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod, or TYPE/NAME of a deployment or replica set (its first pod)
    pub target: String,
    /// Print the logs of this container
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Specify if the logs should be streamed
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of recent log file to display (-1: all)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Print the logs for the previous instance of the container
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Include timestamps on each line in the log output
    #[arg(long)]
    pub timestamps: bool,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h
    #[arg(long)]
    pub since: Option<String>,
}

/// `port-forward TYPE/NAME [LOCAL:]REMOTE…`.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// The pod, or TYPE/NAME of a service, deployment or replica set (one of its Ready pods)
    pub target: String,
    /// Ports as [LOCAL_PORT:]REMOTE_PORT; an empty LOCAL_PORT picks a free one
    #[arg(required = true)]
    pub ports: Vec<String>,
    /// Addresses to listen on (comma separated); localhost means 127.0.0.1 and ::1
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
}

/// `top SUBCOMMAND`.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(subcommand)]
    pub command: TopCommand,
}

/// What `top` measures.
#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of pods
    #[command(visible_aliases = ["pods", "po"])]
    Pod(TopPodArgs),
    /// Display resource (CPU/memory) usage of the node
    #[command(visible_aliases = ["nodes", "no"])]
    Node(TopNodeArgs),
}

/// `top pod [NAME]`.
#[derive(Debug, Args)]
pub struct TopPodArgs {
    /// Show only this pod
    pub name: Option<String>,
    /// List the pods' usage across all namespaces
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Print usage of the containers within each pod
    #[arg(long)]
    pub containers: bool,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// If present, print output without headers
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// Sort by cpu or memory
    #[arg(long = "sort-by")]
    pub sort_by: Option<String>,
}

/// `top node [NAME]`.
#[derive(Debug, Args)]
pub struct TopNodeArgs {
    /// Show only this node
    pub name: Option<String>,
    /// If present, print output without headers
    #[arg(long = "no-headers")]
    pub no_headers: bool,
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

        let cli = Cli::try_parse_from(["coracle", "create", "-f", "a.yaml", "-o", "json"]).unwrap();
        let Command::Create(create) = cli.command else { panic!("not create") };
        assert_eq!((create.manifests.dry_run.as_str(), create.manifests.output.as_deref()), ("none", Some("json")));
        assert!(create.kind.is_none());

        let cli = Cli::try_parse_from([
            "coracle",
            "create",
            "cm",
            "app",
            "--from-literal=a=1",
            "--from-literal",
            "b=2",
            "--from-file=k=f.txt",
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .unwrap();
        let Command::Create(CreateArgs { kind: Some(CreateKind::Configmap(cm)), .. }) = cli.command else {
            panic!("not create configmap")
        };
        assert_eq!((cm.name.as_str(), cm.sources.from_literal.len(), cm.output.dry_run.as_str()), ("app", 2, "client"));

        let cli = Cli::try_parse_from(["coracle", "create", "secret", "tls", "t", "--cert", "c.pem", "--key", "k.pem"])
            .unwrap();
        let Command::Create(CreateArgs { kind: Some(CreateKind::Secret(CreateSecretKind::Tls(tls))), .. }) =
            cli.command
        else {
            panic!("not create secret tls")
        };
        assert_eq!(tls.cert.as_deref(), Some(std::path::Path::new("c.pem")));
        assert!(Cli::try_parse_from(["coracle", "create"]).is_err(), "-f or a kind is required");

        let cli = Cli::try_parse_from(["coracle", "rollout", "undo", "deployment", "web", "--to-revision=2"]).unwrap();
        let Command::Rollout(RolloutArgs { command: RolloutCommand::Undo(undo) }) = cli.command else {
            panic!("not rollout undo")
        };
        assert_eq!(
            (undo.target.resource.as_slice(), undo.to_revision),
            (&["deployment".to_string(), "web".into()][..], 2)
        );
    }
}
