//! `coracle port-forward`'s own upgrade protocol: each forwarded connection travels on two
//! upgraded requests, one per direction, so it works alike over the unix socket and TCP
//! (the daemon side is described in the API's `portforward.rs`).

/// The `Upgrade` protocol both legs ask for.
pub const PROTOCOL: &str = "coracle-portforward.v1";
/// The first leg's answer header naming the session the second leg joins.
pub const SESSION_HEADER: &str = "X-Coracle-Portforward-Session";
