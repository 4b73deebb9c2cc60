//! Bridges over RabbitMQ (feature `rabbitmq`), for teams that already run it: two halves.
//!
//! - [`RabbitPublisher`] reads a context's outbox (a [`Consumer`] with a durable checkpoint) and
//!   publishes each message, persistent, to the topic exchange (`longrun` by default) with the
//!   message's topic as routing key and its outbox id as the AMQP `message_id`, on a channel
//!   with publisher confirms; it moves the checkpoint after the broker confirmed the batch.
//!   RabbitMQ keeps no memory of ids by itself: a republish after a crash arrives twice, and
//!   the receiving inbox drops the copy (with the message deduplication plugin installed, the
//!   broker drops it first, by the same id).
//! - [`RabbitDelivery`] takes messages from a durable queue bound to the topics, delivers them
//!   into a context's inbox with the `message_id` as the inbound id, and acknowledges each to
//!   RabbitMQ only after the inbox transaction committed: a redelivery is a duplicate there.

use chrono::Utc;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::watch;

use super::{Envelope, Moved};
use crate::store::{Consumer, Error, Result, Store};
use crate::Engine;

/// Where a RabbitMQ bridge meets the broker.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// The server, e.g. `amqp://127.0.0.1:5672/%2f`.
    pub url: String,
    /// The topic exchange (declared durable if missing).
    pub exchange: String,
}

impl RabbitConfig {
    /// The server at `url`, exchange `longrun`.
    pub fn new(url: impl Into<String>) -> Self {
        RabbitConfig {
            url: url.into(),
            exchange: "longrun".into(),
        }
    }

    async fn channel(&self) -> Result<Channel> {
        let conn = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(|e| broker(&self.url, e))?;
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| broker(&self.url, e))?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker(&self.url, e))?;
        Ok(channel)
    }
}

fn broker(url: &str, e: impl std::fmt::Display) -> Error {
    // The URL may hold a password: name the host only.
    let host = url.rsplit('@').next().unwrap_or(url);
    Error::Broker(format!("RabbitMQ at {host}: {e}"))
}

/// A topic as a routing key word: `.`, `*` and `#` mean something to a topic exchange.
fn routing_key(topic: &str) -> String {
    topic.replace(['.', '*', '#'], "_")
}

/// The outbox half: a context's outbox to RabbitMQ; see the module docs.
pub struct RabbitPublisher {
    consumer: Consumer,
    channel: Channel,
    config: RabbitConfig,
    batch: i64,
}

impl RabbitPublisher {
    /// Publish what `from`'s outbox sends on `topics`, as consumer `name` there.
    pub async fn connect(
        from: &Store,
        config: RabbitConfig,
        name: &str,
        topics: Vec<String>,
    ) -> Result<RabbitPublisher> {
        super::check(name, &topics)?;
        let channel = config.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| broker(&config.url, e))?;
        let owner = format!("rabbitmq-{}-{}", std::process::id(), uuid::Uuid::new_v4());
        Ok(RabbitPublisher {
            consumer: from.consumer(name, topics, owner),
            channel,
            config,
            batch: 256,
        })
    }

    /// Publish one batch after the checkpoint, wait for the broker's confirms, then move the
    /// checkpoint. `None` while another holder has the lease.
    pub async fn step(&self) -> Result<Option<Moved>> {
        let Some(batch) = self.consumer.poll(Utc::now(), self.batch).await? else {
            return Ok(None);
        };
        if batch.is_empty() {
            return Ok(Some(Moved::default()));
        }
        let mut confirms = Vec::with_capacity(batch.len());
        for m in &batch {
            let body = serde_json::to_vec(&Envelope::of(m, false))?;
            let properties = BasicProperties::default()
                .with_message_id(m.message_id.to_string().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            confirms.push(
                self.channel
                    .basic_publish(
                        self.config.exchange.as_str().into(),
                        routing_key(&m.topic).into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await
                    .map_err(|e| broker(&self.config.url, e))?,
            );
        }
        for c in confirms {
            let confirm = c.await.map_err(|e| broker(&self.config.url, e))?;
            if !confirm.is_ack() {
                return Err(broker(
                    &self.config.url,
                    "the broker refused a message (nack); the batch will be published again",
                ));
            }
        }
        self.consumer.ack(Utc::now(), &batch).await?;
        Ok(Some(Moved {
            delivered: batch.len(),
            duplicates: 0,
        }))
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

/// The inbox half: a RabbitMQ queue to a context's inbox; see the module docs.
pub struct RabbitDelivery {
    channel: Channel,
    queue: String,
    target: Engine,
    config: RabbitConfig,
    batch: usize,
}

impl RabbitDelivery {
    /// Deliver what comes on `topics` into `to`'s inbox, through the durable queue `name`
    /// (declared and bound to the topics if missing).
    pub async fn connect(
        config: RabbitConfig,
        to: &Store,
        name: &str,
        topics: Vec<String>,
    ) -> Result<RabbitDelivery> {
        super::check(name, &topics)?;
        let channel = config.channel().await?;
        channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker(&config.url, e))?;
        for t in &topics {
            channel
                .queue_bind(
                    name.into(),
                    config.exchange.as_str().into(),
                    routing_key(t).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| broker(&config.url, e))?;
        }
        Ok(RabbitDelivery {
            channel,
            queue: name.to_string(),
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

    /// Take what is in the queue now (up to one batch), deliver it in one inbox transaction,
    /// then acknowledge each message. A message the target refuses is not acknowledged (the
    /// broker gives it again on another channel), and the error names it.
    pub async fn step(&self) -> Result<Option<Moved>> {
        let mut taken = Vec::new();
        while taken.len() < self.batch {
            let got = self
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions::default())
                .await
                .map_err(|e| broker(&self.config.url, e))?;
            let Some(m) = got else { break };
            taken.push(m.delivery);
        }
        if taken.is_empty() {
            return Ok(Some(Moved::default()));
        }
        let mut mine = Vec::new();
        for d in taken {
            let id = d.properties.message_id().as_ref().map(|s| s.to_string());
            match (id, serde_json::from_slice::<Envelope>(&d.data)) {
                (Some(id), Ok(e)) => mine.push((d, id, e)),
                // Not a longrun message: it cannot be delivered; leave it to whoever reads
                // the queue's dead letters.
                _ => {
                    d.acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(|e| broker(&self.config.url, e))?;
                }
            }
        }
        let items: Vec<(&str, &Envelope)> =
            mine.iter().map(|(_, id, e)| (id.as_str(), e)).collect();
        let (moved, taken, failed) = super::deliver(&self.target, &items).await?;
        for ((d, _, _), taken) in mine.iter().zip(taken) {
            if taken {
                d.acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(|e| broker(&self.config.url, e))?;
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
