//! Runs wrk and reads its summary: requests/s, transfer/s and the 99th latency percentile.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// What one wrk run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct WrkFigures {
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Bytes per second of response data.
    pub bytes_per_sec: f64,
    /// The 99th percentile of request latency.
    pub p99: Duration,
    /// Requests completed in the whole run.
    pub requests: u64,
    /// Answers that were not 2xx or 3xx (wrk's `Non-2xx or 3xx responses`).
    pub non_2xx: u64,
    /// CPU time the proxy process spent during the run (filled in by the caller).
    pub proxy_cpu: Duration,
    /// CPU time wrk itself spent (filled in by the caller).
    pub client_cpu: Duration,
    /// CPU time the backend spent during the run (filled in by the caller).
    pub backend_cpu: Duration,
}

/// One wrk load: threads, connections, duration, URL, extra headers and wrk's core.
pub struct Load<'a> {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
    pub url: &'a str,
    pub headers: &'a [&'a str],
    /// The one core wrk runs on, if it has its own.
    pub cpu: Option<usize>,
}

/// Runs wrk with `--latency` and parses its report.
pub fn run(load: &Load) -> Result<WrkFigures, String> {
    let mut cmd = Command::new("wrk");
    cmd.args(["--latency", "-t", &load.threads.to_string(), "-c", &load.connections.to_string()]).args([
        "-d",
        &format!("{}s", load.duration.as_secs().max(1)),
        "--timeout",
        "5s",
    ]);
    for h in load.headers {
        cmd.args(["-H", h]);
    }
    if let Some(cpu) = load.cpu {
        // SAFETY: runs in the forked child before exec and only makes the
        // sched_setaffinity(2) syscall, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let mut set = CpuSet::new();
                set.set(cpu)?;
                sched_setaffinity(Pid::from_raw(0), &set).map_err(io::Error::from)
            });
        }
    }
    let out = cmd.arg(load.url).output().map_err(|e| format!("running wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk {} failed ({}): {}{}",
            load.url,
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("unreadable wrk report for {}:\n{text}", load.url))
}

/// Reads `Requests/sec:`, `Transfer/sec:` and the `99%` latency line.
pub fn parse(report: &str) -> Option<WrkFigures> {
    let value = |key: &str| report.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()));
    let requests_per_sec = value("Requests/sec:")?.parse().ok()?;
    let bytes_per_sec = size(&value("Transfer/sec:")?)?;
    let p99 = duration(&value("99%")?)?;
    // `  600000 requests in 5.00s, 50.00MB read`
    let requests = report.lines().find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())?;
    let non_2xx = value("Non-2xx or 3xx responses:").and_then(|v| v.parse().ok()).unwrap_or(0);
    Some(WrkFigures { requests_per_sec, bytes_per_sec, p99, requests, non_2xx, ..WrkFigures::default() })
}

/// wrk's sizes: `812.34KB`, `1.20GB`, `512.00B`.
fn size(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * scale)
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.00s`, `1.00m`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 5s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.00us  100.00us   5.00ms   90.00%
    Req/Sec    60.00k     2.00k   65.00k    70.00%
  Latency Distribution
     50%  480.00us
     75%  520.00us
     90%  600.00us
     99%    1.25ms
  600000 requests in 5.00s, 50.00MB read
Requests/sec: 120000.50
Transfer/sec:     10.00MB
";

    #[test]
    fn reads_the_summary_lines() {
        let f = parse(REPORT).unwrap();
        assert_eq!(f.requests_per_sec, 120000.5);
        assert_eq!(f.bytes_per_sec, 10.0 * 1024.0 * 1024.0);
        assert_eq!(f.p99, Duration::from_micros(1250));
        assert_eq!((f.requests, f.non_2xx), (600000, 0));
        assert!(parse("garbage").is_none());
        let refused = REPORT.replace("Requests/sec", "Non-2xx or 3xx responses: 12\nRequests/sec");
        assert_eq!(parse(&refused).unwrap().non_2xx, 12);
    }
}
