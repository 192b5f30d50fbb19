//! systemd's watchdog (`WatchdogSec=`): ping `WATCHDOG=1` at half the interval, but only
//! while every registered loop has beaten since the last ping, so a wedged loop stops the
//! pings and systemd restarts the daemon instead of leaving it half alive.

use super::notify::Notifier;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment variable carrying the watchdog interval in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// The environment variable naming the process the watchdog applies to.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";

/// How often loops should beat when no watchdog is configured (they may still use it to wake).
const DEFAULT_BEAT_EVERY: Duration = Duration::from_secs(10);

/// The watchdog interval asked for by `usec`/`pid` for the process `own_pid`; `None` when
/// there is none or it is meant for another process (systemd's rule for `WATCHDOG_PID`).
pub fn interval_from(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> io::Result<Option<Duration>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let Some(usec) = usec.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Some(pid) = pid.filter(|v| !v.is_empty()) {
        let pid: u32 =
            pid.parse().map_err(|e| invalid(format!("{WATCHDOG_PID_ENV}={pid:?} is not a process id: {e}")))?;
        if pid != own_pid {
            return Ok(None);
        }
    }
    let micros: u64 = usec
        .parse()
        .map_err(|e| invalid(format!("{WATCHDOG_USEC_ENV}={usec:?} is not a number of microseconds: {e}")))?;
    if micros == 0 {
        return Err(invalid(format!("{WATCHDOG_USEC_ENV}=0: the interval must be positive")));
    }
    Ok(Some(Duration::from_micros(micros)))
}

/// [`interval_from`] applied to this process's environment.
pub fn interval_from_env() -> io::Result<Option<Duration>> {
    let usec = std::env::var(WATCHDOG_USEC_ENV).ok();
    let pid = std::env::var(WATCHDOG_PID_ENV).ok();
    interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// One liveness source: a loop that must keep beating for the daemon to count as alive.
#[derive(Debug)]
struct Source {
    name: String,
    beaten_since_ping: AtomicBool,
    /// Milliseconds since the registry's epoch at the last beat, for the stall message.
    last_beat_ms: AtomicU64,
}

/// The sources currently registered; a dropped [`Heartbeat`] leaves on its own.
#[derive(Debug)]
struct Registry {
    epoch: Instant,
    sources: Mutex<Vec<Weak<Source>>>,
    /// Sources whose heartbeat was dropped by a panicking thread: a loop that died is not
    /// a loop that finished, so these stop the pings for good.
    panicked: Mutex<Vec<String>>,
}

/// What one look at the sources found.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// Every source beat since the last ping (their marks are now cleared).
    Alive,
    /// These sources have not beaten since the last ping.
    Stalled(Vec<String>),
}

impl Registry {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn check(&self) -> Check {
        let panicked = self.panicked.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !panicked.is_empty() {
            return Check::Stalled(panicked.clone());
        }
        drop(panicked);
        let mut sources = self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sources.retain(|weak| weak.strong_count() > 0);
        let live: Vec<Arc<Source>> = sources.iter().filter_map(Weak::upgrade).collect();
        let stalled: Vec<String> =
            live.iter().filter(|s| !s.beaten_since_ping.load(Ordering::Acquire)).map(|s| s.name.clone()).collect();
        if !stalled.is_empty() {
            return Check::Stalled(stalled);
        }
        for source in &live {
            source.beaten_since_ping.store(false, Ordering::Release);
        }
        Check::Alive
    }

