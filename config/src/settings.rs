//! The daemon's settings: `/etc/coracle/config.yaml`, every key optional, overridden by
//! `CORACLE_*` environment variables and command-line flags (the daemon applies flags).

use crate::validation::MAX_SECONDS;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the daemon looks for its settings when no file is named.
pub const DEFAULT_PATH: &str = "/etc/coracle/config.yaml";

/// Everything `coracled` can be told; the default runs on any board with no file at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSettings {
    /// Objects, images and runtime state (`/var/lib/coracle`).
    pub data_dir: PathBuf,
    /// The API's unix socket.
    pub socket: PathBuf,
    /// The group whose members may use the socket (root:GROUP 0660) when /etc/group has it;
    /// empty: root only.
    pub socket_group: String,
    /// Volatile per-boot state: pid files, container bundles.
    pub run_dir: PathBuf,
    /// Static manifests applied at start and followed on change.
    pub manifests_dir: PathBuf,
    /// `host:port` for the TCP API (bearer token required); none by default.
    pub listen: Option<String>,
    /// The file holding the TCP API's bearer token.
    pub token_file: Option<PathBuf>,
    pub api: ApiSettings,
    pub runtime: RuntimeSettings,
    pub backoff: BackoffSettings,
    pub logs: LogSettings,
    pub network: NetworkSettings,
    pub images: ImageSettings,
    /// This node's name in pod status and events; the host name by default.
    pub node_name: String,
    /// The cgroup, beneath the daemon's own, that holds every pod's cgroup.
    pub cgroup_subpath: String,
    pub autoscaler: AutoscalerSettings,
}

/// The horizontal pod autoscaler's timing, Kubernetes' defaults; edge users and tests
/// shorten them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoscalerSettings {
    /// How often each autoscaler is evaluated (`--horizontal-pod-autoscaler-sync-period`).
    pub sync_period_seconds: u64,
    /// The scale-down stabilization window for autoscalers without `behavior`.
    pub downscale_stabilization_seconds: u64,
    /// After a pod starts, how long its CPU samples may still be start-up noise.
    pub cpu_initialization_period_seconds: u64,
    /// A pod that turned unready this soon after starting counts as never ready.
    pub initial_readiness_delay_seconds: u64,
}

impl Default for AutoscalerSettings {
    fn default() -> Self {
        AutoscalerSettings {
            sync_period_seconds: 15,
            downscale_stabilization_seconds: 300,
            cpu_initialization_period_seconds: 300,
            initial_readiness_delay_seconds: 30,
        }
    }
}

/// The API server's bounds: threads, connections, long-running requests and timeouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Threads serving requests.
    pub workers: u32,
    /// Watches, followed logs and port-forward legs open at once; beyond, 429.
    pub max_streams: u32,
    /// Open connections; beyond, new ones are closed at once.
    pub max_connections: u32,
    /// From a request's first byte to the end of its head.
    pub header_timeout_seconds: u64,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout_seconds: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            workers: 4,
            max_streams: 100,
            max_connections: 1000,
            header_timeout_seconds: 10,
            idle_timeout_seconds: 90,
        }
    }
}

impl ApiSettings {
    /// Each key with its bounds: enough to serve, few enough for a board.
    fn check(&self) -> Result<(), SettingsError> {
        for (key, value, min, max) in [
            ("api.workers", u64::from(self.workers), 1, 64),
            ("api.max_streams", u64::from(self.max_streams), 1, 10_000),
            ("api.max_connections", u64::from(self.max_connections), 16, 100_000),
            ("api.header_timeout_seconds", self.header_timeout_seconds, 1, 300),
            ("api.idle_timeout_seconds", self.idle_timeout_seconds, 1, 3600),
        ] {
            if !(min..=max).contains(&value) {
                return Err(SettingsError { message: format!("{key}: {value} is not between {min} and {max}") });
            }
        }
        Ok(())
    }
}

/// Which container runtime starts containers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    pub kind: RuntimeKind,
    /// The OCI runtime binary for `kind: oci` (`runc`, `crun`, `youki`), looked up in PATH.
    pub oci_binary: String,
    /// Where `seccompProfile: {type: Localhost, localhostProfile: REL}` reads `REL` from
    /// (kubelet's `<root-dir>/seccomp`); profiles are JSON in Docker's format.
    pub seccomp_profile_root: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
