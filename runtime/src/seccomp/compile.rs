//! Resolved rules to classic BPF through Firecracker's `seccompiler`, and installing them.
//!
//! A seccompiler filter has one action for every match, so a profile becomes a stack of
//! filters, which the kernel runs all of, keeping the most restrictive answer:
//! - a base filter returning the default action for every call no rule matches (and "allow"
//!   for those some rule does);
//! - one filter per other action (ERRNO(ENOSYS) for clone3, …) returning it for the calls
//!   its rules match and "allow" for everything else.
//!
//! seccompiler compiles for one architecture (x86_64, aarch64 or riscv64) per filter and kills
//! a call of any other at the filter's head. Where the kernel also runs a compat
//! architecture's binaries (i386 on x86_64, 32-bit ARM on aarch64, which Docker's profile
//! allows), each architecture gets its own stack, as libseccomp builds one filter judging
//! several: every stack lets the other architectures' calls through (its head's "kill"
//! becomes "allow"), and a gate filter in front kills the calls of any architecture not
//! listed. 32-bit programs are compiled as their 64-bit sibling's with the architecture
//! check's constant swapped: the programs differ in nothing else (arguments are compared as
//! 64-bit values, whose upper half a 32-bit call has zero).
//!
//! x32 calls (x86_64's AUDIT_ARCH with bit 30 set in the number) are refused with EPERM by the
//! gate whatever the profile: Docker allows them, but Coracle carries no x32 table, and
//! without the gate a deny-list profile would let them past its rules.

use super::resolve::{Action, Compare, Op, Resolved};
use super::syscalls::{Arch, Compiler};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// linux/audit.h's AUDIT_ARCH_X86_64, and x32's bit in the call number (asm/unistd.h).
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// classic BPF's instruction codes (linux/bpf_common.h) and seccomp's offsets and returns.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

fn target(c: Compiler) -> (TargetArch, u32) {
    match c {
        Compiler::X86_64 => (TargetArch::x86_64, AUDIT_ARCH_X86_64),
        Compiler::Aarch64 => (TargetArch::aarch64, 0xC000_00B7),
        Compiler::Riscv64 => (TargetArch::riscv64, 0xC000_00F3),
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

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

fn build(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: Action,
    matched: Action,
    arch: &Arch,
    chained: bool,
) -> Result<BpfProgram, String> {
    let (compiler, compiler_audit) = target(arch.compiler);
    let filter = SeccompFilter::new(rules, action(mismatch), action(matched), compiler)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let mut program: BpfProgram = filter.try_into().map_err(|e| format!("compile seccomp filter: {e}"))?;
    // seccompiler's head: load seccomp_data.arch; jeq AUDIT_ARCH, skip one; kill the process.
    let head = [stmt(LD_W_ABS, DATA_ARCH), jump(JEQ_K, compiler_audit, 1, 0), stmt(RET_K, RET_KILL_PROCESS)];
    if program.len() < 3 || program[..3] != head {
        return Err("compiled seccomp filter does not begin with the architecture check".into());
    }
    program[1].k = arch.audit;
    if chained {
        program[2].k = RET_ALLOW;
    }
    Ok(program)
}

/// The filter in front of chained architectures' stacks: their calls pass (x32's excepted),
/// any other architecture's kill the process.
fn gate(arches: &[&Arch]) -> BpfProgram {
    let mut p = vec![stmt(LD_W_ABS, DATA_ARCH)];
    for arch in arches {
        if arch.audit == AUDIT_ARCH_X86_64 {
            // Not this architecture: skip the four below. Else x32 (bit 30) → EPERM, others pass.
            p.push(jump(JEQ_K, arch.audit, 0, 4));
            p.push(stmt(LD_W_ABS, DATA_NR));
            p.push(jump(JGE_K, X32_SYSCALL_BIT, 0, 1));
            p.push(stmt(RET_K, RET_ERRNO | libc::EPERM as u32));
        } else {
            p.push(jump(JEQ_K, arch.audit, 0, 1));
        }
        p.push(stmt(RET_K, RET_ALLOW));
    }
    p.push(stmt(RET_K, RET_KILL_PROCESS));
    p
}

/// One architecture's stack, in the order to install it (its base filter last).
fn stack(resolved: &Resolved, chained: bool) -> Result<Vec<BpfProgram>, String> {
    let default = resolved.default_action;
    // Rules repeating the default change nothing.
    let effective: Vec<_> = resolved.rules.iter().filter(|r| r.action != default).collect();
    let mut actions: Vec<Action> = effective.iter().map(|r| r.action).filter(|a| *a != Action::Allow).collect();
    actions.sort();
    actions.dedup();
    let mut programs = Vec::new();
    for a in actions {
        let rules = rule_map(effective.iter().copied().filter(|r| r.action == a))?;
        programs.push(build(rules, Action::Allow, a, resolved.arch, chained)?);
    }
    if default != Action::Allow {
        programs.push(build(rule_map(effective.iter().copied())?, default, Action::Allow, resolved.arch, chained)?);
    }
    Ok(programs)
}

/// The filters for `resolved` (this architecture's rules first, then the compat ones'), in
/// the order to install them: the gate, the compat stacks, this architecture's stack with its
/// base filter last, so that the others install before it could refuse seccomp(2) itself.
pub fn compile(resolved: &[Resolved]) -> Result<Vec<BpfProgram>, String> {
    let Some((native, compat)) = resolved.split_first() else { return Ok(Vec::new()) };
    let chained = !compat.is_empty();
    let mut programs = Vec::new();
    if chained {
        let arches: Vec<&Arch> = resolved.iter().map(|r| r.arch).collect();
        programs.push(gate(&arches));
    }
    for r in compat {
        programs.extend(stack(r, chained)?);
    }
    let own = stack(native, chained)?;
    // Nothing to filter for any architecture (an allow-all profile): no gate either.
    if own.is_empty() && programs.len() == usize::from(chained) {
        return Ok(Vec::new());
    }
    programs.extend(own);
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

/// For tests: the AUDIT_ARCH a stack's program checks.
#[cfg(test)]
pub(crate) fn checked_arch(program: &BpfProgram) -> u32 {
    program[1].k
}
