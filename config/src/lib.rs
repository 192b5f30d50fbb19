//! Coracle's shared vocabulary: Kubernetes-shaped objects, manifest parsing, validation,
//! defaulting and the daemon's settings. The daemon and the ctl both speak these types.

pub mod apps;
pub mod autoscaling;
pub mod base64;
pub mod core;
pub mod intstr;
pub mod k8s_fields;
pub mod label_selector;
pub mod meta;
pub mod metrics;
pub mod object;
pub mod quantity;
pub mod time;

pub use intstr::IntOrString;
pub use meta::{LabelSelector, ObjectMeta, OwnerReference, Status};
pub use object::{Object, Resource, ResourceInfo};
pub use quantity::Quantity;
pub mod defaults;
pub mod manifest;
pub mod settings;
pub mod tracked;
pub mod validation;