/// The `runtime.kind` key: `builtin` or `oci`.
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Coracle's own namespaces-and-cgroups runtime.
    #[default]
    Builtin,
    /// An external OCI runtime binary.
    Oci,
}

/// Container restart backoff: `base_seconds` doubling per crash up to `cap_seconds`,
/// forgotten after `reset_seconds` of running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffSettings {
    pub base_seconds: u64,
    pub cap_seconds: u64,
    pub reset_seconds: u64,
}

/// Container log rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub max_size_bytes: u64,
    pub max_files: u32,
}

/// What one image load may unpack, so a hostile archive (a gzip or zstd bomb) stops at a
/// budget instead of filling the board's flash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageSettings {
    /// The share (1–100) of the free space, and of the free inodes, of the filesystem holding
    /// the image store, measured when a load starts, that the load may fill.
    #[serde(deserialize_with = "percent")]
    pub free_space_percent: u8,
    /// An absolute cap on one image's uncompressed layers together; none by default.
    pub max_image_bytes: Option<u64>,
    /// An absolute cap on one uncompressed layer; none by default.
    pub max_layer_bytes: Option<u64>,
    /// How many times its compressed size a layer (or a compressed archive) may expand to,
    /// checked once it has produced 64 MiB; 0 turns the check off.
    pub max_compression_ratio: u32,
}

impl Default for ImageSettings {
    fn default() -> Self {
        // Layers compress 2–10 times; 100 leaves room for sparse files and still stops a
        // bomb (deflate reaches 1032, zstd far more) after its first 64 MiB.
        ImageSettings {
            free_space_percent: 80,
            max_image_bytes: None,
            max_layer_bytes: None,
            max_compression_ratio: 100,
        }
    }
}

/// A whole percentage from 1 to 100.
fn percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let n = u64::deserialize(d)?;
    u8::try_from(n)
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a percentage from 1 to 100")))
}

/// Pod networking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    pub mode: NetworkMode,
    pub pod_cidr: String,
    pub service_cidr: String,
    /// The node ports Services get: `FIRST-LAST`, Kubernetes' `--service-node-port-range`.
    /// Two daemons on one machine need ranges apart: their NodePort listeners would share
    /// each other's ports otherwise ([`NetworkSettings::node_ports`] checks the form).
    pub node_port_range: String,
    pub bridge: String,
    pub cni_bin_dirs: Vec<PathBuf>,
}

/// Kubernetes' default node port range.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";

impl NetworkSettings {
    /// `node_port_range` as ports: both ends in 1–65535, the first not above the last.
    pub fn node_ports(&self) -> Result<std::ops::RangeInclusive<i32>, String> {
        let bad = |why: &str| format!("network.node_port_range {:?}: {why}", self.node_port_range);
        let (first, last) = self.node_port_range.split_once('-').ok_or_else(|| bad("expected FIRST-LAST"))?;
        let port = |s: &str| match s.trim().parse::<i32>() {
            Ok(p) if (1..=65535).contains(&p) => Ok(p),
            _ => Err(bad("ports are whole numbers from 1 to 65535")),
        };
        let (first, last) = (port(first)?, port(last)?);
        if first > last {
            return Err(bad("the first port is above the last"));
        }
        Ok(first..=last)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
/// The `network.mode` key: `cni`, `host` or `none`.
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A network namespace per pod, wired with CNI plugins.
    #[default]
    Cni,
    /// Pods share the host's network.
    Host,
    /// A network namespace per pod with loopback only.
    None,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            data_dir: "/var/lib/coracle".into(),
            socket: "/run/coracle/coracle.sock".into(),
            socket_group: "coracle".into(),
            run_dir: "/run/coracle".into(),
            manifests_dir: "/etc/coracle/manifests".into(),
            listen: None,
            token_file: None,
            api: ApiSettings::default(),
            runtime: RuntimeSettings::default(),
            backoff: BackoffSettings::default(),
            logs: LogSettings::default(),
            network: NetworkSettings::default(),
            images: ImageSettings::default(),
            node_name: host_name(),
            cgroup_subpath: "coracle".into(),
            autoscaler: AutoscalerSettings::default(),
        }
    }
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            kind: RuntimeKind::Builtin,
            oci_binary: "runc".into(),
            seccomp_profile_root: "/etc/coracle/seccomp".into(),
        }
    }
}

