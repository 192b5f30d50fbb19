//! cgroups v1, v2 and hybrid, beneath the daemon's own cgroup (or, for a systemd service on
//! cgroup v2, beneath the delegated scope of `pod_scope`): pods get memory, CPU and pid limits,
//! are killed without escape, and report their usage.
//!
//! The layout is detected once at start (`Cgroups::detect`); everything afterwards goes
//! through the backend chosen then. Paths given to `create`/`open`/`list` are relative to
//! the daemon's base, `<own cgroup>/<subpath>`, in every hierarchy.

mod cgroup;
mod error;
mod files;
mod kill;
mod limits;
pub mod membership;
mod place;
pub mod pod_scope;
mod roots;
mod sampler;
pub mod scope_keeper;
mod v1;
mod v2;

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod v2_fake_tests;

pub use cgroup::{Cgroup, Stats};
pub use error::CgroupError;
pub use limits::{milli_cpu_to_quota, milli_cpu_to_shares, shares_to_weight, Limits, CPU_PERIOD_US};
pub use membership::{join_current, move_process, Entry};
pub use roots::{Hierarchy, Roots};
pub use sampler::{millicores, UsageSampler};

use place::Place;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The sub-path beneath the daemon's own cgroup that holds everything it creates.
pub const DEFAULT_SUBPATH: &str = "coracle";

/// The daemon's cgroup tree, in whichever layout this machine has.
#[derive(Clone, Debug)]
pub struct Cgroups {
    backend: Backend,
    /// Hybrid only: our own directory in the controller-less cgroup2 tree, where an OCI
    /// runtime mirrors the cgroups it is given. Never created or limited here, only cleared.
    unified: Option<PathBuf>,
    subpath: PathBuf,
}

#[derive(Clone, Debug)]
enum Backend {
    V1(Vec<Hierarchy>),
    V2(v2::Tree),
}

impl Cgroups {
    /// Detects the layout from /proc/self and roots everything at `<own>/<subpath>`.
    pub fn detect(subpath: &str) -> Result<Cgroups, CgroupError> {
        Cgroups::with_roots(Roots::detect()?, subpath)
    }

    /// Like `detect`, but where pods must outlive a restart of a systemd service on cgroup v2,
    /// roots them in the delegated pods' scope instead (see `pod_scope`).
    pub fn detect_for_pods(subpath: &str) -> Result<Cgroups, CgroupError> {
        Cgroups::with_roots(pod_scope::place(Roots::detect()?, &pod_scope::Launch::detect()), subpath)
    }

    /// Builds on explicitly given roots: a fake tree in tests, or a chosen mount.
    pub fn with_roots(roots: Roots, subpath: &str) -> Result<Cgroups, CgroupError> {
        validate_rel(subpath, false)?;
        let subpath = PathBuf::from(subpath);
        Ok(match roots {
            Roots::V1 { hierarchies, unified } => Cgroups { backend: Backend::V1(hierarchies), unified, subpath },
            Roots::V2 { mount, own } => {
                if subpath.starts_with(v2::DAEMON_LEAF) {
                    return Err(CgroupError::InvalidPath {
                        path: subpath.display().to_string(),
                        reason: "is the leaf the daemon moves itself into on cgroup v2",
                    });
                }
                // A daemon restarted from inside the leaf it moved itself into earlier
                // still owns the cgroup above it, where its pods are.
                let own = match own.parent() {
                    Some(parent) if own.ends_with(v2::DAEMON_LEAF) && v2::delegates(parent, &subpath) => {
                        parent.to_path_buf()
                    }
                    _ => own,
                };
                Cgroups { backend: Backend::V2(v2::Tree { mount, own }), unified: None, subpath }
            }
        })
    }

