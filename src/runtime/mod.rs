//! The engine: the public API to deploy, start and send, and the workers that run jobs and
//! relay the outbox.

mod acts;
mod builder;
mod clock;
mod config;
mod guard;
mod handler;
mod messages;
mod operate;
mod requests;
mod signals;
mod start;
mod tasks;
mod throttle;
mod workers;

pub use builder::EngineBuilder;
pub(crate) use builder::SubscriberReg;
pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use config::EngineConfig;
pub use handler::{BoxFuture, Handler, HandlerError, JobContext, Subscriber};
use requests::{check_business_key, check_idempotency_key, inexact_integer, IDEMPOTENT_STARTS};
pub use requests::{Action, StartRequest};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::definition::ProcessDefinition;
use crate::machine::Status;
use crate::store::{
    Applied, ClaimedJob, Delivery, Deployed, Error, Lease, Message, Projection, Result, Store,
};

/// The size of a value as compact JSON, without building the text.
pub(crate) fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}

/// The engine. Cheap to clone; all clones share the same workers.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    handlers: HashMap<String, Arc<dyn Handler>>,
    handler_names: Arc<HashSet<String>>,
    subscribers: Vec<SubscriberReg>,
    projections: Vec<Arc<dyn Projection>>,
    /// Set while the workers run: where locally created jobs and wake-ups go.
    local: Mutex<Option<Arc<Local>>>,
    /// Instances that ended in transactions this engine committed.
    ended: broadcast::Sender<Ended>,
}

/// An instance that ended, as seen by the engine that committed its last transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The instance.
    pub instance_id: Uuid,
    /// `Completed` or `Failed`.
    pub status: Status,
}

/// The running workers' shared plumbing.
pub(crate) struct Local {
    pub ready: mpsc::UnboundedSender<ClaimedJob>,
    pub sends: mpsc::UnboundedSender<(Message, oneshot::Sender<Result<Delivery>>)>,
    pub starts: mpsc::UnboundedSender<(StartRequest, oneshot::Sender<Result<uuid::Uuid>>)>,
    /// Operator and task actions to group (see `acts`).
    pub acts: mpsc::UnboundedSender<acts::ActCall>,
    pub claim_wake: Notify,
    pub relay_wake: Vec<Notify>,
    pub in_flight: AtomicUsize,
    pub stopping: AtomicBool,
    /// Set once the wake-up LISTEN connection is up.
    pub listening: tokio::sync::watch::Sender<bool>,
    /// Set when jobs for local handlers were left unleased for lack of room: the claimer
    /// should look once room frees up.
    pub overflow: AtomicBool,
    /// Wakes the timer worker.
    pub timer_wake: Notify,
    /// When the timer worker plans to look next (ms since the epoch, engine clock).
    pub timer_next_ms: std::sync::atomic::AtomicI64,
    /// Wakes the signal broadcaster.
    pub signal_wake: Notify,
    /// Wakes each projection's worker.
    pub projection_wake: Vec<Notify>,
    /// Wakes the timer starts' worker.
    pub start_timer_wake: Notify,
    /// Wakes the maintenance worker (lapsed leases, expired messages).
    pub maintain_wake: Notify,
    /// This engine's share of the buckets (`workers::shares`): empty until its first renewal.
    pub shares: tokio::sync::watch::Sender<Arc<Vec<i16>>>,
}

