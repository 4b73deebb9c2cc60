//! History with a lifetime: an ended instance's history is removed once its retention period
//! has passed, inbound message ids are forgotten after the deduplication window, outbound
//! messages once every consumer has passed them and they are old enough.
//!
//! Removal is by bounded batches, each one statement and so one short transaction: it locks
//! only the ended instances (or messages) it removes, with `SKIP LOCKED`, so no transition
//! waits for it and engines running it at once take different rows. Nothing of a running
//! instance is touched, however old it is. An instance is removed only once every registered
//! projection has applied its whole stream.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{Conn, Error, Result, Store};

/// The retention period of processes that declare none: 180 days from an instance's end.
pub const DEFAULT_RETENTION: Duration = Duration::days(180);
/// How long an inbound message id is remembered: a redelivery within it is a duplicate.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::days(7);
/// How long an outbound message is kept at least, once every consumer has passed it.
pub const DEFAULT_OUTBOX_RETENTION: Duration = Duration::days(7);

/// What a retention pass removes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The period of processes whose definition declares none; `None` keeps their history
    /// for ever. Default [`DEFAULT_RETENTION`].
    pub default_period: Option<Duration>,
    /// Instead of every process's period, remove what ended longer ago than this
    /// (`longrun retention --older-than`).
    pub older_than: Option<Duration>,
    /// Inbound message ids settled longer ago than this are forgotten (a redelivery after it
    /// is a new message). Default [`DEFAULT_DEDUP_WINDOW`].
    pub dedup_window: Duration,
    /// Outbound messages older than this that every consumer of their topic has passed are
    /// removed. Default [`DEFAULT_OUTBOX_RETENTION`].
    pub outbox_retention: Duration,
    /// Rows per batch (instances, or messages). Default 500.
    pub batch: i64,
    /// A pause after each full batch, so that a large backlog is removed in short bursts
    /// that leave the database's CPU to transitions. Default none (`longrun retention`
    /// removes at full speed); engines in the background pause 20 ms after batches of 100.
    pub pause: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            default_period: Some(DEFAULT_RETENTION),
            older_than: None,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            outbox_retention: DEFAULT_OUTBOX_RETENTION,
            batch: 500,
            pause: std::time::Duration::ZERO,
        }
    }
}

impl Retention {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::BadInput(format!("retention: {m}")));
        let max = crate::definition::MAX_SPAN;
        for (name, d) in [
            ("the default period", self.default_period),
            ("older than", self.older_than),
            ("the deduplication window", Some(self.dedup_window)),
            ("the outbox retention", Some(self.outbox_retention)),
        ] {
            if let Some(d) = d {
                if d < Duration::zero() || d > max {
                    return bad(&format!("{name} must be between 0 and 100 years"));
                }
            }
        }
        if self.dedup_window < Duration::minutes(1) {
            return bad("the deduplication window must be at least a minute");
        }
        if !(1..=100_000).contains(&self.batch) {
            return bad("the batch must be between 1 and 100,000");
        }
        Ok(())
    }
}

/// Rows a retention pass removed (or, in a dry run, would remove), per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Ended instances removed (their `instances` rows).
    pub instances: i64,
    /// Their events.
    pub events: i64,
    /// Their activity rows.
    pub activity: i64,
    /// Their projection progress rows.
    pub projection_progress: i64,
    /// Inbound messages forgotten after the deduplication window.
    pub inbox: i64,
    /// Outbound messages every consumer had passed.
    pub outbox: i64,
    /// Lock rows (`locks`) nobody took within the deduplication window.
    pub locks: i64,
    /// Ended instances past their period still kept because a projection has not applied
    /// their whole stream yet (they go in a later pass).
    pub instances_held: i64,
    /// Outbound messages past the outbox retention still kept because a consumer of their
    /// topic has not passed them yet.
    pub outbox_held: i64,
}

impl Removed {
    /// Rows removed in all.
    pub fn rows(&self) -> i64 {
        self.instances
            + self.events
            + self.activity
            + self.projection_progress
            + self.inbox
            + self.outbox
            + self.locks
    }

    /// Per table, for printing: `(table, rows)`.
    pub fn tables(&self) -> [(&'static str, i64); 7] {
        [
            ("instances", self.instances),
            ("events", self.events),
            ("activity", self.activity),
            ("projection_progress", self.projection_progress),
            ("inbox", self.inbox),
            ("outbox", self.outbox),
            ("locks", self.locks),
        ]
    }
}

/// The tables removed from by the same batch loop.
enum Table {
    Inbox,
    Outbox,
    Locks,
}

/// One process version and the time before which its ended instances go.
struct Due {
    process_id: String,
    version: i32,
    before: DateTime<Utc>,
}

impl Store {
    async fn pause(&self, policy: &Retention) {
        if !policy.pause.is_zero() {
            tokio::time::sleep(policy.pause).await;
        }
    }