impl Default for BackoffSettings {
    fn default() -> Self {
        BackoffSettings { base_seconds: 10, cap_seconds: 300, reset_seconds: 600 }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { max_size_bytes: 1024 * 1024, max_files: 3 }
    }
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            mode: NetworkMode::Cni,
            pod_cidr: "10.88.0.0/16".into(),
            service_cidr: "10.96.0.0/16".into(),
            node_port_range: DEFAULT_NODE_PORT_RANGE.into(),
            bridge: "coracle0".into(),
            cni_bin_dirs: vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()],
        }
    }
}

/// The kernel's host name, lower-cased as Kubernetes does for node names.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Why settings could not be loaded; names the file, key or variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SettingsError {}

impl DaemonSettings {
    /// Reads the settings file: `path`, which must exist, or else [`DEFAULT_PATH`] if it
    /// exists. Unknown keys are refused, naming the key.
    pub fn load(path: Option<&Path>) -> Result<DaemonSettings, SettingsError> {
        let (path, required) = match path {
            Some(p) => (p, true),
            None => (Path::new(DEFAULT_PATH), false),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(DaemonSettings::default()),
            Err(e) => return Err(SettingsError { message: format!("reading {}: {e}", path.display()) }),
        };
        DaemonSettings::from_yaml(&text)
            .map_err(|e| SettingsError { message: format!("{}: {}", path.display(), e.message) })
    }

