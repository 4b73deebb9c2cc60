//! An engine's settings, with documented defaults and their checks.

use chrono::Duration;
use uuid::Uuid;

use crate::store::{Error, Result};

/// Settings of an [`Engine`](crate::Engine), with documented defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this engine in leases (`lease_owner` columns). Default: host, pid and a random
    /// suffix.
    pub owner: String,
    /// How long a claimed job is held before another engine may take it over. Default 5 min.
    pub job_lease: Duration,
    /// How many jobs one claim takes at most. Default 512.
    pub claim_batch: i64,
    /// How many instances one transaction of a signal's broadcast reaches at most. Default 500.
    pub signal_batch: usize,
    /// How many handlers run at once. Default 512.
    pub handler_concurrency: usize,
    /// How many results one completion transaction records at most. Default 512.
    pub completion_batch: usize,
    /// How many completion transactions may be in flight at once. Default 2.
    pub completers: usize,
    /// How long workers sleep when they found no work, at first. Default 200 ms.
    pub poll_interval: std::time::Duration,
    /// Each empty look doubles the sleep, up to this. Default 5 s. Work created by this
    /// engine wakes its workers at once; work created elsewhere wakes them through a
    /// LISTEN/NOTIFY hint, so the longer sleeps cost no latency.
    pub max_poll_interval: std::time::Duration,
    /// While idle, each worker looks for work of its own at most this often. Every
    /// `max_poll_interval` one statement (the probe) looks for work of every kind and wakes
    /// the workers that have some, so an idle engine costs a few statements a minute rather
    /// than one per worker every `max_poll_interval`. Default 60 s; never less than
    /// `max_poll_interval`.
    pub idle_poll_interval: std::time::Duration,
    /// How long an inbound message nobody waits for is buffered. Default 1 h.
    pub message_ttl: Duration,
    /// How many outbox messages a subscriber reads (and handles concurrently) at once.
    /// Default 512.
    pub consumer_batch: i64,
    /// How long a subscriber's hold on its consumer lasts unless renewed: another engine takes
    /// the consumer over this long after its holder died. Default 30 s.
    pub consumer_lease: Duration,
    /// How often buffered messages are expired and lapsed job leases taken over, at most:
    /// the probe looks for both every `max_poll_interval` and starts that work when it finds
    /// some, so only an interval shorter than `max_poll_interval` changes anything. Default
    /// 10 s.
    pub maintenance_interval: std::time::Duration,
    /// Keep the activity history (the `activity` projection) up to date. Default true. Any
    /// engine may do it; one at a time does.
    pub activity_history: bool,
    /// How many new events a projection batch looks at, at most. Default 2,000.
    pub projection_batch: i64,
    /// The largest payload accepted, in bytes of JSON: an inbound message's payload, a start's
    /// or a retry's variables, a handler's result. Larger ones are refused before anything is
    /// written (a handler's result fails its attempt). Default 1 MiB.
    pub max_payload_bytes: usize,
    /// How long an ended instance's history is kept when its definition declares no
    /// retention period; `None` keeps it for ever. Default 180 days
    /// ([`crate::store::DEFAULT_RETENTION`]).
    pub retention: Option<Duration>,
    /// How long an inbound message id is remembered after it was received and settled: a
    /// second delivery within it is a duplicate. Default 7 days.
    pub dedup_window: Duration,
    /// Outbound messages older than this are removed once every consumer of their topic has
    /// passed them. Default 7 days.
    pub outbox_retention: Duration,
    /// How long an engine counts as running without renewing its lease in the `engines`
    /// table; it renews every third of it. Engines that run the same handlers share the 256
    /// buckets, and each claims jobs and fires timers in its own buckets only: when an engine
    /// dies, the others take its buckets over once this has passed (one that stops gives them
    /// back at once). Default 15 s; between 100 ms and 1 hour.
    pub engine_lease: std::time::Duration,
    /// How often the engine removes what retention says is due, in batches that never hold
    /// a lock a transition needs; `None`: never (run `longrun retention` instead). Every
    /// engine may do it at once. Default 1 min.
    pub retention_interval: Option<std::time::Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let suffix = Uuid::new_v4().simple().to_string();
        EngineConfig {
            owner: format!("{host}-{}-{}", std::process::id(), &suffix[..8]),
            job_lease: Duration::minutes(5),
            claim_batch: 512,
            signal_batch: 500,
            handler_concurrency: 512,
            completion_batch: 512,
            completers: 2,
            poll_interval: std::time::Duration::from_millis(200),
            max_poll_interval: std::time::Duration::from_secs(5),
            idle_poll_interval: std::time::Duration::from_secs(60),
            message_ttl: Duration::hours(1),
            consumer_batch: 512,
            consumer_lease: Duration::seconds(30),
            maintenance_interval: std::time::Duration::from_secs(10),
            activity_history: true,
            projection_batch: 2_000,
            max_payload_bytes: 1 << 20,
            retention: Some(crate::store::DEFAULT_RETENTION),
            dedup_window: crate::store::DEFAULT_DEDUP_WINDOW,
            outbox_retention: crate::store::DEFAULT_OUTBOX_RETENTION,
            retention_interval: Some(std::time::Duration::from_secs(60)),
            engine_lease: std::time::Duration::from_secs(15),
        }
    }
}

