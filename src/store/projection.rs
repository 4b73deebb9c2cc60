//! Catch-up projections: tables derived from the events after the fact, kept current by the
//! engines and rebuildable from scratch.
//!
//! A batch, in one transaction: lock the projection's row (`FOR UPDATE SKIP LOCKED`: one engine
//! at a time moves a projection, the others skip it), find the instances with events after its
//! checkpoint in `(xid, position)` order and below the oldest running transaction (so an event
//! committed late is found late, never skipped), read those instances' streams by sequence
//! number from the projection's watermark for each (so every stream is applied in order, each
//! event once, whatever order transactions committed in), apply them, move the watermarks and
//! the checkpoint, commit. A failed batch changes nothing and is tried again.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Error, Result, Store};
use crate::machine::{upcast, Event, TimerKind};

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Its position in the instance's stream, from 1.
    pub seq: i64,
    /// The event type (`JobCreated`, ...).
    pub event_type: String,
    /// The event as JSON, as stored.
    pub data: Value,
    /// The event, read through [`upcast`](crate::machine::upcast) from the schema it was
    /// stored with.
    pub event: Event,
    /// When it was recorded (engine clock).
    pub recorded_at: DateTime<Utc>,
}

/// New events of one instance, in stream order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceEvents {
    /// The instance.
    pub instance_id: Uuid,
    /// Its process.
    pub process_id: String,
    /// Its definition version.
    pub version: i32,
    /// Its events after those the projection has applied, in order.
    pub events: Vec<StoredEvent>,
}

/// A catch-up projection. Register it with [`crate::EngineBuilder::projection`]; the engine
/// feeds it batches of new events and moves its checkpoint in the same transaction as the
/// projection's own writes.
pub trait Projection: Send + Sync + 'static {
    /// Its name, the key of its checkpoint (e.g. `activity`).
    fn name(&self) -> &str;

    /// Apply a batch: the new events of some instances, each stream in order. Runs in the
    /// transaction that moves the checkpoint; `schema` is the engine's schema.
    fn apply<'a>(
        &'a self,
        tx: &'a tokio_postgres::Transaction<'a>,
        schema: &'a str,
        batch: &'a [InstanceEvents],
    ) -> BoxFuture<'a, Result<()>>;

    /// Delete everything the projection wrote, before it is rebuilt from the first event.
    fn reset<'a>(
        &'a self,
        tx: &'a tokio_postgres::Transaction<'a>,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
}