impl Local {
    /// How many more jobs this engine takes on (four times its handler concurrency in all).
    pub fn room(&self, config: &EngineConfig) -> usize {
        (config.handler_concurrency * 4).saturating_sub(self.in_flight.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.inner.config.owner)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Start building an engine on `store`.
    pub fn builder(store: Store) -> EngineBuilder {
        EngineBuilder {
            store,
            clock: Arc::new(SystemClock),
            config: EngineConfig::default(),
            handlers: HashMap::new(),
            subscribers: Vec::new(),
            projections: Vec::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Instances ending in transactions this engine commits from now on (not those other
    /// engines commit): lets tests and programs wait for outcomes without polling. A receiver
    /// that falls more than 65,536 ends behind gets `Lagged`.
    pub fn subscribe_ended(&self) -> broadcast::Receiver<Ended> {
        self.inner.ended.subscribe()
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// What work is waiting for this engine, by kind, in one statement: the look its probe
    /// takes every `max_poll_interval` while idle (and a way to see why an engine is busy).
    pub async fn work_waiting(&self) -> Result<crate::store::WorkWaiting> {
        let handlers: Vec<String> = self.inner.handler_names.iter().cloned().collect();
        let consumers: Vec<String> = self
            .inner
            .subscribers
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let projections: Vec<String> = self
            .inner
            .projections
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        self.inner
            .store
            .probe(&handlers, self.now(), &consumers, &projections)
            .await
    }

    pub(super) fn local(&self) -> Option<Arc<Local>> {
        self.inner.local.lock().expect("not poisoned").clone()
    }

    /// The buckets this engine claims and fires timers in: its share while its workers run,
    /// every bucket otherwise (an engine without workers, driven by its caller).
    pub(crate) fn owned_buckets(&self) -> Arc<Vec<i16>> {
        match self.local() {
            Some(local) => local.shares.borrow().clone(),
            None => Arc::new(crate::bucket::all_buckets()),
        }
    }

    /// A lease for jobs this engine creates for its own handlers, if its workers run.
    pub(super) fn lease(&self, now: DateTime<Utc>) -> Option<Lease> {
        let local = self.local()?;
        if local.stopping.load(Ordering::Relaxed) || self.inner.handler_names.is_empty() {
            return None;
        }
        let budget = local.room(&self.inner.config);
        Some(Lease {
            budget,
            owner: self.inner.config.owner.clone(),
            token: Uuid::new_v4(),
            expires_at: now + self.inner.config.job_lease,
            handlers: self.inner.handler_names.clone(),
        })
    }

    /// Hand what a committed transaction produced to the local workers.
    pub(crate) async fn after_commit(&self, applied: Applied) {
        let wake_others = applied.unleased_jobs
            || applied.outbox_written
            || applied.next_timer.is_some()
            || applied.signals_thrown;
        for (instance_id, status) in &applied.ended {
            let _ = self.inner.ended.send(Ended {
                instance_id: *instance_id,
                status: *status,
            });
        }
        let Some(local) = self.local() else {
            // No workers here: hint the engines that LISTEN (one NOTIFY per transaction, sent
            // after the commit, carrying no data).
            if wake_others {
                if let Err(e) = self.inner.store.notify(None).await {
                    tracing::debug!(error = %e, "wake-up hint not sent");
                }
            }
            return;
        };
        for job in applied.leased_jobs {
            local.in_flight.fetch_add(1, Ordering::Relaxed);
            if local.ready.send(job).is_err() {
                local.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if applied.unleased_jobs {
            local.overflow.store(true, Ordering::Relaxed);
            local.claim_wake.notify_one();
        }
        if applied.outbox_written {
            for n in &local.relay_wake {
                n.notify_one();
            }
        }
        if applied.signals_thrown {
            local.signal_wake.notify_one();
        }
        if let Some(due) = applied.next_timer {
            // Only a timer due before the worker's next look needs to wake it.
            if due.timestamp_millis() < local.timer_next_ms.load(Ordering::Relaxed) {
                local.timer_wake.notify_one();
            }
        }
    }

    /// Deploy a definition; see [`Store::deploy`].
    pub async fn deploy(&self, def: &ProcessDefinition) -> Result<Deployed> {
        self.inner.store.deploy(def, self.now()).await
    }

    /// Deploy a definition in the caller's transaction.
    pub async fn deploy_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        def: &ProcessDefinition,
    ) -> Result<Deployed> {
        self.inner.store.deploy_in(tx, def, self.now()).await
    }

    /// Feed one operator input to one instance in its own transaction.
    /// Refuse a payload over `max_payload_bytes` of JSON.
    /// (A message's payload is checked for NUL characters by `Message::check`; variables by
    /// [`Engine::check_variables`].)
    pub(crate) fn check_size(&self, what: &str, value: &Value) -> Result<()> {
        if let Some(n) = inexact_integer(value) {
            return Err(Error::BadInput(format!(
                "{what} hold the number {n}, an integer beyond 2^53: conditions and the console could not keep it exactly; send it as a string"
            )));
        }
        let size = json_size(value);
        let max = self.inner.config.max_payload_bytes;
        if size > max {
            return Err(Error::BadInput(format!(
                "{what} is {size} bytes of JSON; at most {max} are accepted (EngineConfig::max_payload_bytes)"
            )));
        }
        Ok(())
    }

    /// Refuse variables over `max_payload_bytes` or holding a NUL character.
    pub(super) fn check_variables(&self, what: &str, value: &Value) -> Result<()> {
        if crate::store::has_nul(value) {
            return Err(Error::BadInput(format!(
                "{what} contain a NUL character, which PostgreSQL cannot store"
            )));
        }
        self.check_size(what, value)
    }

    /// Start the workers: job claims and handlers, outbox subscribers, and maintenance
    /// (expiring buffered messages, taking over lapsed jobs). Returns a handle to stop them.
    pub fn run(&self) -> Running {
        let store = self.inner.store.clone();
        tokio::spawn(async move {
            match store.privileges().await {
                Ok(p) if p.superuser => tracing::warn!(
                    schema = store.schema(),
                    "the engine runs as a SUPERUSER: any bug or injected statement could do anything to the database; run it as a role granted longrun_runtime (see docs/SECURITY.md)"
                ),
                Ok(p) if p.owner => tracing::warn!(
                    schema = store.schema(),
                    "the engine runs as the OWNER of its schema: it could drop or alter longrun's tables; run it as a role granted longrun_runtime (see docs/SECURITY.md)"
                ),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "could not check the engine's privileges"),
            }
            if let Ok(false) = store.autovacuum().await {
                tracing::warn!(
                    schema = store.schema(),
                    "autovacuum is off on this server: rows longrun deletes (ended jobs, subscriptions and timers, history past its retention) are never reclaimed and the tables keep growing; turn it on, or VACUUM the schema's tables regularly"
                );
            }
        });
        workers::spawn(self.clone())
    }
}

pub use workers::Running;
