//! Go's `text/tabwriter` elastic tabstops, so columns line up byte for byte with kubectl:
//! `get` uses min width 6 and padding 3, `describe` min width 0 and padding 2.

/// Column layout parameters, as `tabwriter.NewWriter(out, minwidth, _, padding, ' ', 0)`.
#[derive(Clone, Copy, Debug)]
pub struct TabWriter {
    pub min_width: usize,
    pub padding: usize,
}

/// kubectl get's table writer.
pub const GET: TabWriter = TabWriter { min_width: 6, padding: 3 };
/// kubectl describe's writer.
pub const DESCRIBE: TabWriter = TabWriter { min_width: 0, padding: 2 };

impl TabWriter {
    /// Aligns tab-separated `text`: a cell ended by a tab belongs to a column whose width is
    /// set by the consecutive lines that have a cell there; the last cell of a line is free.
    pub fn align(&self, text: &str) -> String {
        let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
        // Text ending in a newline leaves an empty final line that prints nothing.
        let trailing_newline = text.ends_with('\n');
        if trailing_newline {
            lines.pop();
        }
        let mut out = String::with_capacity(text.len() * 2);
        let mut widths = Vec::new();
        self.format(&lines, 0, lines.len(), &mut widths, &mut out);
        if !trailing_newline && out.ends_with('\n') {
            out.pop();
        }
        out
    }

    fn format(&self, lines: &[Vec<&str>], mut line0: usize, line1: usize, widths: &mut Vec<usize>, out: &mut String) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A column block starts here: print the lines above it at the current depth.
            write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(cell_width(lines[this][column]) + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(lines, line0, line1, widths, out);
    }
}

fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

fn write_lines(lines: &[Vec<&str>], line0: usize, line1: usize, widths: &[usize], out: &mut String) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() {
                if let Some(&w) = widths.get(j) {
                    out.extend(std::iter::repeat_n(' ', w.saturating_sub(cell_width(cell))));
                }
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_tables_pad_three_with_min_width_six() {
        let text = "NAME\tREADY\tSTATUS\tRESTARTS\tAGE\nnginx-7854ff8877-x2x4z\t1/1\tRunning\t0\t5m\n";
        assert_eq!(
            GET.align(text),
            "NAME                     READY   STATUS    RESTARTS   AGE\n\
             nginx-7854ff8877-x2x4z   1/1     Running   0          5m\n"
        );
        assert_eq!(GET.align("A\tB\nx\ty\n"), "A     B\nx     y\n");
    }

    #[test]
    fn lines_without_tabs_break_column_blocks() {
        let text = "Name:\tweb\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nControlled By:\tReplicaSet/web\n";
        assert_eq!(
            DESCRIBE.align(text),
            "Name:       web\nNamespace:  default\nIPs:\n  IP:           10.0.0.1\nControlled By:  ReplicaSet/web\n"
        );
    }

    #[test]
    fn empty_leading_cells_align_continuations() {
        let text = "Labels:\tapp=web\n\ttier=front\nAnnotations:\t<none>\n";
        assert_eq!(DESCRIBE.align(text), "Labels:       app=web\n              tier=front\nAnnotations:  <none>\n");
    }
}
