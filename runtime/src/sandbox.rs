//! Pod sandboxes: a network and an IPC namespace pinned by bind mounts (as `ip netns add` does,
//! so CNI can use the netns path), plus the pod's /etc/hosts and /etc/resolv.conf.

use super::spec::{Sandbox, SandboxNetwork, SandboxSpec};
use super::state::{read_record, write_atomic};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const RECORD: &str = "sandbox.json";

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
pub fn write_hosts(sandbox: &Sandbox, hostname: &str, pod_ip: Option<IpAddr>) -> Result<(), String> {
    write_in_place(&sandbox.hosts_path, &hosts_file(hostname, pod_ip))
}

/// Writes one of a pod's shared files (/etc/hosts, /etc/resolv.conf) by rewriting the
/// existing inode, creating it only when missing. Containers bind-mount these files, and a
/// bind follows the inode: replacing the file by rename would leave them the old one.
pub fn write_in_place(path: &Path, content: &str) -> Result<(), String> {
    match rewrite_in_place(path, content) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(path, content).map_err(|e| format!("write {}: {e}", path.display()))
        }
        Err(e) => Err(format!("rewrite {} in place: {e}", path.display())),
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

fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(format!("sandbox id {id:?}: must be a non-empty file name"));
    }
    Ok(())
}

/// Creates the sandbox's namespaces and files; idempotent for an existing, intact sandbox.
pub fn create(run_dir: &Path, spec: &SandboxSpec) -> Result<Sandbox, String> {
    validate_id(&spec.id)?;
    if let Some(existing) = load(run_dir, &spec.id) {
        return Ok(existing);
    }
    let dir = sandbox_dir(run_dir, &spec.id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let host = spec.network == SandboxNetwork::Host;
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
    let pinned = pin_namespaces(&sandbox);
    if let Err(e) = pinned {
        let _ = remove(run_dir, &spec.id);
        return Err(e);
    }
    let record = serde_json::to_vec(&sandbox).map_err(|e| format!("encode sandbox {}: {e}", spec.id))?;
    write_atomic(&dir.join(RECORD), &record).map_err(|e| format!("write {}: {e}", dir.join(RECORD).display()))?;
    Ok(sandbox)
}

/// Creates the namespaces on a throwaway thread (net and ipc may be unshared per thread) and
/// bind-mounts them so they outlive it.
fn pin_namespaces(sandbox: &Sandbox) -> Result<(), String> {
    let sandbox = sandbox.clone();
    std::thread::spawn(move || {
        let mut flags = CloneFlags::CLONE_NEWIPC;
        if sandbox.netns_path.is_some() {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        unshare(flags).map_err(|e| format!("unshare namespaces for sandbox {}: {e}", sandbox.id))?;
        if let Some(netns) = &sandbox.netns_path {
            loopback_up().map_err(|e| format!("sandbox {}: bring up lo: {e}", sandbox.id))?;
            pin("/proc/thread-self/ns/net", netns)?;
        }
        pin("/proc/thread-self/ns/ipc", &sandbox.ipcns_path)
    })
    .join()
    .map_err(|_| "sandbox namespace thread panicked".to_string())?
}

fn pin(ns: &str, target: &Path) -> Result<(), String> {
    std::fs::write(target, b"").map_err(|e| format!("create {}: {e}", target.display()))?;
    mount(Some(ns), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| format!("bind {ns} on {}: {e}", target.display()))
}

fn loopback_up() -> Result<(), String> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| format!("socket: {e}"))?;
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
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}

/// Unpins the namespaces and deletes the sandbox directory; a missing sandbox is not an error.
pub fn remove(run_dir: &Path, id: &str) -> Result<(), String> {
    validate_id(id)?;
    let dir = sandbox_dir(run_dir, id);
    for ns in ["net", "ipc"] {
        let path = dir.join(ns);
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(format!("unmount {}: {e}", path.display())),
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", dir.display())),
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
        assert!(write_in_place(&missing, "x").unwrap_err().contains("nope/hosts"));
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
}
