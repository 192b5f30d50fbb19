//! Where the benchmark's processes run. `shared`: wrk, the proxies and the backend on every
//! core, as the scheduler likes — all of the machine's CPU is the limit, and wrk's share of
//! it moves with what each proxy hands it. `pinned`: wrk on the first core, the proxies and
//! the backend on the others — a board serving a client that is elsewhere, where what the
//! proxy costs beside its pods decides the rate, and no process migrates between cores.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Shared,
    Pinned,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Shared => "shared",
            Layout::Pinned => "pinned",
        }
    }

    /// Confines the calling thread — and so the backend's threads and the proxies it starts
    /// afterwards — to this layout's server cores, out of `cpus` (all the process may use);
    /// returns wrk's core when it has one of its own.
    pub fn place(self, cpus: &[usize]) -> Result<Option<usize>, String> {
        match (self, cpus) {
            (Layout::Shared, _) => {
                set_affinity(cpus)?;
                Ok(None)
            }
            (Layout::Pinned, [client, servers @ ..]) if !servers.is_empty() => {
                set_affinity(servers)?;
                Ok(Some(*client))
            }
            (Layout::Pinned, _) => {
                Err(format!("the pinned layout needs two cores or more; this process may use {cpus:?}"))
            }
        }
    }
}

/// The cores this thread may run on, in order.
pub fn usable_cpus() -> Result<Vec<usize>, String> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(|e| format!("reading the CPU affinity: {e}"))?;
    Ok((0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect())
}

/// Confines the calling thread (and what it starts from now on) to `cpus`.
pub fn set_affinity(cpus: &[usize]) -> Result<(), String> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| format!("confining to CPUs {cpus:?}: {e}"))
}
