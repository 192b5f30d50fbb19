//! `ValidatePodSpec` and what lies beneath it: containers, ports, resources, volumes (probes
//! and lifecycle hooks in `handlers`).

use super::field::{quote, FieldError, Path};
use super::handlers::{lifecycle_handler, validate_probe};
use super::meta;
use super::names;
use super::security::{host_namespaces, seccomp_profile, sysctls, unenforced};
use crate::core::{Container, ContainerPort, PodSpec, ResourceRequirements, Volume};
use std::collections::BTreeSet;

/// Where a pod spec sits: a bare pod, or the template of a Deployment or ReplicaSet,
/// which must restart its pods forever.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PodSpecOwner {
    Pod,
    Workload,
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// The longest span in seconds a grace period may name, where Kubernetes sets no bound:
/// its own bound for `activeDeadlineSeconds`, 2^31 − 1 (68 years). The daemon turns these
/// seconds into deadlines (`now + grace`, written as an RFC 3339 time that must stay within
/// year 9999) and clients into nanoseconds (Go's `time.Duration`, an int64); 2^31 − 1 keeps
/// both far from overflow, while an int64's full range overflows both. The same bound the
/// daemon clamps spans to before they meet a clock.
pub const MAX_SECONDS: i64 = crate::time::MAX_SPAN_SECONDS;

/// `ValidatePodSpec`: containers, volumes, restart and DNS policy, security context.
pub fn validate_pod_spec(spec: &PodSpec, owner: PodSpecOwner, path: &Path, errs: &mut Vec<FieldError>) {
    let volumes = validate_volumes(&spec.volumes, &path.child("volumes"), errs);
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);

    let mut names = BTreeSet::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        let p = path.child("initContainers").index(i);
        container(c, &volumes, grace, &mut names, &p, errs);
        for (field, set) in [
            ("lifecycle", c.lifecycle.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
        ] {
            if set {
                errs.push(FieldError::forbidden(&p.child(field), "may not be set for init containers"));
            }
        }
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&path.child("containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        container(c, &volumes, grace, &mut names, &path.child("containers").index(i), errs);
    }

    if let Some(policy) = &spec.restart_policy {
        let p = path.child("restartPolicy");
        match policy.as_str() {
            "" => errs.push(FieldError::required(&p, "")),
            "Always" | "OnFailure" | "Never" => {}
            other => errs.push(FieldError::not_supported(&p, other, &["Always", "OnFailure", "Never"])),
        }
        if owner == PodSpecOwner::Workload && policy != "Always" {
            errs.push(FieldError::not_supported(&p, policy, &["Always"]));
        }
    }
    if let Some(dns) = &spec.dns_policy {
        if !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&dns.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("dnsPolicy"),
                dns,
                &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
            ));
        }
    }
    if let Some(g) = spec.termination_grace_period_seconds {
        let p = path.child("terminationGracePeriodSeconds");
        nonnegative(g, &p, errs);
        at_most_max_seconds(g, &p, errs);
    }
    if let Some(d) = spec.active_deadline_seconds {
        let p = path.child("activeDeadlineSeconds");
        if owner == PodSpecOwner::Workload {
            errs.push(FieldError::forbidden(&p, "activeDeadlineSeconds in ReplicaSet is not Supported"));
        } else if !(1..=i32::MAX as i64).contains(&d) {
            errs.push(FieldError::invalid(&p, d.to_string(), "must be between 1 and 2147483647, inclusive"));
        }
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value {
            for msg in names::dns1123_label(v) {
                errs.push(FieldError::invalid(&path.child(field), quote(v), &msg));
            }
        }
    }
    meta::labels(&spec.node_selector, &path.child("nodeSelector"), errs);
    host_namespaces(spec, path, errs);
    if let Some(sc) = &spec.security_context {
        let p = path.child("securityContext");
        id_range(sc.run_as_user, &p.child("runAsUser"), errs);
        id_range(sc.run_as_group, &p.child("runAsGroup"), errs);
        id_range(sc.fs_group, &p.child("fsGroup"), errs);
        for (i, &g) in sc.supplemental_groups.iter().enumerate() {
            id_range(Some(g), &p.child("supplementalGroups").index(i), errs);
        }
        seccomp_profile(sc.seccomp_profile.as_ref(), &p.child("seccompProfile"), errs);
        unenforced(sc.app_armor_profile.as_ref(), &sc.se_linux_options, &sc.windows_options, &p, errs);
        let host_network = spec.host_network == Some(true);
        sysctls(sc.sysctls.as_deref().unwrap_or_default(), host_network, &p.child("sysctls"), errs);
    }
}

