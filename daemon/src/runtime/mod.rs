//! The builtin container runtime: pod sandboxes own the network and IPC namespaces their
//! containers share; each container runs under its own shim in new pid, mount and uts
//! namespaces on an overlay root. See DESIGN.md's runtime section.

pub mod builtin;
pub mod capabilities;
pub mod container_runtime;
pub mod cri_log;
pub mod init;
pub mod mounts;
pub mod sandbox;
pub mod secure_join;
pub mod shim;
pub mod spec;
pub mod state;
pub mod users;

pub use builtin::BuiltinRuntime;
pub use container_runtime::{ContainerHandle, ContainerRuntime, RuntimeError, StartError};
pub use spec::*;
pub use state::ContainerState;