    async fn due(&self, policy: &Retention, now: DateTime<Utc>) -> Result<Vec<Due>> {
        policy.validate()?;
        let c = self.client().await?;
        let rows = c.rows(&self.q().retention_definitions, &[]).await?;
        let mut due = Vec::new();
        for r in rows {
            let declared: Option<i64> = r.get("retention_ms");
            let period = match (policy.older_than, declared) {
                (Some(d), _) => d,
                (None, Some(ms)) => Duration::milliseconds(ms),
                (None, None) => match policy.default_period {
                    Some(d) => d,
                    None => continue,
                },
            };
            due.push(Due {
                process_id: r.get("process_id"),
                version: r.get("version"),
                before: now - period,
            });
        }
        Ok(due)
    }

    /// What [`Store::apply_retention`] would remove now, without removing anything.
    pub async fn retention_preview(
        &self,
        policy: &Retention,
        now: DateTime<Utc>,
    ) -> Result<Removed> {
        let due = self.due(policy, now).await?;
        let c = self.client().await?;
        let q = self.q();
        let mut out = Removed::default();
        for d in &due {
            let rows = c
                .rows(
                    &q.retention_instances_count,
                    &[&d.process_id, &d.version, &d.before],
                )
                .await?;
            let r = rows.first().ok_or(Error::Conflict("no counts".into()))?;
            out.instances += r.get::<_, i64>("instances");
            out.events += r.get::<_, i64>("events");
            out.activity += r.get::<_, i64>("activity");
            out.projection_progress += r.get::<_, i64>("projection_progress");
            out.instances_held += r.get::<_, i64>("held");
        }
        let rows = c
            .rows(&q.retention_inbox_count, &[&(now - policy.dedup_window)])
            .await?;
        out.inbox = rows.first().map_or(0, |r| r.get("messages"));
        let rows = c
            .rows(&q.retention_locks_count, &[&(now - policy.dedup_window)])
            .await?;
        out.locks = rows.first().map_or(0, |r| r.get("locks"));
        let rows = c
            .rows(
                &q.retention_outbox_count,
                &[&(now - policy.outbox_retention)],
            )
            .await?;
        if let Some(r) = rows.first() {
            out.outbox = r.get("messages");
            out.outbox_held = r.get("held");
        }
        Ok(out)
    }

    /// Remove what retention says is due at `now`, batch after batch until nothing is left,
    /// calling `progress` with the running totals after every batch. Each batch is its own
    /// short transaction: an error leaves the batches before it removed and nothing half
    /// removed. The result's `*_held` counts say what is due but waits for a projection or a
    /// consumer.
    pub async fn apply_retention(
        &self,
        policy: &Retention,
        now: DateTime<Utc>,
        mut progress: impl FnMut(&Removed),
    ) -> Result<Removed> {
        let due = self.due(policy, now).await?;
        // Each batch locks the rows of one group of buckets (one partition; on Citus one
        // shard, where a FOR UPDATE across shards is refused); NULL: the one group of all.
        let groups = self.each_group().await?;
        let c = self.client().await?;
        let q = self.q();
        let mut out = Removed::default();
        for d in &due {
            for group in &groups {
                loop {
                    let rows = c
                        .rows_planned(
                            &q.retention_instances,
                            &[&d.process_id, &d.version, &d.before, &policy.batch, group],
                        )
                        .await?;
                    let r = rows.first().ok_or(Error::Conflict("no counts".into()))?;
                    let n: i64 = r.get("instances");
                    out.instances += n;
                    out.events += r.get::<_, i64>("events");
                    out.activity += r.get::<_, i64>("activity");
                    out.projection_progress += r.get::<_, i64>("projection_progress");
                    if n > 0 {
                        progress(&out);
                    }
                    if n < policy.batch {
                        break;
                    }
                    self.pause(policy).await;
                }
            }
        }
        let inbox_before = now - policy.dedup_window;
        let outbox_before = now - policy.outbox_retention;
        // Messages: the same batch loop over the inbox, the outbox, then idle lock rows.
        for (sql, before, table) in [
            (&q.retention_inbox, inbox_before, Table::Inbox),
            (&q.retention_outbox, outbox_before, Table::Outbox),
            (&q.retention_locks, inbox_before, Table::Locks),
        ] {
            for group in &groups {
                loop {
                    let n = c
                        .exec_planned(sql, &[&before, &policy.batch, group])
                        .await? as i64;
                    *match table {
                        Table::Inbox => &mut out.inbox,
                        Table::Outbox => &mut out.outbox,
                        Table::Locks => &mut out.locks,
                    } += n;
                    if n > 0 {
                        progress(&out);
                    }
                    if n < policy.batch {
                        break;
                    }
                    self.pause(policy).await;
                }
            }
        }
        for d in &due {
            let rows = c
                .rows(
                    &q.retention_instances_count,
                    &[&d.process_id, &d.version, &d.before],
                )
                .await?;
            out.instances_held += rows.first().map_or(0, |r| r.get::<_, i64>("held"));
        }
        let rows = c.rows(&q.retention_outbox_count, &[&outbox_before]).await?;
        out.outbox_held = rows.first().map_or(0, |r| r.get("held"));
        Ok(out)
    }
}
