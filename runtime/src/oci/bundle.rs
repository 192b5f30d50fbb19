//! The OCI bundle's config.json for a ContainerSpec: runc's `runc spec` defaults (mounts, masked
//! and read-only paths, device rules) with the pod's process, identity, namespaces and volumes.

use super::super::capabilities;
use super::super::mounts::{MASKED_PATHS, READONLY_PATHS};
use super::super::placement;
use super::super::spec::{ContainerSpec, MountKind, MountSpec};
use super::cgroups_path::CgroupPlacement;
use serde_json::{json, Value};
use std::path::Path;

/// The bundle's root directory name (relative to the bundle, as `runc spec` writes it).
pub const ROOTFS: &str = "rootfs";

/// The OCI spec version we write.
const OCI_VERSION: &str = "1.0.2";

/// The capability names (`CAP_CHOWN`, …) in the container's set, in kernel order.
fn capability_names(spec: &ContainerSpec) -> Result<Vec<String>, String> {
    let last = capabilities::last_cap();
    let set =
        capabilities::effective_set(&spec.capabilities, last).map_err(|e| format!("container {}: {e}", spec.id))?;
    Ok((0..=last.min(63))
        .filter(|n| set.0 & (1 << n) != 0)
        .filter_map(|n| capabilities::name(n).map(|name| format!("CAP_{name}")))
        .collect())
}

fn process(spec: &ContainerSpec) -> Result<Value, String> {
    let caps = capability_names(spec)?;
    let cwd = spec.cwd.to_str().ok_or_else(|| format!("container {}: cwd {:?}: not UTF-8", spec.id, spec.cwd))?;
    if !spec.cwd.is_absolute() {
        return Err(format!("container {}: cwd {cwd:?}: must be an absolute path", spec.id));
    }
    // No rlimits: runc would set RLIMIT_NOFILE and fail without CAP_SYS_RESOURCE above the hard limit.
    let mut process = json!({
        "terminal": false,
        "user": {
            "uid": spec.user.uid,
            "gid": spec.user.gid,
            "additionalGids": spec.user.additional_gids,
        },
        "args": spec.args,
        "env": spec.env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
            "inheritable": [],
            "ambient": [],
        },
        "noNewPrivileges": spec.no_new_privileges,
    });
    if let Some(score) = spec.oom_score_adj {
        // runc fails the start when the kernel refuses a lower score: ask only for what it can set.
        process["oomScoreAdj"] = json!(placement::achievable_oom_score_adj(score)?);
    }
    Ok(process)
}

/// runc's default mounts, in `runc spec`'s order.
fn default_mounts() -> Vec<Value> {
    let mount = |dest: &str, kind: &str, source: &str, options: &[&str]| json!({ "destination": dest, "type": kind, "source": source, "options": options });
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]
}

fn path_str<'a>(path: &'a Path, what: &str) -> Result<&'a str, String> {
    path.to_str().ok_or_else(|| format!("{what} {path:?}: not UTF-8"))
}

fn volume(m: &MountSpec) -> Result<Value, String> {
    let dest = path_str(&m.destination, "mount destination")?;
    if !m.destination.is_absolute() {
        return Err(format!("mount destination {dest:?}: must be an absolute path"));
    }
    let mut options: Vec<String> = match &m.kind {
        MountKind::Bind => vec!["rbind".into(), "rprivate".into()],
        MountKind::Tmpfs { size_bytes } => {
            let mut o = vec!["nosuid".into(), "nodev".into(), "mode=1777".into()];
            if *size_bytes > 0 {
                o.push(format!("size={size_bytes}"));
            }
            o
        }
    };
    if m.read_only {
        options.push("ro".into());
    }
    Ok(match &m.kind {
        MountKind::Bind => json!({
            "destination": dest,
            "type": "bind",
            "source": path_str(&m.source, "mount source")?,
            "options": options,
        }),
        MountKind::Tmpfs { .. } => {
            json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options })
        }
    })
}

