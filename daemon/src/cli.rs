//! coracled's command line. Every flag is also a `CORACLE_*` environment variable; a flag
//! beats the variable, which beats the config file, which beats the default.

use clap::Parser;
use std::path::PathBuf;

/// `coracled [--config FILE] [--data-dir DIR] [--socket PATH] [--manifests DIR] [--listen ADDR:PORT --token-file FILE]`
#[derive(Parser, Debug, Default, PartialEq, Eq)]
#[command(name = "coracled", version, about = "Kubernetes' workload model on one board: the Coracle daemon")]
pub struct Cli {
    /// Settings file (YAML, every key optional)
    #[arg(long, env = "CORACLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where objects, images and container state live [default: /var/lib/coracle]
    #[arg(long, env = "CORACLE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The API's unix socket [default: /run/coracle/coracle.sock]
    #[arg(long, env = "CORACLE_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Directory of manifests applied at start and followed [default: /etc/coracle/manifests]
    #[arg(long = "manifests", env = "CORACLE_MANIFESTS", value_name = "DIR")]
    pub manifests_dir: Option<PathBuf>,
    /// Also serve the API on TCP ADDR:PORT (requires --token-file)
    #[arg(long, env = "CORACLE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// File holding the bearer token TCP clients must send
    #[arg(long, env = "CORACLE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "coracled",
            "--data-dir",
            "/d",
            "--socket",
            "/s.sock",
            "--manifests",
            "/m",
            "--listen",
            "127.0.0.1:6443",
            "--token-file",
            "/t",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(cli.manifests_dir, Some(PathBuf::from("/m")));
        assert_eq!(cli.listen.as_deref(), Some("127.0.0.1:6443"));
    }

    #[test]
    fn unknown_flags_are_refused() {
        assert!(Cli::try_parse_from(["coracled", "--bogus"]).is_err());
    }
}