/// The names of the pod's volumes, for mounts to refer to.
fn validate_volumes(volumes: &[Volume], path: &Path, errs: &mut Vec<FieldError>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name = p.child("name");
        required_label(&v.name, &name, errs);
        if !names.insert(v.name.clone()) {
            errs.push(FieldError::duplicate(&name, quote(&v.name)));
        }
        if v.config_map.is_some() || v.secret.is_some() || v.projected.is_some() {
            super::config_volume::volume(v, &p, errs);
            continue;
        }
        match (&v.empty_dir, &v.host_path) {
            (None, None) => errs.push(FieldError::required(&p, "must specify a volume type")),
            (Some(_), Some(_)) => {
                errs.push(FieldError::forbidden(&p.child("hostPath"), "may not specify more than 1 volume type"))
            }
            (Some(e), None) => {
                if let Some(size) = &e.size_limit {
                    if size.is_negative() {
                        errs.push(FieldError::invalid(
                            &p.child("emptyDir").child("sizeLimit"),
                            quote(&size.to_string()),
                            "must be greater than or equal to 0",
                        ));
                    }
                }
            }
            (None, Some(h)) => {
                let hp = p.child("hostPath");
                if h.path.is_empty() {
                    errs.push(FieldError::required(&hp.child("path"), ""));
                }
                const TYPES: &[&str] = &[
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ];
                if let Some(t) = &h.type_ {
                    if !TYPES.contains(&t.as_str()) {
                        errs.push(FieldError::not_supported(&hp.child("type"), t, TYPES));
                    }
                }
            }
        }
    }
    names
}

