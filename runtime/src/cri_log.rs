//! Container logs in the CRI format (`<RFC3339Nano> stdout F line`), rotated by size.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Longest line written in one piece; longer lines are split into `P` records, like containerd.
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's fd 1.
    Stdout,
    /// The container's fd 2.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// An append-only CRI log file that rotates to `<path>.1 … <path>.<max_files-1>` by size.
pub struct CriLog {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
}

impl CriLog {
    /// Opens (appending to) the log at `path`; `max_size` 0 disables rotation.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<CriLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(CriLog { path: path.to_path_buf(), max_size, max_files: max_files.max(1), file, size })
    }

    /// Appends one record; `partial` marks a piece of a longer line (`P`), otherwise `F`.
    pub fn write_record(
        &mut self,
        at: SystemTime,
        stream: Stream,
        partial: bool,
        content: &[u8],
    ) -> std::io::Result<()> {
        let ts = coracle_config::time::rfc3339_nanos(at);
        let tag = if partial { "P" } else { "F" };
        let mut record = Vec::with_capacity(ts.len() + content.len() + 12);
        record.extend_from_slice(ts.as_bytes());
        record.push(b' ');
        record.extend_from_slice(stream.as_str().as_bytes());
        record.push(b' ');
        record.extend_from_slice(tag.as_bytes());
        record.push(b' ');
        record.extend_from_slice(content);
        record.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + record.len() as u64 > self.max_size {
            self.rotate()?;
        }
        // One write per record so a reader never sees half a line from us.
        self.file.write_all(&record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_files > 1 {
            let _ = std::fs::remove_file(self.rotated(self.max_files - 1));
            for n in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        self.file = OpenOptions::new().create(true).write(true).truncate(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Cuts a byte stream into CRI records: whole lines as `F`, overlong pieces as `P`.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; calls `emit(content, partial)` for every complete record.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            let mut line_start = start;
            while end - line_start > MAX_LINE {
                emit(&self.pending[line_start..line_start + MAX_LINE], true);
                line_start += MAX_LINE;
            }
            emit(&self.pending[line_start..end], false);
            start = end + 1;
        }
        while self.pending.len() - start >= MAX_LINE {
            emit(&self.pending[start..start + MAX_LINE], true);
            start += MAX_LINE;
        }
        self.pending.drain(..start);
    }

    /// Flushes an unterminated last line as a full record (the stream ended).
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, false);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.push(c, |l, p| out.push((l.to_vec(), p)));
        }
        s.finish(|l, p| out.push((l.to_vec(), p)));
        out
    }

    #[test]
    fn splits_lines_across_chunks_and_flushes_the_tail() {
        let out = split(&[b"he", b"llo\nwor", b"ld\n\ntail"]);
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"hello".to_vec(), false),
            (b"world".to_vec(), false),
            (b"".to_vec(), false),
            (b"tail".to_vec(), false),
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn overlong_lines_become_partial_records() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let mut data = long.clone();
        data.push(b'\n');
        let out = split(&[&data]);
        assert_eq!(out.len(), 3);
        assert!(out[0].1 && out[1].1 && !out[2].1);
        assert_eq!(out[2].0.len(), 5);
    }

    #[test]
    fn writes_cri_records_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut log = CriLog::open(&path, 200, 3).unwrap();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_475_713_029, 669_794_202);
        log.write_record(at, Stream::Stdout, false, b"hi").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "2016-10-06T00:17:09.669794202Z stdout F hi\n");
        for i in 0..20 {
            log.write_record(at, Stream::Stderr, i % 2 == 0, format!("line {i}").as_bytes()).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 200);
        assert!(dir.path().join("0.log.1").exists());
        assert!(dir.path().join("0.log.2").exists());
        assert!(!dir.path().join("0.log.3").exists(), "max_files bounds the rotated set");
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.ends_with("stderr F line 19\n"), "{last}");
    }
}
