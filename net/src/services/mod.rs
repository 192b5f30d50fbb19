//! What Services give pods beyond the proxy: ClusterIP and NodePort allocation, the service
//! environment variables, and the service lines of each pod's /etc/hosts.

pub mod allocator;
pub mod env;
pub mod hosts;