fn container(
    c: &Container,
    volumes: &BTreeSet<String>,
    grace: i64,
    names: &mut BTreeSet<String>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let name = path.child("name");
    if required_label(&c.name, &name, errs) && !names.insert(c.name.clone()) {
        errs.push(FieldError::duplicate(&name, quote(&c.name)));
    }
    if c.image.is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    } else if c.image.trim() != c.image {
        errs.push(FieldError::invalid(
            &path.child("image"),
            quote(&c.image),
            "must not have leading or trailing whitespace",
        ));
    }
    if let Some(policy) = &c.image_pull_policy {
        const POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
        if !POLICIES.contains(&policy.as_str()) {
            errs.push(FieldError::not_supported(&path.child("imagePullPolicy"), policy, POLICIES));
        }
    }
    if let Some(policy) = &c.termination_message_policy {
        const POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
        if !POLICIES.contains(&policy.as_str()) {
            errs.push(FieldError::not_supported(&path.child("terminationMessagePolicy"), policy, POLICIES));
        }
    }
    ports(&c.ports, &path.child("ports"), errs);
    env(c, &path.child("env"), errs);
    super::env_source::env_from(&c.env_from, &path.child("envFrom"), errs);
    resources(&c.resources, &path.child("resources"), errs);
    for (field, probe, single_success) in [
        ("livenessProbe", &c.liveness_probe, true),
        ("readinessProbe", &c.readiness_probe, false),
        ("startupProbe", &c.startup_probe, true),
    ] {
        if let Some(probe) = probe {
            let p = path.child(field);
            validate_probe(probe, &p, errs);
            if single_success {
                if let Some(s) = probe.success_threshold.filter(|&s| s != 1) {
                    errs.push(FieldError::invalid(&p.child("successThreshold"), s.to_string(), "must be 1"));
                }
            }
        }
    }
    if let Some(l) = &c.lifecycle {
        let p = path.child("lifecycle");
        for (field, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            if let Some(h) = h {
                lifecycle_handler(h, grace, &p.child(field), errs);
            }
        }
    }
    volume_mounts(c, volumes, &path.child("volumeMounts"), errs);
    if let Some(sc) = &c.security_context {
        let p = path.child("securityContext");
        id_range(sc.run_as_user, &p.child("runAsUser"), errs);
        id_range(sc.run_as_group, &p.child("runAsGroup"), errs);
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            errs.push(FieldError::invalid(
                &p,
                "false",
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds_sys_admin = sc.capabilities.as_ref().is_some_and(|c| c.add.iter().any(|a| a == "CAP_SYS_ADMIN"));
        if adds_sys_admin && sc.allow_privilege_escalation == Some(false) {
            errs.push(FieldError::invalid(
                &p,
                "false",
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
        if let Some(proc_mount) = &sc.proc_mount {
            let field = p.child("procMount");
            match proc_mount.as_str() {
                "Default" => {}
                // Pods always share the host's user namespace here (no `hostUsers: false`).
                "Unmasked" => {
                    errs.push(FieldError::invalid(&p, quote(proc_mount), "`hostUsers` must be false to use `Unmasked`"))
                }
                other => errs.push(FieldError::not_supported(&field, other, &["Default", "Unmasked"])),
            }
        }
        seccomp_profile(sc.seccomp_profile.as_ref(), &p.child("seccompProfile"), errs);
        unenforced(sc.app_armor_profile.as_ref(), &sc.se_linux_options, &sc.windows_options, &p, errs);
    }
}

fn ports(ports: &[ContainerPort], path: &Path, errs: &mut Vec<FieldError>) {
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = &port.name {
            for msg in names::port_name(name) {
                errs.push(FieldError::invalid(&p.child("name"), quote(name), &msg));
            }
            if !names.insert(name.clone()) {
                errs.push(FieldError::duplicate(&p.child("name"), quote(name)));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for msg in names::port_number(port.container_port) {
                errs.push(FieldError::invalid(&p.child("containerPort"), port.container_port.to_string(), &msg));
            }
        }
        if let Some(host) = port.host_port.filter(|&h| h != 0) {
            for msg in names::port_number(host) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host.to_string(), &msg));
            }
        }
        protocol(port.protocol.as_deref(), &p.child("protocol"), errs);
    }
}

/// TCP, UDP or SCTP; unset is fine (defaulting fills TCP).
pub fn protocol(value: Option<&str>, path: &Path, errs: &mut Vec<FieldError>) {
    match value {
        None => {}
        Some("") => errs.push(FieldError::required(path, "")),
        Some(p) if PROTOCOLS.contains(&p) => {}
        Some(p) => errs.push(FieldError::not_supported(path, p, PROTOCOLS)),
    }
}

fn env(c: &Container, path: &Path, errs: &mut Vec<FieldError>) {
    for (i, e) in c.env.iter().enumerate() {
        let p = path.index(i);
        if e.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            for msg in names::env_var_name(&e.name) {
                errs.push(FieldError::invalid(&p.child("name"), quote(&e.name), &msg));
            }
        }
        if let Some(from) = &e.value_from {
            let fp = p.child("valueFrom");
            if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::invalid(&fp, "\"\"", "may not be specified when `value` is not empty"));
            }
            let sources = [
                from.field_ref.is_some(),
                from.resource_field_ref.is_some(),
                from.config_map_key_ref.is_some(),
                from.secret_key_ref.is_some(),
            ];
            match sources.iter().filter(|s| **s).count() {
                0 => errs.push(FieldError::invalid(
                    &fp,
                    "\"\"",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )),
                1 => {}
                _ => {
                    errs.push(FieldError::invalid(&fp, "\"\"", "may not have more than one field specified at a time"))
                }
            }
            if from.field_ref.as_ref().is_some_and(|f| f.field_path.is_empty()) {
                errs.push(FieldError::required(&fp.child("fieldRef").child("fieldPath"), ""));
            }
            if from.resource_field_ref.as_ref().is_some_and(|r| r.resource.is_empty()) {
                errs.push(FieldError::required(&fp.child("resourceFieldRef").child("resource"), ""));
            }
            if let Some(k) = &from.config_map_key_ref {
                super::env_source::key_selector(k, &fp.child("configMapKeyRef"), errs);
            }
            if let Some(k) = &from.secret_key_ref {
                super::env_source::key_selector(k, &fp.child("secretKeyRef"), errs);
            }
        }
    }
}

