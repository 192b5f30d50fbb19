//! A classic-BPF interpreter for seccomp programs, for tests: it runs a filter stack on a
//! synthetic `seccomp_data` as the kernel does (every filter, the most restrictive answer),
//! so every architecture's filters can be judged on any host, and under qemu-user, which
//! installs no guest filter: qemu 7.2 fails a guest's seccomp(2) (ENOSYS from a C program,
//! EINVAL in the runtime's own test) and PR_SET_SECCOMP (EINVAL), since a filter there would
//! judge the host calls qemu makes, not the guest's. It knows
//! the instructions seccompiler and compile.rs emit and panics on any other.

use seccompiler::sock_filter;

/// The kernel's `struct seccomp_data` as a filter reads it (little-endian, as every board).
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Data {
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr,
            4 => self.arch,
            // instruction_pointer (8..16) is never read by these filters.
            16..=63 if offset.is_multiple_of(4) => {
                let arg = self.args[((offset - 16) / 8) as usize];
                if (offset - 16).is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("filter loads seccomp_data at offset {offset}"),
        }
    }
}

/// One filter's return value for `data`.
pub fn run(program: &[sock_filter], data: &Data) -> u32 {
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = &program[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
        match i.code {
            0x20 => acc = data.word(i.k),       // ld [k]
            0x54 => acc &= i.k,                 // and #k
            0x05 => pc += i.k as usize,         // ja
            0x15 => pc += jump(acc == i.k),     // jeq #k
            0x25 => pc += jump(acc > i.k),      // jgt #k
            0x35 => pc += jump(acc >= i.k),     // jge #k
            0x45 => pc += jump(acc & i.k != 0), // jset #k
            0x06 => return i.k,                 // ret #k
            code => panic!("instruction {code:#x} at {}", pc - 1),
        }
    }
}

/// The kernel's order of actions, most restrictive first (seccomp(2), "Filter return values").
fn rank(ret: u32) -> u32 {
    match ret & 0xffff_0000 {
        0x8000_0000 => 0, // KILL_PROCESS
        0x0000_0000 => 1, // KILL_THREAD
        0x0003_0000 => 2, // TRAP
        0x0005_0000 => 3, // ERRNO
        0x7fc0_0000 => 4, // USER_NOTIF
        0x7ff0_0000 => 5, // TRACE
        0x7ffc_0000 => 6, // LOG
        _ => 7,           // ALLOW
    }
}

/// What a stack of filters answers: the most restrictive of their returns (the latest
/// installed wins a tie, as the kernel walks the newest filter first).
pub fn run_all(programs: &[Vec<sock_filter>], data: &Data) -> u32 {
    programs.iter().rev().map(|p| run(p, data)).min_by_key(|r| rank(*r)).unwrap_or(0x7fff_0000)
}

/// `run_all`'s answer as words: `allow`, `errno N`, `kill-process`, ….
pub fn verdict(ret: u32) -> String {
    match ret & 0xffff_0000 {
        0x7fff_0000 => "allow".into(),
        0x0005_0000 => format!("errno {}", ret & 0xffff),
        0x8000_0000 => "kill-process".into(),
        0x0000_0000 => "kill-thread".into(),
        other => format!("action {other:#x}"),
    }
}
