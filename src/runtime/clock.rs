//! The clock the engine is given. Every timestamp longrun writes (event times, job due times,
//! message expiry) comes from it, never from the database's `now()`, so tests can move time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// How long to sleep in real time for `span` to pass on this clock (workers sleep until
    /// the next due time with it). The default: the same span.
    fn real_duration(&self, span: Duration) -> std::time::Duration {
        span.to_std().unwrap_or(std::time::Duration::ZERO)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().expect("not poisoned") += by;
    }

    /// Set the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().expect("not poisoned") = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("not poisoned")
    }
}

/// A clock that runs `factor` times faster than real time from a starting point: for demos
/// that show weeks of process time in seconds.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start: DateTime<Utc>,
    real_start: std::time::Instant,
    factor: f64,
}

impl ScaledClock {
    /// A clock showing `start` now and running `factor` times faster than real time.
    ///
    /// # Panics
    /// If `factor` is not positive.
    pub fn new(start: DateTime<Utc>, factor: f64) -> Self {
        assert!(factor > 0.0, "a clock's speed must be positive");
        ScaledClock {
            start,
            real_start: std::time::Instant::now(),
            factor,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.real_start.elapsed().as_secs_f64();
        self.start + Duration::microseconds((real * self.factor * 1e6) as i64)
    }

    fn real_duration(&self, span: Duration) -> std::time::Duration {
        let secs = span.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6 / self.factor;
        std::time::Duration::from_secs_f64(secs.max(0.0))
    }
}
