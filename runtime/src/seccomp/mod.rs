//! seccomp for every container, on by default: `RuntimeDefault` (Docker's and containerd's
//! default profile) unless the pod says `Unconfined` or names a `Localhost` profile. The
//! profile is resolved against the container's capabilities and this machine, compiled with
//! seccompiler for the builtin runtime, or handed to the OCI runtime in the bundle.

#[cfg(test)]
mod bpf;
pub mod compile;
pub mod default;
pub mod oci;
pub mod profile;
pub mod resolve;
mod syscalls;

#[cfg(test)]
mod tests;

pub use profile::Profile;

use serde::{Deserialize, Serialize};

/// The container's seccomp profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seccomp {
    /// No filter (`seccompProfile.type: Unconfined`, and `privileged: true`).
    Unconfined,
    /// Docker's default profile.
    #[default]
    RuntimeDefault,
    /// A profile the node read from its profile directory (`Localhost`).
    Profile(Profile),
}

impl Seccomp {
    /// The rules for a container with capabilities `caps` (`CAP_`-prefixed) on this
    /// machine, one set per architecture its kernel runs (this one first, then the compat
    /// one); `None` when unconfined.
    pub fn resolve(&self, caps: Vec<String>) -> Result<Option<Vec<resolve::Resolved>>, String> {
        let context = resolve::Context::here(caps);
        let runtime_default;
        let profile = match self {
            Seccomp::Unconfined => return Ok(None),
            Seccomp::RuntimeDefault => {
                runtime_default = default::profile();
                &runtime_default
            }
            Seccomp::Profile(profile) => profile,
        };
        let arches = std::iter::once(syscalls::NATIVE).chain(syscalls::COMPAT.iter().copied());
        arches.map(|arch| resolve::resolve(profile, &context, arch)).collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// The compiled filters for a container with capabilities `caps`; empty when unconfined.
    pub fn compile(&self, caps: Vec<String>) -> Result<Vec<seccompiler::BpfProgram>, String> {
        match self.resolve(caps).map_err(|e| format!("seccomp profile: {e}"))? {
            Some(resolved) => compile::compile(&resolved),
            None => Ok(Vec::new()),
        }
    }
}
