//! The container's first process, between clone and execve: places itself in its cgroups,
//! joins the pod's namespaces, builds its filesystem view, drops privileges and execs. Every
//! failure goes back to the shim over a close-on-exec pipe: nothing arriving means exec worked.

use super::capabilities;
use super::cgroups;
use super::devices;
use super::mounts;
use super::placement;
use super::seccomp;
use super::spec::ContainerSpec;
use nix::sched::{setns, CloneFlags};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The first byte of an error report: which stage failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStage {
    /// Setting up the container before exec (`RunContainerError`).
    Setup,
    /// execve itself or the binary lookup (`StartError`).
    Exec,
}

impl FailedStage {
    /// The byte that marks this stage on the error pipe.
    pub fn marker(self) -> u8 {
        match self {
            FailedStage::Setup => b'S',
            FailedStage::Exec => b'E',
        }
    }

    /// Decodes an error-pipe report into its stage and message.
    pub fn decode(report: &[u8]) -> (FailedStage, String) {
        let stage = if report.first() == Some(&b'E') { FailedStage::Exec } else { FailedStage::Setup };
        (stage, String::from_utf8_lossy(report.get(1..).unwrap_or_default()).into_owned())
    }
}

/// The descriptors the container's init inherits from the shim.
pub struct InitPipes {
    /// Write end of the close-on-exec error pipe.
    pub error_write: OwnedFd,
    /// Becomes the container's stdout.
    pub stdout_write: OwnedFd,
    /// Becomes the container's stderr.
    pub stderr_write: OwnedFd,
}

/// Runs in the cloned child; only returns the exit status to use when something failed.
pub fn container_init(spec: &ContainerSpec, root: &Path, pipes: InitPipes) -> isize {
    let InitPipes { error_write, stdout_write, stderr_write } = pipes;
    let (stage, message) = match setup_and_exec(spec, root, &stdout_write, &stderr_write) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    let mut report = vec![stage.marker()];
    report.extend_from_slice(message.as_bytes());
    let _ = std::fs::File::from(error_write).write_all(&report);
    if stage == FailedStage::Exec {
        127
    } else {
        1
    }
}

fn setup(message: String) -> (FailedStage, String) {
    (FailedStage::Setup, message)
}

/// Go's spelling of an errno, as Kubernetes users see it (`no such file or directory`).
pub(crate) fn go_errno(errno: nix::errno::Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

fn setup_and_exec(
    spec: &ContainerSpec,
    root: &Path,
    stdout_write: &OwnedFd,
    stderr_write: &OwnedFd,
) -> Result<std::convert::Infallible, (FailedStage, String)> {
    // Compiled before anything changes, so a bad profile fails the start early.
    let filters = seccomp_filters(spec).map_err(setup)?;
    // First, so that everything the container does from here on is charged to and limited by its pod.
    cgroups::join_current(&spec.cgroup_dirs).map_err(|e| setup(e.to_string()))?;
    devices::enforce(&spec.confinement.devices, &spec.cgroup_dirs).map_err(setup)?;
    // Its own cgroup becomes the root of every hierarchy it sees: no host path in /proc/self/cgroup.
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| setup(format!("unshare cgroup namespace: {e}")))?;
    if let Some(score) = spec.oom_score_adj {
        placement::set_oom_score_adj(score).map_err(setup)?;
    }
    join_namespace(spec.sandbox.netns_path.as_deref(), CloneFlags::CLONE_NEWNET).map_err(setup)?;
    join_namespace(Some(&spec.sandbox.ipcns_path), CloneFlags::CLONE_NEWIPC).map_err(setup)?;
    mounts::prepare_root(spec, root).map_err(setup)?;
    mounts::pivot_into(root).map_err(setup)?;
    if !spec.confinement.privileged {
        mounts::protect_kernel_paths().map_err(setup)?;
    }
    if spec.readonly_rootfs {
        mounts::make_root_readonly().map_err(setup)?;
    }
    nix::unistd::sethostname(&spec.hostname).map_err(|e| setup(format!("sethostname {:?}: {e}", spec.hostname)))?;
    wire_stdio(stdout_write, stderr_write).map_err(setup)?;
    // Without no_new_privs a filter needs CAP_SYS_ADMIN, which only the init has: install it
    // before the capabilities go (what follows is allowed by any sane profile). With
    // no_new_privs, as late as possible, just before exec.
    if !spec.no_new_privileges {
        seccomp::compile::install(&filters).map_err(setup)?;
    }
    drop_privileges(spec).map_err(setup)?;
    let cwd = &spec.cwd;
    nix::unistd::chdir(cwd).map_err(|e| setup(format!("chdir to cwd ({:?}) set in config: {}", cwd, go_errno(e))))?;
    reset_signals();
    if spec.no_new_privileges {
        seccomp::compile::install(&filters).map_err(setup)?;
    }
    exec(spec)
}

