//! What /proc says about a process: resident memory (VmRSS, Pss) and bytes written to storage.

use std::path::PathBuf;

/// A process's memory, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS from /proc/PID/status: every resident page, shared ones counted in full.
    pub rss: u64,
    /// Pss from /proc/PID/smaps_rollup: shared pages split among the processes mapping them.
    pub pss: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, other: Memory) -> Memory {
        Memory { rss: self.rss + other.rss, pss: self.pss + other.pss }
    }
}

fn read(pid: u32, file: &str) -> Result<String, String> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The value of a `Name:   123 kB` line, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        let number = rest.split_whitespace().next()?;
        number.parse::<u64>().ok().map(|kib| kib * 1024)
    })
}

/// The value of a `name: 123` line (the /proc/PID/io format).
fn plain_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
}

/// VmRSS and Pss of `pid`.
pub fn memory(pid: u32) -> Result<Memory, String> {
    let status = read(pid, "status")?;
    let rss = kib_field(&status, "VmRSS").ok_or_else(|| format!("/proc/{pid}/status: no VmRSS line"))?;
    let rollup = read(pid, "smaps_rollup")?;
    let pss = kib_field(&rollup, "Pss").ok_or_else(|| format!("/proc/{pid}/smaps_rollup: no Pss line"))?;
    Ok(Memory { rss, pss })
}

/// Bytes `pid` (all its threads, living and exited) caused to be written to storage:
/// `write_bytes` of /proc/PID/io. Writes to pipes, sockets and tmpfs do not count.
pub fn storage_writes(pid: u32) -> Result<u64, String> {
    let io = read(pid, "io")?;
    plain_field(&io, "write_bytes").ok_or_else(|| format!("/proc/{pid}/io: no write_bytes line"))
}

/// Whether a process with this pid exists (a zombie counts).
pub fn exists(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_missing_ones_are_none() {
        let status = "Name:\tcoracled\nVmRSS:\t    2048 kB\nVmRSSX:\t1 kB\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(2 * 1024 * 1024));
        assert_eq!(kib_field(status, "VmHWM"), None);
        let io = "rchar: 10\nwchar: 20\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
        assert_eq!(plain_field(io, "write_bytes"), Some(4096));
        assert_eq!(plain_field(io, "read_bytes"), None);
    }

    #[test]
    fn this_process_has_memory_and_a_write_counter() {
        let me = std::process::id();
        let m = memory(me).unwrap();
        assert!(m.rss > 0 && m.pss > 0 && m.pss <= m.rss, "{m:?}");
        storage_writes(me).unwrap();
        assert!(exists(me));
        let err = memory(u32::MAX).unwrap_err();
        assert!(err.contains(&format!("/proc/{}/status", u32::MAX)), "{err}");
    }
}
