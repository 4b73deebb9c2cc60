//! Catch-up projections: tables derived from the events after the fact, kept current by the
//! engines and rebuildable from scratch.
//!
//! A batch, in one transaction: lock the projection's row (`FOR UPDATE SKIP LOCKED`: one engine
//! at a time moves a projection, the others skip it), find the instances with events after its
//! checkpoints (one per bucket; each bucket read in `(xid, instance_id, seq)` order) and below
//! the read horizon (so an event committed late is found late, never skipped), read those
//! instances' streams by sequence
//! number from the projection's watermark for each (so every stream is applied in order, each
//! event once, whatever order transactions committed in), apply them, move the watermarks and
//! the checkpoint, commit. A failed batch changes nothing and is tried again.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

mod activity;

pub use activity::ActivityHistory;

use super::{Error, Result, Store};
use crate::machine::{upcast, Event};

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

/// A transaction that holds the read horizon of outbox consumers and projections back (it has
/// an xid and a lock on one of longrun's tables), for `longrun projections`.
#[derive(Debug, Clone, Serialize)]
pub struct HorizonHolder {
    /// Its backend's process id (`pg_terminate_backend` takes it).
    pub pid: i32,
    /// Its `application_name`.
    pub application_name: String,
    /// The role it runs as.
    pub user_name: String,
    /// Its state (`active`, `idle in transaction`, ...).
    pub state: String,
    /// When its transaction began.
    pub xact_start: Option<DateTime<Utc>>,
    /// Its transaction id.
    pub xid: String,
    /// The start of the last statement it ran.
    pub last_query: String,
}

/// A projection's checkpoint and lag, for `longrun projections`.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    /// The projection.
    pub name: String,
    /// Events applied since the last rebuild.
    pub events: i64,
    /// Committed events after the checkpoints, not read yet.
    pub behind: i64,
    /// The buckets with events not read yet.
    pub buckets_behind: i64,
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
        if claim.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let horizon = self.read_horizon(&tx).await?;
        let mut per_bucket = super::consumer::per_bucket(limit, 64);
        let scanned = loop {
            let rows = tx
                .query(&q.projection_scan, &[&name, &horizon, &per_bucket, &limit])
                .await?;
            // As for consumers: a short batch means nothing more is readable now.
            if (rows.len() as i64) < limit
                && per_bucket < limit
                && super::consumer::bucket_filled(rows.iter().map(|r| r.get("bucket")), per_bucket)
            {
                per_bucket = limit;
                continue;
            }
            break rows;
        };
        if scanned.is_empty() {
            // Keeps the projection's row if this batch created it.
            tx.commit().await?;
            return Ok(0);
        }
        // Each bucket's new checkpoint: the last event of it looked at.
        let last = super::consumer::last_of_each_bucket(scanned.iter().map(|r| {
            let key = (r.get("xid"), r.get("instance_id"), r.get("seq"));
            (r.get("bucket"), key)
        }));
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
        let buckets: Vec<i16> = last.keys().copied().collect();
        let xids: Vec<i64> = last.values().map(|k| k.0).collect();
        let instances: Vec<Uuid> = last.values().map(|k| k.1).collect();
        let last_seqs: Vec<i64> = last.values().map(|k| k.2).collect();
        tx.execute(
            &q.projection_checkpoint,
            &[
                &name,
                &buckets,
                &xids,
                &instances,
                &last_seqs,
                &(applied as i64),
                &now,
            ],
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

    /// The transactions holding the read horizon back, oldest first: while one stays open,
    /// outbox delivery and projections stop at the first row it could still write before.
    pub async fn horizon_holders(&self) -> Result<Vec<HorizonHolder>> {
        use super::Conn;
        let c = self.client().await?;
        let mut holders: Vec<HorizonHolder> = c
            .rows(&self.q().horizon_holders, &[])
            .await?
            .iter()
            .map(|r| HorizonHolder {
                pid: r.get("pid"),
                application_name: r.get("application_name"),
                user_name: r.get("user_name"),
                state: r.get("state"),
                xact_start: r.get("xact_start"),
                xid: r.get("xid"),
                last_query: r.get("last_query"),
            })
            .collect();
        holders.sort_by_key(|h| h.xact_start);
        Ok(holders)
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
                events: r.get("events"),
                buckets_behind: r.get("buckets_behind"),
                rebuilt_at: r.get("rebuilt_at"),
                updated_at: r.get("updated_at"),
                behind: r.get("behind"),
            })
            .collect())
    }
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