    /// "v1", "v2" or "hybrid" (v1 controllers beside an empty cgroup2 mount).
    pub fn kind(&self) -> &'static str {
        match (&self.backend, &self.unified) {
            (Backend::V2(_), _) => "v2",
            (Backend::V1(_), Some(_)) => "hybrid",
            (Backend::V1(_), None) => "v1",
        }
    }

    /// The base directories (`<own>/<subpath>`), one per hierarchy.
    pub fn base_dirs(&self) -> Vec<PathBuf> {
        self.place(Path::new("")).dirs()
    }

    /// Creates (or finds) the cgroup at `rel`, e.g. `pods/<uid>/<container>`, with its
    /// parents, and sets `limits` on it. Idempotent. `rel` "" is the base itself.
    pub fn create(&self, rel: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        validate_rel(rel, true)?;
        limits.validate()?;
        let path = self.path(Path::new(rel));
        let place = match &self.backend {
            Backend::V1(hierarchies) => {
                let dirs = v1::dirs(hierarchies, &path);
                v1::check_controllers(&dirs, limits)?;
                for hierarchy in hierarchies {
                    v1::create(hierarchy, &path)?;
                }
                v1::apply(&dirs, limits)?;
                Place::V1(dirs)
            }
            Backend::V2(tree) => {
                let dir = tree.create(&path, limits)?;
                v2::apply(&dir, limits)?;
                Place::V2(dir)
            }
        };
        Ok(Cgroup::new(rel, place, self.unified_dir(Path::new(rel))))
    }

    /// The cgroup at `rel` if it exists in any hierarchy (on hybrid, also when only an OCI
    /// runtime's mirror of it in the cgroup2 tree is left, so it can be removed).
    pub fn open(&self, rel: &str) -> Option<Cgroup> {
        if let Err(e) = validate_rel(rel, true) {
            log::warn!("cgroups: open: {e}");
            return None;
        }
        let rel_path = Path::new(rel);
        let cgroup = Cgroup::new(rel, self.place(rel_path), self.unified_dir(rel_path));
        cgroup.dirs().iter().chain(&cgroup.unified).any(|d| d.is_dir()).then_some(cgroup)
    }

    /// The cgroups directly below `rel_prefix` in any hierarchy, as relative paths
    /// (`list("pods")` → `["pods/<uid>", ...]`): what a restarted daemon left behind.
    pub fn list(&self, rel_prefix: &str) -> Vec<String> {
        if let Err(e) = validate_rel(rel_prefix, true) {
            log::warn!("cgroups: list: {e}");
            return Vec::new();
        }
        let mut names = BTreeSet::new();
        let prefix_path = Path::new(rel_prefix);
        for dir in self.place(prefix_path).dirs().into_iter().chain(self.unified_dir(prefix_path)) {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    names.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        let prefix = rel_prefix;
        names.into_iter().map(|n| if prefix.is_empty() { n } else { format!("{prefix}/{n}") }).collect()
    }

    /// `<subpath>/<rel>`, without a trailing slash for the base itself.
    fn path(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.subpath.clone()
        } else {
            self.subpath.join(rel)
        }
    }

    fn unified_dir(&self, rel: &Path) -> Option<PathBuf> {
        self.unified.as_ref().map(|own| own.join(self.path(rel)))
    }

    fn place(&self, rel: &Path) -> Place {
        let path = self.path(rel);
        match &self.backend {
            Backend::V1(hierarchies) => Place::V1(v1::dirs(hierarchies, &path)),
            Backend::V2(tree) => Place::V2(tree.own.join(&path)),
        }
    }
}

/// Accepts only plain relative paths of names the kernel and we agree on, so no path can
/// climb out of the daemon's own cgroup.
fn validate_rel(rel: &str, allow_empty: bool) -> Result<(), CgroupError> {
    let invalid = |reason| Err(CgroupError::InvalidPath { path: rel.to_string(), reason });
    if rel.is_empty() {
        return if allow_empty { Ok(()) } else { invalid("must not be empty") };
    }
    for component in rel.split('/') {
        if component.is_empty() {
            return invalid("must be relative, without empty components");
        }
        if component.starts_with('.') {
            return invalid("components must not start with '.'");
        }
        if !component.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return invalid("components may hold only letters, digits, '-', '_' and '.'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_climb_out() {
        for bad in ["/pods", "../x", "pods/../../x", "pods//x", "pods/", ".hidden", "a b"] {
            assert!(validate_rel(bad, true).is_err(), "{bad}");
        }
        assert!(validate_rel("", false).is_err());
        assert!(validate_rel("pods/0b9e-11/c_1.x", false).is_ok());
    }

    #[test]
    fn kind_names_the_layout() {
        let v1 = |unified: Option<&str>| Roots::V1 { hierarchies: Vec::new(), unified: unified.map(PathBuf::from) };
        assert_eq!(Cgroups::with_roots(v1(Some("/sys/fs/cgroup/unified")), "c").unwrap().kind(), "hybrid");
        assert_eq!(Cgroups::with_roots(v1(None), "c").unwrap().kind(), "v1");
        let v2 = Roots::V2 { mount: "/sys/fs/cgroup".into(), own: "/sys/fs/cgroup/x".into() };
        assert_eq!(Cgroups::with_roots(v2.clone(), "c").unwrap().kind(), "v2");
        assert!(Cgroups::with_roots(v2, "daemon").is_err());
    }
}