    /// Parses settings from YAML text; an empty document gives the defaults.
    pub fn from_yaml(text: &str) -> Result<DaemonSettings, SettingsError> {
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| SettingsError { message: e.to_string() })?;
        if value.is_null() {
            return Ok(DaemonSettings::default());
        }
        // Decoded as JSON through the decoder manifests use, which names the failing field.
        let value = serde_json::to_value(value).map_err(|e| SettingsError { message: e.to_string() })?;
        let settings: DaemonSettings =
            crate::tracked::decode(value).map(|(s, _)| s).map_err(|e| SettingsError { message: e.to_string() })?;
        settings.check()?;
        Ok(settings)
    }

    /// Every span within [`MAX_SECONDS`] (the daemon adds them to clocks) and an autoscaler
    /// period of at least a second (0 would spin); the first key out of bounds is named.
    pub fn check(&self) -> Result<(), SettingsError> {
        let a = &self.autoscaler;
        let b = &self.backoff;
        for (key, seconds) in [
            ("autoscaler.sync_period_seconds", a.sync_period_seconds),
            ("autoscaler.downscale_stabilization_seconds", a.downscale_stabilization_seconds),
            ("autoscaler.cpu_initialization_period_seconds", a.cpu_initialization_period_seconds),
            ("autoscaler.initial_readiness_delay_seconds", a.initial_readiness_delay_seconds),
            ("backoff.base_seconds", b.base_seconds),
            ("backoff.cap_seconds", b.cap_seconds),
            ("backoff.reset_seconds", b.reset_seconds),
        ] {
            if seconds > MAX_SECONDS as u64 {
                return Err(SettingsError { message: format!("{key}: {seconds} is more than {MAX_SECONDS} seconds") });
            }
        }
        if a.sync_period_seconds == 0 {
            return Err(SettingsError { message: "autoscaler.sync_period_seconds: must be at least 1".into() });
        }
        self.api.check()
    }

    /// Applies `CORACLE_*` overrides from `vars` (pass `std::env::vars()`). Other variables
    /// are ignored; a bad value is an error naming the variable.
    pub fn apply_env(&mut self, vars: impl Iterator<Item = (String, String)>) -> Result<(), SettingsError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("CORACLE_") else { continue };
            let bad = |what: &str| SettingsError { message: format!("{name}={value:?}: {what}") };
            let number = || value.parse::<u64>().map_err(|_| bad("expected a whole number"));
            match key {
                "DATA_DIR" => self.data_dir = value.clone().into(),
                "SOCKET" => self.socket = value.clone().into(),
                "SOCKET_GROUP" => self.socket_group = value.clone(),
                "RUN_DIR" => self.run_dir = value.clone().into(),
                "MANIFESTS" | "MANIFESTS_DIR" => self.manifests_dir = value.clone().into(),
                "LISTEN" => self.listen = Some(value.clone()).filter(|v| !v.is_empty()),
                "TOKEN_FILE" => {
                    self.token_file = Some(value.clone().into()).filter(|p: &PathBuf| !p.as_os_str().is_empty())
                }
                "NODE_NAME" => self.node_name = value.clone(),
                "CGROUP_SUBPATH" => self.cgroup_subpath = value.clone(),
                "HPA_SYNC_PERIOD_SECONDS" => self.autoscaler.sync_period_seconds = number()?,
                "HPA_DOWNSCALE_STABILIZATION_SECONDS" => self.autoscaler.downscale_stabilization_seconds = number()?,
                "RUNTIME" => {
                    self.runtime.kind = match value.as_str() {
                        "builtin" => RuntimeKind::Builtin,
                        "oci" => RuntimeKind::Oci,
                        _ => return Err(bad("expected builtin or oci")),
                    }
                }
                "OCI_BINARY" => self.runtime.oci_binary = value.clone(),
                "NETWORK" | "NETWORK_MODE" => {
                    self.network.mode = match value.as_str() {
                        "cni" => NetworkMode::Cni,
                        "host" => NetworkMode::Host,
                        "none" => NetworkMode::None,
                        _ => return Err(bad("expected cni, host or none")),
                    }
                }
                "POD_CIDR" => self.network.pod_cidr = value.clone(),
                "SERVICE_CIDR" => self.network.service_cidr = value.clone(),
                "NODE_PORT_RANGE" => self.network.node_port_range = value.clone(),
                "BRIDGE" => self.network.bridge = value.clone(),
                "CNI_BIN_DIRS" => self.network.cni_bin_dirs = std::env::split_paths(&value).collect(),
                "BACKOFF_BASE_SECONDS" => self.backoff.base_seconds = number()?,
                "BACKOFF_CAP_SECONDS" => self.backoff.cap_seconds = number()?,
                "BACKOFF_RESET_SECONDS" => self.backoff.reset_seconds = number()?,
                "LOG_MAX_SIZE_BYTES" => self.logs.max_size_bytes = number()?,
                "IMAGE_MAX_LAYER_BYTES" => self.images.max_layer_bytes = Some(number()?).filter(|&n| n > 0),
                "IMAGE_MAX_IMAGE_BYTES" => self.images.max_image_bytes = Some(number()?).filter(|&n| n > 0),
                "LOG_MAX_FILES" => {
                    self.logs.max_files = u32::try_from(number()?).map_err(|_| bad("expected a whole number"))?
                }
                // Other parts (the ctl, tests, `CORACLE_CONFIG` for the flag parser) own
                // the remaining `CORACLE_` names.
                _ => {}
            }
        }
        self.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn node_port_ranges_are_checked() {
        let range = |text: &str| NetworkSettings { node_port_range: text.into(), ..Default::default() }.node_ports();
        assert_eq!(range("40000-40007"), Ok(40000..=40007));
        assert_eq!(range("8080-8080"), Ok(8080..=8080));
        for bad in ["", "30000", "0-10", "1-65536", "-1-5", "40000-30000", "a-b", "99999999999-1"] {
            let e = range(bad).unwrap_err();
            assert!(e.starts_with(&format!("network.node_port_range {bad:?}: ")), "{e}");
        }
        let mut s = DaemonSettings::default();
        s.apply_env(vars(&[("CORACLE_NODE_PORT_RANGE", "31000-31099")])).unwrap();
        assert_eq!(s.network.node_ports(), Ok(31000..=31099));
        let yaml = DaemonSettings::from_yaml("network:\n  node_port_range: 32000-32010\n").unwrap();
        assert_eq!(yaml.network.node_ports(), Ok(32000..=32010));
    }

    #[test]
    fn every_key_has_a_default() {
        let s = DaemonSettings::from_yaml("").unwrap();
        assert_eq!(s.data_dir, Path::new("/var/lib/coracle"));
        assert_eq!(s.socket, Path::new("/run/coracle/coracle.sock"));
        assert_eq!(s.socket_group, "coracle");
        assert_eq!(s.run_dir, Path::new("/run/coracle"));
        assert_eq!(s.manifests_dir, Path::new("/etc/coracle/manifests"));
        assert_eq!((s.listen.as_deref(), s.token_file.as_deref()), (None, None));
        assert_eq!((s.runtime.kind, s.runtime.oci_binary.as_str()), (RuntimeKind::Builtin, "runc"));
        assert_eq!(s.runtime.seccomp_profile_root, Path::new("/etc/coracle/seccomp"));
        assert_eq!((s.backoff.base_seconds, s.backoff.cap_seconds, s.backoff.reset_seconds), (10, 300, 600));
        assert_eq!((s.logs.max_size_bytes, s.logs.max_files), (1 << 20, 3));
        assert_eq!(s.network.mode, NetworkMode::Cni);
        assert_eq!(s.network.pod_cidr, "10.88.0.0/16");
        assert_eq!(s.network.service_cidr, "10.96.0.0/16");
        assert_eq!(s.network.node_ports(), Ok(30000..=32767));
        assert_eq!(s.network.bridge, "coracle0");
        assert_eq!(s.network.cni_bin_dirs, [PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")]);
        assert_eq!(
            s.images,
            ImageSettings {
                free_space_percent: 80,
                max_image_bytes: None,
                max_layer_bytes: None,
                max_compression_ratio: 100
            }
        );
        assert!(!s.node_name.is_empty());
    }

    #[test]
    fn partial_files_keep_the_other_defaults() {
        let s = DaemonSettings::from_yaml("runtime: {kind: oci}\nnetwork:\n  mode: host\nbackoff: {cap_seconds: 60}\n")
            .unwrap();
        assert_eq!(s.runtime.kind, RuntimeKind::Oci);
        assert_eq!(s.runtime.oci_binary, "runc");
        assert_eq!(s.network.mode, NetworkMode::Host);
        assert_eq!((s.backoff.base_seconds, s.backoff.cap_seconds), (10, 60));
        let s = DaemonSettings::from_yaml("images: {max_layer_bytes: 1048576, max_compression_ratio: 0}\n").unwrap();
        assert_eq!((s.images.max_layer_bytes, s.images.max_image_bytes), (Some(1 << 20), None));
        assert_eq!((s.images.max_compression_ratio, s.images.free_space_percent), (0, 80));
        for bad in ["0", "101", "300", "-1"] {
            let e = DaemonSettings::from_yaml(&format!("images: {{free_space_percent: {bad}}}\n")).unwrap_err().message;
            assert!(e.starts_with("images.free_space_percent: "), "{bad}: {e}");
        }
        assert_eq!(
            DaemonSettings::from_yaml("images: {free_space_percent: 100}\n").unwrap().images.free_space_percent,
            100
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = DaemonSettings::from_yaml("data_dri: /x\n").unwrap_err().message;
        assert!(e.starts_with("unknown field `data_dri`"), "{e}");
        let e = DaemonSettings::from_yaml("runtime: {kindd: oci}\n").unwrap_err().message;
        assert!(e.starts_with("runtime: unknown field `kindd`"), "{e}");
        let e = DaemonSettings::from_yaml("network: {mode: bridge}\n").unwrap_err().message;
        assert!(e.starts_with("network.mode: unknown variant `bridge`"), "{e}");
    }

    #[test]
    fn spans_are_bounded_naming_the_key() {
        let e = DaemonSettings::from_yaml("backoff: {cap_seconds: 18446744073709551615}\n").unwrap_err().message;
        assert_eq!(e, "backoff.cap_seconds: 18446744073709551615 is more than 2147483647 seconds");
        let e = DaemonSettings::from_yaml("autoscaler: {sync_period_seconds: 0}\n").unwrap_err().message;
        assert_eq!(e, "autoscaler.sync_period_seconds: must be at least 1");
        let mut s = DaemonSettings::default();
        let e = s.apply_env(vars(&[("CORACLE_HPA_DOWNSCALE_STABILIZATION_SECONDS", "2147483648")])).unwrap_err();
        assert_eq!(e.message, "autoscaler.downscale_stabilization_seconds: 2147483648 is more than 2147483647 seconds");
        assert!(DaemonSettings::from_yaml("backoff: {reset_seconds: 2147483647}\n").is_ok());
    }

    #[test]
    fn api_bounds_are_checked_naming_the_key() {
        let e = DaemonSettings::from_yaml("api: {workers: 0}\n").unwrap_err().message;
        assert_eq!(e, "api.workers: 0 is not between 1 and 64");
        let e = DaemonSettings::from_yaml("api: {idle_timeout_seconds: 18446744073709551615}\n").unwrap_err().message;
        assert_eq!(e, "api.idle_timeout_seconds: 18446744073709551615 is not between 1 and 3600");
        let e = DaemonSettings::from_yaml("api: {header_timeout_seconds: 0}\n").unwrap_err().message;
        assert_eq!(e, "api.header_timeout_seconds: 0 is not between 1 and 300");
        let ok = DaemonSettings::from_yaml("api: {max_streams: 5, max_connections: 16}\n").unwrap();
        assert_eq!((ok.api.max_streams, ok.api.max_connections, ok.api.workers), (5, 16, 4));
    }

    #[test]
    fn load_tolerates_only_a_missing_default_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let e = DaemonSettings::load(Some(&missing)).unwrap_err().message;
        assert!(e.starts_with(&format!("reading {}", missing.display())), "{e}");
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "logs: {max_files: 5}\nbogus: 1\n").unwrap();
        let e = DaemonSettings::load(Some(&file)).unwrap_err().message;
        assert!(e.starts_with(&format!("{}: unknown field `bogus`", file.display())), "{e}");
        std::fs::write(&file, "logs: {max_files: 5}\n").unwrap();
        assert_eq!(DaemonSettings::load(Some(&file)).unwrap().logs.max_files, 5);
    }

    #[test]
    fn environment_overrides() {
        let mut s = DaemonSettings::default();
        s.apply_env(vars(&[
            ("CORACLE_DATA_DIR", "/tmp/d"),
            ("CORACLE_SOCKET", "/tmp/s.sock"),
            ("CORACLE_SOCKET_GROUP", "wheel"),
            ("CORACLE_MANIFESTS", "/tmp/m"),
            ("CORACLE_LISTEN", "127.0.0.1:6443"),
            ("CORACLE_TOKEN_FILE", "/tmp/t"),
            ("CORACLE_RUN_DIR", "/tmp/r"),
            ("CORACLE_RUNTIME", "oci"),
            ("CORACLE_NETWORK", "none"),
            ("CORACLE_BACKOFF_CAP_SECONDS", "30"),
            ("CORACLE_IMAGE_MAX_LAYER_BYTES", "4096"),
            ("CORACLE_IMAGE_MAX_IMAGE_BYTES", "0"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(s.data_dir, Path::new("/tmp/d"));
        assert_eq!(s.socket, Path::new("/tmp/s.sock"));
        assert_eq!(s.socket_group, "wheel");
        assert_eq!(s.manifests_dir, Path::new("/tmp/m"));
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1:6443"));
        assert_eq!(s.token_file.as_deref(), Some(Path::new("/tmp/t")));
        assert_eq!(s.run_dir, Path::new("/tmp/r"));
        assert_eq!((s.runtime.kind, s.network.mode, s.backoff.cap_seconds), (RuntimeKind::Oci, NetworkMode::None, 30));
        assert_eq!((s.images.max_layer_bytes, s.images.max_image_bytes), (Some(4096), None), "0: no cap");

        let e = s.apply_env(vars(&[("CORACLE_RUNTIME", "docker")])).unwrap_err().message;
        assert_eq!(e, "CORACLE_RUNTIME=\"docker\": expected builtin or oci");
        let e = s.apply_env(vars(&[("CORACLE_LOG_MAX_FILES", "many")])).unwrap_err().message;
        assert_eq!(e, "CORACLE_LOG_MAX_FILES=\"many\": expected a whole number");
    }
}
