//! The activity projection: one row per step execution, and the step and version counters
//! the console and the reporting views read.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::{InstanceEvents, Projection};
use crate::machine::{Event, TimerKind};
use crate::store::Result;

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
    /// A user task's first claim.
    claimed_at: Option<DateTime<Utc>>,
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
        // A multi-instance step counts once per instance, as any step (its own row); its
        // elements (`step#index`) have rows of their own in `activity`, not counts.
        if row.step.contains('#') {
            return;
        }
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
                    claimed_at: None,
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
                    Activity::Claimed => {
                        if let Some(row) = open.get_mut(&(b.instance_id, step.clone())) {
                            if row.claimed_at.is_none() {
                                row.claimed_at = Some(e.recorded_at);
                                touched.insert((row.instance_id, row.seq), row.clone());
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
    /// Someone claimed the open user task.
    Claimed,
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
            Event::SubprocessEntered { .. } => Activity::Begin("subprocess"),
            Event::SubprocessCompleted { .. } => Activity::Close("completed".into()),
            Event::MultiInstanceStarted { .. } => Activity::Begin("multi_instance"),
            Event::MultiInstanceCompleted { .. } => Activity::Close("completed".into()),
            Event::TaskCreated { .. } => Activity::Begin("user_task"),
            Event::TaskClaimed { .. } => Activity::Claimed,
            Event::TaskCompleted { by, .. } => Activity::Close(format!("completed by {by}")),
            Event::MessageSent { name, .. } => Activity::Instant("send", format!("sent {name}")),
            Event::GatewayDecided { next, .. } => {
                Activity::Instant("exclusive", format!("took {next}"))
            }
            Event::InclusiveForked { branches, .. } => {
                Activity::Instant("inclusive", format!("took {}", branches.join(", ")))
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
            let open_sql = crate::store::sql::render(
                include_str!("../../../sql/queries/activity_open.sql"),
                schema,
            );
            let ids: Vec<Uuid> = batch.iter().map(|b| b.instance_id).collect();
            let open: Vec<Row> = tx
                .query(&open_sql, &[&ids, &crate::bucket::buckets_of(&ids)])
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
                    claimed_at: r.get("claimed_at"),
                })
                .collect();
            let (rows, counts) = Self::fold(batch, open);
            write_counts(tx, schema, &counts).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let upsert = crate::store::sql::render(
                include_str!("../../../sql/queries/activity_upsert.sql"),
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
            let claimed: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.claimed_at).collect();
            tx.execute(
                &upsert,
                &[
                    &inst, &seq, &process, &version, &step, &kind, &started, &ended, &outcome,
                    &attempts, &incident, &claimed,
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
            let sql = crate::store::sql::render(
                include_str!("../../../sql/queries/activity_reset.sql"),
                schema,
            );
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
        let sql = crate::store::sql::render(
            include_str!("../../../sql/queries/step_counts_add.sql"),
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
        let sql = crate::store::sql::render(
            include_str!("../../../sql/queries/version_counts_add.sql"),
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
