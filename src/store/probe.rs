//! One look for work of every kind while an engine is idle (`sql/queries/probe.sql`).

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// What work is waiting, by kind, as an idle engine's probe sees it
/// ([`crate::Engine::work_waiting`]).
#[derive(Debug, Default)]
pub struct WorkWaiting {
    /// Due, unleased jobs for the engine's handlers.
    pub jobs: bool,
    /// The subscribers (consumer names) with outbox messages after their checkpoint.
    pub consumers: Vec<String>,
    /// The projections with events after their checkpoint.
    pub projections: Vec<String>,
    /// The earliest timer's due time.
    pub next_timer: Option<DateTime<Utc>>,
    /// Signals still being broadcast.
    pub signals: bool,
    /// Timer starts due.
    pub start_timers: bool,
    /// Jobs for the engine's handlers whose lease lapsed (their engine died or stalled).
    pub lapsed: bool,
    /// Buffered messages past their time to live.
    pub expired: bool,
}

impl Store {
    /// Look for work of every kind in one statement.
    pub(crate) async fn probe(
        &self,
        handlers: &[String],
        now: DateTime<Utc>,
        consumers: &[String],
        projections: &[String],
    ) -> Result<WorkWaiting> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().probe).await?;
        let row = c
            .query_one(&stmt, &[&handlers, &now, &consumers, &projections])
            .await?;
        Ok(WorkWaiting {
            jobs: row.get("jobs"),
            consumers: row.get("consumers"),
            projections: row.get("projections"),
            next_timer: row.get("next_timer"),
            signals: row.get("signals"),
            start_timers: row.get("start_timers"),
            lapsed: row.get("lapsed"),
            expired: row.get("expired"),
        })
    }
}
