//! Jobs: claiming, running handlers, recording results (a poison result set aside alone).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch, Mutex, Semaphore};
use tracing::Instrument;
use uuid::Uuid;

use super::*;
use crate::runtime::throttle::Throttle;
use crate::runtime::{guard, Engine, JobContext, Local};
use crate::store::{ClaimedJob, Lease};

pub(super) fn new_lease(engine: &Engine, local: &Local) -> Lease {
    let now = engine.now();
    Lease {
        budget: local.room(&engine.inner.config),
        owner: engine.inner.config.owner.clone(),
        token: Uuid::new_v4(),
        expires_at: now + engine.inner.config.job_lease,
        handlers: engine.inner.handler_names.clone(),
    }
}

pub(super) async fn claim(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let handlers: Vec<String> = engine.inner.handler_names.iter().cloned().collect();
    let cap = cfg.handler_concurrency * 4;
    let mut backoff = Backoff::new(&engine);
    let mut claims = Throttle::new("claiming jobs");
    if !shared(&local, &mut stop).await {
        return;
    }
    loop {
        if local.stopping.load(Ordering::Relaxed) {
            if !idle(cfg.poll_interval, &local.claim_wake, &mut stop).await {
                return;
            }
            continue;
        }
        let room = cap.saturating_sub(local.in_flight.load(Ordering::Relaxed));
        let limit = (room as i64).min(cfg.claim_batch);
        let mut got = 0;
        if limit > 0 {
            let lease = new_lease(&engine, &local);
            let buckets = local.shares.borrow().clone();
            match engine
                .inner
                .store
                .claim_jobs(&handlers, &buckets, engine.now(), limit, &lease, false)
                .await
            {
                Ok(jobs) => {
                    claims.ok();
                    got = jobs.len() as i64;
                    if got < limit {
                        local.overflow.store(false, Ordering::Relaxed);
                    }
                    for job in jobs {
                        local.in_flight.fetch_add(1, Ordering::Relaxed);
                        let _ = local.ready.send(job);
                    }
                }
                Err(e) => claims.failed(&e),
            }
        }
        if got == limit && limit > 0 {
            continue;
        }
        if got > 0 {
            backoff.found();
        }
        let d = backoff.next();
        if !idle_with(d, &local.claim_wake, &mut stop, Some(&mut backoff)).await {
            return;
        }
    }
}

pub(super) async fn execute(
    engine: Engine,
    ready: Arc<Mutex<mpsc::UnboundedReceiver<ClaimedJob>>>,
    done: mpsc::UnboundedSender<crate::store::Finished>,
    mut stop: watch::Receiver<bool>,
) {
    // One executor at a time holds the queue (a restarted one takes it over).
    let mut ready = ready.lock().await;
    let permits = Arc::new(Semaphore::new(engine.inner.config.handler_concurrency));
    loop {
        let job = tokio::select! {
            j = ready.recv() => match j { Some(j) => j, None => return },
            _ = stop.changed() => return,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let handler = engine.inner.handlers.get(&job.handler).cloned();
        let done = done.clone();
        let engine_max = engine.inner.config.max_payload_bytes;
        let store = engine.inner.store.clone();
        tokio::spawn(async move {
            let result = match handler {
                None => Err((
                    None,
                    format!("no handler \"{}\" on this engine", job.handler),
                )),
                Some(h) => {
                    // The step's headers, from the compiled definition (cached per version).
                    let headers = match store.definition(&job.process, job.version).await {
                        Ok(def) => match def.step(&job.step_id).map(|s| &s.kind) {
                            Some(crate::definition::StepKind::Service { headers, .. }) => {
                                headers.clone()
                            }
                            _ => Default::default(),
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, process = %job.process, "cannot read the step's headers");
                            Default::default()
                        }
                    };
                    let ctx = JobContext {
                        job_id: job.job_id,
                        instance_id: job.instance_id,
                        step: job.step_id.clone(),
                        variables: job.variables.clone(),
                        attempt: job.attempts,
                        headers,
                    };
                    let span = tracing::info_span!(
                        "handler",
                        instance_id = %job.instance_id,
                        process = %job.process,
                        version = job.version,
                        step = %job.step_id,
                        handler = %job.handler,
                        job_id = %job.job_id,
                        attempt = job.attempts,
                        trace_key = job.trace.as_ref().map_or("", |t| t.key.as_str()),
                        traceparent = job.trace.as_ref().map_or("", |t| t.traceparent.as_str()),
                    );
                    crate::telemetry::link(
                        &span,
                        job.trace.as_ref().map(|t| t.traceparent.as_str()),
                    );
                    let started = std::time::Instant::now();
                    let (result, outcome) = match std::panic::AssertUnwindSafe(h.call(ctx))
                        .catch_unwind()
                        .instrument(span)
                        .await
                    {
                        Ok(Ok(v)) => (Ok(v), "ok"),
                        Ok(Err(e)) => (
                            Err((e.code().map(str::to_string), e.message().to_string())),
                            "error",
                        ),
                        Err(_) => (
                            Err((None, format!("handler \"{}\" panicked", job.handler))),
                            "panic",
                        ),
                    };
                    let max = engine_max;
                    let result = match result {
                        Ok(v) if crate::runtime::json_size(&v) > max => Err((
                            None,
                            format!(
                                "the handler's result is {} bytes of JSON; at most {max} are accepted",
                                crate::runtime::json_size(&v)
                            ),
                        )),
                        other => other,
                    };
                    metrics::histogram!(
                        crate::telemetry::HANDLER_DURATION,
                        "handler" => job.handler.clone(),
                        "outcome" => outcome
                    )
                    .record(started.elapsed().as_secs_f64());
                    result
                }
            };
            drop(permit);
            let _ = done.send(crate::store::Finished {
                job,
                result,
                fault: None,
            });
        });
    }
}

