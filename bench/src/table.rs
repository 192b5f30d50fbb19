//! Plain-text tables: our figure, the peer's figure and the target side by side, with notes
//! underneath saying where a number came from.

use std::time::Duration;

/// A titled table of right-aligned figures under a left-aligned first column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    /// An empty table with these column headings.
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Appends a row; missing cells print as `-`, extra cells are an error in the caller.
    pub fn row(&mut self, cells: Vec<String>) {
        assert!(
            cells.len() <= self.header.len(),
            "table {:?}: row {cells:?} has more cells than the {} columns",
            self.title,
            self.header.len()
        );
        let mut cells = cells;
        cells.resize(self.header.len(), "-".into());
        self.rows.push(cells);
    }

    /// A line printed under the table (sources, caveats).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The rows added so far.
    #[cfg(test)]
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The table as text, ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if i == 0 {
                    out.push_str(&format!("{cell:<width$}"));
                } else {
                    out.push_str(&format!("  {cell:>width$}"));
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let total: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
        let mut out = format!("== {} ==\n", self.title);
        out.push_str(&line(&self.header));
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
        }
        for note in &self.notes {
            out.push_str(&format!("  * {note}\n"));
        }
        out
    }
}

/// A duration in the unit that suits it: `850 µs`, `3.21 ms`, `1.50 s`.
pub fn duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// A byte count in binary units: `512 B`, `3.4 KiB`, `3.85 MiB`.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let v = n as f64;
    if v < KIB {
        format!("{n} B")
    } else if v < KIB * KIB {
        format!("{:.1} KiB", v / KIB)
    } else if v < KIB * KIB * KIB {
        format!("{:.2} MiB", v / (KIB * KIB))
    } else {
        format!("{:.2} GiB", v / (KIB * KIB * KIB))
    }
}

/// `ok` when `met`, else `MISSED`: the verdict column.
pub fn verdict(met: bool) -> String {
    if met { "ok" } else { "MISSED" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_short_rows_are_padded() {
        let mut t = Table::new("demo", &["metric", "ours", "peer"]);
        t.row(vec!["spawn".into(), "1.00 ms".into(), "12.50 ms".into()]);
        t.row(vec!["a much longer metric".into(), "3 µs".into()]);
        t.note("peer: runc");
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "== demo ==");
        assert_eq!(lines[1], format!("metric{}ours{}peer", " ".repeat(19), " ".repeat(6)));
        assert_eq!(lines[2], "-".repeat(20 + 2 + 7 + 2 + 8));
        assert_eq!(lines[3], format!("spawn{}1.00 ms  12.50 ms", " ".repeat(17)));
        assert_eq!(lines[4], format!("a much longer metric{}3 µs{}-", " ".repeat(5), " ".repeat(9)));
        assert_eq!(lines[5], "  * peer: runc");
    }

    #[test]
    #[should_panic(expected = "more cells")]
    fn a_row_wider_than_the_header_is_a_bug() {
        Table::new("t", &["a"]).row(vec!["1".into(), "2".into()]);
    }

    #[test]
    fn units_follow_the_magnitude() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(3210)), "3.21 ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 + 410), "3.4 KiB");
        assert_eq!(bytes(4 * 1024 * 1024), "4.00 MiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
        assert_eq!(verdict(true), "ok");
        assert_eq!(verdict(false), "MISSED");
    }
}
