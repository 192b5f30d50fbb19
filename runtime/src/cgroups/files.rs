//! Reading and writing cgroup interface files, with the path in every error.

use super::CgroupError;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Reads a cgroup file, trimmed.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| CgroupError::io("read", path, e))
}

/// Reads a cgroup file, or `None` when it does not exist (controller absent, cgroup gone).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, e)),
    }
}

/// Writes a value the way `echo VALUE > file` does. Never creates the file: a missing
/// interface file means a missing controller, which the caller must hear about.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut file =
        OpenOptions::new().write(true).truncate(true).open(path).map_err(|e| CgroupError::io("open", path, e))?;
    file.write_all(value.as_bytes()).map_err(|e| write_error(path, value, e))
}

/// Appends a value (cgroup.procs): the kernel treats each write as one request either way,
/// and appending keeps a fake tree in tests showing every pid written.
pub(crate) fn append(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut file = OpenOptions::new().append(true).open(path).map_err(|e| CgroupError::io("open", path, e))?;
    file.write_all(format!("{value}\n").as_bytes()).map_err(|e| write_error(path, value, e))
}

fn write_error(path: &Path, value: &str, source: std::io::Error) -> CgroupError {
    CgroupError::Write { path: path.to_path_buf(), value: value.to_string(), source }
}

/// Parses a whole file as an unsigned number.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        value: text.to_string(),
        expected: "an unsigned integer",
    })
}

/// The number after `key` in a flat-keyed file (`memory.stat`, `cpu.stat`, `memory.events`).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(key)).then(|| words.next()?.parse().ok()).flatten()
    })
}

/// The pids listed in a `cgroup.procs` file; a vanished file lists none.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let Some(text) = read_opt(path)? else { return Ok(Vec::new()) };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                value: l.to_string(),
                expected: "a pid",
            })
        })
        .collect()
}

/// `dir` and every cgroup directory below it, children before parents (the order rmdir needs).
pub(crate) fn subtree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    collect_subtree(dir, &mut out)?;
    Ok(out)
}

fn collect_subtree(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("list", dir, e))?;
        let is_dir = entry.file_type().map_err(|e| CgroupError::io("stat", entry.path(), e))?.is_dir();
        if is_dir {
            collect_subtree(&entry.path(), out)?;
        }
    }
    out.push(dir.to_path_buf());
    Ok(())
}

/// Creates `dir` if missing; an existing one is fine (create is idempotent).
pub(crate) fn ensure_dir(dir: &Path) -> Result<bool, CgroupError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(e) => Err(CgroupError::io("mkdir", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_finds_the_value_of_an_exact_key_only() {
        let text = "total_inactive_file 7\ninactive_file 5\noom_kill 3\n";
        assert_eq!(keyed(text, "inactive_file"), Some(5));
        assert_eq!(keyed(text, "oom_kill"), Some(3));
        assert_eq!(keyed(text, "oom"), None);
    }

    #[test]
    fn write_refuses_to_create_a_missing_interface_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("memory.max"), "max").unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
    }

    #[test]
    fn read_pids_rejects_garbage_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let procs = dir.path().join("cgroup.procs");
        fs::write(&procs, "12\n\n34\n").unwrap();
        assert_eq!(read_pids(&procs).unwrap(), vec![12, 34]);
        fs::write(&procs, "12\nx\n").unwrap();
        assert!(read_pids(&procs).unwrap_err().to_string().contains("cgroup.procs"));
    }

    #[test]
    fn subtree_lists_children_before_parents() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/file"), "").unwrap();
        let got = subtree(&dir.path().join("a")).unwrap();
        assert_eq!(got, vec![dir.path().join("a/b"), dir.path().join("a")]);
    }
}
