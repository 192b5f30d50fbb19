//! Who may use the API's unix socket: root, and the members of a group (`coracle` by default,
//! created by systemd/coracle.sysusers), as docker's socket does for group `docker`.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The group database the socket's group is looked up in.
pub const GROUP_FILE: &str = "/etc/group";

/// The socket's mode: owner and group read and write, nobody else.
const SOCKET_MODE: u32 = 0o660;

/// How the socket ended up owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAccess {
    /// root and the members of group `name` (gid `gid`).
    Group { name: String, gid: u32 },
    /// root only, and why no group was given access.
    RootOnly { reason: String },
}

impl SocketAccess {
    /// The line the daemon logs once the socket is bound.
    pub fn describe(&self, socket: &Path) -> String {
        match self {
            SocketAccess::Group { name, gid } => {
                format!("API socket {} is root:{name} (gid {gid}) 0660: members of {name} may use it", socket.display())
            }
            SocketAccess::RootOnly { reason } => {
                format!("API socket {} is root-only (0660): {reason}", socket.display())
            }
        }
    }
}

/// The gid of group `name` in `group_file` (the `/etc/group` format: `name:password:gid:members`).
pub fn lookup_gid(group_file: &Path, name: &str) -> io::Result<Option<u32>> {
    let text = match std::fs::read_to_string(group_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("reading {}: {e}", group_file.display()))),
    };
    for line in text.lines() {
        let mut fields = line.split(':');
        if fields.next() != Some(name) {
            continue;
        }
        let gid = fields.nth(1).unwrap_or("");
        return gid.parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: group {name} has a bad gid {gid:?}", group_file.display()),
            )
        });
    }
    Ok(None)
}

/// Gives `socket` mode 0660 and, when `group` (non-empty) is in `group_file`, that group.
pub fn restrict(socket: &Path, group: Option<&str>, group_file: &Path) -> io::Result<SocketAccess> {
    let access = match group.filter(|g| !g.is_empty()) {
        None => SocketAccess::RootOnly { reason: "no socket_group is configured".into() },
        Some(name) => match lookup_gid(group_file, name)? {
            Some(gid) => {
                std::os::unix::fs::chown(socket, None, Some(gid))
                    .map_err(|e| io::Error::new(e.kind(), format!("chgrp {name} {}: {e}", socket.display())))?;
                SocketAccess::Group { name: name.to_string(), gid }
            }
            None => SocketAccess::RootOnly {
                reason: format!(
                    "no group {name} in {} (create it with systemd-sysusers or `groupadd --system {name}` to let \
                     its members use coracle without root)",
                    group_file.display()
                ),
            },
        },
    };
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| io::Error::new(e.kind(), format!("chmod 0660 {}: {e}", socket.display())))?;
    Ok(access)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn group_file(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("group");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn gids_are_read_from_the_group_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = group_file(dir.path(), "root:x:0:\ncoracle-x:x:998:\ncoracle:x:999:alice,bob\n");
        assert_eq!(lookup_gid(&file, "coracle").unwrap(), Some(999));
        assert_eq!(lookup_gid(&file, "docker").unwrap(), None);
        assert_eq!(lookup_gid(&dir.path().join("missing"), "coracle").unwrap(), None);
        let bad = group_file(dir.path(), "coracle:x:many:\n");
        let err = lookup_gid(&bad, "coracle").unwrap_err();
        assert!(err.to_string().contains("group coracle has a bad gid \"many\""), "{err}");
    }

    fn socket_in(dir: &Path) -> (std::os::unix::net::UnixListener, std::path::PathBuf) {
        let path = dir.join("api.sock");
        (std::os::unix::net::UnixListener::bind(&path).unwrap(), path)
    }

    #[test]
    fn a_present_group_owns_the_socket() {
        if coracle_e2e::skip_unless_root("giving a file to another group") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (_listener, socket) = socket_in(dir.path());
        let file = group_file(dir.path(), "coracle:x:4242:\n");
        let access = restrict(&socket, Some("coracle"), &file).unwrap();
        assert_eq!(access, SocketAccess::Group { name: "coracle".into(), gid: 4242 });
        let meta = std::fs::metadata(&socket).unwrap();
        assert_eq!((meta.gid(), meta.mode() & 0o777), (4242, 0o660));
        assert!(access.describe(&socket).contains("root:coracle (gid 4242) 0660"));
    }

    #[test]
    fn an_absent_group_leaves_the_socket_to_root_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let (_listener, socket) = socket_in(dir.path());
        let gid_before = std::fs::metadata(&socket).unwrap().gid();
        let file = group_file(dir.path(), "root:x:0:\n");
        let access = restrict(&socket, Some("coracle"), &file).unwrap();
        let meta = std::fs::metadata(&socket).unwrap();
        assert_eq!((meta.gid(), meta.mode() & 0o777), (gid_before, 0o660));
        let line = access.describe(&socket);
        assert!(line.contains("root-only (0660): no group coracle in"), "{line}");

        let access = restrict(&socket, Some(""), &file).unwrap();
        assert_eq!(access, SocketAccess::RootOnly { reason: "no socket_group is configured".into() });
    }
}
