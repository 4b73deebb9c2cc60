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

use tokio::sync::{mpsc, watch, Mutex, Notify};
use tokio::task::JoinSet;

use super::{guard, Engine, Local};

mod jobs;
mod probe;
mod relay;
mod shares;
mod timers;
mod upkeep;

use jobs::*;
use shares::*;
use timers::*;
use upkeep::*;

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

    /// The buckets this engine claims jobs and fires timers in: its share, among the running
    /// engines with the same handlers (empty until its first lease renewal, all 256 when it
    /// runs alone; see [`crate::EngineConfig::engine_lease`]).
    pub fn buckets(&self) -> Vec<u8> {
        self.local
            .shares
            .borrow()
            .iter()
            .map(|&b| b as u8)
            .collect()
    }

    /// [`Running::shutdown_within`] ten seconds.
    pub async fn shutdown(self) {
        self.shutdown_within(StdDuration::from_secs(10)).await
    }
}

pub(super) fn spawn(engine: Engine) -> Running {
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let (sends_tx, sends_rx) = mpsc::unbounded_channel();
    let (starts_tx, starts_rx) = mpsc::unbounded_channel();
    let (acts_tx, acts_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let local = Arc::new(Local {
        ready: ready_tx,
        sends: sends_tx,
        starts: starts_tx,
        acts: acts_tx,
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
        signal_wake: Notify::new(),
        projection_wake: engine
            .inner
            .projections
            .iter()
            .map(|_| Notify::new())
            .collect(),
        start_timer_wake: Notify::new(),
        maintain_wake: Notify::new(),
        shares: watch::channel(Arc::new(Vec::new())).0,
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
    let starts_rx = Arc::new(Mutex::new(starts_rx));
    let acts_rx = Arc::new(Mutex::new(acts_rx));
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
        worker!("starts", group_starts, engine, starts_rx, stop_rx);
        worker!(
            "acts",
            crate::runtime::acts::group_acts,
            engine,
            acts_rx,
            stop_rx
        );
    }
    worker!("share", share, engine, local, stop_rx);
    worker!("listen", listen, engine, local, stop_rx);
    worker!("timers", fire_timers, engine, local, stop_rx);
    for i in 0..engine.inner.projections.len() {
        worker!("projection", project, engine, local, i, stop_rx);
    }
    worker!("probe", probe::run, engine, local, stop_rx);
    worker!("maintain", maintain, engine, local, stop_rx);
    worker!("retain", retain, engine, stop_rx);
    worker!("start timers", start_on_timers, engine, local, stop_rx);
    worker!("signals", broadcast, engine, local, stop_rx);
    drop(stop_rx);
    Running {
        engine,
        stop,
        tasks,
        local,
    }
}

/// The sleep between looks for work: doubles while nothing is found (up to the idle
/// interval: the probe wakes a worker that has work sooner), resets when work is.
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
            max: c.idle_interval(),
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
pub(super) async fn next_batch<T>(
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
