//! `pods/{name}/log`: a container's output read back from the CRI log files the node
//! writes, as plain text.
//!
//! Layout: `DATA/logs/<namespace>_<pod>_<uid>/<container>/<n>.log`, where `n` is the
//! container's restart count when that instance started (0 for the first run), and
//! `<n>.log.1`, `<n>.log.2`, … are its older rotations. The current instance is the highest
//! `n`; `previous=true` reads the one before it.

use super::Reply;
use crate::errors::ApiError;
use crate::request::LogQuery;
use crate::routes::ResourcePath;
use coracle_config::core::Pod;
use coracle_store::Store;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a followed log is looked at for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// One CRI record: `<RFC3339Nano> <stream> <P|F> <content>`.
#[derive(Debug, PartialEq, Eq)]
struct Record<'a> {
    timestamp: &'a str,
    partial: bool,
    content: &'a [u8],
}

fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or(b"");
    Some(Record { timestamp, partial: tag == b"P", content })
}

/// Turns CRI records into the text a client sees: partial records joined, each line
/// prefixed with its timestamp when asked, old lines skipped for `sinceSeconds`.
struct Formatter {
    timestamps: bool,
    since: Option<SystemTime>,
    /// Inside a line continued by `P` records.
    continuing: bool,
    /// Whether the line being continued is shown (its first record passed `since`).
    showing: bool,
}

impl Formatter {
    fn new(query: &LogQuery) -> Formatter {
        // A span reaching before any clock reading (validation leaves up to i64::MAX
        // seconds) cuts nothing: every line is newer.
        let since = query.since_seconds.and_then(|s| SystemTime::now().checked_sub(Duration::from_secs(s)));
        Formatter { timestamps: query.timestamps, since, continuing: false, showing: true }
    }

    /// Appends the text of one raw log line (without its newline) to `out`.
    fn push(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let Some(record) = parse_record(raw) else { return };
        if !self.continuing {
            self.showing = match self.since {
                Some(since) => coracle_config::time::parse(record.timestamp).is_none_or(|t| t >= since),
                None => true,
            };
            if self.showing && self.timestamps {
                out.extend_from_slice(record.timestamp.as_bytes());
                out.push(b' ');
            }
        }
        if self.showing {
            out.extend_from_slice(record.content);
            if !record.partial {
                out.push(b'\n');
            }
        }
        self.continuing = record.partial;
    }
}

/// The directory of a pod's container logs.
fn container_dir(logs_dir: &Path, pod: &Pod, container: &str) -> PathBuf {
    let m = &pod.metadata;
    logs_dir.join(format!("{}_{}_{}", m.namespace, m.name, m.uid)).join(container)
}

/// The instance numbers with a `<n>.log`, ascending.
fn instances(dir: &Path) -> Vec<u64> {
    let mut found: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    found.sort_unstable();
    found
}

/// An instance's files, oldest rotation first.
fn files_of(dir: &Path, instance: u64) -> Vec<PathBuf> {
    let current = dir.join(format!("{instance}.log"));
    let mut rotations: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let n = name.strip_prefix(&format!("{instance}.log."))?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotations.sort_by_key(|r| std::cmp::Reverse(r.0));
    rotations.into_iter().map(|(_, p)| p).chain(std::iter::once(current)).collect()
}

/// Which container the request means: the named one, or the only one.
fn choose_container(pod: &Pod, asked: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<&str> =
        pod.spec.init_containers.iter().chain(pod.spec.containers.iter()).map(|c| c.name.as_str()).collect();
    match asked {
        Some(name) if names.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::BadRequest(format!("container {name} is not valid for pod {}", pod.metadata.name))),
        None if pod.spec.containers.len() == 1 => Ok(pod.spec.containers[0].name.clone()),
        None => {
            let listed: Vec<&str> = pod.spec.containers.iter().map(|c| c.name.as_str()).collect();
            Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                pod.metadata.name,
                listed.join(" ")
            )))
        }
    }
}

/// Whether the container is still running in the stored pod (same uid).
fn running(store: &Store, pod: &Pod, container: &str) -> bool {
    let Some(current) = store.get_as::<Pod>(&pod.metadata.namespace, &pod.metadata.name) else {
        return false;
    };
    if current.metadata.uid != pod.metadata.uid {
        return false;
    }
    current.status.as_ref().is_some_and(|s| {
        s.container_statuses
            .iter()
            .chain(s.init_container_statuses.iter())
            .any(|c| c.name == container && c.state.running.is_some())
    })
}

