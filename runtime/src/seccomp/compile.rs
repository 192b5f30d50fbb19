//! Resolved rules to classic BPF through Firecracker's `seccompiler`, and installing them.
//!
//! A seccompiler filter has one action for every match, so a profile becomes a stack of
//! filters, which the kernel runs all of, keeping the most restrictive answer:
//! - a base filter returning the default action for every call no rule matches (and "allow"
//!   for those some rule does);
//! - one filter per other action (ERRNO(ENOSYS) for clone3, …) returning it for the calls
//!   its rules match and "allow" for everything else.
//!
//! seccompiler knows x86_64, aarch64 and riscv64. Its programs are the same for every
//! architecture but for the audit-arch check at their head, so for 32-bit ARM the program is
//! compiled as aarch64's and that one constant is swapped for AUDIT_ARCH_ARM.

use super::resolve::{Action, Compare, Op, Resolved};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

#[cfg(target_arch = "x86_64")]
const TARGET: TargetArch = TargetArch::x86_64;
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const TARGET: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const TARGET: TargetArch = TargetArch::riscv64;

/// linux/audit.h: AUDIT_ARCH_AARCH64 and AUDIT_ARCH_ARM.
#[cfg(any(target_arch = "arm", test))]
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
#[cfg(target_arch = "arm")]
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

fn action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(n) => SeccompAction::Errno(n),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Log => SeccompAction::Log,
        Action::Trace(n) => SeccompAction::Trace(n),
    }
}

fn condition(c: &Compare) -> Result<SeccompCondition, String> {
    let op = match c.op {
        Op::Ne => SeccompCmpOp::Ne,
        Op::Lt => SeccompCmpOp::Lt,
        Op::Le => SeccompCmpOp::Le,
        Op::Eq => SeccompCmpOp::Eq,
        Op::Ge => SeccompCmpOp::Ge,
        Op::Gt => SeccompCmpOp::Gt,
        Op::MaskedEq { mask } => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, c.value)
        .map_err(|e| format!("argument {} comparison: {e}", c.index))
}

/// Rules by call number: an empty list matches the call whatever its arguments.
fn rule_map<'a>(
    rules: impl Iterator<Item = &'a super::resolve::Rule>,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut map: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in rules {
        let entry = map.entry(i64::from(rule.number)).or_insert_with(|| Some(Vec::new()));
        if rule.args.is_empty() {
            // Unconditional: matches whatever other rules of the call say.
            *entry = None;
            continue;
        }
        if let Some(list) = entry {
            let conditions = rule.args.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
            list.push(SeccompRule::new(conditions).map_err(|e| format!("{}: {e}", rule.syscall))?);
        }
    }
    Ok(map.into_iter().map(|(nr, rules)| (nr, rules.unwrap_or_default())).collect())
}

fn build(rules: BTreeMap<i64, Vec<SeccompRule>>, mismatch: Action, matched: Action) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(rules, action(mismatch), action(matched), TARGET)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let mut program: BpfProgram = filter.try_into().map_err(|e| format!("compile seccomp filter: {e}"))?;
    retarget(&mut program)?;
    Ok(program)
}

/// Points the program's architecture check at 32-bit ARM (compiled as aarch64's).
#[cfg(target_arch = "arm")]
fn retarget(program: &mut BpfProgram) -> Result<(), String> {
    // seccompiler's head: load seccomp_data.arch; jeq AUDIT_ARCH, skip one; kill process.
    let check = program.get_mut(1).ok_or("compiled seccomp filter has no architecture check")?;
    if check.k != AUDIT_ARCH_AARCH64 {
        return Err(format!("compiled seccomp filter checks architecture {:#x}, not aarch64's", check.k));
    }
    check.k = AUDIT_ARCH_ARM;
    Ok(())
}

/// seccompiler targets this architecture itself: nothing to change.
#[cfg(not(target_arch = "arm"))]
fn retarget(_program: &mut BpfProgram) -> Result<(), String> {
    Ok(())
}

/// The filters for `resolved`, in the order to install them (the base filter last, so that
/// the others install before it could refuse seccomp(2) itself).
pub fn compile(resolved: &Resolved) -> Result<Vec<BpfProgram>, String> {
    let default = resolved.default_action;
    // Rules repeating the default change nothing.
    let effective: Vec<_> = resolved.rules.iter().filter(|r| r.action != default).collect();
    let mut actions: Vec<Action> = effective.iter().map(|r| r.action).filter(|a| *a != Action::Allow).collect();
    actions.sort();
    actions.dedup();
    let mut programs = Vec::new();
    for a in actions {
        let rules = rule_map(effective.iter().copied().filter(|r| r.action == a))?;
        programs.push(build(rules, Action::Allow, a)?);
    }
    if default != Action::Allow {
        programs.push(build(rule_map(effective.iter().copied())?, default, Action::Allow)?);
    }
    Ok(programs)
}

/// Installs `programs` on the calling thread (single-threaded: the container's init). Needs
/// no_new_privs or CAP_SYS_ADMIN; sets neither.
pub fn install(programs: &[BpfProgram]) -> Result<(), String> {
    install_in_child(programs).map_err(|e| format!("install seccomp filter: {e}"))
}

/// [`install`] without allocating, for a child between fork and exec (exec into a running
/// container): every program is checked to fit a `sock_fprog` before the fork, by
/// [`compile`]'s callers, so only the syscall's own error is left to report.
pub fn install_in_child(programs: &[BpfProgram]) -> std::io::Result<()> {
    for program in programs {
        let len = u16::try_from(program.len()).map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?;
        let fprog = libc::sock_fprog { len, filter: program.as_ptr() as *mut libc::sock_filter };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) copies the program the live sock_fprog
        // points at (`len` instructions of `program`, borrowed for the call) into the kernel.
        let rc = unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0u32, &fprog as *const libc::sock_fprog)
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// For tests: the AUDIT_ARCH the programs check.
#[cfg(test)]
pub(crate) fn checked_arch(program: &BpfProgram) -> u32 {
    program[1].k
}

#[cfg(test)]
pub(crate) const NATIVE_AUDIT_ARCH: u32 = if cfg!(target_arch = "x86_64") {
    0xC000_003E
} else if cfg!(target_arch = "aarch64") {
    AUDIT_ARCH_AARCH64
} else if cfg!(target_arch = "arm") {
    0x4000_0028
} else {
    0xC000_00F3
};
