//! Bridges over NATS JetStream (feature `nats`), for teams that already run it: two halves.
//!
//! - [`NatsPublisher`] reads a context's outbox (a [`Consumer`] with a durable checkpoint) and
//!   publishes each message on the subject `<prefix>.<topic>` with its outbox message id as
//!   `Nats-Msg-Id`, so JetStream drops a republish within its duplicate window; it moves the
//!   checkpoint after every publish of the batch was acknowledged by the stream.
//! - [`NatsDelivery`] fetches from a durable pull consumer of that stream and delivers into a
//!   context's inbox with the outbox message id as the inbound id, acknowledging each message
//!   to NATS only after the inbox transaction committed: a redelivery (after a crash, or after
//!   the ack wait) is a duplicate there and changes nothing.
//!
//! A topic becomes a subject token with every character outside `[A-Za-z0-9_-]` replaced by
//! `_`. The stream (`LONGRUN` by default, subjects `longrun.>`) is created if it is missing.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use chrono::Utc;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{Envelope, Moved};
use crate::store::{Consumer, Error, Result, Store};
use crate::Engine;

/// Where a NATS bridge meets the broker.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream (created if missing).
    pub stream: String,
    /// The subjects' first token: messages go to `<prefix>.<topic>`.
    pub prefix: String,
    /// How long JetStream remembers message ids to drop republished ones.
    pub duplicate_window: Duration,
}

impl NatsConfig {
    /// The server at `url`, stream `LONGRUN`, subjects `longrun.<topic>`, a 10-minute
    /// duplicate window.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            stream: "LONGRUN".into(),
            prefix: "longrun".into(),
            duplicate_window: Duration::from_secs(600),
        }
    }

    fn subject(&self, topic: &str) -> String {
        let token: String = topic
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}.{token}", self.prefix)
    }

    async fn stream(&self) -> Result<(jetstream::Context, jetstream::stream::Stream)> {
        let client = async_nats::connect(&self.url)
            .await
            .map_err(|e| broker(&self.url, e))?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                duplicate_window: self.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| broker(&self.url, e))?;
        Ok((js, stream))
    }
}

fn broker(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Broker(format!("NATS at {url}: {e}"))
}

/// The outbox half: a context's outbox to JetStream; see the module docs.
#[derive(Debug, Clone)]
pub struct NatsPublisher {
    consumer: Consumer,
    js: jetstream::Context,
    config: NatsConfig,
    batch: i64,
}

impl NatsPublisher {
    /// Publish what `from`'s outbox sends on `topics`, as consumer `name` there.
    pub async fn connect(
        from: &Store,
        config: NatsConfig,
        name: &str,
        topics: Vec<String>,
    ) -> Result<NatsPublisher> {
        super::check(name, &topics)?;
        let (js, _) = config.stream().await?;
        let owner = format!("nats-{}-{}", std::process::id(), uuid::Uuid::new_v4());
        Ok(NatsPublisher {
            consumer: from.consumer(name, topics, owner),
            js,
            config,
            batch: 256,
        })
    }

    /// Publish one batch after the checkpoint, wait for the stream's acknowledgements, then
    /// move the checkpoint. `None` while another holder has the lease.
    pub async fn step(&self) -> Result<Option<Moved>> {
        let Some(batch) = self.consumer.poll(Utc::now(), self.batch).await? else {
            return Ok(None);
        };
        if batch.is_empty() {
            return Ok(Some(Moved::default()));
        }
        let mut acks = Vec::with_capacity(batch.len());
        for m in &batch {
            let envelope = Envelope::of(m, true);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", envelope.id.as_str());
            let body = serde_json::to_vec(&envelope)?;
            acks.push(
                self.js
                    .publish_with_headers(self.config.subject(&m.topic), headers, body.into())
                    .await
                    .map_err(|e| broker(&self.config.url, e))?,
            );
        }
        let mut moved = Moved::default();
        for ack in acks {
            let ack = ack.await.map_err(|e| broker(&self.config.url, e))?;
            if ack.duplicate {
                moved.duplicates += 1;
            } else {
                moved.delivered += 1;
            }
        }
        self.consumer.ack(Utc::now(), &batch).await?;
        Ok(Some(moved))
    }

