//! Reading the outbox from a durable position: the Postgres-native way for a participant
//! service to receive the commands and events longrun sends.
//!
//! A consumer has a name, the topics it reads (a command's topic is its recipient, an event's
//! topic is its name) and a checkpoint. One holder at a time reads it, under a lease that each
//! acknowledgement renews; a holder that lost its lease cannot move the checkpoint. Delivery is
//! at least once: after a crash, messages read but not acknowledged are read again, so a
//! participant deduplicates by [`OutboxMessage::message_id`].

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Error, Result, Store};

/// A message from the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    /// Its position: unique, increasing within its transaction (read order is `(xid, position)`).
    pub position: i64,
    /// The writing transaction (with `position`, the read order).
    pub xid: i64,
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

/// An outbound message to write: id, instance, topic, kind, name, key, payload, trace.
pub(super) type OutboxRow = (
    Uuid,
    Uuid,
    String,
    &'static str,
    String,
    String,
    Value,
    Trace,
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

    /// Read up to `limit` messages after the checkpoint. Returns `None` while another holder's
    /// lease runs. Reading does not move the checkpoint; [`Consumer::ack`] does.
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
                &[&self.name, &self.topics, &self.owner, &expires, &now],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (last_xid, last_pos): (i64, i64) = (row.get("last_xid"), row.get("last_position"));
        let horizon = self.store.read_horizon(&c).await?;
        let read = c.prepare_cached(&q.outbox_read).await?;
        let rows = c
            .query(
                &read,
                &[&self.topics, &last_xid, &last_pos, &limit, &horizon],
            )
            .await?;
        Ok(Some(
            rows.iter()
                .map(|r| OutboxMessage {
                    position: r.get("position"),
                    xid: r.get("xid"),
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
                })
                .collect(),
        ))
    }

    /// Move the checkpoint past `last` (and renew the lease). Fails with
    /// [`Error::Conflict`] if the lease was lost: another holder will read those messages.
    pub async fn ack(&self, now: DateTime<Utc>, last: &OutboxMessage) -> Result<()> {
        let c = self.store.client().await?;
        let stmt = c.prepare_cached(&self.store.q().consumer_ack).await?;
        let expires = now + self.lease;
        let n = c
            .execute(
                &stmt,
                &[
                    &self.name,
                    &self.owner,
                    &last.xid,
                    &last.position,
                    &expires,
                    &now,
                ],
            )
            .await?;
        if n == 0 {
            return Err(Error::Conflict(format!(
                "consumer {} lost its lease; its messages will be read again",
                self.name
            )));
        }
        Ok(())
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
