//! seccomp profiles in Docker's JSON format (what `Localhost` profiles are written in, and
//! what RuntimeDefault is expressed as): a default action and groups of system calls with an
//! action, argument comparisons and capability, architecture or kernel conditions.

use serde::{Deserialize, Deserializer, Serialize};

/// A whole profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// What happens to a call no group matches (`SCMP_ACT_ERRNO`, …).
    pub default_action: String,
    /// The errno of an `SCMP_ACT_ERRNO` default; EPERM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Accepted for compatibility; the filter is always for this machine's architecture.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// Accepted for compatibility, as `architectures`.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<serde_json::Value>,
    /// Filter flags (`SECCOMP_FILTER_FLAG_LOG`, …): none is supported, so any is refused.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The groups of system calls, tried in order.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallGroup>,
}

/// One group: these calls get `action` when the arguments compare as `args` say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallGroup {
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The old single-name form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Every comparison must hold (they are ANDed).
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCompare>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The group applies only when all of these hold.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Condition::is_empty")]
    pub includes: Condition,
    /// The group does not apply when any of these holds.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Condition::is_empty")]
    pub excludes: Condition,
}

/// A comparison of one system call argument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCompare {
    /// Which argument, 0 to 5.
    pub index: u32,
    pub value: u64,
    /// `SCMP_CMP_MASKED_EQ` only: what the masked argument must equal (`value` is the mask).
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// Capabilities, architectures and a kernel version a group depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// `CAP_SYS_ADMIN`, …
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// Go's architecture names: `amd64`, `arm64`, `arm`, `riscv64`, …
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    /// `major.minor`; includes only (Docker ignores it in excludes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Condition {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// An explicit `null` reads as the field's absence.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The largest profile file read (Docker's default is 17 KiB).
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// Why a seccomp profile file was refused.
#[derive(Debug)]
pub enum ProfileError {
    /// Not a profile in Docker's JSON format.
    Decode(serde_json::Error),
    /// A `flags` entry Coracle does not apply.
    UnsupportedFlag(String),
    /// The file could not be opened or read.
    Read { path: std::path::PathBuf, source: std::io::Error },
    /// The file is over [`MAX_PROFILE_BYTES`].
    TooLarge { path: std::path::PathBuf },
    /// The file at `path` is not a valid profile.
    Invalid { path: std::path::PathBuf, source: Box<ProfileError> },
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileError::Decode(e) => write!(f, "decoding seccomp profile: {e}"),
            ProfileError::UnsupportedFlag(flag) => write!(f, "seccomp profile flag {flag:?} is not supported"),
            ProfileError::Read { path, source } => write!(f, "cannot load seccomp profile {path:?}: {source}"),
            ProfileError::TooLarge { path } => {
                write!(f, "seccomp profile {path:?} is larger than {MAX_PROFILE_BYTES} bytes")
            }
            ProfileError::Invalid { path, source } => write!(f, "seccomp profile {path:?}: {source}"),
        }
    }
}

impl std::error::Error for ProfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProfileError::Decode(e) => Some(e),
            ProfileError::Read { source, .. } => Some(source),
            ProfileError::Invalid { source, .. } => Some(source.as_ref()),
            ProfileError::UnsupportedFlag(_) | ProfileError::TooLarge { .. } => None,
        }
    }
}

impl Profile {
    /// Parses a profile file's bytes, naming what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Profile, ProfileError> {
        let profile: Profile = serde_json::from_slice(bytes).map_err(ProfileError::Decode)?;
        if let Some(flag) = profile.flags.first() {
            return Err(ProfileError::UnsupportedFlag(flag.clone()));
        }
        Ok(profile)
    }

    /// Reads and parses the profile at `path`, refusing files over [`MAX_PROFILE_BYTES`].
    pub fn load(path: &std::path::Path) -> Result<Profile, ProfileError> {
        use std::io::Read;
        let read = |source| ProfileError::Read { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes).map_err(read)?;
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::TooLarge { path: path.to_path_buf() });
        }
        Profile::parse(&bytes).map_err(|e| ProfileError::Invalid { path: path.to_path_buf(), source: Box::new(e) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_format_reads_with_nulls_as_absent() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": null, "comment": "",
                 "includes": {}, "excludes": null},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
                {"name": "clone3", "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }"#;
        let p = Profile::parse(text.as_bytes()).unwrap();
        assert_eq!(p.default_errno_ret, Some(1));
        assert_eq!(p.syscalls[0].names, ["read", "write"]);
        assert_eq!(p.syscalls[1].args[0].value, 0x7E02_0000);
        assert_eq!(p.syscalls[1].excludes.caps, ["CAP_SYS_ADMIN"]);
        assert_eq!(p.syscalls[2].name.as_deref(), Some("clone3"));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let err = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("listenerPath"), "{err}");
        let err = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SECCOMP_FILTER_FLAG_LOG"), "{err}");
        assert!(Profile::parse(b"[1, 2]").is_err());
        assert!(Profile::parse(br#"{"syscalls": []}"#).unwrap_err().to_string().contains("defaultAction"));
    }

    #[test]
    fn a_missing_or_huge_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Profile::load(&dir.path().join("nope.json")).unwrap_err().to_string();
        assert!(err.starts_with("cannot load seccomp profile") && err.contains("nope.json"), "{err}");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_PROFILE_BYTES as usize + 1]).unwrap();
        assert!(Profile::load(&big).unwrap_err().to_string().contains("larger than"));
    }
}
