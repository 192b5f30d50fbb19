//! What a test daemon gets of its own, so that it never meets the daemon `./setup` installed
//! (running on the embedded defaults) nor another test's daemon, in this process or in
//! another one on the same machine.
//!
//! Board-wide, a daemon holds its pod bridge, its pod CIDR (addresses on that bridge), its
//! Service CIDR (a local route, and ClusterIP listeners bound with `SO_REUSEPORT`: two daemons
//! with the same block would share each other's listeners), its node port range (NodePort
//! listeners on every host address, `SO_REUSEPORT` too), its run dir and its cgroup
//! subpath. Data dir, socket and manifests are always given by flag. Every other one of these
//! settings still at its default — the installed daemon's value — is replaced by one of a
//! [`Slot`]: a number held with `flock(2)` for the daemon's life, machine-wide, that names
//! a bridge and two address blocks nobody else uses meanwhile. A value a test wrote in its
//! config is kept (the test chose it), unless it is the default: that one the installed
//! daemon may hold.

use coracle_config::settings::DaemonSettings;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// How many slots there are: bounds the blocks below and how many test daemons may live at
/// once on one machine.
const SLOTS: u32 = 2048;

/// Node ports a test daemon gets (a test uses at most four), and where the slots' start.
const NODE_PORTS_PER_SLOT: u32 = 5;
const NODE_PORTS_FROM: u32 = 19000;

/// Where slot locks live for root (tmpfs: they vanish with the boot), machine-wide.
const ROOT_LOCK_DIR: &str = "/run/lock/coracle-e2e";

/// Where the next search for a free slot starts in this process. Slots are taken round-robin,
/// so a slot (its bridge, its addresses) is not handed out again right after a test let it go,
/// while the host may still hold neighbour entries for the previous daemon's pods.
static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);

/// One test daemon's own bridge, pod CIDR and Service CIDR, held while the value lives.
#[derive(Debug)]
pub struct Slot {
    index: u32,
    _lock: File,
}

