//! `resource.Quantity`: CPU and memory amounts (`100m`, `0.5`, `128Mi`, `1G`, `2e3`).
//!
//! PLACEHOLDER while the parser is written: keeps the text as given.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Quantity(pub String);
