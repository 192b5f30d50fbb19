//! The core (`v1`) API group: pods, services, endpoints, events, namespaces, config maps,
//! secrets and service accounts.

pub mod config_map;
pub mod config_volume;
pub mod endpoints;
pub mod env_source;
pub mod event;
pub mod namespace;
pub mod pod;
pub mod secret;
pub mod security_context;
pub mod service;
pub mod service_account;

pub use config_map::*;
pub use config_volume::*;
pub use endpoints::*;
pub use env_source::*;
pub use event::*;
pub use namespace::*;
pub use pod::*;
pub use secret::Secret;
pub use security_context::*;
pub use service::*;
pub use service_account::*;
