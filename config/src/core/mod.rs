//! The core (`v1`) API group: pods, services, endpoints, events, namespaces.

pub mod endpoints;
pub mod event;
pub mod namespace;
pub mod pod;
pub mod service;

pub use endpoints::*;
pub use event::*;
pub use namespace::*;
pub use pod::*;
pub use service::*;
