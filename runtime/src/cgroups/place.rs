//! Where a cgroup lives, apart from what is done with it, so the cgroup handle and the
//! killer can both use it without depending on each other.

use super::v1;
use std::path::PathBuf;

/// Where a cgroup lives: one directory per v1 hierarchy, or one v2 directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    V1(Vec<v1::Dir>),
    V2(PathBuf),
}

impl Place {
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Place::V1(dirs) => dirs.iter().map(|d| d.path.clone()).collect(),
            Place::V2(dir) => vec![dir.clone()],
        }
    }
}