impl Slot {
    /// Takes the next free slot; panics when all [`SLOTS`] are held.
    pub fn claim() -> Slot {
        let dir = lock_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        // Processes start their search at different places (by pid), so test binaries run
        // side by side rarely probe each other's slots.
        let _ = CURSOR.compare_exchange(u32::MAX, std::process::id() % SLOTS, Ordering::Relaxed, Ordering::Relaxed);
        for _ in 0..SLOTS {
            let index = CURSOR.fetch_add(1, Ordering::Relaxed) % SLOTS;
            let path = dir.join(format!("slot-{index}.lock"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            if try_lock(&file) {
                return Slot { index, _lock: file };
            }
        }
        panic!("all {SLOTS} test daemon slots in {} are held", dir.display());
    }

    /// The slot's number.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The pod bridge: `coracle-t<N>`, at most 13 characters (an interface name has 15).
    pub fn bridge(&self) -> String {
        format!("coracle-t{}", self.index)
    }

    /// A /24 in 10.200.0.0/13, apart from the defaults (10.88.0.0/16, 10.96.0.0/16), the
    /// tests' own fixed blocks (10.231, 10.233, 10.234, 10.97) and the benchmarks' (10.244).
    pub fn pod_cidr(&self) -> String {
        format!("10.{}.{}.0/24", 200 + self.index / 256, self.index % 256)
    }

    /// A /24 in 10.208.0.0/13.
    pub fn service_cidr(&self) -> String {
        format!("10.{}.{}.0/24", 208 + self.index / 256, self.index % 256)
    }

    /// [`NODE_PORTS_PER_SLOT`] node ports in 19000–29239: below the default range (the
    /// installed daemon's) and below the kernel's ephemeral ports (32768 up), where outgoing
    /// connections could hold them.
    pub fn node_ports(&self) -> std::ops::RangeInclusive<u32> {
        let first = NODE_PORTS_FROM + self.index * NODE_PORTS_PER_SLOT;
        first..=first + NODE_PORTS_PER_SLOT - 1
    }

    /// [`Slot::node_ports`] as `network.node_port_range` takes it: `FIRST-LAST`.
    pub fn node_port_range(&self) -> String {
        format!("{}-{}", self.node_ports().start(), self.node_ports().end())
    }

    /// The `CORACLE_*` variables that give a daemon reading `config_yaml` this slot's bridge
    /// and blocks, `run_dir` and `cgroup_subpath` wherever its settings still hold the
    /// defaults. A config that does not parse gets none: the daemon refuses it anyway.
    pub fn overrides(&self, config_yaml: &str, run_dir: &Path, cgroup_subpath: &str) -> Vec<(&'static str, String)> {
        let Ok(settings) = DaemonSettings::from_yaml(config_yaml) else { return Vec::new() };
        let defaults = DaemonSettings::default();
        let mut vars = Vec::new();
        let mut replace = |var: &'static str, default: bool, ours: String| {
            if default {
                vars.push((var, ours));
            }
        };
        replace("CORACLE_BRIDGE", settings.network.bridge == defaults.network.bridge, self.bridge());
        replace("CORACLE_POD_CIDR", settings.network.pod_cidr == defaults.network.pod_cidr, self.pod_cidr());
        replace(
            "CORACLE_SERVICE_CIDR",
            settings.network.service_cidr == defaults.network.service_cidr,
            self.service_cidr(),
        );
        replace(
            "CORACLE_NODE_PORT_RANGE",
            settings.network.node_port_range == defaults.network.node_port_range,
            self.node_port_range(),
        );
        replace("CORACLE_RUN_DIR", settings.run_dir == defaults.run_dir, run_dir.display().to_string());
        replace("CORACLE_CGROUP_SUBPATH", settings.cgroup_subpath == defaults.cgroup_subpath, cgroup_subpath.into());
        vars
    }

    /// Removes what a daemon on this slot left on the host: the Service CIDR's local route,
    /// and, when it wired pods, the bridge and its masquerade chain. Call once the daemon and
    /// its pods are gone; the slot is still held, so nobody else uses these names meanwhile.
    pub fn clean_up(&self) {
        quiet(Command::new("ip").args(["route", "del", "local", &self.service_cidr(), "dev", "lo", "table", "local"]));
        let bridge = self.bridge();
        if !Path::new("/sys/class/net").join(&bridge).exists() {
            return;
        }
        quiet(Command::new("ip").args(["link", "del", &bridge]));
        // The daemon's masquerade (daemon/src/net/masquerade.rs): a POSTROUTING jump into
        // CORACLE-MASQ-<bridge>, as install.sh --uninstall removes it.
        let chain = format!("CORACLE-MASQ-{bridge}");
        let listed = Command::new("iptables").args(["-w", "-t", "nat", "-S", "POSTROUTING"]).output();
        let rules = listed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        for rule in rules.lines().filter(|r| r.ends_with(&format!("-j {chain}"))) {
            let Some(spec) = rule.strip_prefix("-A ") else { continue };
            let mut args = vec!["-w".to_string(), "-t".into(), "nat".into(), "-D".into()];
            args.extend(split_rule(spec));
            quiet(Command::new("iptables").args(&args));
        }
        quiet(Command::new("iptables").args(["-w", "-t", "nat", "-F", &chain]));
        quiet(Command::new("iptables").args(["-w", "-t", "nat", "-X", &chain]));
    }
}

/// Runs a clean-up command, ignoring its output and failure (there may be nothing to remove).
fn quiet(cmd: &mut Command) {
    let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// An `iptables -S` rule split into arguments: words, with `"…"` (the comment) as one.
fn split_rule(rule: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut escaped, mut any) = (false, false, false);
    for c in rule.chars() {
        match c {
            _ if escaped => {
                word.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    args.push(std::mem::take(&mut word));
                }
                any = false;
            }
            _ => word.push(c),
        }
    }
    if any || !word.is_empty() {
        args.push(word);
    }
    args
}

/// Root's slots are machine-wide; a user's are their own (without root a daemon can make no
/// bridge or route, so there is nothing to share with root's).
fn lock_dir() -> PathBuf {
    if crate::is_root() {
        PathBuf::from(ROOT_LOCK_DIR)
    } else {
        // SAFETY: getuid has no preconditions and cannot fail.
        std::env::temp_dir().join(format!("coracle-e2e-slots-{}", unsafe { libc::getuid() }))
    }
}

