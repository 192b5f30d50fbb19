//! The crate graph is the architecture picture (docs/ARCHITECTURE.md): each layer may use
//! only the layers below it. Cargo already refuses cycles; this test refuses an arrow that
//! would run back up without one (say, the API depending on the node), by reading every
//! crate's manifest.

use std::collections::BTreeSet;
use std::path::Path;

/// Each crate, bottom up, with the project crates its library may depend on.
const LAYERS: &[(&str, &str, &[&str])] = &[
    ("config", "coracle-config", &[]),
    ("wire", "coracle-wire", &[]),
    ("watchdog", "coracle-watchdog", &[]),
    ("store", "coracle-store", &["coracle-config"]),
    ("runtime", "coracle-runtime", &["coracle-config", "coracle-watchdog"]),
    ("net", "coracle-net", &["coracle-config", "coracle-store", "coracle-runtime"]),
    ("proxy", "coracle-proxy", &["coracle-config", "coracle-store", "coracle-net"]),
    ("controllers", "coracle-controllers", &["coracle-config", "coracle-store", "coracle-watchdog"]),
    (
        "node",
        "coracle-node",
        &["coracle-config", "coracle-store", "coracle-runtime", "coracle-net", "coracle-watchdog"],
    ),
    (
        "api",
        "coracle-api",
        &["coracle-config", "coracle-wire", "coracle-store", "coracle-runtime", "coracle-net", "coracle-proxy"],
    ),
    ("ctl", "coracle", &["coracle-config", "coracle-wire"]),
];

/// The `coracle*` names in a manifest's `[dependencies]` table (not dev-dependencies: tests
/// may use helpers from anywhere).
fn project_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_dependencies = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
        if name.starts_with("coracle") {
            found.insert(name.to_string());
        }
    }
    found
}

#[test]
fn every_crate_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut wrong = Vec::new();
    for (dir, name, allowed) in LAYERS {
        let manifest = std::fs::read_to_string(root.join(dir).join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{name}\"")), "{dir}/Cargo.toml is not {name}");
        for dependency in project_dependencies(&manifest) {
            if !allowed.contains(&dependency.as_str()) {
                wrong.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that run back up: {wrong:?}");
}

#[test]
fn the_layer_check_reads_dependencies_and_not_dev_dependencies() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\ncoracle-store.workspace = true\nlog = \"0.4\"\ncoracle-net = { path = \"../net\" }\n\n[dev-dependencies]\ncoracle-node.workspace = true\n";
    let found: Vec<String> = project_dependencies(manifest).into_iter().collect();
    assert_eq!(found, ["coracle-net", "coracle-store"]);
}
