//! A profile made concrete for one container: the groups whose conditions hold for its
//! capabilities, this machine's architecture and this kernel, one rule per system call the
//! filtered architecture has (this one or its compat one), with actions and comparisons checked.

use super::profile::{ArgCompare, Condition, Profile};
use super::syscalls::{self, Arch};

/// What the kernel does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Errno(u32),
    KillThread,
    KillProcess,
    Trap,
    Log,
    Trace(u32),
}

impl Action {
    /// The action named `name` (`SCMP_ACT_ERRNO`), with `errno` for ERRNO and TRACE.
    fn parse(name: &str, errno: Option<u32>) -> Result<Action, String> {
        // Only 16 bits of an errno reach the kernel's return value.
        let data = match errno {
            Some(n) if n > 0xffff => return Err(format!("errnoRet {n}: must be at most 65535")),
            Some(n) => n,
            None => libc::EPERM as u32,
        };
        Ok(match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => Action::Errno(data),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_TRACE" => Action::Trace(data),
            "SCMP_ACT_NOTIFY" => return Err("action SCMP_ACT_NOTIFY needs a listener, which Coracle has not".into()),
            other => return Err(format!("unknown action {other:?}")),
        })
    }

    /// The name Docker's format and the OCI spec use.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "SCMP_ACT_ALLOW",
            Action::Errno(_) => "SCMP_ACT_ERRNO",
            Action::KillThread => "SCMP_ACT_KILL_THREAD",
            Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Action::Trap => "SCMP_ACT_TRAP",
            Action::Log => "SCMP_ACT_LOG",
            Action::Trace(_) => "SCMP_ACT_TRACE",
        }
    }
}

/// How an argument is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
    },
}

/// One argument comparison: `args[index] op value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compare {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

impl Compare {
    fn parse(arg: &ArgCompare) -> Result<Compare, String> {
        let index = u8::try_from(arg.index)
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| format!("argument index {}: a system call has arguments 0 to 5", arg.index))?;
        let (op, value) = match arg.op.as_str() {
            "SCMP_CMP_NE" => (Op::Ne, arg.value),
            "SCMP_CMP_LT" => (Op::Lt, arg.value),
            "SCMP_CMP_LE" => (Op::Le, arg.value),
            "SCMP_CMP_EQ" => (Op::Eq, arg.value),
            "SCMP_CMP_GE" => (Op::Ge, arg.value),
            "SCMP_CMP_GT" => (Op::Gt, arg.value),
            "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq { mask: arg.value }, arg.value_two),
            other => return Err(format!("unknown comparison {other:?}")),
        };
        Ok(Compare { index, op, value })
    }
}

/// One system call's rule: `action` when every comparison holds (always, without any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub syscall: &'static str,
    pub number: u32,
    pub action: Action,
    pub args: Vec<Compare>,
}

/// A profile resolved for one container on this machine, for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub arch: &'static Arch,
    pub default_action: Action,
    pub rules: Vec<Rule>,
}

/// What a profile's conditions are judged against.
#[derive(Debug, Clone)]
pub struct Context {
    /// The container's capabilities, `CAP_`-prefixed.
    pub caps: Vec<String>,
    /// This machine's architecture in Go's naming (`amd64`, `arm64`, `arm`, `riscv64`): as in
    /// Docker, the conditions of the compat architecture's rules are judged by it too.
    pub arch: &'static str,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

/// `"5.15.0-91-generic"` → (5, 15).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Context {
    /// The context of a container with capabilities `caps` on this machine.
    pub fn here(caps: Vec<String>) -> Context {
        let release =
            nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        Context { caps, arch: syscalls::GO_ARCH, kernel: kernel_version(&release).unwrap_or((0, 0)) }
    }

    fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    fn includes(&self, c: &Condition) -> Result<bool, String> {
        if let Some(min) = &c.min_kernel {
            let want = kernel_version(min).ok_or_else(|| format!("minKernel {min:?}: expected major.minor"))?;
            if self.kernel < want {
                return Ok(false);
            }
        }
        Ok(c.caps.iter().all(|cap| self.has_cap(cap))
            && (c.arches.is_empty() || c.arches.iter().any(|a| a == self.arch)))
    }

    fn excludes(&self, c: &Condition) -> bool {
        c.caps.iter().any(|cap| self.has_cap(cap)) || c.arches.iter().any(|a| a == self.arch)
    }
}

