//! coracle: kubectl's verbs against coracled, over HTTP on a unix socket or TCP.

#[macro_use]
pub mod output;

pub mod cli;
pub mod client;
pub mod commands;
pub mod describe;
pub mod entry;
pub mod error;
pub mod input;
pub mod merge;
pub mod printers;
pub mod selector;

pub use error::CtlError;