/// The container's seccomp filters, resolved against the capabilities it will have (exec into
/// the container installs the same).
pub(crate) fn seccomp_filters(spec: &ContainerSpec) -> Result<Vec<seccompiler::BpfProgram>, String> {
    let last = capabilities::last_cap();
    let caps = capabilities::effective_set(&spec.capabilities, last)?;
    spec.confinement.seccomp.compile(capabilities::prefixed_names(caps, last))
}

fn join_namespace(path: Option<&Path>, kind: CloneFlags) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let file = std::fs::File::open(path).map_err(|e| format!("open namespace {}: {e}", path.display()))?;
    setns(&file, kind).map_err(|e| format!("join namespace {}: {e}", path.display()))
}

fn wire_stdio(stdout_write: &OwnedFd, stderr_write: &OwnedFd) -> Result<(), String> {
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    for (from, to) in [(null.as_raw_fd(), 0), (stdout_write.as_raw_fd(), 1), (stderr_write.as_raw_fd(), 2)] {
        nix::unistd::dup2(from, to).map_err(|e| format!("dup2 {from} to {to}: {e}"))?;
    }
    // Whatever else the shim inherited must not leak into the container.
    // SAFETY: close_range only flags descriptors >= 3 close-on-exec; it touches no memory.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    Ok(())
}

fn drop_privileges(spec: &ContainerSpec) -> Result<(), String> {
    let last = capabilities::last_cap();
    let caps = capabilities::effective_set(&spec.capabilities, last)?;
    capabilities::limit_bounding_set(caps, last)?;
    // Keep the permitted set across setuid so capset can still grant the container its set.
    // SAFETY: prctl with PR_SET_KEEPCAPS only reads its integer argument.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let user = &spec.user;
    let groups: Vec<nix::unistd::Gid> = user.additional_gids.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups {:?}: {e}", user.additional_gids))?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(user.gid)).map_err(|e| format!("setgid {}: {e}", user.gid))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(user.uid)).map_err(|e| format!("setuid {}: {e}", user.uid))?;
    capabilities::set_process_caps(caps)?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if spec.no_new_privileges {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS only reads its integer argument.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("set no_new_privs: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The shim runs with SIGPIPE ignored (Rust's default) and may block signals; exec keeps both.
fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGPIPE, Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: installing SIG_DFL runs no handler code.
        let _ = unsafe { sigaction(sig, &default) };
    }
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn cstring(s: &[u8], what: &str) -> Result<CString, (FailedStage, String)> {
    CString::new(s).map_err(|_| setup(format!("{what} contains a NUL byte")))
}

/// Finds `name` like Go's exec.LookPath, in the container's PATH (or the default one).
fn look_path(name: &str, env: &[String]) -> Result<PathBuf, (FailedStage, String)> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(&candidate).map(|m| m.is_file()).unwrap_or(false)
        {
            return Ok(candidate);
        }
    }
    Err((FailedStage::Exec, format!("exec: {name:?}: executable file not found in $PATH")))
}

fn exec(spec: &ContainerSpec) -> Result<std::convert::Infallible, (FailedStage, String)> {
    let Some(argv0) = spec.args.first() else {
        return Err((FailedStage::Exec, "exec: no command given (args is empty)".into()));
    };
    let path = look_path(argv0, &spec.env)?;
    let program = cstring(path.as_os_str().as_bytes(), "command")?;
    let args = spec.args.iter().map(|a| cstring(a.as_bytes(), "args")).collect::<Result<Vec<_>, _>>()?;
    let env = spec.env.iter().map(|e| cstring(e.as_bytes(), "env")).collect::<Result<Vec<_>, _>>()?;
    let errno = nix::unistd::execve(&program, &args, &env).unwrap_err();
    Err((FailedStage::Exec, format!("exec: {:?}: {}", argv0, go_errno(errno))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_go() {
        assert_eq!(go_errno(nix::errno::Errno::ENOENT), "no such file or directory");
        assert_eq!(go_errno(nix::errno::Errno::EACCES), "permission denied");
        let (stage, msg) = FailedStage::decode(b"Eexec: \"/bin/nope\": no such file or directory");
        assert_eq!(stage, FailedStage::Exec);
        assert_eq!(msg, "exec: \"/bin/nope\": no such file or directory");
        assert_eq!(FailedStage::decode(b"Smount x").0, FailedStage::Setup);
    }

    #[test]
    fn path_lookup_uses_the_container_path() {
        let env = vec!["PATH=/definitely/missing".to_string()];
        let err = look_path("sh", &env).unwrap_err();
        assert_eq!(err.1, "exec: \"sh\": executable file not found in $PATH");
        assert_eq!(look_path("/x/y", &env).unwrap(), PathBuf::from("/x/y"));
        assert_eq!(look_path("sh", &["PATH=/bin:/usr/bin".into()]).unwrap().file_name().unwrap(), "sh");
    }
}
