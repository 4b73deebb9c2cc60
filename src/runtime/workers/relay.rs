//! The outbox relay: each in-process subscriber is a durable consumer of its topics. Messages
//! of one batch are handled concurrently; a failing one is retried in place a few times; the
//! checkpoint moves past the longest prefix that succeeded, so a message that still fails (and
//! those after it) is delivered again after a backoff.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures_util::FutureExt;
use tokio::sync::watch;

use super::{idle, idle_with, Backoff};
use crate::runtime::{Engine, Local};

/// How often a failing message is retried in place before the batch stops at it.
const IN_PLACE_RETRIES: u32 = 3;

pub(super) async fn run(
    engine: Engine,
    local: Arc<Local>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let reg = &engine.inner.subscribers[index];
    let cfg = &engine.inner.config;
    let wake = &local.relay_wake[index];
    let lease = cfg.consumer_lease;
    let consumer = engine
        .inner
        .store
        .consumer(reg.name.clone(), reg.topics.clone(), cfg.owner.clone())
        .with_lease(lease);
    let mut backoff = StdDuration::from_millis(50);
    let mut poll = Backoff::new(&engine);
    let mut reading = crate::runtime::throttle::Throttle::new("reading the outbox");
    loop {
        if *stop.borrow() {
            break;
        }
        let batch = match consumer.poll(engine.now(), cfg.consumer_batch).await {
            Ok(Some(batch)) => {
                reading.ok();
                batch
            }
            Ok(None) => {
                reading.ok();
                // Another engine holds this consumer; look again later.
                if !idle(cfg.max_poll_interval, wake, &mut stop).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                reading.failed(&format_args!("consumer {}: {e}", reg.name));
                if !idle(poll.next(), wake, &mut stop).await {
                    break;
                }
                continue;
            }
        };
        if batch.is_empty() {
            let d = poll.next();
            if !idle_with(d, wake, &mut stop, Some(&mut poll)).await {
                break;
            }
            continue;
        }
        poll.found();
        let handling = futures_util::future::join_all(batch.iter().map(|m| {
            let engine = engine.clone();
            let span = tracing::info_span!(
                "delivery",
                consumer = %reg.name,
                message_id = %m.message_id,
                name = %m.name,
                instance_id = %m.instance_id,
                trace_key = m.trace_key.as_deref().unwrap_or(""),
                traceparent = m.traceparent.as_deref().unwrap_or(""),
            );
            crate::telemetry::link(&span, m.traceparent.as_deref());
            metrics::histogram!(crate::telemetry::OUTBOX_LAG, "consumer" => reg.name.clone())
                .record(crate::telemetry::seconds(m.created_at, engine.now()));
            tracing::Instrument::instrument(
                async move {
                    // A failing message is retried in place a few times (10, 20, 40 ms) before
                    // the batch stops at it and redelivers from there after a longer backoff.
                    let mut attempt = 0;
                    loop {
                        let r = std::panic::AssertUnwindSafe(
                            reg.subscriber.call(engine.clone(), m.clone()),
                        )
                        .catch_unwind()
                        .await;
                        if matches!(r, Ok(Ok(()))) || attempt == IN_PLACE_RETRIES {
                            return r;
                        }
                        tokio::time::sleep(StdDuration::from_millis(10 << attempt)).await;
                        attempt += 1;
                    }
                },
                span,
            )
        }));
        // A batch can take longer than the lease: renewed every third of it meanwhile, so
        // that no other engine reads the same batch and neither can acknowledge it.
        let renewing = async {
            let every = engine.inner.clock.real_duration(lease) / 3;
            loop {
                tokio::time::sleep(every.max(StdDuration::from_millis(1))).await;
                match consumer.renew(engine.now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(consumer = %reg.name, "lease lost while handling a batch")
                    }
                    Err(e) => {
                        tracing::debug!(consumer = %reg.name, error = %e, "renewing the lease failed")
                    }
                }
            }
        };
        let results = tokio::select! {
            results = handling => results,
            never = renewing => never,
        };
        let ok_prefix = results
            .iter()
            .position(|r| !matches!(r, Ok(Ok(()))))
            .unwrap_or(results.len());
        if ok_prefix < results.len() {
            let why = match &results[ok_prefix] {
                Ok(Err(e)) => e.to_string(),
                _ => "subscriber panicked".to_string(),
            };
            tracing::warn!(consumer = %reg.name, message = %batch[ok_prefix].message_id, error = %why, "subscriber failed; the message will be delivered again");
        }
        if ok_prefix > 0 {
            if let Err(e) = consumer.ack(engine.now(), &batch[..ok_prefix]).await {
                tracing::warn!(consumer = %reg.name, error = %e, "acknowledging failed");
            }
        }
        if ok_prefix > 0 {
            backoff = StdDuration::from_millis(50);
        }
        if ok_prefix < results.len() {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => {}
            }
            backoff = (backoff * 2).min(StdDuration::from_secs(30));
        } else {
            backoff = StdDuration::from_millis(50);
        }
    }
    let _ = consumer.release().await;
}
