//! The `Events:` section every describe ends with.

use super::Describer;
use coracle_config::core::Event;
use coracle_config::time;
use std::time::SystemTime;

/// Writes the events table (oldest first), or `Events:\t<none>`.
pub fn write_events(d: &mut Describer, events: &[Event], now: SystemTime) {
    if events.is_empty() {
        d.field(0, "Events", "<none>");
        return;
    }
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| last_seen(e).and_then(time::unix_seconds).unwrap_or(0));
    d.line(0, "Events:");
    d.line(1, "Type\tReason\tAge\tFrom\tMessage");
    d.line(1, "----\t------\t----\t----\t-------");
    for e in events {
        let first = e.first_timestamp.as_deref().or(e.event_time.as_deref());
        let age = |t: Option<&str>| t.map(|t| time::age(t, now)).unwrap_or_else(|| "<unknown>".into());
        let interval = match e.count {
            Some(count) if count > 1 => format!("{} (x{count} over {})", age(last_seen(e)), age(first)),
            _ => age(first),
        };
        let from = if e.source.component.is_empty() { &e.reporting_component } else { &e.source.component };
        d.line(1, &format!("{}\t{}\t{interval}\t{from}\t{}", e.type_, e.reason, e.message.trim()));
    }
}

fn last_seen(e: &Event) -> Option<&str> {
    e.last_timestamp.as_deref().or(e.first_timestamp.as_deref()).or(e.event_time.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_a_table_with_repeat_counts() {
        let now = time::parse("2024-05-01T12:00:00Z").unwrap();
        let e: Event = serde_json::from_value(serde_json::json!({
            "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
            "source": {"component": "kubelet"}, "count": 5,
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:00Z"}))
        .unwrap();
        let mut d = Describer::default();
        write_events(&mut d, &[e], now);
        assert_eq!(
            d.finish(),
            "Events:\n  Type     Reason   Age                From     Message\n  ----     ------   ----               ----     -------\n  Warning  BackOff  60s (x5 over 10m)  kubelet  Back-off restarting failed container\n"
        );
        let mut d = Describer::default();
        write_events(&mut d, &[], now);
        assert_eq!(d.finish(), "Events:  <none>\n");
    }
}
