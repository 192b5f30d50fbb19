//! Pod sandboxes: a network and an IPC namespace pinned by bind mounts (as `ip netns add` does,
//! so CNI can use the netns path), plus the pod's /etc/hosts and /etc/resolv.conf.

use super::spec::{Sandbox, SandboxNetwork, SandboxSpec};
use super::state::{read_record, write_atomic};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::fmt;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const RECORD: &str = "sandbox.json";

/// Why a sandbox could not be created, written or removed.
#[derive(Debug)]
pub enum SandboxError {
    /// The id is not a plain file name.
    InvalidId(String),
    /// A file or directory of the sandbox (`action` is `create`, `write` or `remove`).
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// The existing /etc/hosts or /etc/resolv.conf could not be rewritten on its inode.
    Rewrite { path: PathBuf, source: std::io::Error },
    /// A namespace could not be made, pinned or unpinned (`what` names the step and the path).
    Namespace { what: String, source: Errno },
    /// The new network namespace's loopback could not be brought up.
    Loopback { id: String, source: LoopbackError },
    /// The sandbox's record could not be encoded.
    Encode { id: String, source: serde_json::Error },
    /// The thread making the namespaces panicked.
    ThreadPanicked,
    /// A network sysctl on the host network would set the host's own.
    HostSysctl(String),
}

impl fmt::Display for SandboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SandboxError::InvalidId(id) => write!(f, "sandbox id {id:?}: must be a non-empty file name"),
            SandboxError::Io { action, path, source } => write!(f, "{action} {}: {source}", path.display()),
            SandboxError::Rewrite { path, source } => write!(f, "rewrite {} in place: {source}", path.display()),
            SandboxError::Namespace { what, source } => write!(f, "{what}: {source}"),
            SandboxError::Loopback { id, source } => write!(f, "sandbox {id}: bring up lo: {source}"),
            SandboxError::Encode { id, source } => write!(f, "encode sandbox {id}: {source}"),
            SandboxError::ThreadPanicked => f.write_str("sandbox namespace thread panicked"),
            SandboxError::HostSysctl(name) => {
                write!(f, "forbidden sysctl: {name:?} not allowed with host net enabled")
            }
        }
    }
}

impl std::error::Error for SandboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SandboxError::Io { source, .. } | SandboxError::Rewrite { source, .. } => Some(source),
            SandboxError::Namespace { source, .. } => Some(source),
            SandboxError::Loopback { source, .. } => Some(source),
            SandboxError::Encode { source, .. } => Some(source),
            SandboxError::InvalidId(_) | SandboxError::ThreadPanicked | SandboxError::HostSysctl(_) => None,
        }
    }
}

/// Why `lo` could not be brought up: no socket to ask through, or the ioctl failed.
#[derive(Debug)]
pub enum LoopbackError {
    Socket(Errno),
    Ioctl(std::io::Error),
}

impl fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopbackError::Socket(e) => write!(f, "socket: {e}"),
            LoopbackError::Ioctl(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoopbackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopbackError::Socket(e) => Some(e),
            LoopbackError::Ioctl(e) => e.source(),
        }
    }
}

/// The directory of sandbox `id`.
pub fn sandbox_dir(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join("sandboxes").join(id)
}

/// The /etc/hosts Kubernetes writes for a pod; the pod's own line once its IP is known.
pub fn hosts_file(hostname: &str, pod_ip: Option<IpAddr>) -> String {
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = pod_ip {
        text.push_str(&format!("{ip}\t{hostname}\n"));
    }
    text
}

/// Rewrites the pod's /etc/hosts once CNI has given it an address.
pub fn write_hosts(sandbox: &Sandbox, hostname: &str, pod_ip: Option<IpAddr>) -> Result<(), SandboxError> {
    write_in_place(&sandbox.hosts_path, &hosts_file(hostname, pod_ip))
}

/// Writes one of a pod's shared files (/etc/hosts, /etc/resolv.conf) by rewriting the
/// existing inode, creating it only when missing. Containers bind-mount these files, and a
/// bind follows the inode: replacing the file by rename would leave them the old one.
pub fn write_in_place(path: &Path, content: &str) -> Result<(), SandboxError> {
    match rewrite_in_place(path, content) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::write(path, content)
            .map_err(|source| SandboxError::Io { action: "write", path: path.to_path_buf(), source }),
        Err(source) => Err(SandboxError::Rewrite { path: path.to_path_buf(), source }),
    }
}

