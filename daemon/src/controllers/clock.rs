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

    /// A clock that starts at the system time and moves only when `ManualTime::advance` is called.
    pub fn manual() -> (Clock, ManualTime) {
        let now = Arc::new(Mutex::new(SystemTime::now()));
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