/// A projection's checkpoint and lag, for `longrun projections`.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    /// The projection.
    pub name: String,
    /// Checkpoint: transaction id of the last event read.
    pub last_xid: i64,
    /// Checkpoint: position of the last event read.
    pub last_position: i64,
    /// Events applied since the last rebuild.
    pub events: i64,
    /// Committed events after the checkpoint, not read yet.
    pub behind: i64,
    /// When it was last reset for a rebuild.
    pub rebuilt_at: Option<DateTime<Utc>>,
    /// When it last applied a batch.
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Apply the streams of the instances behind at most `limit` new events to a projection,
    /// in one transaction. Returns how many new events it looked at: 0 when there were none or
    /// another engine holds the projection (call again while it returns more than 0).
    pub async fn project_once(
        &self,
        projection: &dyn Projection,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize> {
        let q = self.q();
        let name = projection.name();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut claim = tx.query(&q.projection_claim, &[&name]).await?;
        if claim.is_empty() {
            tx.execute(&q.projection_create, &[&name, &now]).await?;
            claim = tx.query(&q.projection_claim, &[&name]).await?;
        }
        let Some(row) = claim.first() else {
            tx.commit().await?;
            return Ok(0);
        };
        let (xid, position): (i64, i64) = (row.get("last_xid"), row.get("last_position"));
        let scanned = tx
            .query(&q.projection_scan, &[&xid, &position, &limit])
            .await?;
        let Some(last) = scanned.last() else {
            // Keeps the projection's row if this batch created it.
            tx.commit().await?;
            return Ok(0);
        };
        let (new_xid, new_position): (i64, i64) = (last.get("xid"), last.get("position"));
        let mut ids: Vec<Uuid> = scanned.iter().map(|r| r.get("instance_id")).collect();
        ids.sort();
        ids.dedup();
        let mut batch: Vec<InstanceEvents> = Vec::new();
        for r in tx.query(&q.projection_events, &[&name, &ids]).await? {
            let id: Uuid = r.get("instance_id");
            let seq: i64 = r.get("seq");
            let event_type: String = r.get("event_type");
            let data: Value = r.get("data");
            let typed = upcast(r.get("schema_version"), &event_type, data.clone())
                .map_err(|e| Error::BadInput(format!("event {seq} of {id}: {e}")))?;
            let event = StoredEvent {
                seq,
                event_type,
                data,
                event: typed,
                recorded_at: r.get("recorded_at"),
            };
            match batch.last_mut() {
                Some(b) if b.instance_id == id => b.events.push(event),
                _ => batch.push(InstanceEvents {
                    instance_id: id,
                    process_id: r.get("process_id"),
                    version: r.get("version"),
                    events: vec![event],
                }),
            }
        }
        let applied: usize = batch.iter().map(|b| b.events.len()).sum();
        if !batch.is_empty() {
            projection.apply(&tx, self.schema(), &batch).await?;
            let seqs: Vec<i64> = batch
                .iter()
                .map(|b| b.events.last().map_or(0, |e| e.seq))
                .collect();
            let bids: Vec<Uuid> = batch.iter().map(|b| b.instance_id).collect();
            tx.execute(&q.projection_advance, &[&name, &bids, &seqs])
                .await?;
        }
        tx.execute(
            &q.projection_checkpoint,
            &[&name, &new_xid, &new_position, &(applied as i64), &now],
        )
        .await?;
        tx.commit().await?;
        metrics::counter!(crate::telemetry::PROJECTION_EVENTS, "projection" => name.to_string())
            .increment(scanned.len() as u64);
        Ok(scanned.len())
    }

    /// Reset a projection to the first event: its rows are deleted and its checkpoint and
    /// watermarks cleared, in one transaction (waiting for a batch in flight to finish). The
    /// engines, or [`Store::project_all`], then rebuild it.
    pub async fn reset_projection(
        &self,
        projection: &dyn Projection,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let q = self.q();
        let name = projection.name();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(&q.projection_create, &[&name, &now]).await?;
        tx.execute(&q.projection_lock, &[&name]).await?;
        projection.reset(&tx, self.schema()).await?;
        tx.execute(&q.projection_reset, &[&name, &now]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bring a projection up to date: batches until nothing is left, calling `progress` with
    /// the events applied so far after each.
    pub async fn project_all(
        &self,
        projection: &dyn Projection,
        now: impl Fn() -> DateTime<Utc>,
        mut progress: impl FnMut(usize),
    ) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.project_once(projection, now(), 10_000).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
            progress(total);
        }
    }

    /// Every projection's checkpoint and lag.
    pub async fn projections(&self) -> Result<Vec<ProjectionStatus>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().projections_list).await?;
        Ok(c.query(&stmt, &[])
            .await?
            .iter()
            .map(|r| ProjectionStatus {
                name: r.get("name"),
                last_xid: r.get("last_xid"),
                last_position: r.get("last_position"),
                events: r.get("events"),
                rebuilt_at: r.get("rebuilt_at"),
                updated_at: r.get("updated_at"),
                behind: r.get("behind"),
            })
            .collect())
    }
}

/// The activity history: one row per step execution in `activity`, from the event that began
/// it to the one that ended it, with its outcome and attempts.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActivityHistory;

/// An `activity` row being built.
#[derive(Debug, Clone)]
struct Row {
    instance_id: Uuid,
    seq: i64,
    process_id: String,
    version: i32,
    step: String,
    kind: String,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    attempts: i32,
    incident: bool,
}

impl Row {
    /// What the row adds to its step's counters: waiting, incidents, completed, cancelled
    /// (ended by the instance's cancel or failure, or its wait withdrawn by a cancel).
    fn counts(&self) -> [i64; 4] {
        match (&self.ended_at, self.outcome.as_deref()) {
            (None, _) => [1, i64::from(self.incident), 0, 0],
            (Some(_), Some(o))
                if o == "cancelled" || o == "failed" || o.starts_with("interrupted: cancelled") =>
            {
                [0, 0, 0, 1]
            }
            (Some(_), _) => [0, 0, 1, 0],
        }
    }
}

/// Changes to the counters from one batch.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    /// By (process, version, step): waiting, incidents, completed, cancelled.
    steps: BTreeMap<(String, i32, String), [i64; 4]>,
    /// By (process, version): running, completed, failed, cancelled.
    versions: BTreeMap<(String, i32), [i64; 4]>,
}

