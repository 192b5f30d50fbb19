//! Linux capabilities: Docker's default set, Kubernetes add/drop, and applying a set to this process.

use super::spec::CapabilityChanges;

/// Capability names in kernel order (index = capability number).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's (and containerd's) default capability set.
pub const DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A set of capabilities as a bit mask (bit n = capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

/// Capability number for a name; accepts `NET_ADMIN` and `CAP_NET_ADMIN`, any case.
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// The name of capability `n` without its `CAP_` prefix (`NET_ADMIN`), if we know it.
pub fn name(n: u32) -> Option<&'static str> {
    NAMES.get(n as usize).copied()
}

/// The highest capability the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

fn all(last: u32) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

fn parse_list(names: &[String], field: &str, last: u32) -> Result<(u64, bool), String> {
    let mut mask = 0;
    let mut has_all = false;
    for name in names {
        if name.eq_ignore_ascii_case("ALL") {
            has_all = true;
            continue;
        }
        let n = number(name).ok_or_else(|| format!("capabilities.{field}: unknown capability {name:?}"))?;
        if n <= last {
            mask |= 1 << n;
        }
    }
    Ok((mask, has_all))
}

/// Docker's default set, minus `drop`, plus `add` (`ALL` supported on both sides; add wins).
/// `ALL` added (and `privileged: true`) means every capability this process may hand on, as
/// containerd gives: a daemon run without some capability cannot grant it.
pub fn effective_set(changes: &CapabilityChanges, last: u32) -> Result<CapSet, String> {
    effective_set_within(changes, last, own_bounding_set())
}

/// [`effective_set`] with `ALL` meaning `available`.
pub fn effective_set_within(changes: &CapabilityChanges, last: u32, available: u64) -> Result<CapSet, String> {
    let defaults: u64 = DEFAULT.iter().filter_map(|n| number(n)).fold(0, |m, n| m | (1 << n));
    let (add, add_all) = parse_list(&changes.add, "add", last)?;
    let (drop, drop_all) = parse_list(&changes.drop, "drop", last)?;
    let mut set = if drop_all { 0 } else { defaults & !drop };
    set |= if add_all { all(last) & available } else { add };
    Ok(CapSet(set & all(last)))
}

/// This process's bounding set (`CapBnd` in /proc/self/status); every capability if unreadable.
fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapBnd:")).and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The `CAP_`-prefixed names in `set`, in kernel order (as the OCI spec and seccomp
/// profiles write them).
pub fn prefixed_names(set: CapSet, last: u32) -> Vec<String> {
    (0..=last.min(63))
        .filter(|n| set.0 & (1 << n) != 0)
        .filter_map(|n| name(n).map(|name| format!("CAP_{name}")))
        .collect()
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Shrinks the bounding set to `set`; needs CAP_SETPCAP, so call it before changing user.
pub fn limit_bounding_set(set: CapSet, last: u32) -> Result<(), String> {
    for cap in 0..=last {
        if set.0 & (1 << cap) == 0 {
            drop_from_bounding_set(cap).map_err(|e| format!("drop capability {cap} from bounding set: {e}"))?;
        }
    }
    Ok(())
}

/// [`limit_bounding_set`] without allocating, even on failure: for a child between fork and exec.
pub fn limit_bounding_set_in_child(set: CapSet, last: u32) -> std::io::Result<()> {
    for cap in 0..=last {
        if set.0 & (1 << cap) == 0 {
            drop_from_bounding_set(cap)?;
        }
    }
    Ok(())
}

fn drop_from_bounding_set(cap: u32) -> std::io::Result<()> {
    // SAFETY: prctl with PR_CAPBSET_DROP only reads its integer argument.
    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets this thread's effective, permitted and inheritable capabilities to `set`.
pub fn set_process_caps(set: CapSet) -> Result<(), String> {
    set_process_caps_in_child(set).map_err(|e| format!("capset {:#x}: {e}", set.0))
}

/// [`set_process_caps`] without allocating: for a child between fork and exec.
pub fn set_process_caps_in_child(set: CapSet) -> std::io::Result<()> {
    let header = CapHeader { version: CAP_VERSION_3, pid: 0 };
    let lo = set.0 as u32;
    let hi = (set.0 >> 32) as u32;
    let data = [
        CapData { effective: lo, permitted: lo, inheritable: lo },
        CapData { effective: hi, permitted: hi, inheritable: hi },
    ];
    // SAFETY: capset reads a v3 header and two data structs, both live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(add: &[&str], drop: &[&str]) -> CapabilityChanges {
        CapabilityChanges {
            add: add.iter().map(|s| s.to_string()).collect(),
            drop: drop.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn default_set_matches_docker() {
        let set = effective_set(&changes(&[], &[]), 40).unwrap();
        assert_eq!(set.0.count_ones(), 14);
        assert_eq!(set.0, 0xa80425fb, "Docker's CapEff for root");
    }

    #[test]
    fn add_drop_and_all() {
        let set = effective_set(&changes(&["NET_ADMIN"], &["CAP_KILL", "chown"]), 40).unwrap();
        assert_ne!(set.0 & (1 << 12), 0);
        assert_eq!(set.0 & (1 << 5), 0);
        assert_eq!(set.0 & 1, 0);
        let only = effective_set(&changes(&["NET_BIND_SERVICE"], &["ALL"]), 40).unwrap();
        assert_eq!(only.0, 1 << 10);
        let every = effective_set_within(&changes(&["ALL"], &[]), 40, u64::MAX).unwrap();
        assert_eq!(every.0, (1 << 41) - 1);
        let held = effective_set_within(&changes(&["ALL"], &[]), 40, !(1 << 24)).unwrap();
        assert_eq!(held.0, ((1 << 41) - 1) & !(1 << 24), "ALL is what this process holds");
        let err = effective_set(&changes(&["NET_FLY"], &[]), 40).unwrap_err();
        assert!(err.contains("capabilities.add") && err.contains("NET_FLY"), "{err}");
    }
}