/// Standard container resources, or a domain-qualified extended resource.
fn resource_name(name: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if name.contains('/') {
        for msg in names::qualified_name(name) {
            errs.push(FieldError::invalid(path, quote(name), &msg));
        }
    } else if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !name.starts_with("hugepages-") {
        errs.push(FieldError::invalid(path, quote(name), "must be a standard resource for containers"));
    }
}

fn resources(r: &ResourceRequirements, path: &Path, errs: &mut Vec<FieldError>) {
    for (section, map) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in map {
            let p = path.child(section).key(name);
            resource_name(name, &p, errs);
            if q.is_negative() {
                errs.push(FieldError::invalid(&p, quote(&q.to_string()), "must be greater than or equal to 0"));
            }
        }
    }
    for (name, request) in &r.requests {
        if let Some(limit) = r.limits.get(name) {
            if request > limit {
                errs.push(FieldError::invalid(
                    &path.child("requests").key(name),
                    quote(&request.to_string()),
                    &format!("must be less than or equal to {name} limit of {limit}"),
                ));
            }
        }
    }
}

/// A required name that must be a DNS label (a volume's, a container's); true when given.
pub fn required_label(name: &str, path: &Path, errs: &mut Vec<FieldError>) -> bool {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return false;
    }
    for msg in names::dns1123_label(name) {
        errs.push(FieldError::invalid(path, quote(name), &msg));
    }
    true
}

fn volume_mounts(c: &Container, volumes: &BTreeSet<String>, path: &Path, errs: &mut Vec<FieldError>) {
    let mut paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(&p.child("name"), quote(&m.name)));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        } else if !paths.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(&p.child("mountPath"), quote(&m.mount_path), "must be unique"));
        }
        if let Some(sub) = &m.sub_path {
            if sub.starts_with('/') {
                errs.push(FieldError::invalid(&p.child("subPath"), quote(sub), "must be a relative path"));
            }
            if sub.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(&p.child("subPath"), quote(sub), "must not contain '..'"));
            }
        }
    }
}

/// `ValidateNonnegativeField`.
pub fn nonnegative(v: i64, path: &Path, errs: &mut Vec<FieldError>) {
    if v < 0 {
        errs.push(FieldError::invalid(path, v.to_string(), "must be greater than or equal to 0"));
    }
}

/// Seconds beyond [`MAX_SECONDS`].
pub(super) fn at_most_max_seconds(v: i64, path: &Path, errs: &mut Vec<FieldError>) {
    if v > MAX_SECONDS {
        errs.push(FieldError::invalid(path, v.to_string(), &format!("must be less than or equal to {MAX_SECONDS}")));
    }
}

fn id_range(v: Option<i64>, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some(v) = v.filter(|v| !(0..=i32::MAX as i64).contains(v)) {
        errs.push(FieldError::invalid(path, v.to_string(), "must be between 0 and 2147483647, inclusive"));
    }
}
