//! Pod + container + image → the runtime's `ContainerSpec`: argv, environment, user,
//! mounts, capabilities, writable layer, log file and cgroups.

use super::{env_expansion, layout};
use coracle_config::core::{Container, EnvVar, Pod};
use coracle_runtime::devices::DeviceRule;
use coracle_runtime::image::{effective_command, Image};
use coracle_runtime::seccomp::{Profile, Seccomp};
use coracle_runtime::{
    users, CapabilityChanges, Confinement, ContainerSpec, MountKind, MountSpec, Rootfs, Sandbox, UserSpec,
};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

/// Everything besides the pod and container that shapes a container's spec.
pub struct SpecInputs<'a> {
    /// The daemon's data directory.
    pub data_dir: &'a Path,
    /// The resolved image.
    pub image: &'a Image,
    /// The pod's sandbox.
    pub sandbox: &'a Sandbox,
    /// The pod's IP, when it has one.
    pub pod_ip: Option<IpAddr>,
    /// The node's IP.
    pub host_ip: IpAddr,
    /// This node's name.
    pub node_name: &'a str,
    /// The runtime id for this attempt.
    pub id: String,
    /// cgroup directories the container joins.
    pub cgroup_dirs: Vec<PathBuf>,
    /// Log rotation: bytes per file, files kept.
    pub log_max_size: u64,
    /// Log files kept, the live one included.
    pub log_max_files: u32,
    /// The Services' variables (`services::env::service_env`); empty with
    /// `enableServiceLinks: false`.
    pub service_env: &'a [(String, String)],
    /// The node's memory in bytes, for the container's `oom_score_adj`; `None` leaves the
    /// daemon's own score to the container.
    pub node_memory: Option<u64>,
    /// Where `Localhost` seccomp profiles are read from (`runtime.seccomp_profile_root`).
    pub seccomp_profile_root: &'a Path,
    /// Where ConfigMaps and Secrets named by `env` and `envFrom` are read.
    pub store: &'a coracle_store::Store,
}

/// A spec that cannot be built: the reason is `CreateContainerConfigError` (the pod asks for
/// something impossible) or `CreateContainerError` (the image cannot provide it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The waiting reason shown in the container's status.
    pub reason: &'static str,
    /// What is wrong, naming the field and value.
    pub message: String,
}

fn config_error(message: String) -> SpecError {
    SpecError { reason: "CreateContainerConfigError", message }
}

/// Builds the runtime spec for one attempt of `container`.
pub fn build(pod: &Pod, container: &Container, inputs: &SpecInputs) -> Result<ContainerSpec, SpecError> {
    let uid = &pod.metadata.uid;
    let (env, pod_env) = environment(pod, container, inputs)?;
    // kubelet expands command and args against the pod-level variables (not the image's).
    let expand_all = |list: Option<&[String]>| {
        list.map(|l| l.iter().map(|a| env_expansion::expand_with(a, &pod_env)).collect::<Vec<_>>())
    };
    let (command, container_args) = (expand_all(container.command.as_deref()), expand_all(container.args.as_deref()));
    let args = effective_command(&inputs.image.config, command.as_deref(), container_args.as_deref()).map_err(|e| {
        SpecError { reason: "CreateContainerError", message: format!("container {}: {e}", container.name) }
    })?;
    let user = user(pod, container, inputs.image)?;
    let cwd = container
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| inputs.image.config.working_dir.clone())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(config_error(format!("workingDir {cwd:?}: must be an absolute path")));
    }
    let mut mounts = inputs.sandbox.standard_mounts();
    let (volumes, granted_devices) = volume_mounts(pod, container, inputs)?;
    mounts.extend(volumes);
    let security = container.security_context.as_ref();
    let privileged = security.and_then(|s| s.privileged) == Some(true);
    let mut capabilities = security
        .and_then(|s| s.capabilities.as_ref())
        .map(|c| CapabilityChanges { add: c.add.clone(), drop: c.drop.clone() })
        .unwrap_or_default();
    let confinement = if privileged {
        // Every capability, every device, no seccomp, /proc and /sys as the host's: as Kubernetes.
        capabilities.add.push("ALL".into());
        Confinement::privileged()
    } else {
        // runc's list, and the devices the pod's CharDevice/BlockDevice hostPaths mount here.
        let mut devices = DeviceRule::runc_defaults();
        devices.extend(granted_devices);
        Confinement { devices, seccomp: seccomp(pod, container, inputs.seccomp_profile_root)?, privileged: false }
    };
    let dir = layout::container_dir(inputs.data_dir, uid, &container.name);
    let ns = if pod.metadata.namespace.is_empty() { "default" } else { &pod.metadata.namespace };
    Ok(ContainerSpec {
        id: inputs.id.clone(),
        sandbox: inputs.sandbox.clone(),
        rootfs: Rootfs {
            layers: inputs.image.layers.clone(),
            upper_dir: dir.join("upper"),
            work_dir: dir.join("work"),
        },
        readonly_rootfs: security.and_then(|s| s.read_only_root_filesystem) == Some(true),
        args,
        env,
        cwd: cwd.into(),
        user,
        hostname: super::sandbox::hostname(pod),
        mounts,
        capabilities,
        no_new_privileges: security.and_then(|s| s.allow_privilege_escalation) == Some(false),
        confinement,
        cgroup_dirs: inputs.cgroup_dirs.clone(),
        oom_score_adj: inputs.node_memory.map(|m| super::oom_score::oom_score_adj(pod, container, m)),
        log_path: layout::log_path(inputs.data_dir, ns, &pod.metadata.name, uid, &container.name),
        log_max_size: inputs.log_max_size,
        log_max_files: inputs.log_max_files,
    })
}

