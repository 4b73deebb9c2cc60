//! `longrun bridge` with a broker on one side: NATS JetStream or RabbitMQ.

use longrun::bridge::nats::{NatsConfig, NatsDelivery, NatsPublisher};
use longrun::bridge::rabbitmq::{RabbitConfig, RabbitDelivery, RabbitPublisher};

use super::operate::context;
use crate::args::*;
use crate::util::*;

/// Publish a context's outbox to NATS (`--to nats://..`) or deliver from NATS into a context
/// (`--from nats://..`); `--once` carries what is there now, else until Ctrl-C or SIGTERM.
pub(crate) async fn nats(
    cli: &Cli,
    (from, to): (&str, &str),
    topics: &[String],
    name: Option<String>,
    once: bool,
    (stream, prefix): (String, String),
) -> Result<(), Failure> {
    let config = |url: String| NatsConfig {
        stream: stream.clone(),
        prefix: prefix.clone(),
        ..NatsConfig::new(url)
    };
    if from.starts_with("nats://") && to.starts_with("nats://") {
        return Err(Failure::Input(
            "a bridge joins a context and a broker, or two contexts: not two brokers".into(),
        ));
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (label, task) = if let Some(url) = to.strip_prefix("nats://") {
        let source = context(cli, from).await?;
        let name = name.unwrap_or_else(|| format!("nats-from-{}", source.schema()));
        let p = NatsPublisher::connect(
            &source,
            config(format!("nats://{url}")),
            &name,
            topics.to_vec(),
        )
        .await?;
        if once {
            return report(cli, &name, p.drain().await?);
        }
        let task = tokio::spawn(async move { p.run(stop).await });
        (
            format!("{name} publishes {} to {to}", topics.join(",")),
            task,
        )
    } else {
        let target = context(cli, to).await?;
        let name = name.unwrap_or_else(|| format!("nats-to-{}", target.schema()));
        let d = NatsDelivery::connect(config(from.to_string()), &target, &name, topics.to_vec())
            .await?;
        if once {
            return report(cli, &name, d.drain().await?);
        }
        let task = tokio::spawn(async move { d.run(stop).await });
        (
            format!("{name} delivers {} from {from}", topics.join(",")),
            task,
        )
    };
    until_stopped(&label, stop_tx, task).await
}

/// Whether `url` names a RabbitMQ server.
pub(crate) fn is_amqp(url: &str) -> bool {
    url.starts_with("amqp://") || url.starts_with("amqps://")
}

/// Publish a context's outbox to RabbitMQ (`--to amqp://..`) or deliver from a queue into a
/// context (`--from amqp://..`, the queue named by --name).
pub(crate) async fn rabbitmq(
    cli: &Cli,
    (from, to): (&str, &str),
    topics: &[String],
    name: Option<String>,
    once: bool,
    exchange: String,
) -> Result<(), Failure> {
    if is_amqp(from) && is_amqp(to) {
        return Err(Failure::Input(
            "a bridge joins a context and a broker, or two contexts: not two brokers".into(),
        ));
    }
    let config = |url: &str| RabbitConfig {
        exchange: exchange.clone(),
        ..RabbitConfig::new(url)
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (label, task) = if is_amqp(to) {
        let source = context(cli, from).await?;
        let name = name.unwrap_or_else(|| format!("rabbitmq-from-{}", source.schema()));
        let p = RabbitPublisher::connect(&source, config(to), &name, topics.to_vec()).await?;
        if once {
            return report(cli, &name, p.drain().await?);
        }
        let task = tokio::spawn(async move { p.run(stop).await });
        (format!("{name} publishes {}", topics.join(",")), task)
    } else {
        let target = context(cli, to).await?;
        let name = name.unwrap_or_else(|| format!("rabbitmq-to-{}", target.schema()));
        let d = RabbitDelivery::connect(config(from), &target, &name, topics.to_vec()).await?;
        if once {
            return report(cli, &name, d.drain().await?);
        }
        let task = tokio::spawn(async move { d.run(stop).await });
        (format!("{name} delivers {}", topics.join(",")), task)
    };
    until_stopped(&label, stop_tx, task).await
}

/// Run the bridge half until Ctrl-C or SIGTERM, then stop it cleanly.
async fn until_stopped(
    label: &str,
    stop_tx: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<longrun::Result<()>>,
) -> Result<(), Failure> {
    eprintln!("longrun: bridge {label}; Ctrl-C stops it");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::Other(format!("cannot watch SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(())
}

fn report(cli: &Cli, name: &str, moved: longrun::bridge::Moved) -> Result<(), Failure> {
    if cli.json {
        print_json(&moved);
    } else {
        println!(
            "bridge {name}: {} delivered, {} already there",
            moved.delivered, moved.duplicates
        );
    }
    Ok(())
}
