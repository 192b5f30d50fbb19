//! The daemon's binary is also the ctl when invoked as `coracle` (the boards ship one file
//! under both names); under any other name it stays the daemon.

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

/// A hard link to the built coracled named `name`, as cross/build and install.sh make.
fn linked_as(dir: &Path, name: &str) -> std::path::PathBuf {
    let link = dir.join(name);
    std::fs::hard_link(env!("CARGO_BIN_EXE_coracled"), &link)
        .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_coracled"), &link).map(|_| ()))
        .unwrap_or_else(|e| panic!("linking {}: {e}", link.display()));
    link
}

#[test]
fn invoked_as_coracle_it_is_the_ctl() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = linked_as(dir.path(), "coracle");
    let out = run(&ctl, &["version", "--client"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "coracle version --client: {out:?}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "coracle version --client printed {text}");

    let out = run(&ctl, &["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("kubectl") && help.contains("apply"), "the ctl's help, not the daemon's: {help}");
}

#[test]
fn under_its_own_name_it_is_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["coracled", "coracle-board"] {
        let daemon = linked_as(dir.path(), name);
        let out = run(&daemon, &["--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && help.contains("--data-dir"), "{name} --help: {help}");
    }
}
