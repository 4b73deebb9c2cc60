//! Projections, maintenance (expiry, lapsed leases, retention), grouped sends and starts, and
//! the wake-up listener.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, watch, Mutex, Notify};

use super::*;
use crate::runtime::throttle::Throttle;
use crate::runtime::{guard, Engine, Local};

/// Keep one projection up to date: a batch after another while there are new events, then
/// sleeps that grow while there are none.
pub(super) async fn project(
    engine: Engine,
    local: Arc<Local>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let projection = engine.inner.projections[index].clone();
    let batch = engine.inner.config.projection_batch;
    let mut backoff = Backoff::new(&engine);
    let wake = &local.projection_wake[index];
    let mut failing = Throttle::new("a projection batch");
    loop {
        match engine
            .inner
            .store
            .project_once(projection.as_ref(), engine.now(), batch)
            .await
        {
            Ok(n) if n as i64 >= batch => {
                failing.ok();
                backoff.found();
                if *stop.borrow() {
                    return;
                }
                continue;
            }
            Ok(n) => {
                failing.ok();
                if n > 0 {
                    backoff.found();
                }
            }
            Err(e) => failing.failed(&format_args!("projection {}: {e}", projection.name())),
        }
        if !idle(backoff.next(), wake, &mut stop).await {
            return;
        }
    }
}

pub(super) async fn maintain(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let handlers: Vec<String> = engine.inner.handler_names.iter().cloned().collect();
    let mut expiring = Throttle::new("expiring buffered messages");
    let mut takeovers = Throttle::new("taking over lapsed jobs");
    // The probe looks every max_poll_interval and wakes this worker when there is something
    // to do; a maintenance interval shorter than that is kept as asked.
    let every = if cfg.maintenance_interval < cfg.max_poll_interval {
        cfg.maintenance_interval
    } else {
        cfg.idle_interval()
    };
    loop {
        if !idle(every, &local.maintain_wake, &mut stop).await {
            return;
        }
        let now = engine.now();
        let share = local.shares.borrow().clone();
        match engine
            .inner
            .store
            .expire_buffered_in(now, 1000, &share)
            .await
        {
            Ok(0) => expiring.ok(),
            Ok(n) => {
                expiring.ok();
                tracing::info!(
                    expired = n,
                    "buffered messages dead-lettered after their time to live"
                )
            }
            Err(e) => expiring.failed(&e),
        }
        if handlers.is_empty() || local.stopping.load(Ordering::Relaxed) {
            continue;
        }
        let lease = new_lease(&engine, &local);
        // Every bucket, not only this engine's share: a job whose lease lapsed was held by an
        // engine that failed to finish it in time, maybe the very one whose share holds it
        // (stuck in a handler, yet renewing its engine lease). Still one claim per bucket.
        let buckets = crate::bucket::all_buckets();
        match engine
            .inner
            .store
            .claim_jobs(&handlers, &buckets, now, cfg.claim_batch, &lease, true)
            .await
        {
            Ok(jobs) => {
                takeovers.ok();
                if !jobs.is_empty() {
                    tracing::info!(jobs = jobs.len(), "took over jobs whose lease lapsed");
                }
                for job in &jobs {
                    tracing::debug!(
                        job = %job.job_id,
                        instance = %job.instance_id,
                        step = %job.step_id,
                        handler = %job.handler,
                        attempts = job.attempts,
                        "took over a job whose lease lapsed"
                    );
                }
                for job in jobs {
                    local.in_flight.fetch_add(1, Ordering::Relaxed);
                    let _ = local.ready.send(job);
                }
            }
            Err(e) => takeovers.failed(&e),
        }
    }
}

/// Remove what retention says is due, every `retention_interval`: ended instances' history
/// past its period, inbound message ids past the deduplication window, outbound messages every
/// consumer has passed. Engines may do it at once; each batch skips rows another holds.
pub(super) async fn retain(engine: Engine, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let Some(every) = cfg.retention_interval else {
        return;
    };
    let policy = cfg.retention_policy();
    let quiet = Notify::new();
    let mut failing = Throttle::new("removing history past its retention");
    loop {
        if !idle(every, &quiet, &mut stop).await {
            return;
        }
        match engine
            .inner
            .store
            .apply_retention(&policy, engine.now(), |_| {})
            .await
        {
            Ok(removed) => {
                failing.ok();
                for (table, rows) in removed.tables() {
                    if rows > 0 {
                        metrics::counter!(crate::telemetry::RETENTION_REMOVED, "table" => table)
                            .increment(rows as u64);
                    }
                }
                if removed.rows() > 0 {
                    tracing::info!(
                        instances = removed.instances,
                        events = removed.events,
                        inbox = removed.inbox,
                        outbox = removed.outbox,
                        "removed history past its retention"
                    );
                }
                if removed.instances_held > 0 || removed.outbox_held > 0 {
                    tracing::debug!(
                        instances = removed.instances_held,
                        outbox = removed.outbox_held,
                        "history past its retention kept for a projection or consumer behind"
                    );
                }
            }
            Err(e) => failing.failed(&e),
        }
    }
}

