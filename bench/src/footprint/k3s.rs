//! k3s's published figures, printed beside ours. k3s publishes no figure for idle disk writes
//! or for `kubectl get pods` latency; those rows say so.

/// Binary size. Source: k3s README, "all in a binary less than 100 MB"
/// (https://github.com/k3s-io/k3s/blob/master/README.md).
pub const BINARY: &str = "< 100 MB (one binary)";

/// Minimum RAM of a k3s agent (kubelet + containerd, no pods of its own): 275 M on an Intel
/// 8375C, 268 M on a Raspberry Pi 4B. Source: "Resource Profiling", K3s v1.26.5
/// (https://docs.k3s.io/reference/resource-profiling).
pub const AGENT_RAM: &str = "268-275 MB (agent min)";

/// Minimum RAM of a k3s server running a workload, with Kine/SQLite: 1596 M (Intel 8375C),
/// 1588 M (Pi 4B). Source: https://docs.k3s.io/reference/resource-profiling.
pub const SERVER_WITH_WORKLOAD_RAM: &str = "1588-1596 MB (server+workload)";

/// Where the figures come from, for the table's notes.
pub const SOURCES: &str =
    "k3s: README (binary), docs.k3s.io/reference/resource-profiling (RAM, K3s v1.26.5, Pi 4B and Intel 8375C)";

/// Printed where k3s publishes nothing comparable.
pub const NOT_PUBLISHED: &str = "not published";