impl Counts {
    fn step(&mut self, row: &Row, sign: i64) {
        let e = self
            .steps
            .entry((row.process_id.clone(), row.version, row.step.clone()))
            .or_default();
        for (a, b) in e.iter_mut().zip(row.counts()) {
            *a += sign * b;
        }
    }

    fn version(&mut self, process: &str, version: i32, column: usize, delta: i64) {
        self.versions
            .entry((process.to_string(), version))
            .or_default()[column] += delta;
    }

    /// Instance status changes in a batch. `b.version` is the instance's version after its
    /// last event in the batch (read with them); a `Migrated` event names the one before.
    fn instances(&mut self, b: &InstanceEvents) {
        let mut version = b
            .events
            .iter()
            .find_map(|e| match e.event {
                Event::Migrated { from_version, .. } => Some(from_version),
                _ => None,
            })
            .unwrap_or(b.version);
        for e in &b.events {
            let p = &b.process_id;
            let column = match &e.event {
                Event::InstanceStarted { .. } => {
                    self.version(p, version, 0, 1);
                    continue;
                }
                Event::Migrated { to_version, .. } => {
                    self.version(p, version, 0, -1);
                    self.version(p, *to_version, 0, 1);
                    version = *to_version;
                    continue;
                }
                Event::InstanceCompleted { .. } => 1,
                Event::InstanceFailed { .. } => 2,
                Event::InstanceCancelled { .. } => 3,
                _ => continue,
            };
            self.version(p, version, 0, -1);
            self.version(p, version, column, 1);
        }
    }
}

impl ActivityHistory {
    /// Fold one batch into rows to write, given the rows still open from earlier batches,
    /// and the changes to the counters.
    fn fold(batch: &[InstanceEvents], open_rows: Vec<Row>) -> (Vec<Row>, Counts) {
        let mut counts = Counts::default();
        let before: HashMap<(Uuid, i64), Row> = open_rows
            .iter()
            .map(|r| ((r.instance_id, r.seq), r.clone()))
            .collect();
        for b in batch {
            counts.instances(b);
        }
        let rows = Self::fold_rows(batch, open_rows);
        for row in &rows {
            if let Some(old) = before.get(&(row.instance_id, row.seq)) {
                counts.step(old, -1);
            }
            counts.step(row, 1);
        }
        counts.steps.retain(|_, c| c.iter().any(|n| *n != 0));
        counts.versions.retain(|_, c| c.iter().any(|n| *n != 0));
        (rows, counts)
    }

    fn fold_rows(batch: &[InstanceEvents], open_rows: Vec<Row>) -> Vec<Row> {
        // Open executions by (instance, step); finished rows to write.
        let mut open: HashMap<(Uuid, String), Row> = open_rows
            .into_iter()
            .map(|r| ((r.instance_id, r.step.clone()), r))
            .collect();
        let mut touched: BTreeMap<(Uuid, i64), Row> = BTreeMap::new();
        for b in batch {
            for e in &b.events {
                let step = e.event.step().unwrap_or_default().to_string();
                let new_row = |kind: &'static str, ended: bool, outcome: Option<String>| Row {
                    instance_id: b.instance_id,
                    seq: e.seq,
                    process_id: b.process_id.clone(),
                    version: b.version,
                    step: step.clone(),
                    kind: kind.to_string(),
                    started_at: e.recorded_at,
                    ended_at: ended.then_some(e.recorded_at),
                    outcome,
                    attempts: 1,
                    incident: false,
                };
                match Activity::of(&e.event) {
                    Activity::Begin(kind) => {
                        // A step entered again closes what was left open there (it cannot be).
                        if let Some(mut prev) = open.remove(&(b.instance_id, step.clone())) {
                            prev.ended_at.get_or_insert(e.recorded_at);
                            prev.outcome.get_or_insert_with(|| "left".into());
                            touched.insert((prev.instance_id, prev.seq), prev);
                        }
                        let row = new_row(kind, false, None);
                        open.insert((b.instance_id, step.clone()), row);
                    }
                    Activity::Instant(kind, outcome) => {
                        let row = new_row(kind, true, Some(outcome));
                        touched.insert((row.instance_id, row.seq), row);
                    }
                    Activity::Close(outcome) => {
                        if let Some(mut row) = open.remove(&(b.instance_id, step.clone())) {
                            row.ended_at = Some(e.recorded_at);
                            row.outcome = Some(outcome);
                            touched.insert((row.instance_id, row.seq), row);
                        }
                    }
                    Activity::Rename(steps) => {
                        // Open executions follow their steps to the new version's ids.
                        for (old, new) in steps {
                            if let Some(row) = open.remove(&(b.instance_id, old.clone())) {
                                open.insert((b.instance_id, new.clone()), row);
                            }
                        }
                    }
                    Activity::Retry => {
                        if let Some(row) = open.get_mut(&(b.instance_id, step.clone())) {
                            row.attempts += 1;
                            touched.insert((row.instance_id, row.seq), row.clone());
                        }
                    }
                    Activity::Incident(raised) => {
                        if let Some(row) = open.get_mut(&(b.instance_id, step.clone())) {
                            row.incident = raised;
                            touched.insert((row.instance_id, row.seq), row.clone());
                        }
                    }
                    Activity::EndAll(outcome) => {
                        let keys: Vec<(Uuid, String)> = open
                            .keys()
                            .filter(|(i, _)| *i == b.instance_id)
                            .cloned()
                            .collect();
                        for k in keys {
                            let mut row = open.remove(&k).expect("listed");
                            row.ended_at = Some(e.recorded_at);
                            row.outcome = Some(outcome.into());
                            touched.insert((row.instance_id, row.seq), row);
                        }
                    }
                    Activity::Nothing => {}
                }
            }
        }
        // Rows begun in this batch and still open are written open.
        for row in open.into_values() {
            touched.entry((row.instance_id, row.seq)).or_insert(row);
        }
        touched.into_values().collect()
    }
}

