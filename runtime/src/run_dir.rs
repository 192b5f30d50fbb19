//! A runtime's run directory (`DATA/run`), the same for both backends: which container ids it
//! may hold, where their records live, and the checks around starting and removing one.

use super::container_runtime::{RuntimeError, StartError};
use super::spec::ContainerSpec;
use super::state::{self, ContainerState};
use std::path::{Path, PathBuf};

/// File name of the recorded spec in a container's records directory.
pub const SPEC_FILE: &str = "spec.json";

/// The run directory and the one name (if any) a backend keeps for itself under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
    reserved: Option<&'static str>,
}

impl RunDir {
    /// The run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into(), reserved: None }
    }

    /// The same directory, where no container may be called `name` (a backend's own state).
    pub fn reserving(self, name: &'static str) -> RunDir {
        RunDir { reserved: Some(name), ..self }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The records directory of container `id`, once `id` is known to be a plain file name.
    pub fn container_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        let plain = !id.is_empty() && !id.contains('/') && id != "." && id != "..";
        if !plain || self.reserved == Some(id) {
            let other_than = self.reserved.map(|r| format!(" other than {r:?}")).unwrap_or_default();
            return Err(RuntimeError::Container(format!(
                "container id {id:?}: must be a non-empty file name{other_than}"
            )));
        }
        Ok(state::container_dir(&self.root, id))
    }

    /// The container's state from its records and /proc; an invalid id is `Unknown`.
    pub fn state(&self, id: &str) -> ContainerState {
        match self.container_dir(id) {
            Ok(dir) => state::read_state(&dir),
            Err(_) => ContainerState::Unknown,
        }
    }

    /// Every container id with a records directory, sorted.
    pub fn list(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("containers")) else { return Vec::new() };
        let mut ids: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
        ids.sort();
        ids
    }

    /// The records directory a new container `spec` will use: its id is valid, it has a command,
    /// and neither that directory nor any of the backend's `own` paths for it exist yet.
    pub fn claim(&self, spec: &ContainerSpec, own: &[&Path]) -> Result<PathBuf, StartError> {
        let dir = self.container_dir(&spec.id).map_err(|e| StartError::run(e.to_string()))?;
        if spec.args.is_empty() {
            return Err(StartError::run(format!("container {}: args: no command given", spec.id)));
        }
        if let Some(existing) = std::iter::once(dir.as_path()).chain(own.iter().copied()).find(|p| p.exists()) {
            return Err(StartError::run(format!(
                "container {}: {} already exists (remove the old container first)",
                spec.id,
                existing.display()
            )));
        }
        Ok(dir)
    }

    /// Creates the records directory a claim returned and records `spec` in it, so that what
    /// the container was started with (its identity, environment, cgroups) outlives the daemon.
    pub fn record_spec(&self, dir: &Path, spec: &ContainerSpec) -> Result<(), StartError> {
        std::fs::create_dir_all(dir).map_err(|e| StartError::run(format!("create {}: {e}", dir.display())))?;
        let path = dir.join(SPEC_FILE);
        let bytes = serde_json::to_vec(spec).map_err(|e| StartError::run(format!("encode {}: {e}", path.display())))?;
        state::write_atomic(&path, &bytes).map_err(|e| StartError::run(format!("write {}: {e}", path.display())))
    }

    /// The spec container `id` was started with.
    pub fn recorded_spec(&self, id: &str) -> Result<ContainerSpec, RuntimeError> {
        let path = self.container_dir(id)?.join(SPEC_FILE);
        let bytes =
            std::fs::read(&path).map_err(|e| RuntimeError::Container(format!("read {}: {e}", path.display())))?;
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Container(format!("decode {}: {e}", path.display())))
    }

    /// The records directory of container `id`, refused while the container still runs.
    pub fn stopped(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        let dir = self.container_dir(id)?;
        if let ContainerState::Running { pid, .. } = state::read_state(&dir) {
            return Err(RuntimeError::Container(format!("remove container {id}: still running as pid {pid}")));
        }
        Ok(dir)
    }
}

/// Removes a directory tree; one that is already gone is fine.
pub fn remove_tree(path: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::Container(format!("remove {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_plain_names_and_not_the_reserved_one() {
        let run = RunDir::new("/run/c").reserving("state");
        assert_eq!(run.container_dir("u_app_0").unwrap(), PathBuf::from("/run/c/containers/u_app_0"));
        for bad in ["", ".", "..", "a/b"] {
            let err = run.container_dir(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")) && err.contains("other than \"state\""), "{err}");
        }
        assert!(run.container_dir("state").is_err());
        assert!(RunDir::new("/run/c").container_dir("state").is_ok());
        assert_eq!(run.state("../x"), ContainerState::Unknown);
    }

    #[test]
    fn a_claim_needs_a_command_and_a_free_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let mut spec = ContainerSpec::example();
        let bundle = tmp.path().join("bundle");
        assert_eq!(run.claim(&spec, &[&bundle]).unwrap(), tmp.path().join("containers/c1"));
        std::fs::create_dir(&bundle).unwrap();
        let err = run.claim(&spec, &[&bundle]).unwrap_err();
        assert_eq!(
            err.message,
            format!("container c1: {} already exists (remove the old container first)", bundle.display())
        );
        std::fs::create_dir_all(tmp.path().join("containers/c1")).unwrap();
        assert!(run.claim(&spec, &[]).unwrap_err().message.contains("containers/c1 already exists"));
        spec.args.clear();
        assert_eq!(run.claim(&spec, &[]).unwrap_err().message, "container c1: args: no command given");
    }

    #[test]
    fn the_spec_a_container_started_with_is_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let spec = ContainerSpec::example();
        let dir = run.claim(&spec, &[]).unwrap();
        run.record_spec(&dir, &spec).unwrap();
        assert_eq!(run.recorded_spec("c1").unwrap(), spec);
        let err = run.recorded_spec("c2").unwrap_err().to_string();
        assert!(err.starts_with(&format!("read {}", tmp.path().join("containers/c2/spec.json").display())), "{err}");
    }

    #[test]
    fn listing_and_removal_read_the_containers_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        assert!(run.list().is_empty());
        for id in ["b", "a"] {
            std::fs::create_dir_all(tmp.path().join("containers").join(id)).unwrap();
        }
        assert_eq!(run.list(), ["a", "b"]);
        let dir = run.stopped("a").unwrap();
        remove_tree(&dir).unwrap();
        remove_tree(&dir).unwrap();
        assert_eq!(run.list(), ["b"]);
    }
}
