//! The Kubernetes-shaped HTTP API. The edge (`server`, `request`, `routes`) turns HTTP into
//! typed requests; `handlers` serve them against the store; `errors` is the one place
//! failures become `Status` bodies and codes.

pub mod admission;
pub mod context;
pub mod errors;
pub mod handlers;
pub mod http;
pub mod manifests;
pub mod patch;
pub mod portforward;
pub mod protobuf;
pub mod query;
pub mod request;
pub mod routes;
pub mod selectors;
pub mod server;
pub mod socket_group;
pub mod table;

pub use context::{ApiContext, ContainerUsage, MetricsSource, Usage};
pub use http::Limits as ApiLimits;
pub use server::{ApiConfig, ApiServer};
