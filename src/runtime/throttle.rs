//! Repeated errors, logged at a bounded rate and never silently: the first failure of a run is
//! logged at once, later ones at most every [`EVERY`] with how many were not logged in
//! between, and the first success after failures says how long they lasted (a database outage
//! and the reconnect show as two lines, not one per poll).

use std::time::{Duration, Instant};

/// The least time between two log lines of one [`Throttle`].
pub(crate) const EVERY: Duration = Duration::from_secs(30);

/// The failures of one repeated action (a worker's claim, read or round).
#[derive(Debug)]
pub(crate) struct Throttle {
    what: &'static str,
    first: Option<Instant>,
    logged: Option<Instant>,
    failures: u64,
    unlogged: u64,
}

impl Throttle {
    /// For the action `what` (e.g. "claiming jobs").
    pub(crate) fn new(what: &'static str) -> Throttle {
        Throttle {
            what,
            first: None,
            logged: None,
            failures: 0,
            unlogged: 0,
        }
    }

    /// It failed: log now, or count it for the next line.
    pub(crate) fn failed(&mut self, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        self.failures += 1;
        self.first.get_or_insert(now);
        if self.logged.is_some_and(|t| now.duration_since(t) < EVERY) {
            self.unlogged += 1;
            return;
        }
        if self.unlogged == 0 {
            tracing::warn!(error = %error, "{} failed; it will be tried again", self.what);
        } else {
            tracing::warn!(
                error = %error,
                failures = self.failures,
                not_logged = self.unlogged,
                "{} keeps failing ({} times in {:.0} s; {} not logged since the last line)",
                self.what,
                self.failures,
                self.first.map_or(0.0, |f| now.duration_since(f).as_secs_f64()),
                self.unlogged
            );
        }
        self.logged = Some(now);
        self.unlogged = 0;
    }

    /// It worked: if it had failed, say that it works again.
    pub(crate) fn ok(&mut self) {
        if let Some(first) = self.first.take() {
            tracing::info!(
                failures = self.failures,
                "{} works again after {} failures over {:.1} s",
                self.what,
                self.failures,
                first.elapsed().as_secs_f64()
            );
        }
        self.failures = 0;
        self.unlogged = 0;
        self.logged = None;
    }

    /// Failures since the last success.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_are_counted_and_a_success_resets() {
        let mut t = Throttle::new("reading");
        for _ in 0..100 {
            t.failed(&"connection refused");
        }
        assert_eq!(t.failures(), 100);
        assert_eq!(
            t.unlogged, 99,
            "one line for a hundred failures within 30 s"
        );
        t.ok();
        assert_eq!(t.failures(), 0);
        assert!(t.first.is_none());
        t.failed(&"again");
        assert_eq!(t.unlogged, 0, "a new run of failures is logged at once");
    }
}
