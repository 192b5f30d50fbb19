//! The ctl's `main`, as a function: the `coracle` binary calls it, and so does `coracled`
//! when it is invoked under the name `coracle` (one multi-call file on the boards).

use crate::cli::Cli;
use crate::CtlError;
use clap::Parser;

/// Parses the command line, runs the verb and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let level = match cli.global.verbosity {
        0..=5 => "warn",
        6..=7 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match crate::commands::run(cli) {
        Ok(()) => 0,
        Err(err) => {
            if !matches!(err, CtlError::Reported) {
                errln!("{err}");
            }
            1
        }
    }
}
