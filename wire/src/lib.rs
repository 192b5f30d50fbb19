//! The protocols the ctl and the daemon share beyond plain REST, defined once for both ends.
//! The ctl and the API depend on this crate; it depends on nothing of theirs.

pub mod port_forward;
pub mod stream;
