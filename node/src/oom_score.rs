//! The `oom_score_adj` each container's processes get, as the kubelet computes it
//! (`pkg/kubelet/qos/policy.go`): under memory pressure the kernel kills BestEffort pods
//! first, then Burstable ones by how little memory they requested, Guaranteed ones last.

use super::status::qos_class;
use coracle_config::core::{Container, Pod};

/// A Guaranteed pod's containers: killed last (the daemon itself runs at its own level).
pub const GUARANTEED: i32 = -997;
/// A BestEffort pod's containers: killed first.
pub const BEST_EFFORT: i32 = 1000;

/// `oom_score_adj` for `container` of `pod` on a node with `node_memory` bytes: Guaranteed
/// -997, BestEffort 1000, Burstable `1000 - 1000 * memory request / node memory` kept
/// within [3, 999], so a Burstable container always ranks between the other two classes.
pub fn oom_score_adj(pod: &Pod, container: &Container, node_memory: u64) -> i32 {
    match qos_class(pod) {
        "Guaranteed" => return GUARANTEED,
        "BestEffort" => return BEST_EFFORT,
        _ => {}
    }
    let request = container.resources.requests.get("memory").map_or(0, |q| q.value().max(0) as u128);
    let node = u128::from(node_memory.max(1));
    let adj = 1000 - (1000 * request / node).min(1000) as i32;
    adj.clamp(1000 + GUARANTEED, BEST_EFFORT - 1)
}

/// The node's memory (MemTotal of /proc/meminfo) in bytes.
pub fn node_memory() -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    parse_mem_total(&text).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "/proc/meminfo has no readable MemTotal line")
    })
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::Quantity;

    const GIB: u64 = 1 << 30;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let q = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.parse::<Quantity>().unwrap())).collect();
        let mut c = Container { name: "app".into(), image: "busybox".into(), ..Default::default() };
        c.resources.requests = q(requests);
        c.resources.limits = q(limits);
        c
    }

    fn pod_of(c: &Container) -> Pod {
        let mut p = Pod::default();
        p.spec.containers = vec![c.clone()];
        p
    }

    #[test]
    fn each_qos_class_gets_the_kubelets_value() {
        let best_effort = container(&[], &[]);
        assert_eq!(oom_score_adj(&pod_of(&best_effort), &best_effort, GIB), 1000);
        let guaranteed = container(&[], &[("cpu", "1"), ("memory", "256Mi")]);
        assert_eq!(oom_score_adj(&pod_of(&guaranteed), &guaranteed, GIB), -997);
        let quarter = container(&[("memory", "256Mi")], &[]);
        assert_eq!(oom_score_adj(&pod_of(&quarter), &quarter, GIB), 750);
    }

    #[test]
    fn burstable_stays_between_guaranteed_and_best_effort() {
        let cpu_only = container(&[("cpu", "100m")], &[]);
        assert_eq!(oom_score_adj(&pod_of(&cpu_only), &cpu_only, GIB), 999, "no memory request is not BestEffort");
        let all = container(&[("memory", "1Gi")], &[("memory", "2Gi")]);
        assert_eq!(oom_score_adj(&pod_of(&all), &all, GIB), 3);
        let more = container(&[("memory", "4Gi")], &[]);
        assert_eq!(oom_score_adj(&pod_of(&more), &more, GIB), 3, "a request above the node's memory");
        // Each container of a Burstable pod by its own request.
        let mut pod = pod_of(&all);
        let small = container(&[], &[]);
        pod.spec.containers.push(small.clone());
        assert_eq!(oom_score_adj(&pod, &small, GIB), 999);
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        assert_eq!(parse_mem_total("MemTotal:        2000 kB\nMemFree: 1 kB\n"), Some(2000 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
        assert!(node_memory().unwrap() > 0);
    }
}
