//! Wall-clock time as a dependency, so tests can move time without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }
    pub fn advance(&self, by: std::time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += chrono::Duration::from_std(by).unwrap_or_default();
    }
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The clock as components hold it: the engine, the providers and the simulators share one.
pub type SharedClock = std::sync::Arc<dyn Clock>;

/// The real-time default.
pub fn system() -> SharedClock {
    std::sync::Arc::new(SystemClock)
}

/// `clock.now()` as the `time` crate's type (certificate validity in rcgen).
pub fn offset_now(clock: &dyn Clock) -> time::OffsetDateTime {
    let now = clock.now();
    time::OffsetDateTime::from_unix_timestamp(now.timestamp())
        .map(|t| t + time::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos())))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
