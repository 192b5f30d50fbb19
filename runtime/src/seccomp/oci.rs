//! Resolved rules as the OCI runtime spec's `linux.seccomp`, for runc to compile with
//! libseccomp: the same rules the builtin runtime installs, for this architecture and its
//! compat one (libseccomp applies each name on the architectures that have the call).

use super::resolve::{Action, Op, Resolved, Rule};
use serde_json::{json, Value};

fn errno_of(action: Action) -> Option<u32> {
    match action {
        Action::Errno(n) | Action::Trace(n) => Some(n),
        _ => None,
    }
}

fn args(rule: &Rule) -> Vec<Value> {
    rule.args
        .iter()
        .map(|c| {
            let (op, value, value_two) = match c.op {
                Op::Ne => ("SCMP_CMP_NE", c.value, 0),
                Op::Lt => ("SCMP_CMP_LT", c.value, 0),
                Op::Le => ("SCMP_CMP_LE", c.value, 0),
                Op::Eq => ("SCMP_CMP_EQ", c.value, 0),
                Op::Ge => ("SCMP_CMP_GE", c.value, 0),
                Op::Gt => ("SCMP_CMP_GT", c.value, 0),
                Op::MaskedEq { mask } => ("SCMP_CMP_MASKED_EQ", mask, c.value),
            };
            json!({ "index": c.index, "value": value, "valueTwo": value_two, "op": op })
        })
        .collect()
}

fn entry(names: Vec<&str>, action: Action, args: Vec<Value>) -> Value {
    let mut e = json!({ "names": names, "action": action.name() });
    if let Some(n) = errno_of(action) {
        e["errnoRet"] = json!(n);
    }
    if !args.is_empty() {
        e["args"] = json!(args);
    }
    e
}

/// `linux.seccomp` for `resolved` (one set per architecture, this one first; all share the
/// profile's default): unconditional rules grouped by action, the others one entry each, in
/// the profile's order, each call once.
pub fn linux_seccomp(resolved: &[Resolved]) -> Value {
    let mut syscalls: Vec<Value> = Vec::new();
    let mut plain: Vec<(Action, Vec<&str>)> = Vec::new();
    let mut conditional: Vec<&Rule> = Vec::new();
    for rule in resolved.iter().flat_map(|r| &r.rules) {
        if rule.args.is_empty() {
            match plain.iter_mut().find(|(a, _)| *a == rule.action) {
                Some((_, names)) if !names.contains(&rule.syscall) => names.push(rule.syscall),
                Some(_) => {}
                None => plain.push((rule.action, vec![rule.syscall])),
            }
        } else if !conditional
            .iter()
            .any(|r| r.syscall == rule.syscall && r.action == rule.action && r.args == rule.args)
        {
            conditional.push(rule);
            syscalls.push(entry(vec![rule.syscall], rule.action, args(rule)));
        }
    }
    let mut all: Vec<Value> = plain.into_iter().map(|(action, names)| entry(names, action, Vec::new())).collect();
    all.extend(syscalls);
    let default_action = resolved.first().map(|r| r.default_action).unwrap_or(Action::Allow);
    let arches: Vec<&str> = resolved.iter().map(|r| r.arch.scmp).collect();
    let mut seccomp = json!({
        "defaultAction": default_action.name(),
        "architectures": arches,
        "syscalls": all,
    });
    if let Some(n) = errno_of(default_action) {
        seccomp["defaultErrnoRet"] = json!(n);
    }
    seccomp
}
