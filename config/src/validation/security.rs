//! The pod's and containers' security contexts beyond ids: seccomp profiles, sysctls, the
//! host namespaces, and what the node cannot enforce (refused by name, never dropped).

use super::field::{quote, FieldError, Path};
use crate::core::{AppArmorProfile, PodSpec, SeccompProfile, Sysctl};
use std::collections::BTreeSet;

/// `hostPID`, `hostIPC` and `shareProcessNamespace`: here each container has its own PID
/// namespace and each pod its own IPC namespace, so asking otherwise is refused by name
/// rather than stored and ignored. `false` is what happens, and is accepted.
pub(super) fn host_namespaces(spec: &PodSpec, path: &Path, errs: &mut Vec<FieldError>) {
    for (field, set, why) in [
        ("hostPID", spec.host_pid, "each container has its own PID namespace"),
        ("hostIPC", spec.host_ipc, "each pod has its own IPC namespace"),
        ("shareProcessNamespace", spec.share_process_namespace, "each container has its own PID namespace"),
    ] {
        if set == Some(true) {
            errs.push(FieldError::forbidden(&path.child(field), &format!("not supported by Coracle: {why}")));
        }
    }
}

/// What the node cannot enforce, refused by name rather than dropped: SELinux labels and
/// Windows options always; an AppArmor profile other than `Unconfined` (the node loads no
/// AppArmor, and kubelet refuses such pods on a node without it too).
pub(super) fn unenforced(
    app_armor: Option<&AppArmorProfile>,
    se_linux: &Option<serde_json::Value>,
    windows: &Option<serde_json::Value>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    if se_linux.is_some() {
        errs.push(FieldError::forbidden(
            &path.child("seLinuxOptions"),
            "not supported by Coracle: the node has no SELinux",
        ));
    }
    if windows.is_some() {
        errs.push(FieldError::forbidden(
            &path.child("windowsOptions"),
            "not supported by Coracle: containers run on Linux",
        ));
    }
    let Some(profile) = app_armor else { return };
    let path = path.child("appArmorProfile");
    match profile.type_.as_str() {
        "" => errs.push(FieldError::required(&path.child("type"), "type is required when appArmorProfile is set")),
        "Unconfined" => {}
        t => errs.push(FieldError::not_supported(&path.child("type"), t, &["Unconfined"])),
    }
    if let Some(p) = &profile.localhost_profile {
        if profile.type_ != "Localhost" {
            errs.push(FieldError::invalid(
                &path.child("localhostProfile"),
                quote(p),
                "can only be set when AppArmor type is Localhost",
            ));
        }
    }
}

/// kubelet's safe sysctls (its default allowlist): namespaced, and isolated from other pods.
/// The node sets them in the pod's own network and IPC namespaces; any other is refused.
pub const SAFE_SYSCTLS: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_wmem",
];

/// A sysctl's name with dots between its parts: Kubernetes also takes slashes there when the
/// first separator is one (`net/ipv4/tcp_syncookies`).
pub fn sysctl_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name[i..].starts_with('/') => name.replace('/', "."),
        _ => name.to_string(),
    }
}

/// The pod's sysctls: each named once, from the safe set (kubelet refuses the rest as
/// `SysctlForbidden`, in the same words), and no network one on the host's network.
pub(super) fn sysctls(sysctls: &[Sysctl], host_network: bool, path: &Path, errs: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    for (i, s) in sysctls.iter().enumerate() {
        let p = path.index(i).child("name");
        let name = sysctl_name(&s.name);
        if s.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !seen.insert(name.clone()) {
            errs.push(FieldError::duplicate(&p, quote(&s.name)));
        } else if !SAFE_SYSCTLS.contains(&name.as_str()) {
            errs.push(FieldError::forbidden(&p, &format!("forbidden sysctl: {} not allowlisted", quote(&s.name))));
        } else if host_network && name.starts_with("net.") {
            errs.push(FieldError::forbidden(
                &p,
                &format!("forbidden sysctl: {} not allowed with host net enabled", quote(&s.name)),
            ));
        }
    }
}

/// `container.apparmor.security.beta.kubernetes.io/<container>` annotations, the older form
/// of `appArmorProfile`: only `unconfined` is accepted, as for the field.
pub fn app_armor_annotations(
    annotations: &std::collections::BTreeMap<String, String>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    for (key, value) in annotations {
        if key.starts_with("container.apparmor.security.beta.kubernetes.io/") && value != "unconfined" {
            errs.push(FieldError::not_supported(&path.key(key), value, &["unconfined"]));
        }
    }
}

/// `validateSeccompProfileField`: a known type; `localhostProfile` exactly for `Localhost`,
/// relative and without `..`.
pub(super) fn seccomp_profile(profile: Option<&SeccompProfile>, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(profile) = profile else { return };
    let kinds = ["Localhost", "RuntimeDefault", "Unconfined"];
    match profile.type_.as_str() {
        "" => errs.push(FieldError::required(&path.child("type"), "type is required when seccompProfile is set")),
        t if !kinds.contains(&t) => errs.push(FieldError::not_supported(&path.child("type"), t, &kinds)),
        _ => {}
    }
    let field = path.child("localhostProfile");
    match (&profile.localhost_profile, profile.type_ == "Localhost") {
        (None, true) => errs.push(FieldError::required(&field, "must be set when seccomp type is Localhost")),
        (Some(p), true) => {
            if p.starts_with('/') {
                errs.push(FieldError::invalid(&field, quote(p), "must be a relative path"));
            }
            if p.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(&field, quote(p), "must not contain '..'"));
            }
        }
        (Some(p), false) => {
            errs.push(FieldError::invalid(&field, quote(p), "can only be set when seccomp type is Localhost"))
        }
        (None, false) => {}
    }
}
