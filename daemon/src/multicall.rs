//! One file, two programs: the boards ship a single binary that is `coracled` and, under
//! the name `coracle` (a hard link), the ctl — as busybox and k3s do. The standard library,
//! serde and the object model are then carried once instead of twice.

use std::ffi::OsStr;
use std::path::Path;

/// The file name under which the ctl runs.
pub const CTL_NAME: &str = "coracle";

/// Whether `argv0` names the ctl: its file name is exactly `coracle`.
pub fn is_ctl_name(argv0: &OsStr) -> bool {
    Path::new(argv0).file_name().is_some_and(|name| name == CTL_NAME)
}

/// Runs the ctl when this process was invoked as `coracle` and returns its exit code;
/// `None` means "be the daemon".
pub fn dispatch() -> Option<i32> {
    let argv0 = std::env::args_os().next()?;
    is_ctl_name(&argv0).then(coracle::entry::main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ctl_is_chosen_by_file_name_only() {
        for ctl in ["coracle", "/usr/local/bin/coracle", "./coracle", "bin/coracle"] {
            assert!(is_ctl_name(OsStr::new(ctl)), "{ctl}");
        }
        for daemon in
            ["coracled", "/usr/local/bin/coracled", "coracle-multi", "/opt/coracle/coracled", "/proc/self/exe", ""]
        {
            assert!(!is_ctl_name(OsStr::new(daemon)), "{daemon}");
        }
    }
}
