//! kubectl's `describe` text: one file per kind, a shared writer that indents by level and
//! aligns `Key:\tvalue` columns with Go's tabwriter (min width 0, padding 2).

pub mod config;
pub mod deployment;
pub mod events;
pub mod generic;
pub mod hpa;
pub mod pod;
pub mod pod_volumes;
pub mod replicaset;
pub mod service;

use crate::printers::tabwriter;
use coracle_config::time;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Accumulates describe lines; `finish` aligns them.
#[derive(Default)]
pub struct Describer {
    text: String,
}

impl Describer {
    /// Writes `line` (tab-separated cells) indented two spaces per `level`.
    pub fn line(&mut self, level: usize, line: &str) {
        for _ in 0..level {
            self.text.push_str("  ");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// `Key:\tvalue` at `level`.
    pub fn field(&mut self, level: usize, key: &str, value: impl std::fmt::Display) {
        let mut line = String::new();
        let _ = write!(line, "{key}:\t{value}");
        self.line(level, &line);
    }

    /// `Labels:\ta=b` then one continuation line per further label, or `<none>`.
    pub fn labels(&mut self, level: usize, key: &str, labels: &BTreeMap<String, String>) {
        self.multiline(level, key, labels.iter().map(|(k, v)| format!("{k}={v}")).collect());
    }

    /// `Annotations:\tk: v`, leaving out kubectl's own last-applied copy.
    pub fn annotations(&mut self, level: usize, annotations: &BTreeMap<String, String>) {
        let lines = annotations
            .iter()
            .filter(|(k, _)| k.as_str() != crate::commands::apply::LAST_APPLIED)
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        self.multiline(level, "Annotations", lines);
    }

    fn multiline(&mut self, level: usize, key: &str, values: Vec<String>) {
        let mut values = values.into_iter();
        match values.next() {
            None => self.field(level, key, "<none>"),
            Some(first) => self.field(level, key, first),
        }
        for v in values {
            self.line(level, &format!("\t{v}"));
        }
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        tabwriter::DESCRIBE.align(&self.text)
    }
}

/// A timestamp as describe prints it: `Mon, 02 Jan 2006 15:04:05 +0000` (RFC 1123, UTC).
pub fn timestamp(rfc3339: &str) -> String {
    let Some(t) = time::parse(rfc3339) else { return rfc3339.to_string() };
    rfc1123(t)
}

/// Formats a time as RFC 1123 with a numeric zone, in UTC.
pub fn rfc1123(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86400;
    let (h, m, s) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // `2024-05-01T…` from humantime gives the civil date without calendar arithmetic here.
    let iso = humantime::format_rfc3339_seconds(t).to_string();
    let (year, month, day) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [month.parse::<usize>().unwrap_or(1) - 1];
    format!("{weekday}, {day} {month} {year} {h:02}:{m:02}:{s:02} +0000")
}

/// `<none>` for an empty string.
pub fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_rfc1123() {
        assert_eq!(timestamp("2024-05-01T12:03:04Z"), "Wed, 01 May 2024 12:03:04 +0000");
        assert_eq!(timestamp("1970-01-01T00:00:00Z"), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn labels_continue_on_aligned_lines() {
        let mut d = Describer::default();
        d.field(0, "Name", "web");
        let labels = [("app".to_string(), "web".to_string()), ("tier".into(), "front".into())].into();
        d.labels(0, "Labels", &labels);
        d.annotations(0, &BTreeMap::new());
        assert_eq!(
            d.finish(),
            "Name:         web\nLabels:       app=web\n              tier=front\nAnnotations:  <none>\n"
        );
    }
}
