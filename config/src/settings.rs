//! The daemon's settings: `/etc/coracle/config.yaml`, every key optional, overridden by
//! `CORACLE_*` environment variables and command-line flags.
//!
//! SKELETON: being written.
