//! The OOM score a container's processes get: the init sets its own (after joining its cgroups
//! through the cgroups module), and an exec'd command gets the same.

use std::io::Write;
use std::path::Path;

/// The range the kernel accepts in `/proc/PID/oom_score_adj`.
const OOM_SCORE_ADJ_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// Writes `bytes` into a file that must already exist (a cgroup or /proc control file).
fn write_existing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.write_all(bytes)
}

/// Sets the calling process's `oom_score_adj` (inherited by everything it starts) to what
/// [`achievable_oom_score_adj`] makes of `score`.
pub fn set_oom_score_adj(score: i32) -> Result<(), String> {
    let score = achievable_oom_score_adj(score)?;
    write_existing(Path::new("/proc/self/oom_score_adj"), score.to_string().as_bytes())
        .map_err(|e| format!("write /proc/self/oom_score_adj ({score}): {e}"))
}

/// The score this process can give what it starts: `score` itself, except that lowering it
/// below the inherited score needs CAP_SYS_RESOURCE, so without that capability the score
/// stops at this process's own (a Guaranteed pod is then as protected as the daemon).
pub fn achievable_oom_score_adj(score: i32) -> Result<i32, String> {
    if !OOM_SCORE_ADJ_RANGE.contains(&score) {
        return Err(format!("oom_score_adj {score}: must be within [-1000, 1000]"));
    }
    if has_effective_capability(CAP_SYS_RESOURCE)? {
        return Ok(score);
    }
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .map_err(|e| format!("read /proc/self/oom_score_adj: {e}"))?;
    let own: i32 =
        own.trim().parse().map_err(|_| format!("/proc/self/oom_score_adj: {:?} is not a number", own.trim()))?;
    Ok(score.max(own))
}

/// CAP_SYS_RESOURCE's number.
const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process holds capability number `cap` in its effective set.
fn has_effective_capability(cap: u32) -> Result<bool, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("read /proc/self/status: {e}"))?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:")).ok_or("/proc/self/status: no CapEff line")?.trim();
    let mask = u64::from_str_radix(hex, 16).map_err(|_| format!("/proc/self/status: CapEff {hex:?} is not hex"))?;
    Ok(mask & (1 << cap) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_score() -> i32 {
        std::fs::read_to_string("/proc/self/oom_score_adj").unwrap().trim().parse().unwrap()
    }

    #[test]
    fn a_score_outside_the_kernel_range_is_refused_by_name() {
        let err = set_oom_score_adj(1001).unwrap_err();
        assert_eq!(err, "oom_score_adj 1001: must be within [-1000, 1000]");
        assert!(achievable_oom_score_adj(-1001).is_err());
    }

    #[test]
    fn the_score_is_never_below_what_this_process_may_set() {
        let own = own_score();
        let privileged = has_effective_capability(CAP_SYS_RESOURCE).unwrap();
        assert_eq!(achievable_oom_score_adj(1000).unwrap(), 1000);
        let floor = achievable_oom_score_adj(-1000).unwrap();
        assert_eq!(floor, if privileged { -1000 } else { own.max(-1000) });
    }

    #[test]
    fn the_score_lands_in_proc() {
        // In a child, so the test process keeps its own score.
        // SAFETY: fork in a test; the child only reads and writes its own /proc files and _exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let raised = set_oom_score_adj(999).is_ok() && own_score() == 999;
                // Back down to the floor: allowed with CAP_SYS_RESOURCE, clamped to 999 without it.
                let lowered = set_oom_score_adj(-997).is_ok() && [-997, 999].contains(&own_score());
                // SAFETY: _exit ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(if raised && lowered { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
