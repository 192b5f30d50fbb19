//! Device rules: which device nodes a container may create (`m`), read (`r`) and write (`w`).
//! The list is data: runc's default whitelist, everything for `privileged: true`, and room
//! for what a pod may grant later (a `hostPath` of type CharDevice or BlockDevice).

use serde::{Deserialize, Serialize};

/// Which kind of device a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
    /// Both (`a`).
    All,
}

impl DeviceKind {
    /// The letter the v1 `devices.allow` file and the OCI spec use.
    pub fn letter(self) -> char {
        match self {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
            DeviceKind::All => 'a',
        }
    }
}

/// What a rule lets the container do with the devices it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub mknod: bool,
}

impl Access {
    /// Read, write and mknod.
    pub const RWM: Access = Access { read: true, write: true, mknod: true };
    /// mknod only: the node can be made, not opened.
    pub const MKNOD: Access = Access { read: false, write: false, mknod: true };

    /// `rwm`, `m`, … as cgroup v1 and the OCI spec write it.
    pub fn letters(self) -> String {
        [(self.read, 'r'), (self.write, 'w'), (self.mknod, 'm')].iter().filter(|(on, _)| *on).map(|(_, c)| c).collect()
    }
}

/// One allowed device class: a kind, a major and minor (`None` = any) and the access granted.
/// Everything no rule allows is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    const fn char(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule { kind: DeviceKind::Char, major: Some(major), minor, access: Access::RWM }
    }

    /// The v1 `devices.allow` line: `c 1:3 rwm`, `b *:* m`.
    pub fn v1_line(&self) -> String {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!("{} {}:{} {}", self.kind.letter(), number(self.major), number(self.minor), self.access.letters())
    }

    /// Whether this rule alone grants every device everything.
    pub fn is_everything(&self) -> bool {
        self.kind == DeviceKind::All && self.major.is_none() && self.minor.is_none() && self.access == Access::RWM
    }

    /// runc's default whitelist (1.2): any node may be created, but only these opened: null,
    /// zero, full, random, urandom, tty, console, ptmx and the pseudo-terminals.
    pub fn runc_defaults() -> Vec<DeviceRule> {
        vec![
            DeviceRule { kind: DeviceKind::Char, major: None, minor: None, access: Access::MKNOD },
            DeviceRule { kind: DeviceKind::Block, major: None, minor: None, access: Access::MKNOD },
            DeviceRule::char(1, Some(3)), // null
            DeviceRule::char(1, Some(5)), // zero
            DeviceRule::char(1, Some(7)), // full
            DeviceRule::char(1, Some(8)), // random
            DeviceRule::char(1, Some(9)), // urandom
            DeviceRule::char(5, Some(0)), // tty
            DeviceRule::char(5, Some(1)), // console
            DeviceRule::char(5, Some(2)), // ptmx
            DeviceRule::char(136, None),  // pts/*
        ]
    }

    /// Every device, everything (`privileged: true`).
    pub fn everything() -> Vec<DeviceRule> {
        vec![DeviceRule { kind: DeviceKind::All, major: None, minor: None, access: Access::RWM }]
    }
}

/// Whether `rules` grant every device everything, so nothing needs enforcing.
pub fn allows_everything(rules: &[DeviceRule]) -> bool {
    rules.iter().any(DeviceRule::is_everything)
}

/// Whether `rules` let a process do `access` on device `kind` `major:minor` — the semantics
/// both enforcements implement: one rule must cover the device and every access asked for.
pub fn allowed(rules: &[DeviceRule], kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
    rules.iter().any(|r| {
        (r.kind == DeviceKind::All || r.kind == kind)
            && r.major.is_none_or(|m| m == major)
            && r.minor.is_none_or(|m| m == minor)
            && (!access.read || r.access.read)
            && (!access.write || r.access.write)
            && (!access.mknod || r.access.mknod)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_read_as_runc_writes_them() {
        let lines: Vec<String> = DeviceRule::runc_defaults().iter().map(DeviceRule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm"
            ]
        );
        assert!(!allows_everything(&DeviceRule::runc_defaults()));
        assert!(allows_everything(&DeviceRule::everything()));
        assert_eq!(DeviceRule::everything()[0].v1_line(), "a *:* rwm");
    }

    #[test]
    fn only_whitelisted_devices_open_and_any_node_may_be_made() {
        let rules = DeviceRule::runc_defaults();
        let rw = Access { read: true, write: true, mknod: false };
        assert!(allowed(&rules, DeviceKind::Char, 1, 3, rw), "null");
        assert!(allowed(&rules, DeviceKind::Char, 136, 7, rw), "a pty");
        assert!(!allowed(&rules, DeviceKind::Block, 7, 0, Access { read: true, write: false, mknod: false }));
        assert!(!allowed(&rules, DeviceKind::Char, 1, 1, rw), "/dev/mem");
        assert!(allowed(&rules, DeviceKind::Block, 8, 0, Access::MKNOD), "mknod alone, as runc");
        assert!(!allowed(&rules, DeviceKind::Block, 8, 0, Access::RWM), "no rule covers all three");
        assert!(allowed(&DeviceRule::everything(), DeviceKind::Block, 8, 0, Access::RWM));
    }
}
