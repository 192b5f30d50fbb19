//! Resource limits of one cgroup and Kubernetes' conversions from millicores.

use super::CgroupError;

/// The CFS period every quota is expressed against, in microseconds (Kubernetes' default).
pub const CPU_PERIOD_US: i64 = 100_000;
/// The smallest quota the kernel and Kubernetes accept, in microseconds.
const MIN_QUOTA_US: i64 = 1_000;
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;

/// What one cgroup may use. `None` means unlimited (or the kernel's default weight), so
/// `update` with a `None` lifts a limit set earlier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes (`limits.memory`).
    pub memory_bytes: Option<i64>,
    /// CPU ceiling in millicores (`limits.cpu`); 0 means no quota, as in Kubernetes.
    pub cpu_limit_millis: Option<i64>,
    /// CPU share in millicores (`requests.cpu`); pass `Some(0)` for a BestEffort pod's minimum.
    pub cpu_request_millis: Option<i64>,
    /// Maximum number of tasks (`pids.max`); the caller supplies the pod default.
    pub pids_max: Option<i64>,
}

impl Limits {
    /// Rejects values no cgroup can hold, naming the field.
    pub fn validate(&self) -> Result<(), CgroupError> {
        let positive = [("memory_bytes", self.memory_bytes), ("pids_max", self.pids_max)];
        for (field, value) in positive {
            if let Some(v) = value.filter(|v| *v <= 0) {
                return Err(CgroupError::InvalidLimit { field, value: v, reason: "must be greater than zero" });
            }
        }
        let cpu = [("cpu_limit_millis", self.cpu_limit_millis), ("cpu_request_millis", self.cpu_request_millis)];
        for (field, value) in cpu {
            if let Some(v) = value.filter(|v| *v < 0) {
                return Err(CgroupError::InvalidLimit { field, value: v, reason: "must not be negative" });
            }
        }
        Ok(())
    }

    /// The CFS quota in microseconds per `CPU_PERIOD_US`, or `None` for no ceiling.
    pub fn cpu_quota_us(&self) -> Option<i64> {
        self.cpu_limit_millis.filter(|m| *m > 0).map(milli_cpu_to_quota)
    }

    /// The v1 `cpu.shares` value, or `None` to leave the kernel default (1024).
    pub fn cpu_shares(&self) -> Option<i64> {
        self.cpu_request_millis.map(milli_cpu_to_shares)
    }

    /// The v2 `cpu.weight` value, or `None` to leave the kernel default (100).
    pub fn cpu_weight(&self) -> Option<i64> {
        self.cpu_shares().map(shares_to_weight)
    }
}

/// Kubernetes' MilliCPUToQuota: the quota for `millis` over a 100ms period, at least 1ms.
pub fn milli_cpu_to_quota(millis: i64) -> i64 {
    (millis.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_QUOTA_US)
}

/// Kubernetes' MilliCPUToShares: millis * 1024 / 1000, clamped to [2, 262144].
pub fn milli_cpu_to_shares(millis: i64) -> i64 {
    (millis.saturating_mul(1024) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Kubernetes' CpuSharesToCpuWeight: maps shares [2, 262144] onto weight [1, 10000].
pub fn shares_to_weight(shares: i64) -> i64 {
    1 + ((shares.clamp(MIN_SHARES, MAX_SHARES) - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_kubernetes() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), 262_144);
    }

    #[test]
    fn weight_follows_kubernetes() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn quota_has_a_floor_and_zero_means_none() {
        assert_eq!(milli_cpu_to_quota(500), 50_000);
        assert_eq!(milli_cpu_to_quota(2500), 250_000);
        assert_eq!(milli_cpu_to_quota(5), 1_000);
        let no_ceiling = Limits { cpu_limit_millis: Some(0), ..Limits::default() };
        assert_eq!(no_ceiling.cpu_quota_us(), None);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = Limits { pids_max: Some(0), ..Limits::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("pids_max=0"));
        let bad = Limits { cpu_request_millis: Some(-1), ..Limits::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("cpu_request_millis=-1"));
        let besteffort = Limits { cpu_request_millis: Some(0), ..Limits::default() };
        assert!(besteffort.validate().is_ok());
    }
}