/// Rewrites `path` in place when its content differs. In place, not by rename: the file is
/// bind-mounted into the pod's containers, and a bind follows the inode.
pub fn rewrite_in_place(path: &Path, content: &str) -> std::io::Result<bool> {
    use std::io::{Seek, Write};
    if std::fs::read_to_string(path)? == content {
        return Ok(false);
    }
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(content.as_bytes())?;
    f.set_len(content.len() as u64)?;
    f.rewind()?;
    Ok(true)
}

/// Reads back a sandbox created earlier (after a daemon restart).
pub fn load(run_dir: &Path, id: &str) -> Option<Sandbox> {
    read_record(&sandbox_dir(run_dir, id).join(RECORD))
}

fn validate_id(id: &str) -> Result<(), SandboxError> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(SandboxError::InvalidId(id.to_string()));
    }
    Ok(())
}

/// Creates the sandbox's namespaces and files; idempotent for an existing, intact sandbox.
pub fn create(run_dir: &Path, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
    validate_id(&spec.id)?;
    if let Some(existing) = load(run_dir, &spec.id) {
        return Ok(existing);
    }
    let host = spec.network == SandboxNetwork::Host;
    if let Some((name, _)) = spec.sysctls.iter().find(|(name, _)| host && name.starts_with("net.")) {
        return Err(SandboxError::HostSysctl(name.clone()));
    }
    let dir = sandbox_dir(run_dir, &spec.id);
    std::fs::create_dir_all(&dir).map_err(|source| SandboxError::Io { action: "create", path: dir.clone(), source })?;
    let sandbox = Sandbox {
        id: spec.id.clone(),
        netns_path: (!host).then(|| dir.join("net")),
        ipcns_path: dir.join("ipc"),
        hosts_path: dir.join("hosts"),
        resolv_conf_path: dir.join("resolv.conf"),
    };
    let hosts = if host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts_file(&spec.hostname, None))
    } else {
        hosts_file(&spec.hostname, None)
    };
    write_in_place(&sandbox.hosts_path, &hosts)?;
    let resolv = match &spec.resolv_conf {
        Some(text) => text.clone(),
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    write_in_place(&sandbox.resolv_conf_path, &resolv)?;
    let pinned = pin_namespaces(&sandbox, &spec.sysctls);
    if let Err(e) = pinned {
        let _ = remove(run_dir, &spec.id);
        return Err(e);
    }
    let record = serde_json::to_vec(&sandbox).map_err(|source| SandboxError::Encode { id: spec.id.clone(), source })?;
    let path = dir.join(RECORD);
    write_atomic(&path, &record).map_err(|source| SandboxError::Io { action: "write", path, source })?;
    Ok(sandbox)
}

