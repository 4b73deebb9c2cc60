//! Inbound messages: deduplicated by id, correlated by (name, key), started on, buffered or
//! dead-lettered, all in one transaction. One message at a time here; a batch in one
//! transaction in `inbox_batch.rs`.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::locks::Locks;
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
    /// The trace it was sent under: an instance it starts continues it (see
    /// [`Message::trace`]); `None`: that instance starts a trace of its own.
    pub trace: Option<crate::machine::Trace>,
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
            trace: None,
        }
    }

    /// Sent under this trace: its key (e.g. the order id) and W3C `traceparent`
    /// (`00-<32 hex>-<16 hex>-<2 hex>`). An instance the message starts continues the trace,
    /// and the messages it sends carry it on.
    pub fn trace(mut self, key: impl Into<String>, traceparent: impl Into<String>) -> Self {
        self.trace = Some(crate::machine::Trace {
            key: key.into(),
            traceparent: traceparent.into(),
        });
        self
    }

    /// Sent under the trace of `cause` (a message a subscriber received), if it had one: a
    /// reply continues the sender's trace.
    pub fn traced_by(mut self, cause: &crate::store::OutboxMessage) -> Self {
        if let (Some(key), Some(tp)) = (&cause.trace_key, &cause.traceparent) {
            self = self.trace(key.clone(), tp.clone());
        }
        self
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

    pub(crate) fn check(&self) -> Result<()> {
        if self.id.is_empty() {
            return Err(Error::BadInput("a message needs an id".into()));
        }
        if self.id.len() > 200 || self.id.chars().any(char::is_control) {
            return Err(Error::BadInput(
                "invalid message id: at most 200 bytes, without control characters".into(),
            ));
        }
        if !crate::definition::is_message_name(&self.name) {
            return Err(Error::BadInput(format!(
                "invalid message name {:?}: non-empty, at most 200 bytes, without control characters or spaces at either end",
                self.name
            )));
        }
        if self.key.len() > 1000 || self.key.contains('\0') {
            return Err(Error::BadInput(
                "invalid correlation key: at most 1000 bytes, without NUL".into(),
            ));
        }
        if has_nul(&self.payload) {
            return Err(Error::BadInput(
                "the payload contains a NUL character, which PostgreSQL cannot store".into(),
            ));
        }
        if let Some(problem) = self.trace.as_ref().and_then(|t| t.problem()) {
            return Err(Error::BadInput(problem));
        }
        if let Some(ttl) = self.ttl {
            if ttl <= Duration::zero() || ttl > crate::definition::MAX_SPAN {
                return Err(Error::BadInput(
                    "a message's time to live must be positive and at most 100 years".into(),
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
    /// It started a new instance: of each deployed process that starts on the message (BPMN
    /// starts every process whose start event catches it), in process id order.
    Started {
        /// The new instance (of the first such process).
        instance_id: Uuid,
        /// The instances of the other processes that start on it, if any.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<Uuid>,
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
        let r = self.deliver_one(c, now, msg, default_ttl, lease).await?;
        count_delivery(&r.0);
        Ok(r)
    }

    async fn deliver_one(
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
            let rows = c.rows(&q.inbox_get, &[&msg.id, &msg.key]).await?;
            let (status, instance_id) = rows
                .first()
                .map(|r| (r.get::<_, String>("status"), r.get::<_, Option<Uuid>>(1)))
                .unwrap_or_else(|| ("unknown".into(), None));
            return Ok((
                Delivery::Duplicate {
                    status,
                    instance_id,
                },
                Applied::default(),
            ));
        }
        Locks::correlations([(msg.name.as_str(), msg.key.as_str())])
            .take(self, c)
            .await?;

        // Someone waits for it: correlate.
        if let Some(row) = c
            .rows(&q.subscription_find, &[&msg.name, &msg.key])
            .await?
            .first()
        {
            let instance_id: Uuid = row.get("instance_id");
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
                key: msg.key.clone(),
                status: "correlated",
                instance_id: Some(instance_id),
                reason: None,
            };
            let mut applied = self.apply(c, now, vec![work], lease, vec![settle]).await?;
            applied.outcomes.pop().expect("one outcome per work")?;
            return Ok((Delivery::Correlated { instance_id }, applied));
        }

        // It starts a process: every process whose latest version starts on it. A process
        // whose business key is unique among its running instances starts none when one runs
        // with the message's key: the message gets that instance (`return_existing`) or is
        // not started on for that process (`refuse`).
        let starters = c.rows(&q.definition_by_start_message, &[&msg.name]).await?;
        if !starters.is_empty() {
            let mut ids = Vec::with_capacity(starters.len());
            let mut works = Vec::with_capacity(starters.len());
            let mut refused = Vec::new();
            for row in &starters {
                let process: String = row.get("process_id");
                let unique: Option<String> = row.get("unique_key");
                if let Some(rule) = unique {
                    if let Some(running) = self.running_by_key_in(c, &process, &msg.key).await? {
                        if rule == "return_existing" {
                            ids.push(running);
                        } else {
                            refused.push(format!("{process} ({running})"));
                        }
                        continue;
                    }
                }
                let instance_id = crate::bucket::new_instance_id(&msg.key);
                ids.push(instance_id);
                works.push(Work::Start {
                    instance_id,
                    process,
                    version: row.get("version"),
                    business_key: msg.key.clone(),
                    variables: payload_variables(&msg.payload),
                    message_id: Some(msg.id.clone()),
                    parent: None,
                    start_message: Some(msg.name.clone()),
                    trace: msg.trace.clone(),
                });
            }
            if ids.is_empty() {
                let reason = format!(
                    "not started: a running instance has key \"{}\" and its process keeps business keys unique: {}",
                    msg.key,
                    refused.join(", ")
                );
                let settle = Settle {
                    message_id: msg.id.clone(),
                    key: msg.key.clone(),
                    status: "dead",
                    instance_id: None,
                    reason: Some(reason.clone()),
                };
                let applied = self.apply(c, now, Vec::new(), lease, vec![settle]).await?;
                return Ok((Delivery::DeadLettered { reason }, applied));
            }
            let settle = Settle {
                message_id: msg.id.clone(),
                key: msg.key.clone(),
                status: "started",
                instance_id: Some(ids[0]),
                reason: None,
            };
            let mut applied = self.apply(c, now, works, lease, vec![settle]).await?;
            for outcome in applied.outcomes.drain(..) {
                outcome?;
            }
            let instance_id = ids.remove(0);
            return Ok((
                Delivery::Started {
                    instance_id,
                    also: ids,
                },
                applied,
            ));
        }

        // Someone may wait for it later: keep it. Otherwise it is a dead letter.
        let known: bool = c.rows(&q.definition_receives, &[&msg.name]).await?[0].get("known");
        if known {
            let keys = [msg.key.as_str()];
            let buckets = crate::bucket::key_buckets(&keys);
            c.rows(&q.inbox_buffer, &[&vec![&msg.id], &keys.to_vec(), &buckets])
                .await?;
            return Ok((Delivery::Buffered { expires_at }, Applied::default()));
        }
        let reason = unknown_reason(&msg.name);
        let settle = Settle {
            message_id: msg.id.clone(),
            key: msg.key.clone(),
            status: "dead",
            instance_id: None,
            reason: Some(reason.clone()),
        };
        let applied = self.apply(c, now, Vec::new(), lease, vec![settle]).await?;
        Ok((Delivery::DeadLettered { reason }, applied))
    }
}

/// The variables an instance started by a message gets: the payload object, or the payload
/// under `payload` if it is not an object.
fn payload_variables(payload: &Value) -> Map<String, Value> {
    match payload {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("payload".into(), other.clone());
            m
        }
    }
}

fn unknown_reason(name: &str) -> String {
    format!("unknown message: no deployed process starts on or waits for \"{name}\"")
}

fn count_delivery(d: &Delivery) {
    let outcome = match d {
        Delivery::Correlated { .. } => "correlated",
        Delivery::Started { .. } => "started",
        Delivery::Buffered { .. } => "buffered",
        Delivery::DeadLettered { .. } => "dead",
        Delivery::Duplicate { .. } => "duplicate",
    };
    metrics::counter!(crate::telemetry::MESSAGES_RECEIVED, "outcome" => outcome).increment(1);
}

/// Whether a JSON value holds a NUL character in a string or a key (PostgreSQL's jsonb
/// cannot store one: refused up front rather than failing the insert).
pub(crate) fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[path = "inbox_batch.rs"]
mod batch;

#[cfg(test)]
#[path = "inbox_tests.rs"]
mod tests;