pub(super) async fn complete(
    engine: Engine,
    local: Arc<Local>,
    done: Arc<Mutex<mpsc::UnboundedReceiver<crate::store::Finished>>>,
    mut stop: watch::Receiver<bool>,
) {
    let max = engine.inner.config.completion_batch;
    loop {
        let Some(batch) = next_batch(&done, max, &mut stop).await else {
            return;
        };
        let n = batch.len();
        if let Err(e) = record(&engine, &local, batch.clone()).await {
            if n == 1 {
                set_aside_job(&engine, &local, batch.into_iter().next().expect("one"), e).await;
            } else {
                // One bad result must not hold back the others: each alone, and only the one
                // that still fails is set aside.
                tracing::warn!(jobs = n, error = %e, "recording a batch of job results failed; recording them one by one");
                for f in batch {
                    if let Err(e) = record(&engine, &local, vec![f.clone()]).await {
                        set_aside_job(&engine, &local, f, e).await;
                    }
                }
            }
        }
        local.in_flight.fetch_sub(n, Ordering::Relaxed);
        if local.overflow.load(Ordering::Relaxed) {
            local.claim_wake.notify_one();
        }
    }
}

/// Record handler results in one transaction, retrying conflicts a few times; a panic is
/// caught and returned as an error.
pub(super) async fn record(
    engine: &Engine,
    local: &Local,
    batch: Vec<crate::store::Finished>,
) -> crate::store::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let lease = if local.stopping.load(Ordering::Relaxed) {
            None
        } else {
            Some(new_lease(engine, local))
        };
        let finished = engine
            .inner
            .store
            .finish_jobs(engine.now(), batch.clone(), lease.as_ref());
        match guard::caught(finished).await {
            Ok((applied, fenced)) => {
                if fenced > 0 {
                    tracing::warn!(
                        fenced,
                        "results of jobs taken over by another engine were dropped"
                    );
                }
                for (o, f) in applied.outcomes.iter().zip(&batch) {
                    if let Err(e) = o {
                        tracing::warn!(job = %f.job.job_id, error = %e, "job result refused");
                    }
                }
                engine.after_commit(applied).await;
                return Ok(());
            }
            Err(e) if e.is_retryable() && attempt < 5 => {
                tracing::debug!(error = %e, attempt, "completion batch conflicted; retrying");
            }
            Err(e) => return Err(e),
        }
    }
}

/// A job result that cannot be recorded alone: if the failure lies in the data (the database
/// refused what the transition wrote, or the engine panicked), the job's step gets an incident
/// with the reason; otherwise (the database is away) its lease lapses and it runs again.
pub(super) async fn set_aside_job(
    engine: &Engine,
    local: &Local,
    f: crate::store::Finished,
    e: crate::store::Error,
) {
    let job = &f.job;
    if !e.lies_in_the_data() {
        tracing::error!(job = %job.job_id, instance = %job.instance_id, error = %e, "recording a job result failed; its lease will lapse and it runs again");
        return;
    }
    tracing::error!(
        job = %job.job_id,
        instance = %job.instance_id,
        process = %job.process,
        step = %job.step_id,
        handler = %job.handler,
        error = %e,
        "a job result could not be recorded; the step gets an incident and the engine goes on"
    );
    metrics::counter!(crate::telemetry::SET_ASIDE, "kind" => "job").increment(1);
    let mut f = f;
    f.fault = Some(format!(
        "the engine could not record the handler's result: {e}"
    ));
    let (job_id, instance) = (f.job.job_id, f.job.instance_id);
    if let Err(e) = record(engine, local, vec![f]).await {
        tracing::error!(job = %job_id, instance = %instance, error = %e, "setting the job aside failed too; its lease will lapse and it runs again");
    }
}
