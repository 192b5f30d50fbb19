//! The content-addressed image store: loads `docker save` and OCI archives or layouts and
//! root filesystem directories, verifies every digest, unpacks layers in overlayfs' format,
//! and answers the runtime's "which layers and what command" for an image reference.
//!
//! On disk (DATA/images, 0700): `blobs/sha256/<hex>` manifests and configs (compressed layer
//! blobs are dropped once unpacked: flash is small), `layers/<diff-id hex>/` unpacked layers,
//! `index.json` names → manifest digests, `tmp/` staging.
//!
//! Archives are not trusted: entry paths are confined, device nodes are not created, and a
//! load stops at its budget (settings `images.*`) or when its client goes away.

mod archive;
mod budget;
mod compression;
mod config;
mod digest;
mod error;
mod flatten;
mod fsutil;
mod index;
mod layer;
mod overlay;
mod private;
mod reference;
mod removal;
mod rootfs;
mod safe_path;
mod source;
mod spec;
mod store;
mod unpack;

#[cfg(test)]
mod bomb_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tests;

pub use config::{effective_command, ImageConfig};
pub use error::ImageError;
pub use flatten::flatten;
pub use reference::Reference;
pub use removal::Removal;
pub use store::{Image, ImageStore, ImageSummary};
