//! Reading the outbox from a durable position: the Postgres-native way for a participant
//! service to receive the commands and events longrun sends.
//!
//! A consumer has a name, the topics it reads (a command's topic is its recipient, an event's
//! topic is its name) and a checkpoint in each of the 256 buckets. One holder at a time reads
//! it, under a lease that polls and acknowledgements renew (once a third of it has passed); a
//! holder that lost its lease cannot move the checkpoints. Delivery is at least once: after a crash, messages read but not
//! acknowledged are read again, so a participant deduplicates by
//! [`OutboxMessage::message_id`]. Messages of one bucket (so of one instance) come in the order
//! they were sent; no order across buckets is kept.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Error, Result, Store};

/// A message from the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    /// Its bucket (the sending instance's): each bucket is read in order from its own
    /// checkpoint.
    pub bucket: i16,
    /// The writing transaction (with `instance_id` and `seq`, the read order in its bucket).
    pub xid: i64,
    /// The sequence number, in the sending instance's stream, of the event that sent it.
    pub seq: i64,
    /// Stable id: deduplicate by it.
    pub message_id: Uuid,
    /// The instance that sent it.
    pub instance_id: Uuid,
    /// The topic: recipient of a command, name of an event.
    pub topic: String,
    /// `command` or `event`.
    pub kind: String,
    /// The message name.
    pub name: String,
    /// The message key (e.g. the order id): send replies with it.
    pub key: String,
    /// The payload.
    pub payload: Value,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// The trace key it was sent under (the sending instance's; e.g. the order id); `None`
    /// for messages written before traces were kept. Reply with [`Message::traced_by`].
    ///
    /// [`Message::traced_by`]: crate::Message::traced_by
    pub trace_key: Option<String>,
    /// The W3C `traceparent` it was sent under.
    pub traceparent: Option<String>,
}

/// An outbound message to write: id, instance, topic, kind, name, key, payload, trace, and
/// the seq of the event that sent it.
pub(super) type OutboxRow = (
    Uuid,
    Uuid,
    String,
    &'static str,
    String,
    String,
    Value,
    Trace,
    i64,
);
type Trace = Option<crate::machine::Trace>;

/// A named reader of outbox topics with a durable checkpoint; see the module docs.
#[derive(Debug, Clone)]
pub struct Consumer {
    store: Store,
    name: String,
    topics: Vec<String>,
    owner: String,
    lease: Duration,
    /// How many buckets the last batch came from: each bucket is read up to twice its share
    /// of a batch, so a backlog in every bucket is not read 256 times over.
    active: Arc<AtomicUsize>,
}

impl Store {
    /// A consumer `name` reading `topics`, identified as `owner` while it holds the lease.
    pub fn consumer(
        &self,
        name: impl Into<String>,
        topics: Vec<String>,
        owner: impl Into<String>,
    ) -> Consumer {
        Consumer {
            store: self.clone(),
            name: name.into(),
            topics,
            owner: owner.into(),
            lease: Duration::seconds(30),
            active: Arc::new(AtomicUsize::new(16)),
        }
    }
}

impl Consumer {
    /// How long a lease lasts without an acknowledgement (default 30 s).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read up to `limit` messages after the checkpoints (each bucket's after its own).
    /// Returns `None` while another holder's lease runs. Reading does not move the
    /// checkpoints; [`Consumer::ack`] does.
    pub async fn poll(&self, now: DateTime<Utc>, limit: i64) -> Result<Option<Vec<OutboxMessage>>> {
        if self.topics.is_empty() {
            return Err(Error::BadInput(format!(
                "consumer {} reads no topic",
                self.name
            )));
        }
        let c = self.store.client().await?;
        let q = self.store.q();
        let claim = c.prepare_cached(&q.consumer_claim).await?;
        let expires = now + self.lease;
        let rows = c
            .query(
                &claim,
                &[
                    &self.name,
                    &self.topics,
                    &self.owner,
                    &expires,
                    &now,
                    &self.renew_before(now),
                ],
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let horizon = self.store.read_horizon(&c).await?;
        let read = c.prepare_cached(&q.outbox_read).await?;
        let mut per_bucket = per_bucket(limit, self.active.load(Ordering::Relaxed));
        let batch = loop {
            let rows = c
                .query(
                    &read,
                    &[&self.name, &horizon, &per_bucket, &limit, &self.topics],
                )
                .await?;
            // A short batch with a bucket read to its share may have left messages behind:
            // read again with the whole batch open to every bucket, so that a batch shorter
            // than `limit` always means nothing more is readable now.
            if (rows.len() as i64) < limit
                && per_bucket < limit
                && bucket_filled(rows.iter().map(|r| r.get("bucket")), per_bucket)
            {
                per_bucket = limit;
                continue;
            }
            break rows.iter().map(message).collect::<Vec<OutboxMessage>>();
        };
        if !batch.is_empty() {
            let buckets = last_per_bucket(&batch).len();
            self.active.store(buckets, Ordering::Relaxed);
        }
        Ok(Some(batch))
    }

    /// Move the checkpoints past `done` (and renew the lease): the messages of a batch from
    /// [`Consumer::poll`], all of it or its first ones (in each bucket, the checkpoint moves
    /// to the last of `done`, so a message left out before one acknowledged in its bucket is
    /// not read again). Fails with [`Error::Conflict`] if the lease was lost: another holder
    /// will read those messages.
    pub async fn ack(&self, now: DateTime<Utc>, done: &[OutboxMessage]) -> Result<()> {
        let last = last_per_bucket(done);
        let buckets: Vec<i16> = last.keys().copied().collect();
        let xids: Vec<i64> = last.values().map(|m| m.0).collect();
        let instances: Vec<Uuid> = last.values().map(|m| m.1).collect();
        let seqs: Vec<i64> = last.values().map(|m| m.2).collect();
        let c = self.store.client().await?;
        let stmt = c.prepare_cached(&self.store.q().consumer_ack).await?;
        let expires = now + self.lease;
        let held: i64 = c
            .query_one(
                &stmt,
                &[
                    &self.name,
                    &self.owner,
                    &buckets,
                    &xids,
                    &instances,
                    &seqs,
                    &expires,
                    &now,
                    &self.renew_before(now),
                ],
            )
            .await?
            .get("held");
        if held == 0 {
            return Err(Error::Conflict(format!(
                "consumer {} lost its lease; its messages will be read again",
                self.name
            )));
        }
        Ok(())
    }

    /// A lease that ends before this is renewed by a poll or an acknowledgement; one that
    /// ends later is left as it is (a third of the lease has not passed since it was renewed),
    /// so a busy consumer does not rewrite its row at every batch.
    fn renew_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.lease * 2 / 3
    }

