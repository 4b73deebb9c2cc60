//! Bridges between bounded contexts: what one context's outbox sends on some topics reaches
//! another context's inbox, exactly once in effect.
//!
//! A context is a longrun schema, in the same database or another one. A [`Bridge`] reads the
//! source's outbox as a [`Consumer`] (a durable checkpoint, one holder at a time under a
//! lease) and delivers each message into the target's inbox with the outbox message id as the
//! inbound id. It moves the checkpoint only after the target committed; after a crash it reads
//! those messages again and the target's inbox finds them duplicates, so nothing is lost and
//! nothing counts twice. The target sees only messages (name, key, payload), never the
//! source's tables.
//!
//! ```no_run
//! # async fn demo(order: longrun::Store, payment: longrun::Store) -> longrun::Result<()> {
//! use longrun::bridge::Bridge;
//! let bridge = Bridge::new(&order, &payment, "order-to-payment", vec!["payment".into()])?;
//! let (_stop, stop) = tokio::sync::watch::channel(false);
//! bridge.run(stop).await; // until stop says true
//! # Ok(()) }
//! ```

#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;

use std::time::Duration as StdDuration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::watch;

use crate::store::{Consumer, Delivery, Error, Message, OutboxMessage, Result, Store};
use crate::Engine;

/// Messages one bridge step (or a drain) moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// Messages the target took as new (started, correlated, buffered or dead-lettered there).
    pub delivered: usize,
    /// Messages the target had already (a redelivery after a crash).
    pub duplicates: usize,
}

/// A bridge from one context's outbox to another context's inbox; see the module docs.
#[derive(Debug, Clone)]
pub struct Bridge {
    consumer: Consumer,
    target: Engine,
    batch: i64,
}

impl Bridge {
    /// A bridge named `name` (its consumer's name in the source) carrying `topics` from
    /// `from` to `to`.
    pub fn new(from: &Store, to: &Store, name: &str, topics: Vec<String>) -> Result<Bridge> {
        check(name, &topics)?;
        let owner = format!("bridge-{}-{}", std::process::id(), uuid::Uuid::new_v4());
        Ok(Bridge {
            consumer: from.consumer(name, topics, owner),
            target: Engine::builder(to.clone()).build()?,
            batch: 256,
        })
    }

    /// Deliver on the target's clock (the engines there run on it; e.g. a `ManualClock` in
    /// tests): what the delivery starts or schedules is timed by it. Default: the system clock.
    pub fn clock(mut self, clock: std::sync::Arc<dyn crate::Clock>) -> Result<Self> {
        self.target = Engine::builder(self.target.store().clone())
            .clock(clock)
            .build()?;
        Ok(self)
    }

    /// How long the bridge's hold on its checkpoint lasts without a step (default 30 s): a
    /// bridge that died is taken over by another after this.
    pub fn lease(mut self, lease: chrono::Duration) -> Self {
        self.consumer = self.consumer.with_lease(lease);
        self
    }

    /// Messages read and delivered per step (default 256).
    pub fn batch(mut self, n: i64) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Read one batch after the checkpoint and deliver it to the target in one transaction
    /// there, then move the checkpoint. `None` while another holder has the bridge's lease.
    /// A message the target refuses stops the step at it: the messages before it are
    /// delivered and acknowledged, and the error names it.
    pub async fn step(&self) -> Result<Option<Moved>> {
        let Some(batch) = self.consumer.poll(Utc::now(), self.batch).await? else {
            return Ok(None);
        };
        if batch.is_empty() {
            return Ok(Some(Moved::default()));
        }
        let messages: Vec<Message> = batch.iter().map(inbound).collect();
        let outcomes = self.target.send_many(messages).await?;
        let mut moved = Moved::default();
        let mut done = 0;
        let mut failed = None;
        for (m, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(Delivery::Duplicate { .. }) => moved.duplicates += 1,
                Ok(_) => moved.delivered += 1,
                Err(e) => {
                    failed = Some(Error::BadInput(format!(
                        "the target refused message {} ({} key {}): {e}",
                        m.message_id, m.name, m.key
                    )));
                    break;
                }
            }
            done += 1;
        }
        if done > 0 {
            self.consumer.ack(Utc::now(), &batch[..done]).await?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(Some(moved)),
        }
    }

    /// Deliver everything there is now, step after step, then give the lease up (another
    /// process may carry on at once).
    pub async fn drain(&self) -> Result<Moved> {
        let moved = self.drain_holding().await;
        if !matches!(moved, Err(Error::Conflict(_))) {
            let _ = self.consumer.release().await;
        }
        moved
    }

    async fn drain_holding(&self) -> Result<Moved> {
        let mut all = Moved::default();
        loop {
            match self.step().await? {
                None => {
                    return Err(Error::Conflict(format!(
                        "another process holds the bridge {}",
                        self.consumer.name()
                    )))
                }
                Some(m) if m.delivered + m.duplicates == 0 => return Ok(all),
                Some(m) => {
                    all.delivered += m.delivered;
                    all.duplicates += m.duplicates;
                }
            }
        }
    }

    /// Carry messages until `stop` says true: a step after another while there are some,
    /// then waits that grow from 10 ms to 2 s while there are none (a source that just sent
    /// something is likely to send more soon; an idle one is looked at every 2 s); errors are
    /// logged (at most once a minute for the same run of failures) and retried. Gives the
    /// lease up at the end.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        const FIRST_WAIT: StdDuration = StdDuration::from_millis(10);
        let mut wait = FIRST_WAIT;
        let mut failing_since: Option<std::time::Instant> = None;
        while !*stop.borrow() {
            match self.step().await {
                Ok(Some(m)) if m.delivered + m.duplicates > 0 => {
                    failing_since = None;
                    wait = FIRST_WAIT;
                    continue;
                }
                Ok(_) => {
                    failing_since = None;
                }
                Err(e) => {
                    let now = std::time::Instant::now();
                    if failing_since.is_none_or(|t| now.duration_since(t).as_secs() >= 60) {
                        tracing::warn!(bridge = self.consumer.name(), error = %e, "a bridge step failed; retrying");
                        failing_since = Some(now);
                    }
                    wait = StdDuration::from_secs(1);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            wait = (wait * 2).min(StdDuration::from_secs(2));
        }
        let _ = self.consumer.release().await;
    }
}