/// The container's seccomp profile: its own `seccompProfile`, else the pod's, else
/// `RuntimeDefault` (Coracle confines by default; Kubernetes' default is Unconfined).
fn seccomp(pod: &Pod, container: &Container, root: &Path) -> Result<Seccomp, SpecError> {
    let own = container.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref());
    let pods = pod.spec.security_context.as_ref().and_then(|s| s.seccomp_profile.as_ref());
    let Some(profile) = own.or(pods) else { return Ok(Seccomp::RuntimeDefault) };
    match (profile.type_.as_str(), profile.localhost_profile.as_deref()) {
        ("RuntimeDefault", _) => Ok(Seccomp::RuntimeDefault),
        ("Unconfined", _) => Ok(Seccomp::Unconfined),
        ("Localhost", Some(rel)) if Path::new(rel).components().all(|c| matches!(c, Component::Normal(_))) => {
            // As containerd words a profile it cannot load (CreateContainerError).
            Profile::load(&root.join(rel)).map(Seccomp::Profile).map_err(|e| SpecError {
                reason: "CreateContainerError",
                message: format!("failed to generate seccomp spec opts: {e}"),
            })
        }
        (kind, rel) => Err(config_error(format!(
            "container {}: seccompProfile type {kind:?} with localhostProfile {rel:?} cannot be applied",
            container.name
        ))),
    }
}

/// `(name, value)` pairs, in order.
type Vars = Vec<(String, String)>;

/// Sets `name` in `env`: a later definition wins and keeps the first one's position.
fn set_var(env: &mut Vec<(String, String)>, name: String, value: String) {
    match env.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    }
}

