//! The docs generator writes completions for bash, zsh and fish and a man page that cover
//! every verb. Runs with `cargo test -p coracle --features docs --test gen_docs`.
#![cfg(feature = "docs")]

use std::path::Path;
use std::process::Command;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn writes_completions_and_a_man_page_for_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coracle-gen-docs")).arg(dir.path().join("docs")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs = dir.path().join("docs");
    let (bash, zsh, fish, man) =
        (read(&docs, "coracle.bash"), read(&docs, "_coracle"), read(&docs, "coracle.fish"), read(&docs, "coracle.1"));
    assert!(zsh.starts_with("#compdef coracle"), "{}", &zsh[..40]);
    assert!(man.contains(".TH coracle 1"), "{}", &man[..200]);
    for verb in ["apply", "get", "scale", "autoscale", "expose", "rollout", "logs", "top", "image"] {
        for (what, text) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish), ("man", &man)] {
            assert!(text.contains(verb), "{what} lacks {verb}");
        }
    }
    assert!(man.contains(".SH \"CORACLE ROLLOUT STATUS\""));
    assert!(man.contains("\\-\\-to\\-revision"), "flags of nested verbs are documented");
    assert!(fish.contains("-l replicas"));

    // The shells themselves accept what was generated, where they are installed.
    for (shell, file) in [("bash", "coracle.bash"), ("zsh", "_coracle"), ("fish", "coracle.fish")] {
        match Command::new(shell).arg("-n").arg(docs.join(file)).output() {
            Ok(o) => assert!(o.status.success(), "{shell} -n {file}: {}", String::from_utf8_lossy(&o.stderr)),
            Err(_) => eprintln!("skipping the {shell} syntax check: {shell} is not installed"),
        }
    }
}

#[test]
fn a_missing_argument_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_coracle-gen-docs")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: coracle-gen-docs DIR"));
}