impl EngineConfig {
    /// How long an idle worker sleeps at most: `idle_poll_interval`, or `max_poll_interval`
    /// if that is longer.
    pub fn idle_interval(&self) -> std::time::Duration {
        self.idle_poll_interval.max(self.max_poll_interval)
    }

    /// The retention these settings ask for, as a [`crate::store::Retention`].
    pub fn retention_policy(&self) -> crate::store::Retention {
        crate::store::Retention {
            default_period: self.retention,
            older_than: None,
            dedup_window: self.dedup_window,
            outbox_retention: self.outbox_retention,
            // In the background: short bursts that leave the CPU to transitions.
            batch: 100,
            pause: std::time::Duration::from_millis(20),
        }
    }

    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::BadInput(format!("engine config: {m}")));
        if self.owner.is_empty() {
            return bad("owner must not be empty");
        }
        if self.job_lease <= Duration::zero()
            || self.message_ttl <= Duration::zero()
            || self.consumer_lease <= Duration::zero()
        {
            return bad("job_lease, consumer_lease and message_ttl must be positive");
        }
        let max = crate::definition::MAX_SPAN;
        if self.job_lease > max || self.message_ttl > max || self.consumer_lease > max {
            return bad("job_lease, consumer_lease and message_ttl must be at most 100 years");
        }
        if self.claim_batch < 1
            || self.consumer_batch < 1
            || self.projection_batch < 1
            || self.signal_batch < 1
        {
            return bad(
                "claim_batch, consumer_batch, projection_batch and signal_batch must be at least 1",
            );
        }
        if self.handler_concurrency == 0 || self.completion_batch == 0 || self.completers == 0 {
            return bad("handler_concurrency, completion_batch and completers must be at least 1");
        }
        if self.poll_interval.is_zero() || self.maintenance_interval.is_zero() {
            return bad("poll_interval and maintenance_interval must be positive");
        }
        if self.max_payload_bytes < 1024 {
            return bad("max_payload_bytes must be at least 1024");
        }
        if self.engine_lease < std::time::Duration::from_millis(100)
            || self.engine_lease > std::time::Duration::from_secs(3600)
        {
            return bad("engine_lease must be between 100 ms and 1 hour");
        }
        if self.retention_interval.is_some_and(|i| i.is_zero()) {
            return bad("retention_interval must be positive");
        }
        self.retention_policy().validate()?;
        if self.max_poll_interval < self.poll_interval {
            return bad("max_poll_interval must be at least poll_interval");
        }

        Ok(())
    }
}
