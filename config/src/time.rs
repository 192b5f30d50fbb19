//! Timestamps as Kubernetes writes them: RFC 3339 in UTC, whole seconds (`metav1.Time`)
//! or nanoseconds (`metav1.MicroTime`, CRI log lines).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z.
const LAST_SECOND: u64 = 253_402_300_799;

/// The longest span the daemon counts from a clock reading: 2^31-1 seconds (68 years), the
/// bound Kubernetes puts on `activeDeadlineSeconds`. Seconds taken from objects and queries
/// (grace periods, deadlines, timeouts) are clamped to it before they meet a clock, so
/// `now + span` can neither overflow (`Instant` and `SystemTime` addition panics) nor reach
/// past the year 9999 that RFC 3339 can write.
pub const MAX_SPAN_SECONDS: i64 = i32::MAX as i64;
/// [`MAX_SPAN_SECONDS`] as a `Duration`, to bound spans computed from other spans.
pub const MAX_SPAN: Duration = Duration::from_secs(MAX_SPAN_SECONDS as u64);

/// `seconds` from an object or a query as a span: a negative number is zero, one beyond
/// [`MAX_SPAN_SECONDS`] is that.
pub fn span(seconds: i64) -> Duration {
    Duration::from_secs(seconds.clamp(0, MAX_SPAN_SECONDS) as u64)
}

/// `t` within what RFC 3339 can write, 1970 to year 9999: humantime's formatter panics
/// outside it, and a time computed from input (`now + grace`) must never reach a panic.
fn writable(t: SystemTime) -> SystemTime {
    let last = UNIX_EPOCH + Duration::from_secs(LAST_SECOND);
    t.clamp(UNIX_EPOCH, last)
}

/// `2024-05-01T12:00:00Z`, the form of every `metav1.Time` field; times before 1970 or
/// after 9999 are written as the nearest of those bounds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(writable(t)).to_string()
}

/// `2024-05-01T12:00:00.123456789Z`, as CRI log lines and `metav1.MicroTime` carry it
/// (bounded as [`rfc3339`]).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(writable(t)).to_string()
}

/// The current time as a `metav1.Time` string.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Parses an RFC 3339 timestamp (any precision, `Z` offset).
pub fn parse(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok().or_else(|| humantime::parse_rfc3339(s).ok())
}

/// Seconds since the epoch, for ordering timestamps cheaply.
pub fn unix_seconds(s: &str) -> Option<u64> {
    parse(s).and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs())
}

/// How long ago `s` was, as kubectl's AGE column prints it (`5s`, `3m2s`, `4h`, `12d`).
pub fn age(s: &str, now: SystemTime) -> String {
    let Some(t) = parse(s) else {
        return "<unknown>".into();
    };
    human_duration(now.duration_since(t).unwrap_or(Duration::ZERO))
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rem = s % 60;
        return if rem == 0 { format!("{m}m") } else { format!("{m}m{rem}s") };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rem = (s % 3600) / 60;
        return if rem == 0 { format!("{h}h") } else { format!("{h}h{rem}m") };
    }
    if h < 48 {
        return format!("{h}h");
    }
    let days = h / 24;
    if h < 24 * 8 {
        let rem = h % 24;
        return if rem == 0 { format!("{days}d") } else { format!("{days}d{rem}h") };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        let rem = days % 365;
        return if rem == 0 { format!("{years}y") } else { format!("{years}y{rem}d") };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = rfc3339(t);
        assert_eq!(s, "2023-11-14T22:13:20Z");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(unix_seconds(&s), Some(1_700_000_000));
    }

    #[test]
    fn times_beyond_rfc3339_are_written_at_its_bounds() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_nanos(far), "9999-12-31T23:59:59.000000000Z");
        assert_eq!(rfc3339(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00Z");
        assert_eq!(parse("9999-12-31T23:59:59Z"), Some(UNIX_EPOCH + Duration::from_secs(LAST_SECOND)));
    }

    #[test]
    fn spans_are_clamped_to_what_a_clock_can_take() {
        assert_eq!(span(-5), Duration::ZERO);
        assert_eq!(span(30), Duration::from_secs(30));
        assert_eq!(span(i64::MAX), Duration::from_secs(i32::MAX as u64));
        // The whole point: the sum with the current time neither overflows nor is unwritable.
        let later = SystemTime::now() + span(i64::MAX);
        assert!(rfc3339(later).starts_with("20"), "{}", rfc3339(later));
        let _ = std::time::Instant::now() + span(i64::MAX);
    }

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m5s");
        assert_eq!(human_duration(Duration::from_secs(3600 * 5 + 60 * 7)), "5h7m");
        assert_eq!(human_duration(Duration::from_secs(3600 * 30)), "30h");
        assert_eq!(human_duration(Duration::from_secs(86400 * 3)), "3d");
    }
}
