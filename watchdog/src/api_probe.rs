//! A liveness source that asks the daemon's own API over its unix socket, as a client
//! would: it beats only when a request that reads the store is answered, so wedged API
//! workers or a deadlocked store stop the watchdog pings.

use super::watchdog::Heartbeat;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The request the probe sends: answered from the store, and `default` always exists.
pub const PROBE_PATH: &str = "/api/v1/namespaces/default";

/// Sends `GET path` over the unix socket and returns the HTTP status code of the answer.
pub fn probe_once(socket: &Path, path: &str, timeout: Duration) -> io::Result<u16> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("probing GET {path} on {}: {e}", socket.display()));
    let mut stream = UnixStream::connect(socket).map_err(context)?;
    stream.set_read_timeout(Some(timeout)).map_err(context)?;
    stream.set_write_timeout(Some(timeout)).map_err(context)?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: coracled-watchdog\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(context)?;
    // The status line is all we need; "HTTP/1.1 200" fits in the first 12 bytes.
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        let n = stream.read(&mut head[len..]).map_err(context)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let line = String::from_utf8_lossy(&head[..len]);
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| context(io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP answer: {line:?}"))))
}

/// The probing thread; stops and joins when dropped.
#[derive(Debug)]
pub struct ApiProbe {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl ApiProbe {
    /// Probes [`PROBE_PATH`] on `socket` every `every`, beating `heartbeat` on each 200 answer.
    pub fn start(socket: PathBuf, heartbeat: Heartbeat, every: Duration) -> io::Result<ApiProbe> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("api-probe".into())
            .spawn(move || probe_loop(&socket, &heartbeat, every, &thread_stop))
            .map_err(|e| io::Error::new(e.kind(), format!("starting the API probe thread: {e}")))?;
        Ok(ApiProbe { stop, thread: Some(thread) })
    }
}

impl Drop for ApiProbe {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn probe_loop(socket: &Path, heartbeat: &Heartbeat, every: Duration, stop: &(Mutex<bool>, Condvar)) {
    let mut failing = false;
    loop {
        // The answer must come within one period, or this round does not count.
        match probe_once(socket, PROBE_PATH, every) {
            Ok(200) => {
                heartbeat.beat();
                if failing {
                    log::info!("API probe answered again");
                    failing = false;
                }
            }
            outcome => {
                if !failing {
                    match outcome {
                        Ok(code) => log::warn!("API probe GET {PROBE_PATH}: status {code}"),
                        Err(e) => log::warn!("API probe: {e}"),
                    }
                    failing = true;
                }
            }
        }
        let (flag, wake) = stop;
        let guard = flag.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (guard, _) =
            wake.wait_timeout_while(guard, every, |stopped| !*stopped).unwrap_or_else(|poisoned| poisoned.into_inner());
        if *guard {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify_listener::receive;
    use crate::{Notifier, Watchdog};
    use std::os::unix::net::{UnixDatagram, UnixListener};
    use std::sync::atomic::{AtomicU16, Ordering};

    /// A real HTTP responder on a unix socket answering every request with `status`.
    fn serve(socket: &Path, status: Arc<AtomicU16>) {
        let listener = UnixListener::bind(socket).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let code = status.load(Ordering::SeqCst);
                let _ = write!(stream, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
    }

    #[test]
    fn reads_the_status_code() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let status = Arc::new(AtomicU16::new(200));
        serve(&socket, Arc::clone(&status));
        assert_eq!(probe_once(&socket, PROBE_PATH, Duration::from_secs(10)).unwrap(), 200);
        status.store(503, Ordering::SeqCst);
        assert_eq!(probe_once(&socket, PROBE_PATH, Duration::from_secs(10)).unwrap(), 503);
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it() {
        let err = probe_once(Path::new("/nonexistent/api.sock"), PROBE_PATH, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/api.sock"), "{err}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let _listener = UnixListener::bind(&socket).unwrap(); // accepts into the backlog, never answers
        let err = probe_once(&socket, PROBE_PATH, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{err}");
    }

    #[test]
    fn watchdog_pings_follow_the_api_answers() {
        let dir = tempfile::tempdir().unwrap();
        let api_socket = dir.path().join("api.sock");
        let status = Arc::new(AtomicU16::new(200));
        serve(&api_socket, Arc::clone(&status));
        let notify_path = dir.path().join("notify.sock");
        let notifications = UnixDatagram::bind(&notify_path).unwrap();
        let interval = Duration::from_millis(200);
        let dog = Watchdog::new(Some(interval), Some(Notifier::new(notify_path.to_str().unwrap()).unwrap()));
        let _probe = ApiProbe::start(api_socket, dog.register("api"), dog.beat_every()).unwrap();
        let _pings = dog.spawn().unwrap();

        for _ in 0..3 {
            assert_eq!(receive(&notifications, Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"));
        }
        status.store(500, Ordering::SeqCst);
        // Beats already recorded may buy a ping or two; then they stop.
        let mut late = 0;
        while receive(&notifications, interval * 10).is_some() {
            late += 1;
            assert!(late <= 2, "pings went on while the API failed");
        }
        status.store(200, Ordering::SeqCst);
        assert_eq!(receive(&notifications, Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"), "pings resume");
    }
}
