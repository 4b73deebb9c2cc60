//! How failed service steps are retried.

use serde::{Deserialize, Serialize};

use super::{parse_duration, parse_duration_lenient, MAX_SPAN};

/// How a failing service step is retried: attempt n waits `initial_interval × backoff^(n-2)`
/// (at most `max_interval`) after attempt n-1 failed; after `max_attempts` an incident is
/// raised and the instance stays at the step until an operator retries or cancels it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 to 100).
    pub max_attempts: u32,
    /// Wait before the second attempt (ISO 8601). Default `PT1S`.
    #[serde(default = "default_interval")]
    pub initial_interval: String,
    /// Factor by which each wait grows (at least 1). Default 2.
    #[serde(default = "default_backoff")]
    pub backoff: f64,
    /// The longest wait (ISO 8601); default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    /// Spread each wait randomly over 50%..100% of it (deterministically per job and
    /// attempt), so that many failures do not retry in lockstep.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jitter: bool,
}

fn default_interval() -> String {
    "PT1S".into()
}

fn default_backoff() -> f64 {
    2.0
}

impl RetryPolicy {
    /// At most `max_attempts` attempts, waiting `initial_interval` and doubling.
    pub fn new(max_attempts: u32, initial_interval: impl Into<String>) -> Self {
        RetryPolicy {
            max_attempts,
            initial_interval: initial_interval.into(),
            backoff: 2.0,
            max_interval: None,
            jitter: false,
        }
    }

    /// Check the policy; the error names the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(("max_attempts", "must be from 1 to 100".into()));
        }
        parse_duration(&self.initial_interval).map_err(|e| ("initial_interval", e))?;
        if !(self.backoff >= 1.0 && self.backoff <= 100.0) {
            return Err(("backoff", "must be from 1 to 100".into()));
        }
        if let Some(m) = &self.max_interval {
            parse_duration(m).map_err(|e| ("max_interval", e))?;
        }
        Ok(())
    }

    /// The wait after failed attempt `attempt` (1-based); `salt` spreads the jitter.
    pub fn wait_after(&self, attempt: u32, salt: u64) -> chrono::Duration {
        let base =
            parse_duration_lenient(&self.initial_interval).unwrap_or(chrono::Duration::seconds(1));
        let factor = self.backoff.powi(attempt.saturating_sub(1).min(60) as i32);
        let mut ms = base.num_milliseconds() as f64 * factor;
        if let Some(max) = self
            .max_interval
            .as_deref()
            .and_then(|m| parse_duration_lenient(m).ok())
        {
            ms = ms.min(max.num_milliseconds() as f64);
        }
        if self.jitter {
            ms *= 0.5 + (salt % 1000) as f64 / 2000.0;
        }
        chrono::Duration::milliseconds(ms.min(MAX_SPAN.num_milliseconds() as f64) as i64)
    }
}
