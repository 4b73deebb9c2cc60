//! Timer starts: processes that start instances by themselves on a schedule (a cycle, a date,
//! a duration after the deploy). Each process with one has a row in `start_timers`; a firing
//! starts the instance and moves the row to the next due time in one transaction, on a row
//! taken `FOR UPDATE SKIP LOCKED`, so each firing starts exactly one instance across engines.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Map;
use uuid::Uuid;

use super::{Applied, Conn, Lease, Result, Store, Work};

/// Namespace of the ids of instances started by timers: one id per (schema, process, version,
/// due time), so a firing that were ever made twice would find its instance.
const TIMER_STARTS: Uuid = Uuid::from_u128(0x6c6f_6e67_7275_6e00_8000_0000_0000_0005);

/// A process's timer start as scheduled now (`longrun timers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartTimerView {
    /// The process.
    pub process_id: String,
    /// The version whose timer it is.
    pub version: i32,
    /// When it fires next.
    pub due_at: DateTime<Utc>,
    /// Firings so far.
    pub fired: i32,
}

impl Store {
    /// Every scheduled timer start, soonest first.
    pub async fn start_timers(&self) -> Result<Vec<StartTimerView>> {
        let c = self.client().await?;
        Ok(c.rows(&self.q().start_timers_list, &[])
            .await?
            .iter()
            .map(|r| StartTimerView {
                process_id: r.get("process_id"),
                version: r.get("version"),
                due_at: r.get("due_at"),
                fired: r.get("fired"),
            })
            .collect())
    }

    /// In the caller's transaction: start one instance for each timer start due at `now` (at
    /// most `limit`), and move each to its next firing (or end its schedule). The instance has
    /// no variables and its due time (RFC 3339) as business key.
    pub(crate) async fn fire_start_timers_in(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        limit: i64,
        lease: Option<&Lease>,
    ) -> Result<(usize, Applied)> {
        let q = self.q();
        let due = c.rows(&q.start_timers_due, &[&now, &limit]).await?;
        if due.is_empty() {
            return Ok((0, Applied::default()));
        }
        let mut works = Vec::with_capacity(due.len());
        let mut moves = Vec::with_capacity(due.len());
        for row in &due {
            let process: String = row.get("process_id");
            let version: i32 = row.get("version");
            let due_at: DateTime<Utc> = row.get("due_at");
            let fired = row.get::<_, i32>("fired") + 1;
            let def = self.definition_in(c, &process, version).await?;
            let next = match def.start_timer.as_ref().map(|t| t.schedule(due_at)) {
                Some(Ok(schedule)) => schedule.next(due_at, fired as u32, now),
                // A stored version whose timer no longer reads: it fires no more.
                Some(Err(e)) => {
                    tracing::warn!(process = %process, version, error = %e, "a timer start does not read; its schedule ends");
                    None
                }
                None => None,
            };
            let key = format!(
                "{}{process}\u{1f}{version}\u{1f}{}",
                self.schema(),
                due_at.to_rfc3339()
            );
            let business_key = due_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            works.push(Work::Start {
                instance_id: crate::bucket::in_bucket(
                    Uuid::new_v5(&TIMER_STARTS, key.as_bytes()),
                    crate::bucket::bucket_of_key(&business_key),
                ),
                process: process.clone(),
                version,
                business_key,
                variables: Map::new(),
                message_id: None,
                parent: None,
                start_message: None,
                trace: None,
            });
            moves.push((process, next, fired));
        }
        let mut applied = self.apply(c, now, works, lease, Vec::new()).await?;
        // A start the machine refuses is not retried for ever: that firing is skipped, with
        // the reason in the log, and the schedule goes on.
        for ((process, _, _), outcome) in moves.iter().zip(applied.outcomes.drain(..)) {
            if let Err(e) = outcome {
                tracing::warn!(process = %process, error = %e, "a timer start could not start its instance; this firing is skipped");
            }
        }
        for (process, next, fired) in &moves {
            c.exec(&q.start_timer_move, &[process, next, fired]).await?;
        }
        Ok((moves.len(), applied))
    }
}
