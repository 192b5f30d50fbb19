//! Sizes of the shipped binaries: from a `cross/build` tarball in dist/ or its build directory
//! target/cross, whichever is newer.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The two binaries of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySizes {
    /// Where the sizes were read (a tarball or a directory).
    pub source: PathBuf,
    /// coracled, bytes.
    pub coracled: u64,
    /// coracle, bytes.
    pub coracle: u64,
}

impl BinarySizes {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.coracled + self.coracle
    }
}

/// Sizes from a tarball holding `…/bin/coracled` and `…/bin/coracle`.
pub fn from_tarball(path: &Path) -> Result<BinarySizes, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let (mut coracled, mut coracle) = (None, None);
    let entries = archive.entries().map_err(|e| format!("reading {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", path.display()))?;
        let name = entry.path().map_err(|e| format!("{}: entry name: {e}", path.display()))?.into_owned();
        let size = entry.header().size().map_err(|e| format!("{}: size of {}: {e}", path.display(), name.display()))?;
        if name.ends_with("bin/coracled") {
            coracled = Some(size);
        } else if name.ends_with("bin/coracle") {
            coracle = Some(size);
        }
    }
    match (coracled, coracle) {
        (Some(coracled), Some(coracle)) => Ok(BinarySizes { source: path.to_path_buf(), coracled, coracle }),
        _ => Err(format!("{}: no bin/coracled and bin/coracle inside", path.display())),
    }
}

/// Sizes of `dir/coracled` and `dir/coracle`.
pub fn from_dir(dir: &Path) -> Result<BinarySizes, String> {
    let size = |name: &str| {
        let p = dir.join(name);
        std::fs::metadata(&p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))
    };
    Ok(BinarySizes { source: dir.to_path_buf(), coracled: size("coracled")?, coracle: size("coracle")? })
}

/// Sizes in a `cross/build` build directory, which builds only `coracled`: the multi-call
/// binary the tarball also ships as `coracle` (a hard link). A `coracle` file beside it is
/// left from an older two-binary build and is not shipped.
pub fn from_cross_dir(dir: &Path) -> Result<BinarySizes, String> {
    let p = dir.join("coracled");
    let coracled = std::fs::metadata(&p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(BinarySizes { source: dir.to_path_buf(), coracled, coracle: 0 })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest build for `arch` (`aarch64`, `x86_64`, …) under `workspace`: a
/// `dist/coracle-*-ARCH.tar.gz`, or `target/cross/TRIPLE/release`. `None` when there is none.
pub fn newest(workspace: &Path, arch: &str, triple: &str) -> Option<Result<BinarySizes, String>> {
    let mut candidates: Vec<(SystemTime, PathBuf, bool)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(workspace.join("dist")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("coracle-") && name.ends_with(&format!("-{arch}.tar.gz")) {
                if let Some(t) = modified(&entry.path()) {
                    candidates.push((t, entry.path(), true));
                }
            }
        }
    }
    let dir = workspace.join("target/cross").join(triple).join("release");
    if let Some(built) = modified(&dir.join("coracled")) {
        candidates.push((built, dir, false));
    }
    let (_, path, is_tarball) = candidates.into_iter().max_by_key(|(t, _, _)| *t)?;
    Some(if is_tarball { from_tarball(&path) } else { from_cross_dir(&path) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(path: &Path, files: &[(&str, usize)]) {
        let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, len) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(*len as u64);
            h.set_mode(0o755);
            b.append_data(&mut h, name, &vec![0u8; *len][..]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn the_newest_of_tarball_and_build_dir_wins() {
        let ws = tempfile::tempdir().unwrap();
        assert!(newest(ws.path(), "aarch64", "aarch64-unknown-linux-musl").is_none());
        std::fs::create_dir_all(ws.path().join("dist")).unwrap();
        let tgz = ws.path().join("dist/coracle-0.1.0-aarch64.tar.gz");
        tarball(&tgz, &[("coracle-0.1.0-aarch64/bin/coracled", 3000), ("coracle-0.1.0-aarch64/bin/coracle", 1000)]);
        let s = newest(ws.path(), "aarch64", "aarch64-unknown-linux-musl").unwrap().unwrap();
        assert_eq!((s.coracled, s.coracle, s.total()), (3000, 1000, 4000));
        assert_eq!(s.source, tgz);

        std::thread::sleep(std::time::Duration::from_millis(20));
        let dir = ws.path().join("target/cross/aarch64-unknown-linux-musl/release");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("coracled"), [0u8; 10]).unwrap();
        // A ctl left from a two-binary build: not shipped, not counted.
        std::fs::write(dir.join("coracle"), [0u8; 5]).unwrap();
        let s = newest(ws.path(), "aarch64", "aarch64-unknown-linux-musl").unwrap().unwrap();
        assert_eq!((s.coracled, s.coracle, s.source), (10, 0, dir));
    }

    #[test]
    fn a_tarball_without_the_binaries_is_an_error_naming_it() {
        let ws = tempfile::tempdir().unwrap();
        let tgz = ws.path().join("coracle-0.1.0-x86_64.tar.gz");
        tarball(&tgz, &[("coracle-0.1.0-x86_64/install.sh", 10)]);
        let err = from_tarball(&tgz).unwrap_err();
        assert!(err.contains("no bin/coracled") && err.contains("x86_64.tar.gz"), "{err}");
    }
}