/// What an event does to the activity rows of its step.
enum Activity<'a> {
    /// An execution of a step of this kind begins (and stays open).
    Begin(&'static str),
    /// A step of this kind ran in an instant, with this outcome.
    Instant(&'static str, String),
    /// The open execution of the step ends with this outcome.
    Close(String),
    /// Open executions follow renamed steps (old id -> new id).
    Rename(&'a BTreeMap<String, String>),
    /// The open execution is tried once more.
    Retry,
    /// The open execution has an incident (`true`) or no longer has one.
    Incident(bool),
    /// Every open execution of the instance ends with this outcome.
    EndAll(&'static str),
    /// Nothing for the activity table.
    Nothing,
}

impl<'a> Activity<'a> {
    fn of(event: &'a Event) -> Self {
        match event {
            Event::JobCreated { .. } => Activity::Begin("job"),
            Event::MessageAwaited { .. } => Activity::Begin("receive"),
            Event::TimerScheduled {
                kind: TimerKind::Step,
                ..
            } => Activity::Begin("timer"),
            Event::GatewayEntered { .. } => Activity::Begin("event_gateway"),
            Event::ChildStarted { .. } => Activity::Begin("call"),
            Event::MessageSent { name, .. } => Activity::Instant("send", format!("sent {name}")),
            Event::GatewayDecided { next, .. } => {
                Activity::Instant("exclusive", format!("took {next}"))
            }
            Event::ParallelForked { branches, .. } => {
                Activity::Instant("parallel", format!("forked into {}", branches.join(", ")))
            }
            Event::JoinArrived {
                arrived, expected, ..
            } => Activity::Instant("join", format!("arrived {arrived} of {expected}")),
            Event::BranchEnded { .. } => Activity::Instant("end", "branch ended".into()),
            Event::InstanceCompleted { .. } => Activity::Instant("end", "completed".into()),
            Event::JobCompleted { .. } => Activity::Close("completed".into()),
            Event::BusinessErrorCaught { code, .. } => Activity::Close(format!("error {code}")),
            Event::MessageCorrelated { name, .. } => Activity::Close(format!("message {name}")),
            Event::TimerFired {
                kind: TimerKind::Step,
                ..
            } => Activity::Close("fired".into()),
            Event::WaitInterrupted { by, .. } => Activity::Close(format!("interrupted: {by}")),
            Event::ChildCompleted { .. } => Activity::Close("child completed".into()),
            Event::Migrated { steps, .. } => Activity::Rename(steps),
            Event::JobRetryScheduled { .. } => Activity::Retry,
            Event::IncidentRaised { .. } => Activity::Incident(true),
            Event::IncidentResolved { .. } => Activity::Incident(false),
            Event::InstanceFailed { .. } => Activity::EndAll("failed"),
            Event::InstanceCancelled { .. } => Activity::EndAll("cancelled"),
            _ => Activity::Nothing,
        }
    }
}

impl Projection for ActivityHistory {
    fn name(&self) -> &str {
        "activity"
    }

    fn apply<'a>(
        &'a self,
        tx: &'a tokio_postgres::Transaction<'a>,
        schema: &'a str,
        batch: &'a [InstanceEvents],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let open_sql =
                super::sql::render(include_str!("../../sql/queries/activity_open.sql"), schema);
            let ids: Vec<Uuid> = batch.iter().map(|b| b.instance_id).collect();
            let open: Vec<Row> = tx
                .query(&open_sql, &[&ids])
                .await?
                .iter()
                .map(|r| Row {
                    instance_id: r.get("instance_id"),
                    seq: r.get("seq"),
                    process_id: r.get("process_id"),
                    version: r.get("version"),
                    step: r.get("step_id"),
                    kind: r.get("kind"),
                    started_at: r.get("started_at"),
                    ended_at: None,
                    outcome: None,
                    attempts: r.get("attempts"),
                    incident: r.get("incident"),
                })
                .collect();
            let (rows, counts) = Self::fold(batch, open);
            write_counts(tx, schema, &counts).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let upsert = super::sql::render(
                include_str!("../../sql/queries/activity_upsert.sql"),
                schema,
            );
            let inst: Vec<Uuid> = rows.iter().map(|r| r.instance_id).collect();
            let seq: Vec<i64> = rows.iter().map(|r| r.seq).collect();
            let process: Vec<&str> = rows.iter().map(|r| r.process_id.as_str()).collect();
            let version: Vec<i32> = rows.iter().map(|r| r.version).collect();
            let step: Vec<&str> = rows.iter().map(|r| r.step.as_str()).collect();
            let kind: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
            let started: Vec<DateTime<Utc>> = rows.iter().map(|r| r.started_at).collect();
            let ended: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.ended_at).collect();
            let outcome: Vec<Option<&str>> = rows.iter().map(|r| r.outcome.as_deref()).collect();
            let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
            let incident: Vec<bool> = rows.iter().map(|r| r.incident).collect();
            tx.execute(
                &upsert,
                &[
                    &inst, &seq, &process, &version, &step, &kind, &started, &ended, &outcome,
                    &attempts, &incident,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn reset<'a>(
        &'a self,
        tx: &'a tokio_postgres::Transaction<'a>,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let sql =
                super::sql::render(include_str!("../../sql/queries/activity_reset.sql"), schema);
            tx.batch_execute(&sql).await?;
            Ok(())
        })
    }
}

/// Add a batch's changes to `step_counts` and `version_counts`.
async fn write_counts(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    counts: &Counts,
) -> Result<()> {
    if !counts.steps.is_empty() {
        let sql = super::sql::render(
            include_str!("../../sql/queries/step_counts_add.sql"),
            schema,
        );
        let keys: Vec<&(String, i32, String)> = counts.steps.keys().collect();
        let process: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let version: Vec<i32> = keys.iter().map(|k| k.1).collect();
        let step: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        let col = |i: usize| -> Vec<i64> { counts.steps.values().map(|c| c[i]).collect() };
        let (w, n, c, x) = (col(0), col(1), col(2), col(3));
        tx.execute(&sql, &[&process, &version, &step, &w, &n, &c, &x])
            .await?;
    }
    if !counts.versions.is_empty() {
        let sql = super::sql::render(
            include_str!("../../sql/queries/version_counts_add.sql"),
            schema,
        );
        let process: Vec<&str> = counts.versions.keys().map(|k| k.0.as_str()).collect();
        let version: Vec<i32> = counts.versions.keys().map(|k| k.1).collect();
        let col = |i: usize| -> Vec<i64> { counts.versions.values().map(|c| c[i]).collect() };
        let (r, c, f, x) = (col(0), col(1), col(2), col(3));
        tx.execute(&sql, &[&process, &version, &r, &c, &f, &x])
            .await?;
    }
    Ok(())
}

/// The projections built into longrun, by name.
pub fn builtin_projection(name: &str) -> Result<Box<dyn Projection>> {
    match name {
        "activity" => Ok(Box::new(ActivityHistory)),
        other => Err(Error::BadInput(format!(
            "unknown projection \"{other}\" (built in: activity)"
        ))),
    }
}
