//! System call names to numbers, one table per architecture a filter may judge: the one
//! coracled was built for and the compat architecture its kernel also runs (i386 on x86_64,
//! 32-bit ARM on aarch64), as Docker's profile lists them. The tables are generated
//! (generate.py); a name missing from an architecture's table is a call it does not have.
//! Tests carry every table, to judge every board's filters on any host.

#[cfg(any(target_arch = "x86_64", test))]
mod x86_64;

#[cfg(any(target_arch = "x86_64", test))]
mod x86;

#[cfg(any(target_arch = "aarch64", test))]
mod aarch64;

#[cfg(any(target_arch = "aarch64", target_arch = "arm", test))]
mod arm;

#[cfg(any(target_arch = "riscv64", test))]
mod riscv64;

/// What seccompiler compiles a program for: its own three architectures. 32-bit ARM and i386
/// programs are compiled as their 64-bit sibling's and their architecture check retargeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Each build constructs only the compilers of its own architectures (tests all three).
#[cfg_attr(not(test), allow(dead_code))]
pub enum Compiler {
    X86_64,
    Aarch64,
    Riscv64,
}

/// An architecture as a seccomp filter knows it.
#[derive(Debug, PartialEq, Eq)]
pub struct Arch {
    /// libseccomp's (and the OCI spec's) name: `SCMP_ARCH_X86_64`.
    pub scmp: &'static str,
    /// linux/audit.h's AUDIT_ARCH_*, which the kernel hands the filter in seccomp_data.arch.
    pub audit: u32,
    /// Name → number, sorted by name.
    pub table: &'static [(&'static str, u32)],
    pub compiler: Compiler,
}

impl Arch {
    /// The table's own spelling of `name` (so rules can borrow it) and its number here.
    pub fn lookup(&self, name: &str) -> Option<(&'static str, u32)> {
        self.table.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| self.table[i])
    }
}

#[cfg(any(target_arch = "x86_64", test))]
pub const X86_64: Arch =
    Arch { scmp: "SCMP_ARCH_X86_64", audit: 0xC000_003E, table: x86_64::TABLE, compiler: Compiler::X86_64 };
#[cfg(any(target_arch = "x86_64", test))]
pub const X86: Arch = Arch { scmp: "SCMP_ARCH_X86", audit: 0x4000_0003, table: x86::TABLE, compiler: Compiler::X86_64 };
#[cfg(any(target_arch = "aarch64", test))]
pub const AARCH64: Arch =
    Arch { scmp: "SCMP_ARCH_AARCH64", audit: 0xC000_00B7, table: aarch64::TABLE, compiler: Compiler::Aarch64 };
#[cfg(any(target_arch = "aarch64", target_arch = "arm", test))]
pub const ARM: Arch =
    Arch { scmp: "SCMP_ARCH_ARM", audit: 0x4000_0028, table: arm::TABLE, compiler: Compiler::Aarch64 };
#[cfg(any(target_arch = "riscv64", test))]
pub const RISCV64: Arch =
    Arch { scmp: "SCMP_ARCH_RISCV64", audit: 0xC000_00F3, table: riscv64::TABLE, compiler: Compiler::Riscv64 };

/// The architecture coracled was built for, and the ones its kernel also runs binaries of
/// (Docker's arch map: amd64 → x86, x32; arm64 → arm). x32 shares x86_64's AUDIT_ARCH and
/// is judged apart (see compile.rs).
#[cfg(target_arch = "x86_64")]
pub const NATIVE: &Arch = &X86_64;
#[cfg(target_arch = "x86_64")]
pub const COMPAT: &[&Arch] = &[&X86];
#[cfg(target_arch = "aarch64")]
pub const NATIVE: &Arch = &AARCH64;
#[cfg(target_arch = "aarch64")]
pub const COMPAT: &[&Arch] = &[&ARM];
#[cfg(target_arch = "arm")]
pub const NATIVE: &Arch = &ARM;
#[cfg(target_arch = "arm")]
pub const COMPAT: &[&Arch] = &[];
#[cfg(target_arch = "riscv64")]
pub const NATIVE: &Arch = &RISCV64;
#[cfg(target_arch = "riscv64")]
pub const COMPAT: &[&Arch] = &[];

/// This architecture in Go's naming, as Docker profiles' `arches` conditions write it.
#[cfg(target_arch = "x86_64")]
pub const GO_ARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
pub const GO_ARCH: &str = "arm64";
#[cfg(target_arch = "arm")]
pub const GO_ARCH: &str = "arm";
#[cfg(target_arch = "riscv64")]
pub const GO_ARCH: &str = "riscv64";

/// Every table, for tests.
#[cfg(test)]
pub const ALL: [&Arch; 5] = [&X86_64, &X86, &AARCH64, &ARM, &RISCV64];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_sorted_and_agree_with_libc() {
        for arch in ALL {
            assert!(arch.table.windows(2).all(|w| w[0].0 < w[1].0), "{}: sorted, no duplicates", arch.scmp);
            assert_eq!(arch.lookup("cachestat").map(|(_, n)| n), Some(451), "{}: unified numbers after 5.1", arch.scmp);
            assert_eq!(arch.lookup("no_such_call"), None);
        }
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
            assert_eq!(NATIVE.lookup(name), Some((name, number as u32)), "{name}");
        }
        // i386's and 32-bit ARM's own numbering (asm/unistd_32.h, asm/unistd.h).
        assert_eq!(X86.lookup("keyctl"), Some(("keyctl", 288)));
        assert_eq!(X86.lookup("socketcall"), Some(("socketcall", 102)));
        assert_eq!(ARM.lookup("unshare"), Some(("unshare", 337)));
        assert_eq!(AARCH64.lookup("unshare"), Some(("unshare", 97)));
        assert_eq!(RISCV64.lookup("keyctl"), Some(("keyctl", 219)));
    }
}