    /// Publish everything there is now, then give the lease up.
    pub async fn drain(&self) -> Result<Moved> {
        let result = super::drain_steps(|| self.step()).await;
        let _ = self.consumer.release().await;
        result
    }

    /// Run until `stop` says true.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<()> {
        super::run_steps(stop, || self.step()).await;
        let _ = self.consumer.release().await;
        Ok(())
    }
}

/// The inbox half: JetStream to a context's inbox; see the module docs.
#[derive(Debug, Clone)]
pub struct NatsDelivery {
    consumer: PullConsumer,
    topics: Vec<String>,
    target: Engine,
    config: NatsConfig,
    batch: usize,
}

impl NatsDelivery {
    /// Deliver what comes on `topics` into `to`'s inbox, through the durable consumer `name`.
    pub async fn connect(
        config: NatsConfig,
        to: &Store,
        name: &str,
        topics: Vec<String>,
    ) -> Result<NatsDelivery> {
        super::check(name, &topics)?;
        let durable: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let (_, stream) = config.stream().await?;
        let filter_subject = match topics.as_slice() {
            [one] => config.subject(one),
            _ => format!("{}.>", config.prefix),
        };
        let consumer = stream
            .get_or_create_consumer(
                &durable,
                jetstream::consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    filter_subject,
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| broker(&config.url, e))?;
        Ok(NatsDelivery {
            consumer,
            topics,
            target: Engine::builder(to.clone()).build()?,
            config,
            batch: 256,
        })
    }

    /// Deliver on the target's clock (see [`super::Bridge::clock`]).
    pub fn clock(mut self, clock: std::sync::Arc<dyn crate::Clock>) -> Result<Self> {
        self.target = super::on_clock(&self.target, clock)?;
        Ok(self)
    }

    /// Fetch what is there now (one batch), deliver it in one inbox transaction, then
    /// acknowledge each message to NATS. A message the target refuses is not acknowledged:
    /// NATS redelivers it after the ack wait, and the error names it.
    pub async fn step(&self) -> Result<Option<Moved>> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(self.batch)
            .messages()
            .await
            .map_err(|e| broker(&self.config.url, e))?;
        let mut received = Vec::new();
        while let Some(m) = batch.next().await {
            received.push(m.map_err(|e| broker(&self.config.url, e))?);
        }
        let mut mine = Vec::new();
        let mut others = Vec::new();
        for m in received {
            match serde_json::from_slice::<Envelope>(&m.payload) {
                Ok(e) if self.topics.contains(&e.topic) => mine.push((m, e)),
                // Another topic under a shared filter, or not ours at all: not for this bridge.
                _ => others.push(m),
            }
        }
        for m in others {
            m.ack().await.map_err(|e| broker(&self.config.url, e))?;
        }
        let items: Vec<(&str, &Envelope)> = mine.iter().map(|(_, e)| (e.id.as_str(), e)).collect();
        let (moved, taken, failed) = super::deliver(&self.target, &items).await?;
        for ((m, _), taken) in mine.iter().zip(taken) {
            if taken {
                m.ack().await.map_err(|e| broker(&self.config.url, e))?;
            }
        }
        failed.map_or(Ok(Some(moved)), Err)
    }

    /// Deliver everything there is now.
    pub async fn drain(&self) -> Result<Moved> {
        super::drain_steps(|| self.step()).await
    }

    /// Run until `stop` says true.
    pub async fn run(&self, stop: watch::Receiver<bool>) -> Result<()> {
        super::run_steps(stop, || self.step()).await;
        Ok(())
    }
}
