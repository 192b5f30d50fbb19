//! System call names to numbers for the architecture coracled was built for. The tables are
//! generated (generate.py) for the four board architectures; a name missing from this
//! architecture's table is a call it does not have.

#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod table;

#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod table;

#[cfg(target_arch = "arm")]
#[path = "arm.rs"]
mod table;

#[cfg(target_arch = "riscv64")]
#[path = "riscv64.rs"]
mod table;

/// This architecture in Go's naming, as Docker profiles' `arches` conditions write it.
#[cfg(target_arch = "x86_64")]
pub const GO_ARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
pub const GO_ARCH: &str = "arm64";
#[cfg(target_arch = "arm")]
pub const GO_ARCH: &str = "arm";
#[cfg(target_arch = "riscv64")]
pub const GO_ARCH: &str = "riscv64";

/// The OCI spec's (libseccomp's) name of this architecture.
#[cfg(target_arch = "x86_64")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_X86_64";
#[cfg(target_arch = "aarch64")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_AARCH64";
#[cfg(target_arch = "arm")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_ARM";
#[cfg(target_arch = "riscv64")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_RISCV64";

/// The table's own spelling of `name` (so rules can borrow it) and its number here.
pub fn lookup(name: &str) -> Option<(&'static str, u32)> {
    let table = table::TABLE;
    table.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| table[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_agrees_with_libc() {
        assert!(table::TABLE.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicates");
        for (name, number) in [
            ("read", libc::SYS_read),
            ("openat", libc::SYS_openat),
            ("mount", libc::SYS_mount),
            ("unshare", libc::SYS_unshare),
            ("setns", libc::SYS_setns),
            ("keyctl", libc::SYS_keyctl),
            ("perf_event_open", libc::SYS_perf_event_open),
            ("ptrace", libc::SYS_ptrace),
            ("reboot", libc::SYS_reboot),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("seccomp", libc::SYS_seccomp),
            ("execve", libc::SYS_execve),
            ("personality", libc::SYS_personality),
        ] {
            assert_eq!(lookup(name), Some((name, number as u32)), "{name}");
        }
        assert_eq!(lookup("cachestat"), Some(("cachestat", 451)), "unified numbers after 5.1");
        assert_eq!(lookup("no_such_call"), None);
    }
}