    /// How long each named source has been silent, for the log line that explains a restart.
    fn silence(&self, names: &[String]) -> String {
        let panicked = self.panicked.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !panicked.is_empty() {
            return format!("{} (panicked)", panicked.join(", "));
        }
        drop(panicked);
        let now = self.elapsed_ms();
        let sources = self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sources
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|s| names.contains(&s.name))
            .map(|s| {
                let silent = now.saturating_sub(s.last_beat_ms.load(Ordering::Relaxed));
                format!("{} (last beat {:.1}s ago)", s.name, silent as f64 / 1000.0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A loop's handle: call [`Heartbeat::beat`] each time round the loop, idle or not.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    source: Arc<Source>,
    registry: Arc<Registry>,
}

impl Heartbeat {
    /// Records that the loop made progress.
    pub fn beat(&self) {
        self.source.last_beat_ms.store(self.registry.elapsed_ms(), Ordering::Relaxed);
        self.source.beaten_since_ping.store(true, Ordering::Release);
    }

    /// The name this source was registered under.
    pub fn name(&self) -> &str {
        &self.source.name
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut panicked = self.registry.panicked.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !panicked.contains(&self.source.name) {
                panicked.push(self.source.name.clone());
            }
        }
    }
}

/// The daemon's watchdog: a registry of liveness sources and, when systemd asked for one,
/// a pinger thread started with [`Watchdog::spawn`].
#[derive(Clone, Debug)]
pub struct Watchdog {
    interval: Option<Duration>,
    notifier: Option<Arc<Notifier>>,
    registry: Arc<Registry>,
}

impl Watchdog {
    /// The watchdog systemd configured through `WATCHDOG_USEC`, `WATCHDOG_PID` and
    /// `NOTIFY_SOCKET`; inert (registering still works, nothing pings) when not configured.
    pub fn from_env() -> io::Result<Watchdog> {
        let interval = interval_from_env()?;
        let notifier = match interval {
            Some(_) => Notifier::from_env()?,
            None => None,
        };
        if interval.is_some() && notifier.is_none() {
            log::warn!("{WATCHDOG_USEC_ENV} is set but NOTIFY_SOCKET is not: watchdog pings disabled");
        }
        Ok(Watchdog::new(interval.filter(|_| notifier.is_some()), notifier))
    }

    /// A watchdog pinging `notifier` every half `interval`; inert when either is `None`.
    pub fn new(interval: Option<Duration>, notifier: Option<Notifier>) -> Watchdog {
        Watchdog {
            interval: interval.filter(|_| notifier.is_some()),
            notifier: notifier.map(Arc::new),
            registry: Arc::new(Registry {
                epoch: Instant::now(),
                sources: Mutex::new(Vec::new()),
                panicked: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The interval systemd enforces, if any.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// How often a registered loop should beat (wake up for it even when idle).
    pub fn beat_every(&self) -> Duration {
        self.interval.map_or(DEFAULT_BEAT_EVERY, |i| i / 4)
    }

    /// Adds a liveness source; pings stop while it fails to beat, and it leaves when dropped.
    pub fn register(&self, name: &str) -> Heartbeat {
        let source = Arc::new(Source {
            name: name.to_string(),
            // A new source counts as alive until the next ping: registering is progress.
            beaten_since_ping: AtomicBool::new(true),
            last_beat_ms: AtomicU64::new(self.registry.elapsed_ms()),
        });
        self.registry.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Arc::downgrade(&source));
        Heartbeat { source, registry: Arc::clone(&self.registry) }
    }

    /// Starts the pinger thread (none when inert); it runs until the guard is dropped.
    #[must_use = "dropping the guard stops the watchdog pings"]
    pub fn spawn(&self) -> io::Result<WatchdogGuard> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (Some(interval), Some(notifier)) = (self.interval, self.notifier.clone()) else {
            return Ok(WatchdogGuard { stop, thread: None });
        };
        let registry = Arc::clone(&self.registry);
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || ping_loop(interval, &notifier, &registry, &thread_stop))
            .map_err(|e| io::Error::new(e.kind(), format!("starting the watchdog thread: {e}")))?;
        Ok(WatchdogGuard { stop, thread: Some(thread) })
    }
}

/// Stops and joins the pinger thread when dropped.
#[derive(Debug)]
pub struct WatchdogGuard {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Pings at half the interval while all sources beat; when some are stalled it looks again
/// every twentieth of the interval, so a loop that recovers in time still saves the daemon.
fn ping_loop(interval: Duration, notifier: &Notifier, registry: &Registry, stop: &(Mutex<bool>, Condvar)) {
    let half = interval / 2;
    let retry = (interval / 20).max(Duration::from_millis(5));
    let mut wait = Duration::ZERO;
    let mut stalled_reported = false;
    loop {
        let (flag, wake) = stop;
        let guard = flag.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (guard, _) =
            wake.wait_timeout_while(guard, wait, |stopped| !*stopped).unwrap_or_else(|poisoned| poisoned.into_inner());
        if *guard {
            return;
        }
        drop(guard);
        match registry.check() {
            Check::Alive => {
                if let Err(e) = notifier.send("WATCHDOG=1") {
                    log::warn!("watchdog ping failed: {e}");
                }
                if stalled_reported {
                    log::info!("watchdog: all loops are beating again, pings resumed");
                    stalled_reported = false;
                }
                wait = half;
            }
            Check::Stalled(names) => {
                if !stalled_reported {
                    log::warn!(
                        "watchdog: withholding pings, no progress from {}; systemd restarts the daemon \
                         if this lasts {:?}",
                        registry.silence(&names),
                        interval
                    );
                    stalled_reported = true;
                }
                wait = retry;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify_listener::receive;
    use std::os::unix::net::UnixDatagram;

    fn inert() -> Watchdog {
        Watchdog::new(None, None)
    }

    #[test]
    fn parses_interval_for_this_process() {
        assert_eq!(interval_from(Some("30000000"), None, 7).unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(interval_from(Some("30000000"), Some("7"), 7).unwrap(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn ignores_an_interval_meant_for_another_process_or_absent() {
        assert_eq!(interval_from(Some("30000000"), Some("8"), 7).unwrap(), None);
        assert_eq!(interval_from(None, Some("7"), 7).unwrap(), None);
        assert_eq!(interval_from(Some(""), None, 7).unwrap(), None);
    }

    #[test]
    fn rejects_bad_values_by_name() {
        let err = interval_from(Some("soon"), None, 7).unwrap_err().to_string();
        assert!(err.contains("WATCHDOG_USEC") && err.contains("soon"), "{err}");
        let err = interval_from(Some("0"), None, 7).unwrap_err().to_string();
        assert!(err.contains("WATCHDOG_USEC=0"), "{err}");
        let err = interval_from(Some("100"), Some("me"), 7).unwrap_err().to_string();
        assert!(err.contains("WATCHDOG_PID") && err.contains("me"), "{err}");
    }

    #[test]
    fn alive_only_when_every_source_beat_since_the_last_ping() {
        let dog = inert();
        let api = dog.register("api");
        let reconcile = dog.register("reconcile");
        assert_eq!(dog.registry.check(), Check::Alive, "registering counts as progress");
        assert_eq!(dog.registry.check(), Check::Stalled(vec!["api".into(), "reconcile".into()]));
        api.beat();
        assert_eq!(dog.registry.check(), Check::Stalled(vec!["reconcile".into()]));
        reconcile.beat();
        assert_eq!(dog.registry.check(), Check::Alive);
        api.beat();
        assert_eq!(dog.registry.check(), Check::Stalled(vec!["reconcile".into()]), "a ping clears the marks");
    }

    #[test]
    fn a_dropped_heartbeat_no_longer_counts() {
        let dog = inert();
        let api = dog.register("api");
        let worker = dog.register("pod-worker");
        let worker_clone = worker.clone();
        assert_eq!(dog.registry.check(), Check::Alive);
        drop(worker);
        api.beat();
        assert_eq!(dog.registry.check(), Check::Stalled(vec!["pod-worker".into()]), "a clone keeps it alive");
        drop(worker_clone);
        assert_eq!(dog.registry.check(), Check::Alive);
    }

    #[test]
    fn a_loop_that_panicked_stops_the_pings_for_good() {
        let dog = inert();
        let api = dog.register("api");
        let worker = dog.register("reconcile");
        let died = std::thread::spawn(move || {
            let _mine = worker;
            panic!("reconcile loop fails");
        })
        .join();
        assert!(died.is_err());
        api.beat();
        assert_eq!(dog.registry.check(), Check::Stalled(vec!["reconcile".into()]));
        assert_eq!(dog.registry.silence(&["reconcile".into()]), "reconcile (panicked)");
    }

    #[test]
    fn the_stall_message_names_the_silent_source() {
        let dog = inert();
        let _api = dog.register("api");
        assert!(dog.registry.silence(&["api".into()]).starts_with("api (last beat "));
    }

    #[test]
    fn inert_without_interval_or_socket() {
        let dog = inert();
        assert_eq!(dog.interval(), None);
        assert_eq!(dog.beat_every(), DEFAULT_BEAT_EVERY);
        let guard = dog.spawn().unwrap();
        assert!(guard.thread.is_none());
    }

    #[test]
    fn pings_while_beating_and_stops_when_the_loop_wedges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let interval = Duration::from_millis(100);
        let dog = Watchdog::new(Some(interval), Some(Notifier::new(path.to_str().unwrap()).unwrap()));
        assert_eq!(dog.beat_every(), Duration::from_millis(25));
        let heartbeat = dog.register("loop");
        let _guard = dog.spawn().unwrap();

        for _ in 0..3 {
            heartbeat.beat();
            assert_eq!(receive(&listener, Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"));
        }
        // Wedged: no beats. The mark from the last beat may still buy one ping, never more.
        let mut late_pings = 0;
        while receive(&listener, interval * 10).is_some() {
            late_pings += 1;
            assert!(late_pings <= 1, "pings went on without beats");
        }
        heartbeat.beat();
        assert_eq!(receive(&listener, Duration::from_secs(10)).as_deref(), Some("WATCHDOG=1"), "pings resume");
    }

    #[test]
    fn dropping_the_guard_stops_the_pings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let dog = Watchdog::new(Some(Duration::from_millis(20)), Some(Notifier::new(path.to_str().unwrap()).unwrap()));
        let guard = dog.spawn().unwrap();
        assert!(receive(&listener, Duration::from_secs(10)).is_some(), "no sources: alive");
        drop(guard);
        while receive(&listener, Duration::from_millis(1)).is_some() {}
        assert_eq!(receive(&listener, Duration::from_millis(200)), None);
    }
}
