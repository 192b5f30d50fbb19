//! Runs one CNI plugin as the spec says: the command and container in `CNI_*` variables,
//! the network configuration on stdin, the result (or a `{code,msg}` error) on stdout.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `ADD`, `DEL` or `CHECK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CniCommand {
    Add,
    Del,
    Check,
}

impl CniCommand {
    fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
        }
    }
}

/// Which container and interface a call concerns.
#[derive(Clone, Debug)]
pub struct CniTarget<'a> {
    /// `CNI_CONTAINERID`: the pod uid.
    pub container_id: &'a str,
    /// `CNI_NETNS`: empty for a DEL of a namespace that no longer exists.
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
}

/// Finds a plugin binary by type in the search path.
pub fn find_plugin(dirs: &[PathBuf], plugin_type: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(plugin_type)).find(|p| p.is_file())
}

/// Runs the plugin named by `conf.type` and returns its parsed stdout (`null` when it
/// printed nothing, as DEL may).
pub fn invoke(dirs: &[PathBuf], command: CniCommand, target: &CniTarget, conf: &Value) -> Result<Value, String> {
    let plugin_type = conf.get("type").and_then(Value::as_str).ok_or("network configuration has no \"type\"")?;
    let plugin = find_plugin(dirs, plugin_type)
        .ok_or_else(|| format!("CNI plugin {plugin_type:?} not found in {}", join_paths(dirs)))?;
    let stdin = serde_json::to_vec(conf).map_err(|e| format!("encoding the {plugin_type} configuration: {e}"))?;
    let what = format!("CNI {} {plugin_type} for {}", command.as_str(), target.container_id);
    let mut child = Command::new(&plugin)
        .env("CNI_COMMAND", command.as_str())
        .env("CNI_CONTAINERID", target.container_id)
        .env("CNI_NETNS", target.netns)
        .env("CNI_IFNAME", target.ifname)
        .env("CNI_ARGS", "")
        .env("CNI_PATH", join_paths(dirs))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: starting {}: {e}", plugin.display()))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(&stdin).map_err(|e| format!("{what}: writing the configuration: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Value = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).map_err(|e| format!("{what}: unreadable result {stdout:?}: {e}"))?
    };
    if !out.status.success() {
        return Err(format!("{what} failed: {}", error_text(&parsed, &out.stderr)));
    }
    Ok(parsed)
}

/// The spec's error object (`msg`, `details`), else stderr.
fn error_text(result: &Value, stderr: &[u8]) -> String {
    let msg = result.get("msg").and_then(Value::as_str).unwrap_or("");
    let details = result.get("details").and_then(Value::as_str).unwrap_or("");
    match (msg, details) {
        ("", "") => String::from_utf8_lossy(stderr).trim().to_string(),
        (m, "") => m.to_string(),
        (m, d) => format!("{m}: {d}"),
    }
}

fn join_paths(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
}

/// The IPv4 address (without prefix) a result gives the interface `ifname` inside the
/// namespace, else the first address it lists.
pub fn result_ip(result: &Value, ifname: &str) -> Option<std::net::IpAddr> {
    let interfaces = result.get("interfaces").and_then(Value::as_array);
    let in_sandbox = |i: &Value| -> bool {
        let Some(idx) = i.get("interface").and_then(Value::as_u64) else { return false };
        interfaces.and_then(|l| l.get(idx as usize)).is_some_and(|itf| {
            itf.get("name").and_then(Value::as_str) == Some(ifname)
                && itf.get("sandbox").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
        })
    };
    let ips = result.get("ips").and_then(Value::as_array)?;
    let chosen = ips.iter().find(|i| in_sandbox(i)).or_else(|| ips.first())?;
    let address = chosen.get("address").and_then(Value::as_str)?;
    address.split('/').next()?.parse().ok()
}

/// Whether `dir` holds every plugin named.
pub fn plugins_present(dirs: &[PathBuf], names: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = names.iter().copied().filter(|n| find_plugin(dirs, n).is_none()).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} not in {}", missing.join(", "), join_paths(dirs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sandbox_interface_address_is_chosen() {
        let result = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "coracle0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/run/netns/x"}
            ],
            "ips": [{"address": "10.88.0.1/16", "interface": 0}, {"address": "10.88.0.7/16", "gateway": "10.88.0.1", "interface": 2}]
        });
        assert_eq!(result_ip(&result, "eth0"), Some("10.88.0.7".parse().unwrap()));
        assert_eq!(result_ip(&json!({"ips": [{"address": "10.1.0.3/24"}]}), "eth0"), Some("10.1.0.3".parse().unwrap()));
        assert_eq!(result_ip(&json!({}), "eth0"), None);
    }

    #[test]
    fn plugin_errors_carry_the_spec_message() {
        assert_eq!(
            error_text(&json!({"code": 11, "msg": "no IPs", "details": "range full"}), b""),
            "no IPs: range full"
        );
        assert_eq!(error_text(&Value::Null, b" boom \n"), "boom");
    }

    #[test]
    fn a_missing_plugin_is_named() {
        let dirs = [PathBuf::from("/nonexistent-cni")];
        let e = plugins_present(&dirs, &["bridge", "host-local"]).unwrap_err();
        assert_eq!(e, "bridge, host-local not in /nonexistent-cni");
        let target = CniTarget { container_id: "c", netns: "", ifname: "eth0" };
        let e = invoke(&dirs, CniCommand::Del, &target, &json!({"type": "bridge"})).unwrap_err();
        assert!(e.contains("\"bridge\" not found"), "{e}");
    }
}