/// Serves a log request: the whole (selected) text, or a stream when following.
pub fn log(store: &Store, logs_dir: &Path, path: &ResourcePath, query: &LogQuery) -> Result<Reply, ApiError> {
    let live = super::objects::live(store, path)?;
    let Some(pod) = live.downcast_ref::<Pod>() else {
        return Err(ApiError::PathNotFound(format!("{}/log", path.resource.plural)));
    };
    let container = choose_container(pod, query.container.as_deref())?;
    let dir = container_dir(logs_dir, pod, &container);
    let found = instances(&dir);
    let instance = if query.previous {
        found.iter().rev().nth(1).copied().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "previous terminated container \"{container}\" in pod \"{}\" not found",
                pod.metadata.name
            ))
        })?
    } else {
        found.last().copied().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{}\" is waiting to start: no log yet",
                pod.metadata.name
            ))
        })?
    };
    let mut formatter = Formatter::new(query);
    let files = files_of(&dir, instance);
    let (current, older) = files.split_last().expect("files_of always lists the current file");
    let mut lines: VecDeque<Vec<u8>> = VecDeque::new();
    for file in older {
        read_lines(file, 0, &mut lines).map_err(|e| log_error(file, e))?;
    }
    let offset = read_lines(current, 0, &mut lines).map_err(|e| log_error(current, e))?;
    if let Some(tail) = query.tail_lines {
        tail_records(&mut lines, usize::try_from(tail).unwrap_or(usize::MAX));
    }
    let mut text = Vec::new();
    for line in &lines {
        formatter.push(line, &mut text);
    }
    let mut budget = query.limit_bytes;
    limit(&mut text, &mut budget);
    let follow = query.follow && !query.previous && budget != Some(0);
    if !follow {
        return Ok(Reply::Bytes { code: 200, content_type: "text/plain", body: text });
    }
    let follower = Follower {
        store: store.clone(),
        pod: pod.clone(),
        container,
        dir,
        instance,
        file: current.clone(),
        offset,
        formatter,
        budget,
        first: Some(text),
        done: false,
    };
    Ok(Reply::Stream { content_type: "text/plain", source: Box::new(follower) })
}

fn log_error(file: &Path, e: std::io::Error) -> ApiError {
    ApiError::BadRequest(format!("reading log {}: {e}", file.display()))
}

/// Reads whole lines of `path` from `offset` into `lines`; returns the offset after the
/// last complete line. A missing file reads as empty.
fn read_lines(path: &Path, offset: u64, lines: &mut VecDeque<Vec<u8>>) -> std::io::Result<u64> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(offset),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    lines.extend(data[..complete].split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
    Ok(offset + complete as u64)
}

/// Keeps the records of the last `n` lines (a line may span several `P` records).
fn tail_records(lines: &mut VecDeque<Vec<u8>>, n: usize) {
    let mut seen = 0;
    let mut keep_from = lines.len();
    for (i, raw) in lines.iter().enumerate().rev() {
        let partial = parse_record(raw).is_some_and(|r| r.partial);
        if !partial {
            if seen == n {
                break;
            }
            seen += 1;
        }
        keep_from = i;
    }
    // A trailing partial record with no final one belongs to the newest line.
    lines.drain(..keep_from);
}

/// Cuts `text` to the remaining byte budget and charges it.
fn limit(text: &mut Vec<u8>, budget: &mut Option<u64>) {
    if let Some(left) = budget.as_mut() {
        text.truncate((*left).min(text.len() as u64) as usize);
        *left -= text.len() as u64;
    }
}

/// A followed log: new output as it is written, until the container stops running (or a
/// newer instance starts), the byte budget is spent, or the client goes away.
struct Follower {
    store: Store,
    pod: Pod,
    container: String,
    dir: PathBuf,
    instance: u64,
    file: PathBuf,
    offset: u64,
    formatter: Formatter,
    budget: Option<u64>,
    first: Option<Vec<u8>>,
    done: bool,
}

impl Follower {
    /// New complete lines since the last look, handling a rotation in between.
    fn poll(&mut self) -> std::io::Result<Vec<u8>> {
        let size = std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0);
        if size < self.offset {
            // Rotated: the rest of the old file is now `<n>.log.1`.
            let rotated = self.dir.join(format!("{}.log.1", self.instance));
            let mut lines = VecDeque::new();
            read_lines(&rotated, self.offset, &mut lines)?;
            self.offset = 0;
            let mut out = Vec::new();
            for line in &lines {
                self.formatter.push(line, &mut out);
            }
            return Ok(out);
        }
        let mut lines = VecDeque::new();
        self.offset = read_lines(&self.file, self.offset, &mut lines)?;
        let mut out = Vec::new();
        for line in &lines {
            self.formatter.push(line, &mut out);
        }
        Ok(out)
    }

    fn finished(&self) -> bool {
        !running(&self.store, &self.pod, &self.container) || instances(&self.dir).last() != Some(&self.instance)
    }
}