/// An exclusive `flock(2)` on `file` without waiting: false when another holder has it.
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a file descriptor we own for the duration of the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_apart_from_the_defaults() {
        let a = Slot::claim();
        let b = Slot::claim();
        assert_ne!(a.index(), b.index());
        assert_ne!(a.bridge(), b.bridge());
        assert_ne!(a.pod_cidr(), b.pod_cidr());
        assert_ne!(a.service_cidr(), b.service_cidr());
        let defaults = DaemonSettings::default();
        for slot in [&a, &b] {
            assert!(slot.bridge().len() <= 15, "{}", slot.bridge());
            assert_ne!(slot.bridge(), defaults.network.bridge);
            assert!(!slot.pod_cidr().starts_with("10.88.") && !slot.service_cidr().starts_with("10.96."));
        }
        // The highest slot still names valid blocks.
        let last = Slot { index: SLOTS - 1, _lock: File::open("/dev/null").unwrap() };
        assert_eq!((last.pod_cidr().as_str(), last.service_cidr().as_str()), ("10.207.255.0/24", "10.215.255.0/24"));
        // Node ports: apart from each other, below the default range and the ephemeral ports.
        assert_eq!(last.node_port_range(), "29235-29239");
        let first = Slot { index: 0, _lock: File::open("/dev/null").unwrap() };
        assert_eq!(first.node_port_range(), "19000-19004");
        assert!(a.node_ports().end() < b.node_ports().start() || b.node_ports().end() < a.node_ports().start());
    }

    #[test]
    fn a_held_slot_is_not_handed_out_again() {
        let held: Vec<Slot> = (0..8).map(|_| Slot::claim()).collect();
        let mut seen: Vec<u32> = held.iter().map(Slot::index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), held.len());
    }

    #[test]
    fn only_defaults_are_replaced() {
        let slot = Slot::claim();
        let run = Path::new("/tmp/x/run");
        let all = slot.overrides("", run, "coracle-test-1");
        let names: Vec<&str> = all.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "CORACLE_BRIDGE",
                "CORACLE_POD_CIDR",
                "CORACLE_SERVICE_CIDR",
                "CORACLE_NODE_PORT_RANGE",
                "CORACLE_RUN_DIR",
                "CORACLE_CGROUP_SUBPATH"
            ]
        );
        assert!(all.contains(&("CORACLE_NODE_PORT_RANGE", slot.node_port_range())));
        assert!(all.contains(&("CORACLE_SERVICE_CIDR", slot.service_cidr())));
        // A test's own bridge and pod block stay; the default Service block it left does not,
        // nor one it wrote out as the default.
        let own = slot.overrides("network:\n  bridge: corae2e0\n  pod_cidr: 10.233.0.0/24\n", run, "c");
        let names: Vec<&str> = own.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            ["CORACLE_SERVICE_CIDR", "CORACLE_NODE_PORT_RANGE", "CORACLE_RUN_DIR", "CORACLE_CGROUP_SUBPATH"]
        );
        let ports = slot.overrides("network:\n  node_port_range: 31000-31010\n", run, "c");
        assert!(ports.iter().all(|(k, _)| *k != "CORACLE_NODE_PORT_RANGE"), "a test's own range stays");
        let spelled = slot.overrides("network:\n  bridge: coracle0\n", run, "c");
        assert_eq!(spelled[0], ("CORACLE_BRIDGE", slot.bridge()));
        assert!(slot.overrides("network: {mode: bridge}\n", run, "c").is_empty());
    }

    #[test]
    fn iptables_rules_split_with_their_quoted_comment() {
        let rule =
            r#"POSTROUTING -s 10.200.0.0/24 -m comment --comment "coracle coracle-t0" -j CORACLE-MASQ-coracle-t0"#;
        assert_eq!(
            split_rule(rule),
            [
                "POSTROUTING",
                "-s",
                "10.200.0.0/24",
                "-m",
                "comment",
                "--comment",
                "coracle coracle-t0",
                "-j",
                "CORACLE-MASQ-coracle-t0"
            ]
        );
        assert_eq!(split_rule(r#"X --comment "a \"b\"" -j Y"#), ["X", "--comment", "a \"b\"", "-j", "Y"]);
    }
}