fn namespaces(spec: &ContainerSpec) -> Result<Vec<Value>, String> {
    let mut list = vec![json!({"type": "pid"}), json!({"type": "mount"}), json!({"type": "uts"})];
    list.push(json!({"type": "ipc", "path": path_str(&spec.sandbox.ipcns_path, "sandbox ipc namespace")?}));
    // The host network is simply the network namespace runc already runs in.
    if let Some(netns) = &spec.sandbox.netns_path {
        list.push(json!({"type": "network", "path": path_str(netns, "sandbox network namespace")?}));
    }
    Ok(list)
}

/// The config.json for `spec`, its cgroup placed as `cgroups` says.
pub fn config(spec: &ContainerSpec, cgroups: &CgroupPlacement) -> Result<Value, String> {
    let mut mounts = default_mounts();
    for m in &spec.mounts {
        mounts.push(volume(m).map_err(|e| format!("container {}: {e}", spec.id))?);
    }
    let mut linux = json!({
        "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
        "namespaces": namespaces(spec).map_err(|e| format!("container {}: {e}", spec.id))?,
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    });
    if let CgroupPlacement::Path(path) = cgroups {
        linux["cgroupsPath"] = json!(path);
    }
    Ok(json!({
        "ociVersion": OCI_VERSION,
        "process": process(spec)?,
        "root": { "path": ROOTFS, "readonly": spec.readonly_rootfs },
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::super::spec::*;
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::example()
    }

    #[test]
    fn the_config_carries_the_pod_semantics() {
        let c = config(&spec(), &CgroupPlacement::Path("coracle/pods/u/c1".into())).unwrap();
        let p = &c["process"];
        assert_eq!(p["user"], json!({"uid": 1000, "gid": 1000, "additionalGids": [5]}));
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(p["capabilities"]["ambient"], json!([]));
        assert!(p.get("rlimits").is_none(), "rlimits are never set");
        assert_eq!(p["noNewPrivileges"], json!(true));
        assert_eq!(p["oomScoreAdj"], json!(1000));
        assert_eq!(c["root"], json!({"path": "rootfs", "readonly": true}));
        assert_eq!(c["hostname"], json!("web-0"));
        assert_eq!(c["linux"]["cgroupsPath"], json!("coracle/pods/u/c1"));
        let ns = &c["linux"]["namespaces"];
        assert!(ns.as_array().unwrap().contains(&json!({"type": "network", "path": "/run/c/sandboxes/pod/net"})));
        assert!(ns.as_array().unwrap().contains(&json!({"type": "ipc", "path": "/run/c/sandboxes/pod/ipc"})));
        let mounts = c["mounts"].as_array().unwrap();
        assert_eq!(mounts[0]["destination"], json!("/proc"));
        let hosts = mounts.iter().find(|m| m["destination"] == json!("/etc/hosts")).unwrap();
        assert_eq!(hosts["type"], json!("bind"));
        assert_eq!(c["linux"]["maskedPaths"].as_array().unwrap().len(), MASKED_PATHS.len());
    }

    #[test]
    fn host_network_omits_the_network_namespace_and_tmpfs_keeps_its_size() {
        let mut s = spec();
        s.sandbox.netns_path = None;
        s.mounts.push(MountSpec {
            source: Default::default(),
            destination: "/scratch".into(),
            kind: MountKind::Tmpfs { size_bytes: 4096 },
            read_only: true,
        });
        let c = config(&s, &CgroupPlacement::RuntimeDefault).unwrap();
        assert!(!c["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n["type"] == json!("network")));
        assert!(c["linux"].get("cgroupsPath").is_none());
        let scratch = c["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == json!("/scratch")).unwrap();
        assert_eq!(scratch["options"], json!(["nosuid", "nodev", "mode=1777", "size=4096", "ro"]));
        s.cwd = "relative".into();
        assert!(config(&s, &CgroupPlacement::RuntimeDefault).unwrap_err().contains("cwd \"relative\""));
    }
}
