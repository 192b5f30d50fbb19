//! Where controllers read the wall clock: the system's, or one a test moves by hand so
//! deadlines and windows can be crossed without waiting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of the current time; cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(SystemTime::now))
    }

    /// A clock that starts at the system time, on a whole second as stored timestamps
    /// are, and moves only when `ManualTime::advance` is called.
    pub fn manual() -> (Clock, ManualTime) {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
        let now = Arc::new(Mutex::new(start));
        let read = now.clone();
        (Clock(Arc::new(move || *read.lock().unwrap_or_else(|p| p.into_inner()))), ManualTime(now))
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

/// The hand that moves a manual clock.
#[derive(Clone)]
pub struct ManualTime(Arc<Mutex<SystemTime>>);

impl ManualTime {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }
}