/// The rules `profile` gives a container in `context` on `arch`; errors name the group at fault.
pub fn resolve(profile: &Profile, context: &Context, arch: &'static Arch) -> Result<Resolved, String> {
    let default_action =
        Action::parse(&profile.default_action, profile.default_errno_ret).map_err(|e| format!("defaultAction: {e}"))?;
    let mut rules = Vec::new();
    for (i, group) in profile.syscalls.iter().enumerate() {
        let at = |e: String| format!("syscalls[{i}]: {e}");
        let action = Action::parse(&group.action, group.errno_ret).map_err(at)?;
        let args = group.args.iter().map(Compare::parse).collect::<Result<Vec<_>, _>>().map_err(at)?;
        if !context.includes(&group.includes).map_err(at)? || context.excludes(&group.excludes) {
            continue;
        }
        for name in group.names.iter().chain(&group.name) {
            // A call this architecture lacks cannot be made here: nothing to filter (as runc).
            let Some((syscall, number)) = arch.lookup(name) else { continue };
            rules.push(Rule { syscall, number, action, args: args.clone() });
        }
    }
    Ok(Resolved { arch, default_action, rules })
}

#[cfg(test)]
mod tests {
    use super::super::profile::SyscallGroup;
    use super::*;

    fn context(caps: &[&str]) -> Context {
        Context { caps: caps.iter().map(|c| c.to_string()).collect(), arch: syscalls::GO_ARCH, kernel: (6, 1) }
    }

    fn group(names: &[&str], action: &str) -> SyscallGroup {
        SyscallGroup {
            names: names.iter().map(|n| n.to_string()).collect(),
            action: action.into(),
            ..Default::default()
        }
    }

    #[test]
    fn conditions_pick_the_groups_for_this_container() {
        let mut admin = group(&["mount"], "SCMP_ACT_ALLOW");
        admin.includes.caps = vec!["CAP_SYS_ADMIN".into()];
        let mut not_admin = group(&["clone3"], "SCMP_ACT_ERRNO");
        not_admin.errno_ret = Some(38);
        not_admin.excludes.caps = vec!["CAP_SYS_ADMIN".into()];
        let mut future = group(&["getpid"], "SCMP_ACT_ALLOW");
        future.includes.min_kernel = Some("9.0".into());
        let mut elsewhere = group(&["getppid"], "SCMP_ACT_ALLOW");
        elsewhere.includes.arches = vec!["s390x".into()];
        let profile = Profile {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls: vec![group(&["read", "no_such_call"], "SCMP_ACT_ALLOW"), admin, not_admin, future, elsewhere],
            ..Default::default()
        };
        let plain = resolve(&profile, &context(&["CAP_CHOWN"]), syscalls::NATIVE).unwrap();
        assert_eq!(plain.default_action, Action::Errno(1));
        let names: Vec<_> = plain.rules.iter().map(|r| (r.syscall, r.action)).collect();
        assert_eq!(names, [("read", Action::Allow), ("clone3", Action::Errno(38))]);
        let admin = resolve(&profile, &context(&["cap_sys_admin"]), syscalls::NATIVE).unwrap();
        let names: Vec<_> = admin.rules.iter().map(|r| r.syscall).collect();
        assert_eq!(names, ["read", "mount"]);
    }

    #[test]
    fn bad_actions_and_comparisons_name_their_group() {
        let mut bad = group(&["read"], "SCMP_ACT_ALLOW");
        bad.args = vec![ArgCompare { index: 6, value: 0, value_two: 0, op: "SCMP_CMP_EQ".into() }];
        let profile = Profile { default_action: "SCMP_ACT_ALLOW".into(), syscalls: vec![bad], ..Default::default() };
        assert_eq!(
            resolve(&profile, &context(&[]), syscalls::NATIVE).unwrap_err(),
            "syscalls[0]: argument index 6: a system call has arguments 0 to 5"
        );
        let profile = Profile { default_action: "SCMP_ACT_NOTIFY".into(), ..Default::default() };
        assert!(resolve(&profile, &context(&[]), syscalls::NATIVE)
            .unwrap_err()
            .starts_with("defaultAction: action SCMP_ACT_NOTIFY"));
        let mut errno = group(&["read"], "SCMP_ACT_ERRNO");
        errno.errno_ret = Some(70000);
        let profile = Profile { default_action: "SCMP_ACT_ALLOW".into(), syscalls: vec![errno], ..Default::default() };
        assert!(resolve(&profile, &context(&[]), syscalls::NATIVE).unwrap_err().contains("errnoRet 70000"));
    }

    #[test]
    fn masked_eq_takes_the_mask_from_value_and_the_result_from_value_two() {
        let arg = ArgCompare { index: 1, value: 0xff, value_two: 3, op: "SCMP_CMP_MASKED_EQ".into() };
        assert_eq!(Compare::parse(&arg).unwrap(), Compare { index: 1, op: Op::MaskedEq { mask: 0xff }, value: 3 });
        assert_eq!(kernel_version("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("x"), None);
    }
}
