//! The `autoscaling` API group: HorizontalPodAutoscaler (stored as v2, served as v1 and v2)
//! and the `Scale` subresource.

pub mod hpa;
pub mod scale;

pub use hpa::*;
pub use scale::*;
