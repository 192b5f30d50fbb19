//! The ctl's stdout and stderr. A reader that goes away (`coracle get svc -o yaml | head -1`)
//! ends the ctl quietly, by SIGPIPE, as it ends kubectl and every Unix filter. `println!`
//! would panic instead ("failed printing to stdout: Broken pipe"), which the release
//! profile's `panic = "abort"` turns into a core dump and exit status 134.
//!
//! SIGPIPE itself stays ignored (Rust's default) until then, so a write to a socket whose
//! peer left is an error the ctl reports, not a silent death.

use std::fmt;
use std::io::{self, Write};

/// `print!` to stdout; see the module documentation for a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// `println!` to stdout; see the module documentation for a closed stdout.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` to stderr, which may be a closed pipe too (`coracle … 2>&1 | head -1`).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes to stdout, or ends the process when it cannot.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        failed("stdout", e)
    }
}

/// Writes to stderr, or ends the process when it cannot.
pub fn write_stderr(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stderr().lock().write_fmt(args) {
        failed("stderr", e)
    }
}

/// Ends the process after a failed write to `stream`: by SIGPIPE when its reader went away,
/// else with an error on stderr (a full disk behind `> file`) and exit status 1.
pub fn failed(stream: &str, e: io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        die_of_sigpipe()
    }
    let _ = writeln!(io::stderr(), "error: writing to {stream}: {e}");
    std::process::exit(1)
}

/// Dies the way a C or Go program does when it writes to a closed pipe, so that a shell's
/// `pipefail` and a parent's `waitpid` see what they would see of kubectl.
fn die_of_sigpipe() -> ! {
    // SAFETY: signal(2) restores the default disposition; no handler of ours is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: raise(3) sends the signal to this thread; its default action ends the process.
    unsafe { libc::raise(libc::SIGPIPE) };
    // Only reached when SIGPIPE is blocked: the status a shell shows for a SIGPIPE death.
    std::process::exit(128 + libc::SIGPIPE)
}