impl super::ChunkSource for Follower {
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if let Some(first) = self.first.take().filter(|t| !t.is_empty()) {
            return Some(first);
        }
        while !self.done {
            // Decide before reading, so output written just before the end is still sent.
            let finished = self.finished();
            let mut chunk = match self.poll() {
                Ok(chunk) => chunk,
                Err(e) => {
                    log::debug!("following {}: {e}", self.file.display());
                    return None;
                }
            };
            limit(&mut chunk, &mut self.budget);
            if finished || self.budget == Some(0) {
                self.done = true;
            }
            if !chunk.is_empty() {
                return Some(chunk);
            }
            if !self.done {
                std::thread::sleep(FOLLOW_POLL);
                // Nothing yet: the server looks at its client before asking again.
                return Some(Vec::new());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> VecDeque<Vec<u8>> {
        text.lines().map(|l| l.as_bytes().to_vec()).collect()
    }

    fn render(text: &str, query: &LogQuery) -> String {
        let mut all = lines(text);
        if let Some(n) = query.tail_lines {
            tail_records(&mut all, usize::try_from(n).unwrap_or(usize::MAX));
        }
        let mut f = Formatter::new(query);
        let mut out = Vec::new();
        for l in &all {
            f.push(l, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    const LOG: &str = "2024-01-01T00:00:00.000000001Z stdout F one\n\
                       2024-01-01T00:00:01.5Z stderr P tw\n\
                       2024-01-01T00:00:01.6Z stderr F o\n\
                       2024-01-01T00:00:02Z stdout F three\n";

    #[test]
    fn cri_prefix_stripped_and_partials_joined() {
        assert_eq!(render(LOG, &LogQuery::default()), "one\ntwo\nthree\n");
    }

    #[test]
    fn timestamps_kept_once_per_line() {
        let q = LogQuery { timestamps: true, ..Default::default() };
        assert_eq!(
            render(LOG, &q),
            "2024-01-01T00:00:00.000000001Z one\n2024-01-01T00:00:01.5Z two\n2024-01-01T00:00:02Z three\n"
        );
    }

    #[test]
    fn tail_counts_whole_lines() {
        let q = LogQuery { tail_lines: Some(2), ..Default::default() };
        assert_eq!(render(LOG, &q), "two\nthree\n");
        let q = LogQuery { tail_lines: Some(0), ..Default::default() };
        assert_eq!(render(LOG, &q), "");
        let q = LogQuery { tail_lines: Some(10), ..Default::default() };
        assert_eq!(render(LOG, &q), "one\ntwo\nthree\n");
    }

    #[test]
    fn since_seconds_drops_old_lines() {
        let recent = coracle_config::time::rfc3339_nanos(SystemTime::now());
        let text = format!("{}\n{recent} stdout F new\n", LOG.trim_end());
        let q = LogQuery { since_seconds: Some(60), ..Default::default() };
        assert_eq!(render(&text, &q), "new\n");
    }

    #[test]
    fn since_seconds_beyond_any_clock_keeps_every_line() {
        // Once "overflow when subtracting duration from instant", an abort.
        for since in [i64::MAX as u64, u64::MAX] {
            let q = LogQuery { since_seconds: Some(since), ..Default::default() };
            assert_eq!(render(LOG, &q), "one\ntwo\nthree\n");
        }
        let q = LogQuery { tail_lines: Some(u64::MAX), ..Default::default() };
        assert_eq!(render(LOG, &q), "one\ntwo\nthree\n");
    }

    #[test]
    fn limit_bytes_truncates() {
        let mut text = b"hello world".to_vec();
        let mut budget = Some(5);
        limit(&mut text, &mut budget);
        assert_eq!((text.as_slice(), budget), (&b"hello"[..], Some(0)));
    }

    #[test]
    fn rotations_are_read_oldest_first_and_instances_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["0.log", "1.log", "1.log.1", "1.log.2", "10.log", "junk"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(instances(dir.path()), [0, 1, 10]);
        let files: Vec<String> =
            files_of(dir.path(), 1).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(files, ["1.log.2", "1.log.1", "1.log"]);
    }
}