/// The image's Env, then the Services' variables, then `envFrom`'s, then the container's
/// own (a later name wins, keeping the first position). Container values expand `$(VAR)` against the Services'
/// variables and the container's earlier ones, as kubelet does. Returns the whole
/// environment and the pod-level part (services + container) that command and args expand
/// against.
fn environment(pod: &Pod, container: &Container, inputs: &SpecInputs) -> Result<(Vec<String>, Vars), SpecError> {
    let mut env: Vec<(String, String)> = Vec::new();
    for entry in &inputs.image.config.env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        set_var(&mut env, name.to_string(), value.to_string());
    }
    if !inputs.image.config.env.iter().any(|e| e.starts_with("PATH=")) {
        set_var(&mut env, "PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    set_var(&mut env, "HOSTNAME".into(), super::sandbox::hostname(pod));
    let mut pod_env: Vec<(String, String)> = inputs.service_env.to_vec();
    for (name, value) in super::env_source::env_from(inputs.store, pod, container)?.vars {
        set_var(&mut pod_env, name, value);
    }
    for var in &container.env {
        let value = match &var.value_from {
            None => env_expansion::expand_with(var.value.as_deref().unwrap_or_default(), &pod_env),
            Some(_) => match env_value(pod, container, var, inputs)? {
                Some(value) => value,
                // An optional reference to a missing object or key: the variable is not set.
                None => continue,
            },
        };
        set_var(&mut pod_env, var.name.clone(), value);
    }
    for (name, value) in &pod_env {
        set_var(&mut env, name.clone(), value.clone());
    }
    Ok((env.into_iter().map(|(n, v)| format!("{n}={v}")).collect(), pod_env))
}

fn env_value(pod: &Pod, container: &Container, var: &EnvVar, inputs: &SpecInputs) -> Result<Option<String>, SpecError> {
    let Some(source) = &var.value_from else { return Ok(var.value.clone()) };
    let context = |what: String| config_error(format!("container {} env {}: {what}", container.name, var.name));
    if let Some(field) = &source.field_ref {
        return field_value(pod, &field.field_path, inputs).map(Some).ok_or_else(|| {
            context(format!("valueFrom.fieldRef.fieldPath {:?}: not a supported field", field.field_path))
        });
    }
    if let Some(selector) = &source.config_map_key_ref {
        return super::env_source::key_ref(inputs.store, pod, false, selector);
    }
    if let Some(selector) = &source.secret_key_ref {
        return super::env_source::key_ref(inputs.store, pod, true, selector);
    }
    if let Some(resource) = &source.resource_field_ref {
        return Err(context(format!("valueFrom.resourceFieldRef {:?}: not supported on this node", resource.resource)));
    }
    Err(context("valueFrom: names no source".into()))
}

/// The downward API's pod fields.
fn field_value(pod: &Pod, path: &str, inputs: &SpecInputs) -> Option<String> {
    let m = &pod.metadata;
    let keyed = |prefix: &str| path.strip_prefix(prefix).and_then(|k| k.strip_suffix("']"));
    if let Some(key) = keyed("metadata.labels['") {
        return Some(m.labels.get(key).cloned().unwrap_or_default());
    }
    if let Some(key) = keyed("metadata.annotations['") {
        return Some(m.annotations.get(key).cloned().unwrap_or_default());
    }
    Some(match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => pod.spec.node_name.clone().unwrap_or_else(|| inputs.node_name.to_string()),
        "spec.serviceAccountName" => pod.spec.service_account_name.clone().unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => inputs.pod_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => inputs.host_ip.to_string(),
        _ => return None,
    })
}

/// securityContext (container over pod) over the image's `User`.
fn user(pod: &Pod, container: &Container, image: &Image) -> Result<UserSpec, SpecError> {
    let image_user = image.config.user.clone().unwrap_or_else(|| "0".into());
    let pod_sc = pod.spec.security_context.as_ref();
    let sc = container.security_context.as_ref();
    let run_as_user = sc.and_then(|s| s.run_as_user).or(pod_sc.and_then(|s| s.run_as_user));
    let run_as_group = sc.and_then(|s| s.run_as_group).or(pod_sc.and_then(|s| s.run_as_group));
    let non_root = sc.and_then(|s| s.run_as_non_root).or(pod_sc.and_then(|s| s.run_as_non_root));
    if non_root == Some(true) {
        verify_run_as_non_root(pod, container, run_as_user, &image_user)?;
    }
    let mut user = users::resolve(&image.layers, &image_user).map_err(|e| SpecError {
        reason: "CreateContainerError",
        message: format!("image user {image_user:?}: {e}"),
    })?;
    let id = |field: &str, v: i64| {
        u32::try_from(v).map_err(|_| config_error(format!("securityContext.{field} {v}: must be 0..4294967295")))
    };
    if let Some(uid) = run_as_user {
        user.uid = id("runAsUser", uid)?;
    }
    if let Some(gid) = run_as_group {
        user.gid = id("runAsGroup", gid)?;
    }
    if let Some(pod_sc) = pod_sc {
        for g in pod_sc.supplemental_groups.iter().chain(pod_sc.fs_group.as_ref()) {
            let gid = id("supplementalGroups", *g)?;
            if !user.additional_gids.contains(&gid) {
                user.additional_gids.push(gid);
            }
        }
    }
    Ok(user)
}

