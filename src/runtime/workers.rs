//! The workers of a running engine.
//!
//! Jobs flow: claim (a batch, one statement) or local creation (already leased) -> the ready
//! queue -> a handler task -> the completion queue -> a completer, which records up to
//! `completion_batch` results of many instances in one transaction. Jobs that this engine's
//! handlers run next come back from that transaction already leased, so a chain of service
//! steps costs one commit per step, shared by every instance in the batch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch, Mutex, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use super::throttle::Throttle;
use super::{guard, relay, Engine, JobContext, Local};
use crate::store::{ClaimedJob, Lease};

/// Running workers; [`Running::shutdown`] stops them.
pub struct Running {
    engine: Engine,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    local: Arc<Local>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("engine", &self.engine)
            .finish()
    }
}

impl Running {
    /// Stop claiming, let handlers in flight finish and record their results (for at most
    /// `grace`), then stop every worker. Work not finished by then is taken over by another
    /// engine when its lease lapses.
    pub async fn shutdown_within(mut self, grace: StdDuration) {
        self.local.stopping.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        while self.local.in_flight.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        let _ = self.stop.send(true);
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(StdDuration::from_secs(2), wait)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
        *self.engine.inner.local.lock().expect("not poisoned") = None;
    }

    /// Wait until the engine listens for wake-up hints from other processes (work they create
    /// is then noticed at once, not at the next poll).
    pub async fn listening(&self) {
        let mut rx = self.local.listening.subscribe();
        let _ = rx.wait_for(|up| *up).await;
    }

    /// [`Running::shutdown_within`] ten seconds.
    pub async fn shutdown(self) {
        self.shutdown_within(StdDuration::from_secs(10)).await
    }
}

pub(super) fn spawn(engine: Engine) -> Running {
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let (sends_tx, sends_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let local = Arc::new(Local {
        ready: ready_tx,
        sends: sends_tx,
        claim_wake: Notify::new(),
        relay_wake: engine
            .inner
            .subscribers
            .iter()
            .map(|_| Notify::new())
            .collect(),
        in_flight: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        listening: watch::channel(false).0,
        overflow: AtomicBool::new(false),
        timer_wake: Notify::new(),
        timer_next_ms: std::sync::atomic::AtomicI64::new(i64::MAX),
    });
    *engine.inner.local.lock().expect("not poisoned") = Some(local.clone());
    let mut tasks = JoinSet::new();
    // Every worker runs under a supervisor that starts it again if it panics (see guard).
    macro_rules! worker {
        ($name:literal, $f:expr, $($arg:ident),*) => {{
            let args = ($($arg.clone(),)*);
            tasks.spawn(guard::supervise($name, stop_rx.clone(), move || {
                let ($($arg,)*) = args.clone();
                $f($($arg),*)
            }));
        }};
    }
    let ready_rx = Arc::new(Mutex::new(ready_rx));
    let done_rx = Arc::new(Mutex::new(done_rx));
    let sends_rx = Arc::new(Mutex::new(sends_rx));
    if !engine.inner.handlers.is_empty() {
        worker!("execute", execute, engine, ready_rx, done_tx, stop_rx);
        for _ in 0..engine.inner.config.completers {
            worker!("complete", complete, engine, local, done_rx, stop_rx);
        }
        worker!("claim", claim, engine, local, stop_rx);
    }
    for i in 0..engine.inner.subscribers.len() {
        worker!("relay", relay::run, engine, local, i, stop_rx);
    }
    for _ in 0..engine.inner.config.completers {
        worker!("sends", group_sends, engine, sends_rx, stop_rx);
    }
    worker!("listen", listen, engine, local, stop_rx);
    worker!("timers", fire_timers, engine, local, stop_rx);
    for i in 0..engine.inner.projections.len() {
        worker!("projection", project, engine, i, stop_rx);
    }
    worker!("maintain", maintain, engine, local, stop_rx);
    drop(stop_rx);
    Running {
        engine,
        stop,
        tasks,
        local,
    }
}

/// The sleep between looks for work: doubles while nothing is found, resets when work is.
pub(super) struct Backoff {
    min: StdDuration,
    max: StdDuration,
    current: StdDuration,
}

impl Backoff {
    pub(super) fn new(engine: &Engine) -> Self {
        let c = &engine.inner.config;
        Backoff {
            min: c.poll_interval,
            max: c.max_poll_interval,
            current: c.poll_interval,
        }
    }
    pub(super) fn found(&mut self) {
        self.current = self.min;
    }
    pub(super) fn next(&mut self) -> StdDuration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d
    }
}

