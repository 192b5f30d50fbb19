//! coracle: kubectl verbs against coracled.

use clap::Parser;
use coracle::cli::Cli;
use coracle::CtlError;

fn main() {
    let cli = Cli::parse();
    let level = match cli.global.verbosity {
        0..=5 => "warn",
        6..=7 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if let Err(err) = coracle::commands::run(cli) {
        if !matches!(err, CtlError::Reported) {
            eprintln!("{err}");
        }
        std::process::exit(1);
    }
}
