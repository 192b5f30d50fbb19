//! Reading `-f` sources (files, directories of *.yaml/*.yml/*.json, `-` for stdin) into
//! typed objects.

use crate::error::CtlError;
use coracle_config::manifest::{decode_object, split_objects, ManifestError};
use coracle_config::Object;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// One object from a manifest, with the file it came from (for kubectl's error context).
#[derive(Clone, Debug)]
pub struct Manifest {
    pub source: String,
    /// The object decoded here, for its kind, name and namespace.
    pub object: Object,
    /// The object as written, which is what is sent: the server, not the ctl, decides what
    /// becomes of fields the ctl's types lack (`--validate`), as with kubectl.
    pub raw: Value,
}

/// Reads and decodes every object in `filenames`, in order (`verb` names the command in the
/// error for no objects). Fields dropped by the local decoding are not reported here: the
/// raw object goes to the server, which refuses or warns about them.
pub fn read_manifests(filenames: &[String], verb: &str) -> Result<Vec<Manifest>, CtlError> {
    let mut out = Vec::new();
    for name in filenames {
        for (source, text) in read_sources(name)? {
            let parse_error = |e: ManifestError| CtlError::client(format!("error parsing {source}: {e}"));
            for (where_, raw) in split_objects(&text).map_err(parse_error)? {
                let parsed = decode_object(raw.clone()).map_err(|e| parse_error(e.within(&where_)))?;
                out.push(Manifest { source: source.clone(), object: parsed.object, raw });
            }
        }
    }
    if out.is_empty() {
        return Err(CtlError::client(format!("no objects passed to {verb}")));
    }
    Ok(out)
}

/// `(name, text)` for one `-f` argument.
fn read_sources(name: &str) -> Result<Vec<(String, String)>, CtlError> {
    if name == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| CtlError::client(format!("reading stdin: {e}")))?;
        return Ok(vec![("STDIN".into(), text)]);
    }
    if name.starts_with("http://") || name.starts_with("https://") {
        return Err(CtlError::client(format!(
            "{name}: reading manifests from URLs is not supported; download it first"
        )));
    }
    let path = Path::new(name);
    let meta =
        std::fs::metadata(path).map_err(|e| CtlError::client(format!("the path {name:?} does not exist: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![(name.to_string(), read_file(path)?)]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| CtlError::client(format!("reading directory {name}: {e}")))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
        .collect();
    files.sort();
    files.into_iter().map(|p| Ok((p.display().to_string(), read_file(&p)?))).collect()
}

fn read_file(path: &Path) -> Result<String, CtlError> {
    std::fs::read_to_string(path).map_err(|e| CtlError::client(format!("reading {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_yield_their_manifests_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let pod = |name: &str| {
            format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
        };
        std::fs::write(dir.path().join("b.yaml"), pod("b")).unwrap();
        std::fs::write(dir.path().join("a.yml"), format!("{}---\n{}", pod("a1"), pod("a2"))).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let got = read_manifests(&[dir.path().display().to_string()], "apply").unwrap();
        let names: Vec<&str> = got.iter().map(|m| m.object.metadata().name.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b"]);
        assert!(got[2].source.ends_with("b.yaml"));
    }

    #[test]
    fn missing_files_and_bad_yaml_are_errors() {
        let err = read_manifests(&["/nonexistent/x.yaml".into()], "apply").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/x.yaml"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "kind: [").unwrap();
        let err = read_manifests(&[bad.display().to_string()], "apply").unwrap_err().to_string();
        assert!(err.starts_with(&format!("error: error parsing {}", bad.display())), "{err}");
    }
}
