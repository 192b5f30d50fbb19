//! cgroup v2's device control: a `BPF_PROG_TYPE_CGROUP_DEVICE` program, generated from the
//! rules, loaded with bpf(2) and attached to the container's cgroup. The kernel runs it on
//! every open and mknod of a device node and denies what it returns 0 for.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! where `access_type` is `(access << 16) | type`, then tries the rules in order: the first
//! that covers the device and every access asked for returns 1; after the last, 0.

use super::rules::{Access, DeviceKind, DeviceRule};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction, as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one (little-endian bitfields; all four
    /// board targets are little-endian).
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// The context's device types and access bits (BPF_DEVCG_*).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Registers: r1 holds the context on entry; the prologue spreads it over r2..r5.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | (dst & 0x0f), off, imm }
}

fn access_bits(access: Access) -> i32 {
    [(access.mknod, ACC_MKNOD), (access.read, ACC_READ), (access.write, ACC_WRITE)]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |bits, (_, bit)| bits | bit)
}

/// The checks of one rule, each a jump over the rest of the block when it fails, then
/// "return 1".
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // Each check as (instructions, index of its jump within them); offsets are filled in once
    // the block's length is known.
    let mut checks: Vec<Insn> = Vec::new();
    let mut jumps: Vec<usize> = Vec::new();
    let kind = match rule.kind {
        DeviceKind::Char => Some(DEV_CHAR),
        DeviceKind::Block => Some(DEV_BLOCK),
        DeviceKind::All => None,
    };
    if let Some(kind) = kind {
        jumps.push(checks.len());
        checks.push(insn(JMP_JNE_K, TYPE, 0, 0, kind));
    }
    let granted = access_bits(rule.access);
    if granted != ACC_MKNOD | ACC_READ | ACC_WRITE {
        // Any access asked for beyond the granted ones fails the rule.
        checks.push(insn(ALU64_MOV_X, R1, ACCESS, 0, 0));
        checks.push(insn(ALU32_AND_K, R1, 0, 0, !granted & 0x7));
        jumps.push(checks.len());
        checks.push(insn(JMP_JNE_K, R1, 0, 0, 0));
    }
    for (register, number) in [(MAJOR, rule.major), (MINOR, rule.minor)] {
        if let Some(number) = number {
            // Majors and minors are 12 and 20 bits wide: always a positive i32.
            jumps.push(checks.len());
            checks.push(insn(JMP_JNE_K, register, 0, 0, number.min(i32::MAX as u32) as i32));
        }
    }
    checks.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
    checks.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = checks.len();
    for at in jumps {
        // A jump's offset counts the instructions after it that it skips: the rest of the block.
        checks[at].off = (len - at - 1) as i16;
    }
    checks
}

/// The whole program for `rules`.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, TYPE, R1, 0, 0),
        insn(ALU32_AND_K, TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, ACCESS, R1, 0, 0),
        insn(ALU32_RSH_K, ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, MAJOR, R1, 4, 0),
        insn(LDX_MEM_W, MINOR, R1, 8, 0),
    ];
    for rule in rules {
        prog.extend(rule_block(rule));
    }
    prog.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

// bpf(2) commands, program and attach types (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to the fields we set.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: bpf(2) reads (and for some commands writes) `size_of::<T>()` bytes of the live,
    // exclusively borrowed attribute struct; the pointers inside it point at buffers the
    // callers keep alive for the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>() as u32) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// Loads the program for `rules`; the verifier's log is in the error when it refuses it.
pub fn load(rules: &[DeviceRule]) -> Result<OwnedFd, String> {
    let prog = program(rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..7].copy_from_slice(b"coracle");
    let fd = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        format!("load the device program ({} instructions): {e}: {}", prog.len(), text.trim_end_matches('\0').trim())
    })?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the program for `rules` to the cgroup v2 directory `dir`. Without flags, so a
/// program attached earlier to the same cgroup is replaced, while programs of ancestors that
/// allow more (systemd's, with BPF_F_ALLOW_MULTI) still run too.
pub fn attach(rules: &[DeviceRule], dir: &Path) -> Result<(), String> {
    let prog = load(rules)?;
    let cgroup = std::fs::File::open(dir).map_err(|e| format!("open cgroup {}: {e}", dir.display()))?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| format!("attach the device program to {}: {e}", dir.display()))?;
    // The attachment holds the program; our descriptors close here.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_block_skips_to_the_next_rule_on_any_mismatch() {
        let null = DeviceRule::runc_defaults()[2];
        let block = rule_block(&null);
        // type, major, minor checks, then r0 = 1; exit.
        assert_eq!(block.len(), 5);
        assert_eq!(block[0], insn(JMP_JNE_K, TYPE, 0, 4, DEV_CHAR));
        assert_eq!(block[1], insn(JMP_JNE_K, MAJOR, 0, 3, 1));
        assert_eq!(block[2], insn(JMP_JNE_K, MINOR, 0, 2, 3));
        let mknod_any = rule_block(&DeviceRule::runc_defaults()[1]);
        assert_eq!(mknod_any[1], insn(ALU64_MOV_X, R1, ACCESS, 0, 0));
        assert_eq!(mknod_any[2], insn(ALU32_AND_K, R1, 0, 0, ACC_READ | ACC_WRITE), "read or write fails it");
        assert_eq!(mknod_any[3].off, 2);
        let everything = rule_block(&DeviceRule::everything()[0]);
        assert_eq!(everything, vec![insn(ALU64_MOV_K, R0, 0, 0, 1), insn(JMP_EXIT, 0, 0, 0, 0)]);
    }

    #[test]
    fn registers_pack_dst_low_and_src_high() {
        assert_eq!(insn(LDX_MEM_W, TYPE, R1, 0, 0).regs, 0x12);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let prog = program(&DeviceRule::runc_defaults());
        assert_eq!(prog.last(), Some(&insn(JMP_EXIT, 0, 0, 0, 0)));
        assert_eq!(prog[prog.len() - 2], insn(ALU64_MOV_K, R0, 0, 0, 0), "deny when no rule matched");
    }
}
