//! Resolves an image's `User` (`name`, `uid`, `name:group`, `uid:gid`) against the image's own
//! /etc/passwd and /etc/group: a static build cannot use NSS, and the host's users are irrelevant.

use super::spec::UserSpec;
use std::path::{Path, PathBuf};

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads `rel` from the topmost layer that has it; `None` when absent or whited out.
fn read_from_layers(layers: &[PathBuf], rel: &str) -> Option<String> {
    for layer in layers.iter().rev() {
        let path = layer.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => return std::fs::read_to_string(&path).ok(),
            // An overlay whiteout (character device) or anything else hides lower layers.
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

fn passwd(layers: &[PathBuf]) -> Vec<PasswdEntry> {
    let text = read_from_layers(layers, "etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn groups(layers: &[PathBuf]) -> Vec<GroupEntry> {
    let text = read_from_layers(layers, "etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect())?,
            })
        })
        .collect()
}

/// A `user[:group]` naming a user or group the image does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// No /etc/passwd entry has this name.
    UnknownUser(String),
    /// No /etc/group entry has this name.
    UnknownGroup(String),
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserError::UnknownUser(u) => write!(f, "user {u:?}: no matching entry in the image's /etc/passwd"),
            UserError::UnknownGroup(g) => write!(f, "group {g:?}: no matching entry in the image's /etc/group"),
        }
    }
}

impl std::error::Error for UserError {}

/// Resolves `user[:group]` (names or numbers) inside an image given its layers (bottom → top) or
/// a single flattened root; supplementary groups come from the image's /etc/group.
pub fn resolve(layers: &[PathBuf], user: &str) -> Result<UserSpec, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let users = passwd(layers);
    let groups = groups(layers);
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            users.iter().find(|e| e.name == user_part).ok_or_else(|| UserError::UnknownUser(user_part.to_string()))?,
        ),
    };
    // A bare uid without a passwd entry runs with gid 0, as Docker does.
    let uid = entry.map(|e| e.uid).unwrap_or_else(|| user_part.parse().unwrap_or(0));
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
        },
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if let Some(name) = entry.map(|e| e.name.as_str()) {
        for g in groups.iter().filter(|g| g.members.iter().any(|m| m == name)) {
            if g.gid != gid && !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    Ok(UserSpec { uid, gid, additional_gids })
}

/// Convenience for a single flattened root directory.
pub fn resolve_in_root(root: &Path, user: &str) -> Result<UserSpec, UserError> {
    resolve(&[root.to_path_buf()], user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("l0");
        let upper = dir.path().join("l1");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(
            upper.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            lower.join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:nobody,app\n",
        )
        .unwrap();
        (dir, vec![lower, upper])
    }

    #[test]
    fn names_numbers_and_groups_resolve_from_the_top_layer() {
        let (_d, layers) = image();
        let app = resolve(&layers, "app").unwrap();
        assert_eq!(app, UserSpec { uid: 1000, gid: 1000, additional_gids: vec![10, 29] });
        assert_eq!(resolve(&layers, "65534").unwrap(), UserSpec { uid: 65534, gid: 65534, additional_gids: vec![29] });
        assert_eq!(resolve(&layers, "4242").unwrap(), UserSpec { uid: 4242, gid: 0, additional_gids: vec![] });
        assert_eq!(resolve(&layers, "app:wheel").unwrap().gid, 10);
        assert_eq!(resolve(&layers, "1000:7").unwrap().gid, 7);
        assert_eq!(resolve(&layers, "").unwrap().uid, 0);
    }

    #[test]
    fn unknown_names_are_errors_naming_the_value() {
        let (_d, layers) = image();
        assert!(resolve(&layers, "ghost").unwrap_err().to_string().contains("\"ghost\""));
        assert!(resolve(&layers, "app:ghosts").unwrap_err().to_string().contains("\"ghosts\""));
    }
}