/// The inbound form of an outbound message: same name, key and payload, and the outbox
/// message id as the inbound id (what makes a redelivery a duplicate).
/// The message a target context receives: the outbox message id as its id (a redelivery is a
/// duplicate), and the trace it was sent under, which an instance it starts continues.
fn inbound(m: &OutboxMessage) -> Message {
    Message::new(m.name.clone(), m.key.clone(), m.message_id.to_string())
        .payload(m.payload.clone())
        .traced_by(m)
}

/// A bridge's name and topics, checked.
pub(crate) fn check(name: &str, topics: &[String]) -> Result<()> {
    if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
        return Err(Error::BadInput(
            "a bridge carries at least one topic, none empty".into(),
        ));
    }
    if name.trim().is_empty() {
        return Err(Error::BadInput("a bridge needs a name".into()));
    }
    Ok(())
}

/// A broker half's steps until one moves nothing.
#[cfg_attr(not(any(feature = "nats", feature = "rabbitmq")), allow(dead_code))]
pub(crate) async fn drain_steps<F, Fut>(mut step: F) -> Result<Moved>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Moved>>>,
{
    let mut total = Moved::default();
    loop {
        match step().await? {
            Some(m) if m.delivered + m.duplicates > 0 => {
                total.delivered += m.delivered;
                total.duplicates += m.duplicates;
            }
            _ => return Ok(total),
        }
    }
}

/// A broker half's steps until `stop` says true, pausing when one moves nothing; a failed step
/// is logged and tried again.
#[cfg_attr(not(any(feature = "nats", feature = "rabbitmq")), allow(dead_code))]
pub(crate) async fn run_steps<F, Fut>(mut stop: watch::Receiver<bool>, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Moved>>>,
{
    while !*stop.borrow() {
        let moved = match step().await {
            Ok(m) => m.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "broker bridge step failed; trying again");
                Moved::default()
            }
        };
        if moved.delivered + moved.duplicates == 0 {
            tokio::select! {
                _ = tokio::time::sleep(StdDuration::from_millis(200)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// What travels on a broker: the message as the target's inbox takes it. The inbound id (the
/// outbox message id) travels in `id` over NATS and as the AMQP message id over RabbitMQ.
#[cfg(any(feature = "nats", feature = "rabbitmq"))]
#[derive(Debug, Serialize, serde::Deserialize)]
struct Envelope {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    id: String,
    topic: String,
    name: String,
    key: String,
    payload: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

#[cfg(any(feature = "nats", feature = "rabbitmq"))]
impl Envelope {
    /// Outbox message `m`, with its id in the envelope or not.
    fn of(m: &OutboxMessage, with_id: bool) -> Envelope {
        Envelope {
            id: if with_id {
                m.message_id.to_string()
            } else {
                String::new()
            },
            topic: m.topic.clone(),
            name: m.name.clone(),
            key: m.key.clone(),
            payload: m.payload.clone(),
            trace_key: m.trace_key.clone(),
            traceparent: m.traceparent.clone(),
        }
    }
}

/// Deliver broker messages (each an inbound id and its envelope) into `target`'s inbox in one
/// transaction: the tally, whether each was taken (and may be acknowledged to the broker), and
/// the first refusal, naming its message.
#[cfg(any(feature = "nats", feature = "rabbitmq"))]
async fn deliver(
    target: &Engine,
    items: &[(&str, &Envelope)],
) -> Result<(Moved, Vec<bool>, Option<Error>)> {
    if items.is_empty() {
        return Ok((Moved::default(), Vec::new(), None));
    }
    let messages: Vec<Message> = items
        .iter()
        .map(|(id, e)| {
            let msg = Message::new(e.name.clone(), e.key.clone(), id.to_string())
                .payload(e.payload.clone());
            match (&e.trace_key, &e.traceparent) {
                (Some(k), Some(tp)) => msg.trace(k.clone(), tp.clone()),
                _ => msg,
            }
        })
        .collect();
    let outcomes = target.send_many(messages).await?;
    let mut moved = Moved::default();
    let mut taken = Vec::with_capacity(items.len());
    let mut failed = None;
    for ((id, e), outcome) in items.iter().zip(outcomes) {
        match outcome {
            Ok(Delivery::Duplicate { .. }) => moved.duplicates += 1,
            Ok(_) => moved.delivered += 1,
            Err(err) => {
                failed.get_or_insert(Error::BadInput(format!(
                    "the target refused message {id} ({} key {}): {err}",
                    e.name, e.key
                )));
                taken.push(false);
                continue;
            }
        }
        taken.push(true);
    }
    Ok((moved, taken, failed))
}

/// `target`'s store, delivered to on `clock`.
#[cfg(any(feature = "nats", feature = "rabbitmq"))]
fn on_clock(target: &Engine, clock: std::sync::Arc<dyn crate::Clock>) -> Result<Engine> {
    Engine::builder(target.store().clone()).clock(clock).build()
}