    /// Renew the lease while a batch is still being handled (see [`Consumer::poll`]). Returns
    /// `false` if the lease was lost.
    pub async fn renew(&self, now: DateTime<Utc>) -> Result<bool> {
        let c = self.store.client().await?;
        let stmt = c.prepare_cached(&self.store.q().consumer_renew).await?;
        let expires = now + self.lease;
        let n = c
            .execute(&stmt, &[&self.name, &self.owner, &expires, &now])
            .await?;
        Ok(n > 0)
    }

    /// Give the lease up so another holder can take over at once.
    pub async fn release(&self) -> Result<()> {
        let c = self.store.client().await?;
        let stmt = c.prepare_cached(&self.store.q().consumer_release).await?;
        c.execute(&stmt, &[&self.name, &self.owner]).await?;
        Ok(())
    }
}

/// How many messages a read takes from one bucket at most: twice the bucket's share of the
/// batch among the buckets the last batch came from, at least 4, at most the batch.
pub(super) fn per_bucket(limit: i64, active: usize) -> i64 {
    let active = i64::try_from(active.max(1)).unwrap_or(i64::MAX);
    (2 * limit / active).max(4).min(limit.max(1))
}

/// Each bucket's last message of a batch in read order: (xid, instance, seq).
fn last_per_bucket(batch: &[OutboxMessage]) -> BTreeMap<i16, (i64, Uuid, i64)> {
    last_of_each_bucket(
        batch
            .iter()
            .map(|m| (m.bucket, (m.xid, m.instance_id, m.seq))),
    )
}

/// The greatest read position (xid, instance, seq) of each bucket among `rows`: where each
/// bucket's checkpoint moves after them.
pub(super) fn last_of_each_bucket(
    rows: impl Iterator<Item = (i16, (i64, Uuid, i64))>,
) -> BTreeMap<i16, (i64, Uuid, i64)> {
    let mut last: BTreeMap<i16, (i64, Uuid, i64)> = BTreeMap::new();
    for (bucket, key) in rows {
        let slot = last.entry(bucket).or_insert(key);
        if key > *slot {
            *slot = key;
        }
    }
    last
}

/// Whether some bucket gave `per_bucket` rows (its share was full: it may hold more).
pub(super) fn bucket_filled(buckets: impl Iterator<Item = i16>, per_bucket: i64) -> bool {
    let mut counts: BTreeMap<i16, i64> = BTreeMap::new();
    for b in buckets {
        *counts.entry(b).or_default() += 1;
    }
    counts.values().any(|n| *n >= per_bucket)
}

/// An outbox row as read by `outbox_read`.
fn message(r: &tokio_postgres::Row) -> OutboxMessage {
    OutboxMessage {
        bucket: r.get("bucket"),
        xid: r.get("xid"),
        seq: r.get("seq"),
        message_id: r.get("message_id"),
        instance_id: r.get("instance_id"),
        topic: r.get("topic"),
        kind: r.get("kind"),
        name: r.get("name"),
        key: r.get("key"),
        payload: r.get("payload"),
        created_at: r.get("created_at"),
        trace_key: r.get("trace_key"),
        traceparent: r.get("traceparent"),
    }
}