/// Wait for `d`, a wake-up, or the stop signal. Returns false once stopping. A wake-up
/// resets `backoff`, if given, so the next look follows soon after.
pub(super) async fn idle(d: StdDuration, wake: &Notify, stop: &mut watch::Receiver<bool>) -> bool {
    idle_with(d, wake, stop, None).await
}

pub(super) async fn idle_with(
    d: StdDuration,
    wake: &Notify,
    stop: &mut watch::Receiver<bool>,
    backoff: Option<&mut Backoff>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = wake.notified() => {
            if let Some(b) = backoff {
                b.found();
            }
        }
        _ = stop.changed() => {}
    }
    !*stop.borrow()
}

/// Wait for one item, then take whatever else is already queued, up to `max`: the batch one
/// transaction handles. Several workers share the queue; the lock hands it to one at a time.
/// `None` once stopping or the queue closed.
async fn next_batch<T>(
    queue: &Mutex<mpsc::UnboundedReceiver<T>>,
    max: usize,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<T>> {
    let mut rx = queue.lock().await;
    let first = tokio::select! {
        f = rx.recv() => f?,
        _ = stop.changed() => return None,
    };
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(f) => batch.push(f),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn new_lease(engine: &Engine, local: &Local) -> Lease {
    let now = engine.now();
    Lease {
        budget: local.room(&engine.inner.config),
        owner: engine.inner.config.owner.clone(),
        token: Uuid::new_v4(),
        expires_at: now + engine.inner.config.job_lease,
        handlers: engine.inner.handler_names.clone(),
    }
}

async fn claim(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let handlers: Vec<String> = engine.inner.handler_names.iter().cloned().collect();
    let cap = cfg.handler_concurrency * 4;
    let mut backoff = Backoff::new(&engine);
    let mut claims = Throttle::new("claiming jobs");
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
            match engine
                .inner
                .store
                .claim_jobs(&handlers, engine.now(), limit, &lease, false)
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

async fn execute(
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
        tokio::spawn(async move {
            let result = match handler {
                None => Err((
                    None,
                    format!("no handler \"{}\" on this engine", job.handler),
                )),
                Some(h) => {
                    let ctx = JobContext {
                        job_id: job.job_id,
                        instance_id: job.instance_id,
                        step: job.step_id.clone(),
                        variables: job.variables.clone(),
                        attempt: job.attempts,
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
                        Ok(v) if super::json_size(&v) > max => Err((
                            None,
                            format!(
                                "the handler's result is {} bytes of JSON; at most {max} are accepted",
                                super::json_size(&v)
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

async fn complete(
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
async fn record(
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
async fn set_aside_job(
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

/// Keep one projection up to date: a batch after another while there are new events, then
/// sleeps that grow while there are none.
async fn project(engine: Engine, index: usize, mut stop: watch::Receiver<bool>) {
    let projection = engine.inner.projections[index].clone();
    let batch = engine.inner.config.projection_batch;
    let mut backoff = Backoff::new(&engine);
    let quiet = Notify::new();
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
        if !idle(backoff.next(), &quiet, &mut stop).await {
            return;
        }
    }
}

async fn maintain(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let handlers: Vec<String> = engine.inner.handler_names.iter().cloned().collect();
    let quiet = Notify::new();
    let mut expiring = Throttle::new("expiring buffered messages");
    let mut takeovers = Throttle::new("taking over lapsed jobs");
    loop {
        if !idle(cfg.maintenance_interval, &quiet, &mut stop).await {
            return;
        }
        let now = engine.now();
        match engine.inner.store.expire_buffered(now, 1000).await {
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
        match engine
            .inner
            .store
            .claim_jobs(&handlers, now, cfg.claim_batch, &lease, true)
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

type SendRequest = (
    crate::store::Message,
    tokio::sync::oneshot::Sender<crate::store::Result<crate::store::Delivery>>,
);

/// Group concurrent `Engine::send` calls into one transaction each round.
async fn group_sends(
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

/// Turn LISTEN/NOTIFY hints from other processes into local wake-ups. The hint carries no
/// data; the workers then look in the tables. If the connection drops, it is made again.
async fn listen(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
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

/// Fire due timers; sleep until the next one is due (at most `max_poll_interval`), or until a
/// new timer due sooner, or a hint from another process, wakes the worker.
async fn fire_timers(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let mut rounds = Throttle::new("firing timers");
    loop {
        let (sleep, next_due) = match guard::caught(engine.fire_round()).await {
            Ok(f) if f.more => {
                rounds.ok();
                continue;
            }
            Ok(f) => {
                rounds.ok();
                let sleep = f
                    .next_due
                    .map(|d| engine.inner.clock.real_duration(d - engine.now()))
                    .unwrap_or(cfg.max_poll_interval);
                (sleep.min(cfg.max_poll_interval), f.next_due)
            }
            Err(e) if e.lies_in_the_data() => {
                // One timer's transition fails the round: fire them one by one, and set aside
                // the one that still fails, so that the others fire.
                tracing::warn!(error = %e, "a round of timers failed; firing them one by one");
                if fire_one_by_one(&engine).await {
                    continue;
                }
                (cfg.max_poll_interval, None)
            }
            Err(e) => {
                rounds.failed(&e);
                (cfg.max_poll_interval, None)
            }
        };
        // A new timer due before the earliest known one wakes the worker; any later one is
        // found by the scan at that time (or at the next poll) anyway.
        let next_ms = next_due.map_or(i64::MAX, |d| d.timestamp_millis());
        local.timer_next_ms.store(next_ms, Ordering::Relaxed);
        if !idle(sleep, &local.timer_wake, &mut stop).await {
            return;
        }
        // While a round runs, any new timer wakes the worker again: the round's scan may
        // have missed it.
        local.timer_next_ms.store(i64::MAX, Ordering::Relaxed);
    }
}

/// Retry `f` while it fails with a conflict, a few times; panics are caught.
async fn retrying<T, F, Fut>(mut f: F) -> crate::store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match guard::caught(f()).await {
            Err(e) if e.is_retryable() && attempt < 5 => {}
            other => return other,
        }
    }
}

/// Fire the due timers one transaction each; a timer that still fails for a reason that lies
/// in the data is set aside (removed, its instance failed with the reason). Returns whether
/// every due timer fired or was set aside.
async fn fire_one_by_one(engine: &Engine) -> bool {
    let store = &engine.inner.store;
    let now = engine.now();
    let due = match store.due_timers(now, engine.inner.config.claim_batch).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "reading the due timers failed");
            return false;
        }
    };
    let mut all = true;
    for timer in due {
        let lease = engine.lease(now);
        match retrying(|| store.fire_timer(now, timer, lease.as_ref())).await {
            Ok(applied) => engine.after_commit(applied).await,
            Err(e) if e.lies_in_the_data() => {
                tracing::error!(timer = %timer.0, instance = %timer.1, error = %e, "a due timer could not be fired; its instance fails with the reason and the engine goes on");
                metrics::counter!(crate::telemetry::SET_ASIDE, "kind" => "timer").increment(1);
                let reason = format!("timer {} could not be fired: {e}", timer.0);
                match retrying(|| store.set_aside_timer(now, timer, reason.clone(), lease.as_ref()))
                    .await
                {
                    Ok(applied) => engine.after_commit(applied).await,
                    Err(e) => {
                        tracing::error!(timer = %timer.0, instance = %timer.1, error = %e, "setting the timer aside failed too");
                        all = false;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(timer = %timer.0, error = %e, "firing a timer failed");
                all = false;
            }
        }
    }
    all
}
