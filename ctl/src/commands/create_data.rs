//! The keys and values of `create configmap` and `create secret generic`, read as kubectl
//! reads them: `--from-literal=key=value`, `--from-file=[key=]path` (a directory adds each
//! regular file in it, named after the file), `--from-env-file=path` (`KEY=value` lines).

use crate::cli::DataSourceArgs;
use crate::error::CtlError;
use coracle_config::validation::names;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Refuses a value beyond what the server stores (1 MiB) before reading all of it.
const MAX_FILE: u64 = coracle_config::validation::MAX_CONFIG_SIZE as u64;

/// Keys and raw values, in key order; `kind` ("ConfigMap" or "Secret") and `name` word the
/// errors as kubectl does.
pub fn read_sources(sources: &DataSourceArgs, kind: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>, CtlError> {
    let mut data = BTreeMap::new();
    for literal in &sources.from_literal {
        let Some((key, value)) = literal.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(CtlError::client(format!("invalid literal source {literal}, expected key=value")));
        };
        insert(&mut data, key, value.as_bytes().to_vec(), kind, name)?;
    }
    for source in &sources.from_file {
        from_file(&mut data, source, kind, name)?;
    }
    for path in &sources.from_env_file {
        from_env_file(&mut data, Path::new(path), kind, name)?;
    }
    Ok(data)
}

/// Adds `key`, refusing an invalid or repeated one.
pub fn insert(
    data: &mut BTreeMap<String, Vec<u8>>,
    key: &str,
    value: Vec<u8>,
    kind: &str,
    name: &str,
) -> Result<(), CtlError> {
    let problems = names::config_map_key(key);
    if !problems.is_empty() {
        return Err(CtlError::client(format!("{key:?} is not a valid key name for a {kind}: {}", problems.join(";"))));
    }
    if data.contains_key(key) {
        return Err(CtlError::client(format!(
            "cannot add key {key}, another key by that name already exists in Data for {kind} {name:?}"
        )));
    }
    data.insert(key.to_string(), value);
    Ok(())
}

/// `[key=]path`: a file under its own name or `key`, or each file of a directory.
pub fn from_file(data: &mut BTreeMap<String, Vec<u8>>, source: &str, kind: &str, name: &str) -> Result<(), CtlError> {
    let (key, path) = match source.split_once('=') {
        Some((key, path)) if !key.is_empty() && !path.is_empty() => (Some(key), Path::new(path)),
        Some(_) => return Err(CtlError::client(format!("key names or file paths cannot be empty: {source:?}"))),
        None => (None, Path::new(source)),
    };
    let meta = fs::metadata(path).map_err(|e| CtlError::client(format!("error reading {}: {e}", path.display())))?;
    if meta.is_dir() {
        if key.is_some() {
            return Err(CtlError::client("cannot give a key name for a directory path".to_string()));
        }
        let mut entries: Vec<_> = fs::read_dir(path)
            .map_err(|e| CtlError::client(format!("error listing files in {}: {e}", path.display())))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            // Sub-directories, devices and the like are skipped, as kubectl skips them.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let file_key = entry.file_name().to_string_lossy().into_owned();
            insert(data, &file_key, read_bounded(&entry.path())?, kind, name)?;
        }
        return Ok(());
    }
    let key = match key {
        Some(k) => k.to_string(),
        None => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    insert(data, &key, read_bounded(path)?, kind, name)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, CtlError> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|e| CtlError::client(format!("error reading {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CtlError::client(format!("error reading {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(CtlError::client(format!(
            "{} is larger than the {MAX_FILE} bytes a {} may hold",
            path.display(),
            "ConfigMap or Secret"
        )));
    }
    Ok(bytes)
}

/// `KEY=value` lines; `#` comments and blank lines skipped; a bare `KEY` takes the value
/// of the ctl's own environment variable.
pub fn from_env_file(
    data: &mut BTreeMap<String, Vec<u8>>,
    path: &Path,
    kind: &str,
    name: &str,
) -> Result<(), CtlError> {
    let bytes = read_bounded(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CtlError::client(format!("env file {} contains invalid utf8", path.display())))?;
    for (i, raw) in text.lines().enumerate() {
        let line = if i == 0 { raw.trim_start_matches('\u{feff}') } else { raw };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => (line, std::env::var(line).unwrap_or_default()),
        };
        let problems = names::env_var_name(key);
        if !problems.is_empty() {
            return Err(CtlError::client(format!("{key:?} is not a valid key name: {}", problems.join(";"))));
        }
        insert(data, key, value.into_bytes(), kind, name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(literal: &[&str], file: &[&str], env: &[&str]) -> DataSourceArgs {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        DataSourceArgs { from_literal: own(literal), from_file: own(file), from_env_file: own(env) }
    }

    #[test]
    fn literals_files_directories_and_env_files() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        fs::create_dir(&conf).unwrap();
        fs::write(conf.join("a.properties"), "x=1\n").unwrap();
        fs::write(conf.join("b.bin"), [0u8, 255]).unwrap();
        fs::create_dir(conf.join("sub")).unwrap();
        let env = dir.path().join("app.env");
        fs::write(&env, "\u{feff}# comment\n\nLEVEL=debug\n  MODE=a=b\n").unwrap();
        let single = dir.path().join("single.txt");
        fs::write(&single, "hello").unwrap();
        let data = read_sources(
            &sources(
                &["user=admin", "empty="],
                &[conf.to_str().unwrap(), &format!("renamed={}", single.display())],
                &[env.to_str().unwrap()],
            ),
            "ConfigMap",
            "c",
        )
        .unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["LEVEL", "MODE", "a.properties", "b.bin", "empty", "renamed", "user"]);
        assert_eq!(data["MODE"], b"a=b");
        assert_eq!(data["b.bin"], [0, 255]);
        assert_eq!(data["renamed"], b"hello");
        assert_eq!(data["empty"], b"");
    }

    #[test]
    fn bad_and_repeated_keys_are_refused_as_kubectl_does() {
        let e = read_sources(&sources(&["a=1", "a=2"], &[], &[]), "ConfigMap", "c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error: cannot add key a, another key by that name already exists in Data for ConfigMap \"c\""
        );
        let e = read_sources(&sources(&["a b=1"], &[], &[]), "Secret", "s").unwrap_err();
        assert!(
            e.to_string().starts_with("error: \"a b\" is not a valid key name for a Secret: a valid config key"),
            "{e}"
        );
        assert!(read_sources(&sources(&["novalue"], &[], &[]), "ConfigMap", "c").is_err());
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("bad.env");
        fs::write(&env, "1X=y\n").unwrap();
        let e = read_sources(&sources(&[], &[], &[env.to_str().unwrap()]), "ConfigMap", "c").unwrap_err();
        assert!(e.to_string().starts_with("error: \"1X\" is not a valid key name: "), "{e}");
    }
}