/// Creates the namespaces on a throwaway thread (net and ipc may be unshared per thread), sets
/// the pod's sysctls in them, and bind-mounts them so they outlive it.
fn pin_namespaces(sandbox: &Sandbox, sysctls: &[(String, String)]) -> Result<(), SandboxError> {
    let sandbox = sandbox.clone();
    let sysctls = sysctls.to_vec();
    std::thread::spawn(move || {
        let mut flags = CloneFlags::CLONE_NEWIPC;
        if sandbox.netns_path.is_some() {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        unshare(flags).map_err(|source| SandboxError::Namespace {
            what: format!("unshare namespaces for sandbox {}", sandbox.id),
            source,
        })?;
        if let Some(netns) = &sandbox.netns_path {
            loopback_up().map_err(|source| SandboxError::Loopback { id: sandbox.id.clone(), source })?;
            pin("/proc/thread-self/ns/net", netns)?;
        }
        // /proc/sys/net and the IPC sysctls are this thread's namespaces' own.
        for (name, value) in &sysctls {
            let path = Path::new("/proc/sys").join(name.replace('.', "/"));
            std::fs::write(&path, value).map_err(|source| SandboxError::Io { action: "write", path, source })?;
        }
        pin("/proc/thread-self/ns/ipc", &sandbox.ipcns_path)
    })
    .join()
    .map_err(|_| SandboxError::ThreadPanicked)?
}

fn pin(ns: &str, target: &Path) -> Result<(), SandboxError> {
    std::fs::write(target, b"").map_err(|source| SandboxError::Io {
        action: "create",
        path: target.to_path_buf(),
        source,
    })?;
    mount(Some(ns), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|source| SandboxError::Namespace { what: format!("bind {ns} on {}", target.display()), source })
}

fn loopback_up() -> Result<(), LoopbackError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock =
        socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(LoopbackError::Socket)?;
    let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (dst, src) in name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    let mut req = libc::ifreq { ifr_name: name, ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 } };
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the live ifreq; ifru_flags is the member
    // those requests use, so reading it back is initialised.
    let rc = unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) != 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req)
        }
    };
    if rc != 0 {
        return Err(LoopbackError::Ioctl(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Unpins the namespaces and deletes the sandbox directory; a missing sandbox is not an error.
pub fn remove(run_dir: &Path, id: &str) -> Result<(), SandboxError> {
    validate_id(id)?;
    let dir = sandbox_dir(run_dir, id);
    for ns in ["net", "ipc"] {
        let path = dir.join(ns);
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
            Err(source) => return Err(SandboxError::Namespace { what: format!("unmount {}", path.display()), source }),
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SandboxError::Io { action: "remove", path: dir, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_names_the_pod_once_it_has_an_ip() {
        assert!(!hosts_file("web-0", None).contains("web-0"));
        assert!(hosts_file("web-0", Some("10.1.0.7".parse().unwrap())).ends_with("10.1.0.7\tweb-0\n"));
    }

    #[test]
    fn hosts_and_resolv_conf_are_rewritten_on_the_inode_containers_have_bound() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox {
            id: "pod-a".into(),
            netns_path: None,
            ipcns_path: dir.path().join("ipc"),
            hosts_path: dir.path().join("hosts"),
            resolv_conf_path: dir.path().join("resolv.conf"),
        };
        write_hosts(&sandbox, "web-0", None).unwrap();
        let inode = std::fs::metadata(&sandbox.hosts_path).unwrap().ino();
        write_hosts(&sandbox, "web-0", Some("10.1.0.7".parse().unwrap())).unwrap();
        assert_eq!(std::fs::metadata(&sandbox.hosts_path).unwrap().ino(), inode, "same inode: binds see it");
        assert_eq!(
            std::fs::read_to_string(&sandbox.hosts_path).unwrap(),
            hosts_file("web-0", Some("10.1.0.7".parse().unwrap()))
        );
        // A shorter text leaves no tail of the longer one behind.
        std::fs::write(&sandbox.resolv_conf_path, "nameserver 192.0.2.53\nsearch a.very.long.search.domain\n").unwrap();
        let inode = std::fs::metadata(&sandbox.resolv_conf_path).unwrap().ino();
        write_in_place(&sandbox.resolv_conf_path, "nameserver 10.0.0.10\n").unwrap();
        assert_eq!(std::fs::metadata(&sandbox.resolv_conf_path).unwrap().ino(), inode);
        assert_eq!(std::fs::read_to_string(&sandbox.resolv_conf_path).unwrap(), "nameserver 10.0.0.10\n");
        let missing = dir.path().join("nope/hosts");
        assert!(write_in_place(&missing, "x").unwrap_err().to_string().contains("nope/hosts"));
    }

    #[test]
    fn sandbox_pins_fresh_namespaces_and_unpins_them() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping sandbox_pins_fresh_namespaces_and_unpins_them: needs root");
            return;
        }
        let run = tempfile::tempdir().unwrap();
        let spec = SandboxSpec {
            id: "pod-a".into(),
            hostname: "pod-a".into(),
            network: SandboxNetwork::New,
            resolv_conf: Some("nameserver 10.0.0.10\n".into()),
            sysctls: Vec::new(),
        };
        let sandbox = create(run.path(), &spec).unwrap();
        let netns = sandbox.netns_path.clone().unwrap();
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let pinned_ino = std::fs::metadata(&netns).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
        let own_ino = std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
        assert_ne!(pinned_ino, own_ino, "sandbox netns differs from ours ({own:?})");
        assert_eq!(std::fs::read_to_string(&sandbox.resolv_conf_path).unwrap(), "nameserver 10.0.0.10\n");
        assert_eq!(load(run.path(), "pod-a"), Some(sandbox.clone()));
        assert_eq!(create(run.path(), &spec).unwrap(), sandbox, "create is idempotent");
        remove(run.path(), "pod-a").unwrap();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&run.path().display().to_string()), "no pinned namespace left mounted");
        remove(run.path(), "pod-a").unwrap();
    }

    #[test]
    fn a_network_sysctl_on_the_host_network_is_refused_before_anything_is_made() {
        let run = tempfile::tempdir().unwrap();
        let spec = SandboxSpec {
            id: "pod-h".into(),
            hostname: "pod-h".into(),
            network: SandboxNetwork::Host,
            resolv_conf: None,
            sysctls: vec![("net.ipv4.tcp_syncookies".into(), "1".into())],
        };
        let err = create(run.path(), &spec).unwrap_err();
        assert_eq!(err.to_string(), "forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host net enabled");
        assert!(!sandbox_dir(run.path(), "pod-h").exists());
    }
}
