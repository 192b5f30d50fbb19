//! The OCI bundle's config.json for a ContainerSpec: runc's `runc spec` defaults (mounts, masked
//! and read-only paths, device rules) with the pod's process, identity, namespaces and volumes.

use super::super::capabilities;
use super::super::devices::{DeviceKind, DeviceRule};
use super::super::mounts::{MASKED_PATHS, READONLY_PATHS};
use super::super::placement;
use super::super::seccomp;
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
    Ok(capabilities::prefixed_names(set, last))
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

/// runc's default mounts, in `runc spec`'s order; sysfs and the cgroup tree writable for a
/// privileged container.
fn default_mounts(privileged: bool) -> Vec<Value> {
    let ro: &[&str] = if privileged { &[] } else { &["ro"] };
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
        mount("/sys", "sysfs", "sysfs", &[&["nosuid", "noexec", "nodev"], ro].concat()),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &[&["nosuid", "noexec", "nodev", "relatime"], ro].concat()),
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
    // A cgroup namespace too, so the container sees no host path in /proc/self/cgroup.
    let mut list =
        vec![json!({"type": "pid"}), json!({"type": "mount"}), json!({"type": "uts"}), json!({"type": "cgroup"})];
    list.push(json!({"type": "ipc", "path": path_str(&spec.sandbox.ipcns_path, "sandbox ipc namespace")?}));
    // The host network is simply the network namespace runc already runs in.
    if let Some(netns) = &spec.sandbox.netns_path {
        list.push(json!({"type": "network", "path": path_str(netns, "sandbox network namespace")?}));
    }
    Ok(list)
}

/// `linux.resources.devices`: deny everything, then allow each rule.
fn device_rules(rules: &[DeviceRule]) -> Vec<Value> {
    let mut list = vec![json!({ "allow": false, "access": "rwm" })];
    for rule in rules {
        let mut entry = json!({ "allow": true, "access": rule.access.letters() });
        if rule.kind != DeviceKind::All {
            entry["type"] = json!(rule.kind.letter().to_string());
        }
        if let Some(major) = rule.major {
            entry["major"] = json!(major);
        }
        if let Some(minor) = rule.minor {
            entry["minor"] = json!(minor);
        }
        list.push(entry);
    }
    list
}

/// The config.json for `spec`, its cgroup placed as `cgroups` says.
pub fn config(spec: &ContainerSpec, cgroups: &CgroupPlacement) -> Result<Value, String> {
    let confinement = &spec.confinement;
    let mut mounts = default_mounts(confinement.privileged);
    for m in &spec.mounts {
        mounts.push(volume(m).map_err(|e| format!("container {}: {e}", spec.id))?);
    }
    let (masked, readonly): (&[&str], &[&str]) =
        if confinement.privileged { (&[], &[]) } else { (&MASKED_PATHS, &READONLY_PATHS) };
    let mut linux = json!({
        "resources": { "devices": device_rules(&confinement.devices) },
        "namespaces": namespaces(spec).map_err(|e| format!("container {}: {e}", spec.id))?,
        "maskedPaths": masked,
        "readonlyPaths": readonly,
    });
    if let CgroupPlacement::Path(path) = cgroups {
        linux["cgroupsPath"] = json!(path);
    }
    let caps = capability_names(spec)?;
    let resolved =
        confinement.seccomp.resolve(caps).map_err(|e| format!("container {}: seccomp profile: {e}", spec.id))?;
    if let Some(resolved) = resolved {
        linux["seccomp"] = seccomp::oci::linux_seccomp(&resolved);
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
        assert!(ns.as_array().unwrap().contains(&json!({"type": "cgroup"})), "a cgroup namespace");
    }

    #[test]
    fn devices_and_seccomp_are_confined_unless_privileged() {
        let c = config(&spec(), &CgroupPlacement::RuntimeDefault).unwrap();
        let devices = c["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(devices[0], json!({"allow": false, "access": "rwm"}));
        assert!(devices.contains(&json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"})));
        assert!(devices.contains(&json!({"allow": true, "type": "b", "access": "m"})), "mknod of any block node");
        assert!(devices.contains(&json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})));
        assert_eq!(devices.len(), 1 + DeviceRule::runc_defaults().len());
        let seccomp = &c["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], json!("SCMP_ACT_ERRNO"));
        assert!(c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == json!("/sys") && m["options"].as_array().unwrap().contains(&json!("ro"))));
        let mut privileged = spec();
        privileged.confinement = crate::spec::Confinement::privileged();
        let c = config(&privileged, &CgroupPlacement::RuntimeDefault).unwrap();
        let devices = c["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(devices[1], json!({"allow": true, "access": "rwm"}), "every device");
        assert!(c["linux"].get("seccomp").is_none());
        assert_eq!(c["linux"]["maskedPaths"], json!([]));
        assert_eq!(c["linux"]["readonlyPaths"], json!([]));
        assert!(c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| !m["options"].as_array().unwrap().contains(&json!("ro"))));
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
