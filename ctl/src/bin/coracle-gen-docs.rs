//! Writes coracle's shell completions (bash, zsh, fish) and man page into a directory, all
//! generated from the same clap definition the binary parses with, for the release tarball.
//! Usage: `cargo run -p coracle --features docs --bin coracle-gen-docs -- DIR`.

use clap::CommandFactory;
use clap_complete::Shell;
use coracle::cli::Cli;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: coracle-gen-docs DIR");
        return ExitCode::from(2);
    };
    match generate(&PathBuf::from(dir)) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the four files into `dir` (created if missing); returns their paths.
fn generate(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(|e| with_path(e, dir))?;
    let mut written = Vec::new();
    for (shell, name) in [(Shell::Bash, "coracle.bash"), (Shell::Zsh, "_coracle"), (Shell::Fish, "coracle.fish")] {
        let path = dir.join(name);
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "coracle", &mut out);
        write_file(&path, &out)?;
        written.push(path);
    }
    let path = dir.join("coracle.1");
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    // One page for the whole tool: each verb's synopsis and flags follow the top level's.
    for sub in Cli::command().get_subcommands() {
        render_subcommand(&mut out, "coracle", sub)?;
    }
    write_file(&path, &out)?;
    written.push(path);
    Ok(written)
}

/// Appends `SUBCOMMAND` sections (synopsis, description, options) for `cmd` and its children.
fn render_subcommand(out: &mut Vec<u8>, parent: &str, cmd: &clap::Command) -> io::Result<()> {
    if cmd.get_name() == "help" {
        return Ok(());
    }
    let full = format!("{parent} {}", cmd.get_name());
    let cmd = cmd.clone().bin_name(full.clone()).display_name(full.clone());
    writeln!(out, ".SH \"{}\"", full.to_uppercase())?;
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    for sub in cmd.get_subcommands() {
        render_subcommand(out, &full, sub)?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path).map_err(|e| with_path(e, path))?;
    f.write_all(bytes).map_err(|e| with_path(e, path))
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
