//! The device whitelist: a container may open only the devices its rules allow (runc's
//! default list unless `privileged: true`), enforced in the container's own cgroup — cgroup
//! v1's `devices.deny`/`devices.allow`, or a device eBPF program on cgroup v2.

pub mod ebpf;
pub mod rules;

pub use rules::{allows_everything, Access, DeviceKind, DeviceRule};

use std::io::Write;
use std::path::Path;

/// How a cgroup directory can enforce device rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcer {
    /// A v1 directory of the devices hierarchy.
    V1,
    /// A cgroup2 directory: a device program attached to it.
    V2,
}

/// How `dir` enforces device rules, if it can: a v1 devices directory has `devices.allow`,
/// any cgroup2 directory `cgroup.controllers` (device programs need no controller).
pub fn enforcer(dir: &Path) -> Option<Enforcer> {
    if dir.join("devices.allow").exists() {
        Some(Enforcer::V1)
    } else if dir.join("cgroup.controllers").exists() {
        Some(Enforcer::V2)
    } else {
        None
    }
}

/// Writes `rules` into a v1 devices cgroup: deny everything, then allow each rule.
pub fn write_v1(rules: &[DeviceRule], dir: &Path) -> Result<(), String> {
    let write = |file: &str, line: &str| {
        let path = dir.join(file);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| format!("write {line:?} to {}: {e}", path.display()))
    };
    write("devices.deny", "a")?;
    for rule in rules {
        write("devices.allow", &rule.v1_line())?;
    }
    Ok(())
}

/// Restricts the cgroups at `dirs` (one container's, one per hierarchy) to `rules`. Fails
/// when the rules restrict anything and no directory can enforce them: a container must not
/// start with every device open because the devices controller is missing.
pub fn enforce(rules: &[DeviceRule], dirs: &[impl AsRef<Path>]) -> Result<(), String> {
    if allows_everything(rules) {
        return Ok(());
    }
    let mut enforced = false;
    for dir in dirs {
        let dir = dir.as_ref();
        match enforcer(dir) {
            Some(Enforcer::V1) => write_v1(rules, dir)?,
            Some(Enforcer::V2) => ebpf::attach(rules, dir)?,
            None => continue,
        }
        enforced = true;
    }
    if !enforced {
        let list: Vec<String> = dirs.iter().map(|d| d.as_ref().display().to_string()).collect();
        return Err(format!(
            "cannot enforce the device whitelist: none of the container's cgroups [{}] is a v1 devices cgroup or a cgroup2 directory",
            list.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