/// Start instances of processes with a timer start as their firings fall due: a look after
/// another while there are some, then sleeps that grow while there are none.
pub(super) async fn start_on_timers(
    engine: Engine,
    local: Arc<Local>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(&engine);
    let mut failing = Throttle::new("firing timer starts");
    loop {
        match engine.fire_start_timers().await {
            Ok(n) => {
                failing.ok();
                if n > 0 {
                    backoff.found();
                    continue;
                }
            }
            Err(e) => failing.failed(&e),
        }
        if !idle(backoff.next(), &local.start_timer_wake, &mut stop).await {
            return;
        }
    }
}

/// Deliver thrown signals chunk by chunk; woken by a local throw or another process's hint,
/// and otherwise looking at most every `idle_poll_interval` (a broadcast an engine left
/// unfinished when it died is taken over when the probe finds it, or then).
pub(super) async fn broadcast(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let mut failing = Throttle::new("broadcasting signals");
    let slow = engine.inner.config.idle_interval();
    loop {
        match engine.deliver_signal_chunk().await {
            Ok(Some(_)) => {
                failing.ok();
                continue;
            }
            Ok(None) => failing.ok(),
            Err(e) => failing.failed(&e),
        }
        if !idle(slow, &local.signal_wake, &mut stop).await {
            return;
        }
    }
}

pub(super) type SendRequest = (
    crate::store::Message,
    tokio::sync::oneshot::Sender<crate::store::Result<crate::store::Delivery>>,
);

/// Group concurrent `Engine::send` calls into one transaction each round.
pub(super) async fn group_sends(
    engine: Engine,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<SendRequest>>>,
    mut stop: watch::Receiver<bool>,
) {
    let max = engine.inner.config.completion_batch;
    loop {
        let Some(batch) = next_batch(&rx, max, &mut stop).await else {
            return;
        };
        let (messages, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match guard::caught(engine.send_many(messages.clone())).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) if replies.len() == 1 => {
                let _ = replies.into_iter().next().expect("one").send(Err(e));
            }
            Err(e) => {
                // Each caller gets its own outcome: one bad message never fails the others.
                tracing::debug!(messages = messages.len(), error = %e, "a group of sends failed; sending them one by one");
                for (m, reply) in messages.into_iter().zip(replies) {
                    let outcome = guard::caught(engine.send_many(vec![m]))
                        .await
                        .and_then(|mut o| o.pop().expect("one outcome per message"));
                    if let Err(e) = &outcome {
                        if e.lies_in_the_data() {
                            metrics::counter!(crate::telemetry::SET_ASIDE, "kind" => "message")
                                .increment(1);
                        }
                    }
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}

pub(super) type StartCall = (
    crate::runtime::StartRequest,
    tokio::sync::oneshot::Sender<crate::store::Result<uuid::Uuid>>,
);

/// Group concurrent `Engine::start` calls into one transaction each round. If the group
/// fails, its starts are made one by one, so each caller gets its own outcome and one bad
/// request never fails the others.
pub(super) async fn group_starts(
    engine: Engine,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<StartCall>>>,
    mut stop: watch::Receiver<bool>,
) {
    let max = engine.inner.config.completion_batch;
    loop {
        let Some(batch) = next_batch(&rx, max, &mut stop).await else {
            return;
        };
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let together = if requests.len() == 1 {
            None
        } else {
            match guard::caught(engine.start_many(requests.clone())).await {
                Ok(ids) => Some(ids),
                Err(e) => {
                    tracing::debug!(starts = requests.len(), error = %e, "a group of starts failed; starting them one by one");
                    None
                }
            }
        };
        match together {
            Some(ids) => {
                for (reply, id) in replies.into_iter().zip(ids) {
                    let _ = reply.send(Ok(id));
                }
            }
            None => {
                for (r, reply) in requests.into_iter().zip(replies) {
                    let outcome = guard::caught(engine.start_many(vec![r]))
                        .await
                        .map(|mut ids| ids.pop().expect("one id per request"));
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}

/// Turn LISTEN/NOTIFY hints from other processes into local wake-ups. The hint carries no
/// data; the workers then look in the tables. If the connection drops, it is made again.
pub(super) async fn listen(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match engine.inner.store.listen().await {
            Ok(mut hints) => loop {
                local.listening.send_replace(true);
                tokio::select! {
                    h = hints.recv() => match h {
                        Some(()) => {
                            local.claim_wake.notify_one();
                            local.timer_wake.notify_one();
                            local.signal_wake.notify_one();
                            for n in &local.relay_wake {
                                n.notify_one();
                            }
                        }
                        None => break,
                    },
                    _ = stop.changed() => return,
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for wake-up hints; polling only"),
        }
        tokio::select! {
            _ = tokio::time::sleep(engine.inner.config.max_poll_interval) => {}
            _ = stop.changed() => return,
        }
    }
}
