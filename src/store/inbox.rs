//! Inbound messages: deduplicated by id, correlated by (name, key), started on, buffered or
//! dead-lettered, all in one transaction.

use std::collections::{HashMap, HashSet};

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

    /// Deliver several messages in the caller's transaction with a handful of statements for
    /// the whole batch: one insert into the inbox, one lock query, one subscription lookup and
    /// one transition batch. Messages that need to see each other's effects (the same name
    /// and key, or the same target instance) are delivered one after another at the end.
    pub(crate) async fn deliver_many_in(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        msgs: &[&Message],
        default_ttl: Duration,
        lease: Option<&Lease>,
    ) -> Result<(Vec<Delivery>, Applied)> {
        if msgs.len() == 1 {
            let (d, a) = self.deliver_in(c, now, msgs[0], default_ttl, lease).await?;
            return Ok((vec![d], a));
        }
        let q = self.q();
        for m in msgs {
            m.check()?;
        }
        // Later copies of an id within the batch, and pairs seen before, go the slow way.
        let mut seen_ids = HashSet::new();
        let mut seen_pairs = HashSet::new();
        let mut fast = Vec::new();
        let mut slow = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            if seen_ids.insert(m.id.as_str())
                && seen_pairs.insert((m.name.as_str(), m.key.as_str()))
            {
                fast.push(i);
            } else {
                slow.push(i);
            }
        }
        let ids: Vec<&str> = fast.iter().map(|&i| msgs[i].id.as_str()).collect();
        let names: Vec<&str> = fast.iter().map(|&i| msgs[i].name.as_str()).collect();
        let keys: Vec<&str> = fast.iter().map(|&i| msgs[i].key.as_str()).collect();
        let payloads: Vec<&Value> = fast.iter().map(|&i| &msgs[i].payload).collect();
        let received: Vec<DateTime<Utc>> = vec![now; fast.len()];
        let expires: Vec<DateTime<Utc>> = fast
            .iter()
            .map(|&i| now + msgs[i].ttl.unwrap_or(default_ttl))
            .collect();
        let new: HashSet<String> = c
            .rows(
                &q.inbox_insert_many,
                &[&ids, &names, &keys, &payloads, &received, &expires],
            )
            .await?
            .iter()
            .map(|r| r.get("message_id"))
            .collect();
        let mut out: Vec<Option<Delivery>> = vec![None; msgs.len()];
        let mut fresh = Vec::new();
        for &i in &fast {
            if new.contains(&msgs[i].id) {
                fresh.push(i);
            } else {
                slow.push(i); // a duplicate: reported with its first fate below
            }
        }
        Locks::correlations(
            fresh
                .iter()
                .map(|&i| (msgs[i].name.as_str(), msgs[i].key.as_str())),
        )
        .take(self, c)
        .await?;
        let f_names: Vec<&str> = fresh.iter().map(|&i| msgs[i].name.as_str()).collect();
        let f_keys: Vec<&str> = fresh.iter().map(|&i| msgs[i].key.as_str()).collect();
        let waiting: HashMap<(String, String), Uuid> = c
            .rows(
                &q.subscriptions_find_many,
                &[&f_names, &f_keys, &crate::bucket::buckets_of_keys(&f_keys)],
            )
            .await?
            .iter()
            .map(|r| {
                (
                    (r.get("message_name"), r.get("correlation_key")),
                    r.get("instance_id"),
                )
            })
            .collect();

        let mut works = Vec::new();
        let mut settles = Vec::new();
        let mut targets = HashSet::new();
        // Per message name: the processes it starts, and whether any keeps business keys unique.
        let mut starters: HashMap<String, (Vec<(String, i32)>, bool)> = HashMap::new();
        let mut known: HashMap<String, bool> = HashMap::new();
        let mut kept = Vec::new();
        for &i in &fresh {
            let m = msgs[i];
            if let Some(instance_id) = waiting.get(&(m.name.clone(), m.key.clone())) {
                if !targets.insert(*instance_id) {
                    // Two messages for one instance: the second must see the first's effect.
                    slow.push(i);
                    // Its inbox row is in; deliver_in would call it a duplicate, so undo it.
                    c.rows(&q.inbox_forget, &[&m.id, &m.key]).await?;
                    continue;
                }
                works.push(Work::Continue {
                    instance_id: *instance_id,
                    input: Input::Message {
                        message_id: m.id.clone(),
                        name: m.name.clone(),
                        payload: m.payload.clone(),
                    },
                });
                settles.push(Settle {
                    message_id: m.id.clone(),
                    key: m.key.clone(),
                    status: "correlated",
                    instance_id: Some(*instance_id),
                    reason: None,
                });
                out[i] = Some(Delivery::Correlated {
                    instance_id: *instance_id,
                });
                continue;
            }
            if !starters.contains_key(&m.name) {
                let rows = c.rows(&q.definition_by_start_message, &[&m.name]).await?;
                starters.insert(
                    m.name.clone(),
                    (
                        rows.iter()
                            .map(|r| (r.get::<_, String>("process_id"), r.get::<_, i32>("version")))
                            .collect::<Vec<_>>(),
                        rows.iter()
                            .any(|r| r.get::<_, Option<String>>("unique_key").is_some()),
                    ),
                );
            }
            if starters[&m.name].1 {
                // A running instance's key decides: one at a time, the slow way.
                slow.push(i);
                c.rows(&q.inbox_forget, &[&m.id, &m.key]).await?;
                continue;
            }
            if let Some((processes, _)) = starters.get(&m.name).filter(|p| !p.0.is_empty()) {
                let mut ids: Vec<Uuid> = Vec::with_capacity(processes.len());
                for (process, version) in processes {
                    let instance_id = crate::bucket::new_instance_id(&m.key);
                    ids.push(instance_id);
                    works.push(Work::Start {
                        instance_id,
                        process: process.clone(),
                        version: *version,
                        business_key: m.key.clone(),
                        variables: payload_variables(&m.payload),
                        message_id: Some(m.id.clone()),
                        parent: None,
                        start_message: Some(m.name.clone()),
                        trace: m.trace.clone(),
                    });
                }
                settles.push(Settle {
                    message_id: m.id.clone(),
                    key: m.key.clone(),
                    status: "started",
                    instance_id: Some(ids[0]),
                    reason: None,
                });
                let instance_id = ids.remove(0);
                out[i] = Some(Delivery::Started {
                    instance_id,
                    also: ids,
                });
                continue;
            }
            if !known.contains_key(&m.name) {
                let k: bool = c.rows(&q.definition_receives, &[&m.name]).await?[0].get("known");
                known.insert(m.name.clone(), k);
            }
            if known[&m.name] {
                kept.push(i);
                out[i] = Some(Delivery::Buffered {
                    expires_at: now + m.ttl.unwrap_or(default_ttl),
                });
            } else {
                let reason = unknown_reason(&m.name);
                settles.push(Settle {
                    message_id: m.id.clone(),
                    key: m.key.clone(),
                    status: "dead",
                    instance_id: None,
                    reason: Some(reason.clone()),
                });
                out[i] = Some(Delivery::DeadLettered { reason });
            }
        }
        if !kept.is_empty() {
            let ids: Vec<&str> = kept.iter().map(|&i| msgs[i].id.as_str()).collect();
            let keys: Vec<&str> = kept.iter().map(|&i| msgs[i].key.as_str()).collect();
            let buckets = crate::bucket::key_buckets(&keys);
            c.rows(&q.inbox_buffer, &[&ids, &keys, &buckets]).await?;
        }
        let mut applied = self.apply(c, now, works, lease, settles).await?;
        if let Some(Err(_)) = applied.outcomes.iter().find(|o| o.is_err()) {
            let e = applied
                .outcomes
                .drain(..)
                .find_map(|o| o.err())
                .expect("an error");
            return Err(e);
        }
        for d in out.iter().flatten() {
            count_delivery(d);
        }
        slow.sort();
        for i in slow {
            let (d, a) = self.deliver_in(c, now, msgs[i], default_ttl, lease).await?;
            applied.merge(a);
            out[i] = Some(d);
        }
        Ok((
            out.into_iter()
                .map(|d| d.expect("every message has an outcome"))
                .collect(),
            applied,
        ))
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

#[cfg(test)]
#[path = "inbox_tests.rs"]
mod tests;
