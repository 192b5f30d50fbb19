//! Masquerade for the pod network: one iptables chain per bridge, installed once.
//!
//! The CNI bridge plugin can masquerade by itself (`ipMasq`), but it does so with a chain and
//! six iptables calls per pod, each of which reloads the whole nat table: that made network
//! setup the largest part of a pod's start, and a pod lost in a power cut left its chain
//! behind. The pod CIDR is one range, so one rule set covers every pod:
//!
//! ```text
//! -A POSTROUTING -s <pod CIDR> -m comment --comment "coracle <bridge>" -j CORACLE-MASQ-<bridge>
//! -A CORACLE-MASQ-<bridge> -d <pod CIDR> -j RETURN        (pod to pod: keep the source)
//! -A CORACLE-MASQ-<bridge> -d 224.0.0.0/4 -j RETURN       (multicast, as CNI does)
//! -A CORACLE-MASQ-<bridge> -j MASQUERADE
//! ```
//!
//! It is left in place when the daemon stops (running pods keep their way out);
//! `install.sh --uninstall` removes it.

use super::NetError;
use std::process::{Command, Output};

/// The chain's name prefix; `install.sh --uninstall` removes every chain carrying it.
pub const CHAIN_PREFIX: &str = "CORACLE-MASQ-";

/// The chain masquerading the pods of `bridge` (iptables allows 28 characters; bridge
/// names have at most 15).
pub fn chain_name(bridge: &str) -> String {
    format!("{CHAIN_PREFIX}{bridge}")
}

/// The rules, as iptables arguments after `-t nat`: the chain's own, then the jump.
fn rules(bridge: &str, pod_cidr: &str) -> Vec<Vec<String>> {
    let chain = chain_name(bridge);
    let rule = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    vec![
        rule(&[&chain, "-d", pod_cidr, "-j", "RETURN"]),
        rule(&[&chain, "-d", "224.0.0.0/4", "-j", "RETURN"]),
        rule(&[&chain, "-j", "MASQUERADE"]),
        rule(&[
            "POSTROUTING",
            "-s",
            pod_cidr,
            "-m",
            "comment",
            "--comment",
            &format!("coracle {bridge}"),
            "-j",
            &chain,
        ]),
    ]
}

/// Makes sure the pods of `bridge` (addresses in `pod_cidr`) are masqueraded; idempotent,
/// so a restarted daemon checks rather than appends.
pub fn ensure(bridge: &str, pod_cidr: &str) -> Result<(), NetError> {
    let chain = chain_name(bridge);
    // `-N` fails when the chain exists, which is the usual case after a restart.
    if !nat(&["-S"], std::slice::from_ref(&chain))?.status.success() {
        succeeded(&["-N"], &[chain])?;
    }
    for rule in rules(bridge, pod_cidr) {
        if !nat(&["-C"], &rule)?.status.success() {
            succeeded(&["-A"], &rule)?;
        }
    }
    Ok(())
}

/// Removes what [`ensure`] installed for `bridge` (tests, and a bridge given up for good);
/// rules already gone are not an error.
pub fn remove(bridge: &str, pod_cidr: &str) {
    for rule in rules(bridge, pod_cidr).iter().rev() {
        let _ = nat(&["-D"], rule);
    }
    let _ = nat(&["-X"], &[chain_name(bridge)]);
}

/// Runs `iptables -w -t nat OP… ARGS…`; Err only when iptables cannot be run at all.
fn nat(op: &[&str], args: &[String]) -> Result<Output, NetError> {
    Command::new("iptables")
        // Wait for the xtables lock instead of failing beside another iptables user.
        .args(["-w", "-t", "nat"])
        .args(op)
        .args(args)
        .output()
        .map_err(|source| NetError::Spawn { command: "iptables (needed to masquerade pod traffic)".into(), source })
}

/// As [`nat`], and a failure names the command and iptables' own message.
fn succeeded(op: &[&str], args: &[String]) -> Result<(), NetError> {
    let out = nat(op, args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::CommandFailed(format!(
            "iptables -t nat {} {}: {}",
            op.join(" "),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_keep_pod_to_pod_and_multicast_traffic_unmasqueraded() {
        let r = rules("coracle0", "10.88.0.0/16");
        assert_eq!(r[0].join(" "), "CORACLE-MASQ-coracle0 -d 10.88.0.0/16 -j RETURN");
        assert_eq!(r[1].join(" "), "CORACLE-MASQ-coracle0 -d 224.0.0.0/4 -j RETURN");
        assert_eq!(r[2].join(" "), "CORACLE-MASQ-coracle0 -j MASQUERADE");
        assert_eq!(r[3][..3].join(" "), "POSTROUTING -s 10.88.0.0/16");
        assert_eq!(r[3].last().map(String::as_str), Some("CORACLE-MASQ-coracle0"));
        assert!(chain_name("123456789012345").len() <= 28, "iptables' chain name limit");
    }

    /// Live: installs the rules twice in the host's nat table and finds each rule once.
    #[test]
    fn ensure_is_idempotent() {
        if !nix::unistd::geteuid().is_root() || Command::new("iptables").arg("--version").output().is_err() {
            eprintln!("skipped: needs root and iptables");
            return;
        }
        let bridge = format!("cmq{}", std::process::id() % 100_000);
        let cidr = "10.251.0.0/16";
        ensure(&bridge, cidr).unwrap();
        ensure(&bridge, cidr).unwrap();
        let listing = Command::new("iptables").args(["-w", "-t", "nat", "-S"]).output().unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        let chain = chain_name(&bridge);
        let jumps = listing.lines().filter(|l| l.starts_with("-A POSTROUTING") && l.ends_with(&chain)).count();
        let masq = listing.lines().filter(|l| l.starts_with(&format!("-A {chain} -j MASQUERADE"))).count();
        // Remove before asserting so a failure leaves nothing behind.
        remove(&bridge, cidr);
        assert_eq!((jumps, masq), (1, 1), "{listing}");
    }
}