/// kubelet's verifyRunAsNonRoot, with its messages: a `runAsUser` of 0, an image user that is
/// root (an empty or `0` user), or one given by name (which kubelet cannot check) is refused.
fn verify_run_as_non_root(
    pod: &Pod,
    container: &Container,
    run_as_user: Option<i64>,
    image_user: &str,
) -> Result<(), SpecError> {
    let m = &pod.metadata;
    let ns = if m.namespace.is_empty() { "default" } else { &m.namespace };
    let pod_name = format!("{}_{}({})", m.name, ns, m.uid);
    let refuse = |what: String| Err(config_error(format!("{what} (pod: {pod_name:?}, container: {})", container.name)));
    if let Some(requested) = run_as_user {
        return if requested == 0 { refuse("container's runAsUser breaks non-root policy".into()) } else { Ok(()) };
    }
    let name = image_user.split(':').next().unwrap_or_default();
    match name.parse::<u32>() {
        Ok(0) => refuse("container has runAsNonRoot and image will run as root".into()),
        Ok(_) => Ok(()),
        Err(_) if name.is_empty() => refuse("container has runAsNonRoot and image will run as root".into()),
        Err(_) => refuse(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root"
        )),
    }
}

/// emptyDir, hostPath, configMap, secret and projected binds for the container's
/// volumeMounts, and the device rules the device hostPaths among them grant.
fn volume_mounts(
    pod: &Pod,
    container: &Container,
    inputs: &SpecInputs,
) -> Result<(Vec<MountSpec>, Vec<DeviceRule>), SpecError> {
    let data_dir = inputs.data_dir;
    let mut mounts = Vec::new();
    let mut devices = Vec::new();
    for vm in &container.volume_mounts {
        let context =
            |what: String| config_error(format!("container {} volumeMount {}: {what}", container.name, vm.name));
        let volume = pod
            .spec
            .volumes
            .iter()
            .find(|v| v.name == vm.name)
            .ok_or_else(|| context("no volume of that name in spec.volumes".into()))?;
        if !vm.mount_path.starts_with('/') {
            return Err(context(format!("mountPath {:?}: must be absolute", vm.mount_path)));
        }
        let mut read_only = vm.read_only == Some(true);
        let (source, kind) = if let Some(empty) = &volume.empty_dir {
            let dir = layout::volume_dir(data_dir, &pod.metadata.uid, &volume.name);
            if empty.medium.as_deref() == Some("Memory") {
                let size = empty.size_limit.as_ref().map(|q| q.value().max(0) as u64).unwrap_or(0);
                (dir, MountKind::Tmpfs { size_bytes: size })
            } else {
                std::fs::create_dir_all(&dir).map_err(|e| context(format!("create {}: {e}", dir.display())))?;
                (dir, MountKind::Bind)
            }
        } else if volume.config_map.is_some() || volume.secret.is_some() || volume.projected.is_some() {
            let files = super::config_volume::payload(inputs.store, pod, volume)?;
            // The sandbox folder under the run dir, where `config_refresh` finds it again.
            let sandbox_dir = inputs.sandbox.hosts_path.parent().unwrap_or(Path::new("/"));
            let dir = sandbox_dir.join("volumes").join(&volume.name);
            super::config_volume::write(&dir, &files)
                .map_err(|e| context(format!("writing {}: {e}", dir.display())))?;
            // Kubernetes binds these read-only whatever the mount says.
            read_only = true;
            (dir, MountKind::Bind)
        } else if let Some(host) = &volume.host_path {
            devices.extend(super::host_path::check(host, read_only).map_err(context)?);
            (PathBuf::from(&host.path), MountKind::Bind)
        } else {
            return Err(context(
                "volume type not supported on this node (emptyDir, hostPath, configMap, secret and projected are)"
                    .into(),
            ));
        };
        let source = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let rel = Path::new(sub);
                if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                    return Err(context(format!("subPath {sub:?}: must be a relative path without '..'")));
                }
                let full = source.join(rel);
                if kind == MountKind::Bind && !full.exists() {
                    std::fs::create_dir_all(&full).map_err(|e| context(format!("create {}: {e}", full.display())))?;
                }
                full
            }
            None => source,
        };
        mounts.push(MountSpec { source, destination: vm.mount_path.clone().into(), kind, read_only });
    }
    Ok((mounts, devices))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{EnvVarSource, ObjectFieldSelector, Volume, VolumeMount};
    use coracle_runtime::image::ImageConfig;

    fn fixture() -> (Pod, Image, Sandbox) {
        let mut pod = Pod::default();
        pod.metadata.name = "web".into();
        pod.metadata.namespace = "prod".into();
        pod.metadata.uid = "u-1".into();
        let image = Image {
            reference: "docker.io/library/busybox:latest".into(),
            digest: "sha256:00".into(),
            config: ImageConfig {
                cmd: vec!["sh".into()],
                env: vec!["PATH=/bin".into(), "MODE=image".into()],
                ..Default::default()
            },
            layers: vec![],
            size: 0,
        };
        let sandbox = Sandbox {
            id: "u-1".into(),
            netns_path: None,
            ipcns_path: "/r/ipc".into(),
            hosts_path: "/r/hosts".into(),
            resolv_conf_path: "/r/resolv.conf".into(),
        };
        (pod, image, sandbox)
    }

    /// One empty store for the tests' inputs: a real store on a folder of its own.
    fn empty_store() -> &'static coracle_store::Store {
        static STORE: std::sync::OnceLock<(tempfile::TempDir, coracle_store::Store)> = std::sync::OnceLock::new();
        &STORE
            .get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let store = coracle_store::Store::open(dir.path()).unwrap();
                (dir, store)
            })
            .1
    }

    fn inputs<'a>(data: &'a Path, image: &'a Image, sandbox: &'a Sandbox) -> SpecInputs<'a> {
        SpecInputs {
            store: empty_store(),
            data_dir: data,
            image,
            sandbox,
            pod_ip: Some("10.88.0.5".parse().unwrap()),
            host_ip: "192.168.1.2".parse().unwrap(),
            node_name: "board",
            id: "u-1_app_0".into(),
            cgroup_dirs: vec![],
            log_max_size: 0,
            log_max_files: 1,
            service_env: &[],
            node_memory: Some(1 << 30),
            seccomp_profile_root: Path::new("/nonexistent/seccomp"),
        }
    }

    #[test]
    fn the_oom_score_follows_the_pods_qos_class() {
        let data = tempfile::tempdir().unwrap();
        let (pod, image, sandbox) = fixture();
        let c = Container { name: "app".into(), ..Default::default() };
        let spec = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap();
        assert_eq!(spec.oom_score_adj, Some(1000), "BestEffort");
        let unknown = SpecInputs { node_memory: None, ..inputs(data.path(), &image, &sandbox) };
        assert_eq!(build(&pod, &c, &unknown).unwrap().oom_score_adj, None);
    }

    #[test]
    fn env_layers_container_over_image_and_fills_field_refs() {
        let data = tempfile::tempdir().unwrap();
        let (pod, image, sandbox) = fixture();
        let field = |path: &str| EnvVar {
            name: path.replace('.', "_").to_uppercase(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { api_version: None, field_path: path.into() }),
                ..Default::default()
            }),
        };
        let mut c = Container { name: "app".into(), ..Default::default() };
        c.env = vec![
            EnvVar { name: "MODE".into(), value: Some("pod".into()), value_from: None },
            field("metadata.name"),
            field("metadata.namespace"),
            field("metadata.uid"),
            field("status.podIP"),
            field("spec.nodeName"),
        ];
        let spec = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap();
        for want in [
            "PATH=/bin",
            "MODE=pod",
            "METADATA_NAME=web",
            "METADATA_NAMESPACE=prod",
            "METADATA_UID=u-1",
            "STATUS_PODIP=10.88.0.5",
            "SPEC_NODENAME=board",
        ] {
            assert!(spec.env.contains(&want.to_string()), "{want} in {:?}", spec.env);
        }
        assert_eq!(spec.args, vec!["sh"]);
        assert_eq!(spec.hostname, "web");
        assert_eq!(spec.log_path, data.path().join("logs/prod_web_u-1/app/0.log"));
        assert_eq!(spec.rootfs.upper_dir, data.path().join("pods/u-1/containers/app/upper"));
        c.env.push(field("spec.nope"));
        let err = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap_err();
        assert_eq!(err.reason, "CreateContainerConfigError");
        assert!(err.message.contains("spec.nope"), "{}", err.message);
    }

    #[test]
    fn service_variables_come_first_and_references_expand() {
        let data = tempfile::tempdir().unwrap();
        let (pod, image, sandbox) = fixture();
        let services: Vec<(String, String)> =
            [("DB_SERVICE_HOST", "10.96.0.7"), ("DB_SERVICE_PORT", "5432"), ("MODE", "service")]
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
        let var = |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), value_from: None };
        let mut c = Container { name: "app".into(), ..Default::default() };
        c.env = vec![
            var("URL", "pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/x"),
            var("MODE", "pod"),
            var("SELF", "$(URL)?mode=$(MODE)"),
            var("LITERAL", "$$(URL) $(NOPE) $(IMAGE_ONLY"),
        ];
        c.command = Some(vec!["echo".into(), "$(URL)".into()]);
        c.args = Some(vec!["$(MODE)".into(), "$$(MODE)".into(), "$(PATH)".into()]);
        let mut inputs = inputs(data.path(), &image, &sandbox);
        inputs.service_env = &services;
        let spec = build(&pod, &c, &inputs).unwrap();
        let position = |prefix: &str| spec.env.iter().position(|e| e.starts_with(prefix)).unwrap();
        for want in [
            "DB_SERVICE_HOST=10.96.0.7",
            "URL=pg://10.96.0.7:5432/x",
            "MODE=pod",
            "SELF=pg://10.96.0.7:5432/x?mode=pod",
            "LITERAL=$(URL) $(NOPE) $(IMAGE_ONLY",
        ] {
            assert!(spec.env.contains(&want.to_string()), "{want} in {:?}", spec.env);
        }
        assert!(position("DB_SERVICE_HOST=") < position("URL="), "{:?}", spec.env);
        assert_eq!(spec.args, vec!["echo", "pg://10.96.0.7:5432/x", "pod", "$(MODE)", "$(PATH)"]);
        inputs.service_env = &[];
        let spec = build(&pod, &c, &inputs).unwrap();
        assert!(spec.env.contains(&"URL=pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/x".to_string()), "{:?}", spec.env);
        assert!(!spec.env.iter().any(|e| e.starts_with("DB_SERVICE_HOST=")));
    }

    #[test]
    fn volumes_become_binds_and_unknown_ones_are_named() {
        let data = tempfile::tempdir().unwrap();
        let (mut pod, image, sandbox) = fixture();
        pod.spec.volumes = vec![Volume {
            name: "cache".into(),
            empty_dir: Some(Default::default()),
            host_path: None,
            ..Default::default()
        }];
        let mut c = Container { name: "app".into(), command: Some(vec!["/bin/true".into()]), ..Default::default() };
        c.volume_mounts = vec![VolumeMount {
            name: "cache".into(),
            mount_path: "/cache".into(),
            read_only: Some(true),
            sub_path: None,
        }];
        let spec = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap();
        let cache = spec.mounts.iter().find(|m| m.destination == Path::new("/cache")).unwrap();
        assert_eq!(cache.source, data.path().join("pods/u-1/volumes/cache"));
        assert!(cache.read_only && cache.source.is_dir());
        assert!(spec.mounts.iter().any(|m| m.destination == Path::new("/etc/hosts")));
        c.volume_mounts[0].name = "nope".into();
        let err = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap_err();
        assert!(err.message.contains("volumeMount nope"), "{}", err.message);
    }

    #[test]
    fn security_context_overrides_the_image_user() {
        let data = tempfile::tempdir().unwrap();
        let (mut pod, image, sandbox) = fixture();
        pod.spec.security_context = Some(coracle_config::core::PodSecurityContext {
            run_as_user: Some(1000),
            supplemental_groups: vec![5],
            ..Default::default()
        });
        let c = Container { name: "app".into(), ..Default::default() };
        let spec = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap();
        assert_eq!((spec.user.uid, spec.user.gid), (1000, 0));
        assert_eq!(spec.user.additional_gids, vec![5]);
    }

    fn with_security(sc: serde_json::Value) -> Container {
        let mut c = Container { name: "app".into(), ..Default::default() };
        c.security_context = Some(serde_json::from_value(sc).unwrap());
        c
    }

    #[test]
    fn containers_are_confined_by_default_and_privileged_lifts_it_all() {
        let data = tempfile::tempdir().unwrap();
        let (pod, image, sandbox) = fixture();
        let plain = build(
            &pod,
            &Container { name: "app".into(), ..Default::default() },
            &inputs(data.path(), &image, &sandbox),
        )
        .unwrap();
        assert_eq!(plain.confinement, Confinement::default());
        assert_eq!(plain.confinement.seccomp, Seccomp::RuntimeDefault);
        let c = with_security(
            serde_json::json!({"privileged": true, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}),
        );
        let privileged = build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap();
        assert_eq!(privileged.confinement, Confinement::privileged());
        assert!(privileged.capabilities.add.contains(&"ALL".to_string()), "every capability, whatever is dropped");
    }

    #[test]
    fn the_containers_seccomp_profile_wins_over_the_pods_and_localhost_reads_the_profile_root() {
        let data = tempfile::tempdir().unwrap();
        let (mut pod, image, sandbox) = fixture();
        pod.spec.security_context =
            Some(serde_json::from_value(serde_json::json!({"seccompProfile": {"type": "Unconfined"}})).unwrap());
        let c = Container { name: "app".into(), ..Default::default() };
        assert_eq!(
            build(&pod, &c, &inputs(data.path(), &image, &sandbox)).unwrap().confinement.seccomp,
            Seccomp::Unconfined
        );
        let own = with_security(
            serde_json::json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/deny-mkdir.json"}}),
        );
        std::fs::create_dir_all(data.path().join("profiles")).unwrap();
        let text =
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#;
        std::fs::write(data.path().join("profiles/deny-mkdir.json"), text).unwrap();
        let mut with_root = inputs(data.path(), &image, &sandbox);
        with_root.seccomp_profile_root = data.path();
        let spec = build(&pod, &own, &with_root).unwrap();
        assert_eq!(spec.confinement.seccomp, Seccomp::Profile(Profile::parse(text.as_bytes()).unwrap()));
        let missing = with_security(
            serde_json::json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "nope.json"}}),
        );
        let err = build(&pod, &missing, &with_root).unwrap_err();
        assert_eq!(err.reason, "CreateContainerError");
        assert!(
            err.message.starts_with("failed to generate seccomp spec opts: cannot load seccomp profile"),
            "{}",
            err.message
        );
        assert!(err.message.contains("nope.json"), "{}", err.message);
    }

    #[test]
    fn run_as_non_root_refuses_with_kubelets_messages() {
        let data = tempfile::tempdir().unwrap();
        let (mut pod, mut image, sandbox) = fixture();
        pod.metadata.uid = "u-1".into();
        let refused = |c: &Container, image: &Image| build(&pod, c, &inputs(data.path(), image, &sandbox)).unwrap_err();
        let err = refused(&with_security(serde_json::json!({"runAsNonRoot": true})), &image);
        assert_eq!(err.reason, "CreateContainerConfigError");
        assert_eq!(
            err.message,
            "container has runAsNonRoot and image will run as root (pod: \"web_prod(u-1)\", container: app)"
        );
        let err = refused(&with_security(serde_json::json!({"runAsNonRoot": true, "runAsUser": 0})), &image);
        assert_eq!(
            err.message,
            "container's runAsUser breaks non-root policy (pod: \"web_prod(u-1)\", container: app)"
        );
        let ok = with_security(serde_json::json!({"runAsNonRoot": true, "runAsUser": 1000}));
        assert_eq!(build(&pod, &ok, &inputs(data.path(), &image, &sandbox)).unwrap().user.uid, 1000);
        image.config.user = Some("nobody".into());
        let err = refused(&with_security(serde_json::json!({"runAsNonRoot": true})), &image);
        assert!(
            err.message.starts_with(
                "container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root"
            ),
            "{}",
            err.message
        );
    }
}
