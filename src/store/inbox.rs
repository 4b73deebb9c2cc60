//! Inbound messages: deduplicated by id, correlated by (name, key), started on, buffered or
//! dead-lettered, all in one transaction.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::transition::Settle;
use super::{Applied, Conn, Error, Lease, Result, Store, Work};
use crate::machine::Input;

/// An inbound message for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The sender's id for it: a second message with the same id is a duplicate.
    pub id: String,
    /// The message name, e.g. `PaymentReceived`.
    pub name: String,
    /// The correlation key, e.g. the order id.
    pub key: String,
    /// The payload (an object is merged into the variables; see the receive step's `output`).
    pub payload: Value,
    /// How long it waits in the buffer for an instance; `None`: the engine's default.
    pub ttl: Option<Duration>,
}

impl Message {
    /// A message with an empty object as payload.
    pub fn new(name: impl Into<String>, key: impl Into<String>, id: impl Into<String>) -> Self {
        Message {
            id: id.into(),
            name: name.into(),
            key: key.into(),
            payload: Value::Object(Map::new()),
            ttl: None,
        }
    }

    /// With this payload.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    /// Buffered at most this long if nobody waits for it yet.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    fn check(&self) -> Result<()> {
        if self.id.is_empty() {
            return Err(Error::BadInput("a message needs an id".into()));
        }
        if self.name.is_empty() || self.name.chars().any(char::is_whitespace) {
            return Err(Error::BadInput(format!(
                "invalid message name \"{}\": non-empty, without spaces",
                self.name
            )));
        }
        if let Some(ttl) = self.ttl {
            if ttl <= Duration::zero() {
                return Err(Error::BadInput(
                    "a message's time to live must be positive".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Delivery {
    /// Delivered to the instance that waited for it.
    Correlated {
        /// The instance.
        instance_id: Uuid,
    },
    /// It started a new instance.
    Started {
        /// The new instance.
        instance_id: Uuid,
    },
    /// Nobody waits for it yet; it is kept until `expires_at` for an instance that will.
    Buffered {
        /// When it becomes a dead letter.
        expires_at: DateTime<Utc>,
    },
    /// No deployed process starts on or waits for this message name.
    DeadLettered {
        /// Why.
        reason: String,
    },
    /// A message with this id was received before; nothing changed.
    Duplicate {
        /// What became of the first one (`buffered`, `correlated`, `started`, `dead`).
        status: String,
        /// The instance it went to, if any.
        instance_id: Option<Uuid>,
    },
}

impl Store {
    /// Deliver one inbound message in the caller's transaction (see [`Delivery`]).
    pub(crate) async fn deliver_in(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        msg: &Message,
        default_ttl: Duration,
        lease: Option<&Lease>,
    ) -> Result<(Delivery, Applied)> {
        msg.check()?;
        let q = self.q();
        let expires_at = now + msg.ttl.unwrap_or(default_ttl);
        let inserted = c
            .rows(
                &q.inbox_insert,
                &[
                    &msg.id,
                    &msg.name,
                    &msg.key,
                    &msg.payload,
                    &now,
                    &expires_at,
                ],
            )
            .await?;
        if inserted.is_empty() {
            let rows = c.rows(&q.inbox_get, &[&msg.id]).await?;
            let (status, instance_id) = rows
                .first()
                .map(|r| (r.get::<_, String>(0), r.get::<_, Option<Uuid>>(1)))
                .unwrap_or_else(|| ("unknown".into(), None));
            return Ok((
                Delivery::Duplicate {
                    status,
                    instance_id,
                },
                Applied::default(),
            ));
        }
        let lock = vec![self.lock_key(&["correlate", &msg.name, &msg.key])];
        c.rows(&q.correlation_lock, &[&lock]).await?;

        // Someone waits for it: correlate.
        if let Some(row) = c
            .rows(&q.subscription_find, &[&msg.name, &msg.key])
            .await?
            .first()
        {
            let instance_id: Uuid = row.get(0);
            let work = Work::Continue {
                instance_id,
                input: Input::Message {
                    message_id: msg.id.clone(),
                    name: msg.name.clone(),
                    payload: msg.payload.clone(),
                },
            };
            let settle = Settle {
                message_id: msg.id.clone(),
                status: "correlated",
                instance_id: Some(instance_id),
                reason: None,
            };
            let mut applied = self.apply(c, now, vec![work], lease, vec![settle]).await?;
            applied.outcomes.pop().expect("one outcome per work")?;
            return Ok((Delivery::Correlated { instance_id }, applied));
        }

        // It starts a process.
        if let Some(row) = c
            .rows(&q.definition_by_start_message, &[&msg.name])
            .await?
            .first()
        {
            let process: String = row.get(0);
            let version: i32 = row.get(1);
            let instance_id = Uuid::now_v7();
            let variables = match &msg.payload {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                other => {
                    let mut m = Map::new();
                    m.insert("payload".into(), other.clone());
                    m
                }
            };
            let work = Work::Start {
                instance_id,
                process,
                version,
                business_key: msg.key.clone(),
                variables,
                message_id: Some(msg.id.clone()),
            };
            let settle = Settle {
                message_id: msg.id.clone(),
                status: "started",
                instance_id: Some(instance_id),
                reason: None,
            };
            let mut applied = self.apply(c, now, vec![work], lease, vec![settle]).await?;
            applied.outcomes.pop().expect("one outcome per work")?;
            return Ok((Delivery::Started { instance_id }, applied));
        }

        // Someone may wait for it later: keep it. Otherwise it is a dead letter.
        let known: bool = c.rows(&q.definition_receives, &[&msg.name]).await?[0].get(0);
        if known {
            return Ok((Delivery::Buffered { expires_at }, Applied::default()));
        }
        let reason = format!(
            "unknown message: no deployed process starts on or waits for \"{}\"",
            msg.name
        );
        let settle = Settle {
            message_id: msg.id.clone(),
            status: "dead",
            instance_id: None,
            reason: Some(reason.clone()),
        };
        let applied = self.apply(c, now, Vec::new(), lease, vec![settle]).await?;
        Ok((Delivery::DeadLettered { reason }, applied))
    }

    /// Dead-letter up to `limit` buffered messages whose time to live ran out. Returns how many.
    pub async fn expire_buffered(&self, now: DateTime<Utc>, limit: i64) -> Result<u64> {
        let c = self.client().await?;
        Ok(c.exec(&self.q().inbox_expire, &[&now, &limit]).await?)
    }
}
