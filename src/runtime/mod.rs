//! The engine: the public API to deploy, start and send, and the workers that run jobs and
//! relay the outbox.

mod clock;
mod guard;
mod handler;
mod relay;
mod throttle;
mod workers;

pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use handler::{BoxFuture, Handler, HandlerError, JobContext, Subscriber};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::definition::{ProcessDefinition, UniqueKey};
use crate::machine::Status;
use crate::store::{
    Applied, ClaimedJob, Conn, Delivery, Deployed, Error, Lease, Message, Projection, Result,
    Store, Work,
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

/// Settings of an [`Engine`], with documented defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this engine in leases (`lease_owner` columns). Default: host, pid and a random
    /// suffix.
    pub owner: String,
    /// How long a claimed job is held before another engine may take it over. Default 5 min.
    pub job_lease: Duration,
    /// How many jobs one claim takes at most. Default 512.
    pub claim_batch: i64,
    /// How many handlers run at once. Default 512.
    pub handler_concurrency: usize,
    /// How many results one completion transaction records at most. Default 512.
    pub completion_batch: usize,
    /// How many completion transactions may be in flight at once. Default 2.
    pub completers: usize,
    /// How long workers sleep when they found no work, at first. Default 200 ms.
    pub poll_interval: std::time::Duration,
    /// Each empty look doubles the sleep, up to this. Default 5 s. Work created by this
    /// engine wakes its workers at once; work created elsewhere wakes them through a
    /// LISTEN/NOTIFY hint, so the longer sleeps cost no latency.
    pub max_poll_interval: std::time::Duration,
    /// How long an inbound message nobody waits for is buffered. Default 1 h.
    pub message_ttl: Duration,
    /// How many outbox messages a subscriber reads at once. Default 128.
    pub consumer_batch: i64,
    /// How long a subscriber's hold on its consumer lasts unless renewed: another engine takes
    /// the consumer over this long after its holder died. Default 30 s.
    pub consumer_lease: Duration,
    /// How often buffered messages are expired and lapsed job leases taken over. Default 10 s.
    pub maintenance_interval: std::time::Duration,
    /// Keep the activity history (the `activity` projection) up to date. Default true. Any
    /// engine may do it; one at a time does.
    pub activity_history: bool,
    /// How many new events a projection batch looks at, at most. Default 2,000.
    pub projection_batch: i64,
    /// The largest payload accepted, in bytes of JSON: an inbound message's payload, a start's
    /// or a retry's variables, a handler's result. Larger ones are refused before anything is
    /// written (a handler's result fails its attempt). Default 1 MiB.
    pub max_payload_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let suffix = Uuid::new_v4().simple().to_string();
        EngineConfig {
            owner: format!("{host}-{}-{}", std::process::id(), &suffix[..8]),
            job_lease: Duration::minutes(5),
            claim_batch: 512,
            handler_concurrency: 512,
            completion_batch: 512,
            completers: 2,
            poll_interval: std::time::Duration::from_millis(200),
            max_poll_interval: std::time::Duration::from_secs(5),
            message_ttl: Duration::hours(1),
            consumer_batch: 128,
            consumer_lease: Duration::seconds(30),
            maintenance_interval: std::time::Duration::from_secs(10),
            activity_history: true,
            projection_batch: 2_000,
            max_payload_bytes: 1 << 20,
        }
    }
}

impl EngineConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::BadInput(format!("engine config: {m}")));
        if self.owner.is_empty() {
            return bad("owner must not be empty");
        }
        if self.job_lease <= Duration::zero()
            || self.message_ttl <= Duration::zero()
            || self.consumer_lease <= Duration::zero()
        {
            return bad("job_lease, consumer_lease and message_ttl must be positive");
        }
        let max = crate::definition::MAX_SPAN;
        if self.job_lease > max || self.message_ttl > max || self.consumer_lease > max {
            return bad("job_lease, consumer_lease and message_ttl must be at most 100 years");
        }
        if self.claim_batch < 1 || self.consumer_batch < 1 || self.projection_batch < 1 {
            return bad("claim_batch, consumer_batch and projection_batch must be at least 1");
        }
        if self.handler_concurrency == 0 || self.completion_batch == 0 || self.completers == 0 {
            return bad("handler_concurrency, completion_batch and completers must be at least 1");
        }
        if self.poll_interval.is_zero() || self.maintenance_interval.is_zero() {
            return bad("poll_interval and maintenance_interval must be positive");
        }
        if self.max_payload_bytes < 1024 {
            return bad("max_payload_bytes must be at least 1024");
        }
        if self.max_poll_interval < self.poll_interval {
            return bad("max_poll_interval must be at least poll_interval");
        }
        Ok(())
    }
}

/// Builds an [`Engine`]: register handlers and subscribers, then `build`.
pub struct EngineBuilder {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    handlers: HashMap<String, Arc<dyn Handler>>,
    subscribers: Vec<SubscriberReg>,
    projections: Vec<Arc<dyn Projection>>,
}

pub(crate) struct SubscriberReg {
    pub name: String,
    pub topics: Vec<String>,
    pub subscriber: Arc<dyn Subscriber>,
}

impl EngineBuilder {
    /// Use this clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Use these settings.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Run service steps whose `handler` is `name` with `handler`.
    pub fn handler(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.handlers.insert(name.into(), Arc::new(handler));
        self
    }

    /// Deliver outbox messages on `topics` to `subscriber`, as the durable consumer `name`
    /// (one engine at a time holds a consumer; its position survives restarts).
    pub fn subscriber(
        mut self,
        name: impl Into<String>,
        topics: &[&str],
        subscriber: impl Subscriber,
    ) -> Self {
        self.subscribers.push(SubscriberReg {
            name: name.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            subscriber: Arc::new(subscriber),
        });
        self
    }

    /// Keep `projection` up to date while the engine runs (with the other engines that
    /// register it: one at a time applies a batch).
    pub fn projection(mut self, projection: impl Projection) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Check the settings and build the engine. It does no work until [`Engine::run`].
    pub fn build(mut self) -> Result<Engine> {
        self.config.validate()?;
        if self.config.activity_history {
            self.projections
                .insert(0, Arc::new(crate::store::ActivityHistory));
        }
        let mut projection_names = HashSet::new();
        for p in &self.projections {
            if !projection_names.insert(p.name().to_string()) {
                return Err(Error::BadInput(format!(
                    "two projections are named \"{}\"",
                    p.name()
                )));
            }
        }
        let mut names = HashSet::new();
        for s in &self.subscribers {
            if !names.insert(s.name.clone()) {
                return Err(Error::BadInput(format!(
                    "two subscribers are named \"{}\"",
                    s.name
                )));
            }
            if s.topics.is_empty() {
                return Err(Error::BadInput(format!(
                    "subscriber \"{}\" reads no topic",
                    s.name
                )));
            }
        }
        let handler_names = Arc::new(self.handlers.keys().cloned().collect());
        Ok(Engine {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                config: self.config,
                handlers: self.handlers,
                handler_names,
                subscribers: self.subscribers,
                projections: self.projections,
                local: Mutex::new(None),
                ended: broadcast::channel(65536).0,
            }),
        })
    }
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

/// What an operator asks of one instance: see [`Engine::act`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Retry the step of its open incident, after setting these variables (a JSON object).
    Retry {
        /// Variables to set first.
        variables: Option<Value>,
    },
    /// Cancel it, with a reason (its completed steps are compensated first).
    Cancel {
        /// Why, recorded in its history.
        reason: String,
    },
    /// Pause it.
    Pause,
    /// Resume it.
    Resume,
}

/// A request to start an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// The process id.
    pub process: String,
    /// A specific version; `None`: the latest (or the tagged one).
    pub version: Option<i32>,
    /// A tag naming the version (used when `version` is `None`).
    pub tag: Option<String>,
    /// The business key.
    pub business_key: String,
    /// The initial variables: a JSON object (or null for none).
    pub variables: Value,
    /// Makes the start idempotent: the instance id is derived from the process and this key,
    /// so a second start with the same key (a retried request, say) returns the instance the
    /// first made, whatever its state, and writes nothing. At most 1,000 bytes.
    pub idempotency_key: Option<String>,
}

impl StartRequest {
    /// Start the latest version of `process` with `business_key` and no variables.
    pub fn new(process: impl Into<String>, business_key: impl Into<String>) -> Self {
        StartRequest {
            process: process.into(),
            version: None,
            tag: None,
            business_key: business_key.into(),
            variables: Value::Object(Map::new()),
            idempotency_key: None,
        }
    }

    /// With an idempotency key (see [`StartRequest::idempotency_key`]).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// With these variables (a JSON object).
    pub fn variables(mut self, variables: Value) -> Self {
        self.variables = variables;
        self
    }

    /// Of this version.
    pub fn version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    /// Of the version this tag names (see [`Store::tag`]).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
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

    fn local(&self) -> Option<Arc<Local>> {
        self.inner.local.lock().expect("not poisoned").clone()
    }

    /// A lease for jobs this engine creates for its own handlers, if its workers run.
    fn lease(&self, now: DateTime<Utc>) -> Option<Lease> {
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
        let wake_others =
            applied.unleased_jobs || applied.outbox_written || applied.next_timer.is_some();
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

    /// Start an instance and carry it forward until it waits. Returns its id.
    pub async fn start(&self, request: StartRequest) -> Result<Uuid> {
        Ok(self.start_many(vec![request]).await?[0])
    }

    /// Start several instances in one transaction (all or none). A request with an
    /// idempotency key that was used before, or with the business key of a running instance of
    /// a process that keeps keys unique and returns the existing instance, gets that instance's
    /// id and starts nothing.
    pub async fn start_many(&self, requests: Vec<StartRequest>) -> Result<Vec<Uuid>> {
        let store = &self.inner.store;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = store.client().await?;
            let now = self.now();
            let lease = self.lease(now);
            let tx = client.transaction().await?;
            let result = match self
                .start_in(&tx, now, requests.clone(), lease.as_ref())
                .await
            {
                Ok(r) => tx.commit().await.map(|_| r).map_err(Error::from),
                Err(e) => Err(e),
            };
            match result {
                Ok((ids, applied)) => {
                    self.after_commit(applied).await;
                    return Ok(ids);
                }
                // A concurrent start with the same idempotency or unique business key won the
                // race: looked up again, its instance is found.
                Err(Error::Conflict(_)) if attempt < 4 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Start an instance in the caller's transaction: it exists if and only if the caller
    /// commits. Its first job (if any) is claimed by polling once committed.
    pub async fn start_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        request: StartRequest,
    ) -> Result<Uuid> {
        let (ids, applied) = self.start_in(tx, self.now(), vec![request], None).await?;
        if applied.unleased_jobs || applied.outbox_written || applied.next_timer.is_some() {
            self.inner.store.notify(Some(tx)).await?;
        }
        Ok(ids[0])
    }

    async fn start_in(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        requests: Vec<StartRequest>,
        lease: Option<&Lease>,
    ) -> Result<(Vec<Uuid>, Applied)> {
        let store = &self.inner.store;
        let mut works = Vec::with_capacity(requests.len());
        let mut ids = Vec::with_capacity(requests.len());
        let mut versions: HashMap<String, i32> = HashMap::new();
        // Starts of this batch by idempotency id and by unique (process, business key).
        let mut made: HashMap<Uuid, ()> = HashMap::new();
        let mut unique_made: HashMap<(String, String), Uuid> = HashMap::new();
        for r in requests {
            check_business_key(&r.business_key)?;
            let derived = match &r.idempotency_key {
                Some(k) => {
                    check_idempotency_key(k)?;
                    let name = store.lock_key(&["start", &r.process, k]);
                    Some(Uuid::new_v5(&IDEMPOTENT_STARTS, name.as_bytes()))
                }
                None => None,
            };
            if let Some(id) = derived {
                if made.contains_key(&id) || store.instance_exists_in(c, id).await? {
                    ids.push(id);
                    continue;
                }
            }
            self.check_variables("the start's variables", &r.variables)?;
            let variables = match r.variables {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                other => {
                    return Err(Error::BadInput(format!(
                        "variables must be a JSON object, not {other}"
                    )))
                }
            };
            let version = match (r.version, &r.tag) {
                (Some(v), _) => {
                    store.definition_in(c, &r.process, v).await?;
                    v
                }
                (None, Some(tag)) => store.tagged_in(c, &r.process, tag).await?,
                (None, None) => match versions.get(&r.process) {
                    Some(v) => *v,
                    None => {
                        let (v, _) = store.latest_in(c, &r.process).await?;
                        versions.insert(r.process.clone(), v);
                        v
                    }
                },
            };
            let def = store.definition_in(c, &r.process, version).await?;
            if let Some(policy) = def.unique_business_key {
                let key = (r.process.clone(), r.business_key.clone());
                let running = match unique_made.get(&key) {
                    Some(id) => Some(*id),
                    None => {
                        store
                            .running_by_key_in(c, &r.process, &r.business_key)
                            .await?
                    }
                };
                if let Some(instance) = running {
                    match policy {
                        UniqueKey::ReturnExisting => {
                            ids.push(instance);
                            continue;
                        }
                        UniqueKey::Refuse => {
                            return Err(Error::AlreadyRunning {
                                process: r.process,
                                business_key: r.business_key,
                                instance,
                            })
                        }
                    }
                }
            }
            let instance_id = derived.unwrap_or_else(Uuid::now_v7);
            if def.unique_business_key.is_some() {
                unique_made.insert((r.process.clone(), r.business_key.clone()), instance_id);
            }
            made.insert(instance_id, ());
            ids.push(instance_id);
            works.push(Work::Start {
                instance_id,
                process: r.process,
                version,
                business_key: r.business_key,
                variables,
                message_id: None,
                parent: None,
            });
        }
        let applied = store.apply(c, now, works, lease, Vec::new()).await?;
        for o in &applied.outcomes {
            if let Err(e) = o {
                return Err(Error::BadInput(e.to_string()));
            }
        }
        Ok((ids, applied))
    }

    /// Deliver an inbound message: deduplicated by id, correlated to the instance waiting for
    /// its name and key (which is carried forward until it waits again), or starting an
    /// instance, or buffered for an instance that will wait for it, or dead-lettered if no
    /// process knows its name. Retries by itself on a conflict with a concurrent transaction.
    ///
    /// While the engine's workers run, concurrent calls are grouped into one transaction
    /// (group commit); each call still gets its own outcome.
    pub async fn send(&self, message: Message) -> Result<Delivery> {
        message.check()?;
        self.check_size("the message's payload", &message.payload)?;
        if let Some(local) = self.local() {
            let (tx, rx) = oneshot::channel();
            if local.sends.send((message.clone(), tx)).is_ok() {
                if let Ok(result) = rx.await {
                    return result;
                }
            }
        }
        let mut out = self.send_many(vec![message]).await?;
        out.pop().expect("one outcome per message")
    }

    /// Deliver several messages in one transaction, with a few statements for the whole batch.
    /// Outcomes are those of delivering the messages one by one in order of (key, name), and
    /// come back in the order given. If the batch fails, the messages are delivered one by one,
    /// so one bad message does not hold back the rest.
    pub async fn send_many(&self, messages: Vec<Message>) -> Result<Vec<Result<Delivery>>> {
        // Refused messages get their error; the others go on together.
        let refused: Vec<Option<Error>> = messages
            .iter()
            .map(|m| {
                m.check()
                    .and_then(|_| self.check_size("the message's payload", &m.payload))
                    .err()
            })
            .collect();
        if refused.iter().any(Option::is_some) {
            let (ok, idx): (Vec<Message>, Vec<usize>) = messages
                .iter()
                .enumerate()
                .filter(|(i, _)| refused[*i].is_none())
                .map(|(i, m)| (m.clone(), i))
                .unzip();
            let mut delivered = if ok.is_empty() {
                Vec::new()
            } else {
                Box::pin(self.send_many(ok)).await?
            }
            .into_iter();
            let mut idx = idx.into_iter().peekable();
            return Ok(refused
                .into_iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Some(e) => Err(e),
                    None => {
                        debug_assert_eq!(idx.next(), Some(i));
                        delivered.next().expect("one outcome per message")
                    }
                })
                .collect());
        }
        let mut order: Vec<usize> = (0..messages.len()).collect();
        // A stable lock order across concurrent batches: by key, then name.
        order.sort_by(|a, b| {
            (&messages[*a].key, &messages[*a].name).cmp(&(&messages[*b].key, &messages[*b].name))
        });
        match self.deliver_together(&messages, &order).await {
            Ok(out) => Ok(out.into_iter().map(Ok).collect()),
            Err(e) if messages.len() == 1 => Ok(vec![Err(e)]),
            Err(_) => {
                let mut out = Vec::with_capacity(messages.len());
                for i in 0..messages.len() {
                    out.push(
                        self.deliver_together(&messages, &[i])
                            .await
                            .map(|mut d| d.pop().expect("one outcome")),
                    );
                }
                Ok(out)
            }
        }
    }

    /// Deliver `messages[order[..]]` in one transaction, retrying on conflicts. Outcomes come
    /// back in the order of `messages` restricted to `order`.
    async fn deliver_together(
        &self,
        messages: &[Message],
        order: &[usize],
    ) -> Result<Vec<Delivery>> {
        let store = &self.inner.store;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let mut client = store.client().await?;
                let now = self.now();
                let lease = self.lease(now);
                let tx = client.transaction().await?;
                let batch: Vec<&Message> = order.iter().map(|&i| &messages[i]).collect();
                let (deliveries, applied) = store
                    .deliver_many_in(
                        &tx,
                        now,
                        &batch,
                        self.inner.config.message_ttl,
                        lease.as_ref(),
                    )
                    .await?;
                let out: Vec<(usize, Delivery)> = order.iter().copied().zip(deliveries).collect();
                tx.commit().await?;
                Ok::<_, Error>((out, applied))
            }
            .await;
            match result {
                Ok((mut out, applied)) => {
                    self.after_commit(applied).await;
                    out.sort_by_key(|(i, _)| *i);
                    return Ok(out.into_iter().map(|(_, d)| d).collect());
                }
                Err(e) if e.is_retryable() && attempt < 5 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Deliver an inbound message in the caller's transaction: the inbox mark, the instance's
    /// transition and the caller's own writes commit together. On [`Error::Conflict`] the
    /// caller should roll back and retry.
    pub async fn send_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        message: Message,
    ) -> Result<Delivery> {
        message.check()?;
        self.check_size("the message's payload", &message.payload)?;
        let (d, applied) = self
            .inner
            .store
            .deliver_in(
                tx,
                self.now(),
                &message,
                self.inner.config.message_ttl,
                None,
            )
            .await?;
        // As start_tx: the hint goes out when the caller commits, so engines elsewhere pick up
        // the jobs, outbox rows and timers at once rather than at their next poll.
        if applied.unleased_jobs || applied.outbox_written || applied.next_timer.is_some() {
            self.inner.store.notify(Some(tx)).await?;
        }
        Ok(d)
    }

    /// Retry the step of an instance's open incident, after setting `variables` (a JSON
    /// object) if given: the job runs again with the same id, from attempt 1.
    pub async fn retry(&self, instance: Uuid, variables: Option<Value>) -> Result<()> {
        self.act(instance, Action::Retry { variables }, "").await
    }

    /// Cancel a running instance: its job, subscriptions and timers are withdrawn and it
    /// ends as `cancelled`, with the reason in its history (after its compensations, if
    /// completed steps declare them).
    pub async fn cancel(&self, instance: Uuid, reason: &str) -> Result<()> {
        let reason = reason.to_string();
        self.act(instance, Action::Cancel { reason }, "").await
    }

    /// Pause a running instance: it makes no progress until [`Engine::resume`]. Its job,
    /// timers and subscriptions are withdrawn; messages for it wait in the inbox (within
    /// their time to live), timers that fall due wait, and a handler already running has its
    /// result dropped (the job runs again after the resume).
    pub async fn pause(&self, instance: Uuid) -> Result<()> {
        self.act(instance, Action::Pause, "").await
    }

    /// Resume a paused instance: what was withdrawn comes back, and messages that arrived and
    /// timers that fell due meanwhile are taken at once.
    pub async fn resume(&self, instance: Uuid) -> Result<()> {
        self.act(instance, Action::Resume, "").await
    }

    /// An operator's action on one instance, recorded in its history with `by`, who asked
    /// (a user name from the host's authentication, `cli:alice`, ...; empty if unknown). The
    /// same as [`Engine::retry`], [`Engine::cancel`], [`Engine::pause`] and
    /// [`Engine::resume`], which record no one.
    pub async fn act(&self, instance: Uuid, action: Action, by: &str) -> Result<()> {
        if by.contains('\0') || by.len() > 1024 {
            return Err(Error::BadInput(
                "who asked must be at most 1,024 bytes without NUL characters".into(),
            ));
        }
        let by = by.to_string();
        let input = match action {
            Action::Retry { variables } => {
                if let Some(v) = &variables {
                    self.check_variables("the retry's variables", v)?;
                }
                let variables = match variables {
                    None => None,
                    Some(Value::Object(m)) => Some(m),
                    Some(other) => {
                        return Err(Error::BadInput(format!(
                            "variables must be a JSON object, not {other}"
                        )))
                    }
                };
                crate::machine::Input::Retry { variables, by }
            }
            Action::Cancel { reason } => crate::machine::Input::Cancel { reason, by },
            Action::Pause => crate::machine::Input::Pause { by },
            Action::Resume => crate::machine::Input::Resume { by },
        };
        self.apply_input(instance, input).await
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
    fn check_variables(&self, what: &str, value: &Value) -> Result<()> {
        if crate::store::has_nul(value) {
            return Err(Error::BadInput(format!(
                "{what} contain a NUL character, which PostgreSQL cannot store"
            )));
        }
        self.check_size(what, value)
    }

    async fn apply_input(&self, instance: Uuid, input: crate::machine::Input) -> Result<()> {
        let store = &self.inner.store;
        let mut client = store.client().await?;
        let now = self.now();
        let lease = self.lease(now);
        let tx = client.transaction().await?;
        let mut applied = store
            .apply(
                &tx,
                now,
                vec![Work::Continue {
                    instance_id: instance,
                    input,
                }],
                lease.as_ref(),
                Vec::new(),
            )
            .await?;
        applied.outcomes.pop().expect("one outcome per work")?;
        tx.commit().await?;
        self.after_commit(applied).await;
        Ok(())
    }

    /// Fire every timer due now on the engine's clock, in batches, each batch one transaction
    /// (the timer worker does this by itself; tests with a [`ManualClock`] call it after
    /// moving the clock). Returns how many fired.
    pub async fn fire_due_timers(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let f = self.fire_round().await?;
            total += f.fired;
            if !f.more {
                return Ok(total);
            }
        }
    }

    pub(crate) async fn fire_round(&self) -> Result<crate::store::Fired> {
        let now = self.now();
        let lease = self.lease(now);
        let mut f = self
            .inner
            .store
            .fire_due_timers(now, self.inner.config.claim_batch, lease.as_ref())
            .await?;
        let applied = std::mem::take(&mut f.applied);
        self.after_commit(applied).await;
        Ok(f)
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
        });
        workers::spawn(self.clone())
    }
}

/// The first integer in `v` whose magnitude is beyond 2^53 (where f64, which conditions and
/// JavaScript use, stops holding every integer), as written.
fn inexact_integer(v: &Value) -> Option<String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match v {
        Value::Number(n) => {
            let beyond = if let Some(i) = n.as_i64() {
                i.unsigned_abs() > EXACT as u64
            } else if let Some(u) = n.as_u64() {
                u > EXACT as u64
            } else {
                // Parsed as a float: an integer literal too long for 64 bits lands here too.
                n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() > EXACT)
            };
            beyond.then(|| n.to_string())
        }
        Value::Array(a) => a.iter().find_map(inexact_integer),
        Value::Object(m) => m.values().find_map(inexact_integer),
        _ => None,
    }
}

/// The namespace of idempotent starts' derived instance ids (UUID v5 of the schema, process
/// and idempotency key).
const IDEMPOTENT_STARTS: Uuid = Uuid::from_u128(0x6c6f_6e67_7275_6e00_8000_0000_0000_0001);

fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1000 || key.chars().any(char::is_control) {
        return Err(Error::BadInput(
            "an idempotency key is 1 to 1,000 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// A business key is kept in an indexed column and shown to operators: at most 1,000 bytes
/// (like a message's correlation key), without NUL or other control characters.
fn check_business_key(key: &str) -> Result<()> {
    if key.len() > 1000 || key.chars().any(char::is_control) {
        return Err(Error::BadInput(
            "invalid business key: at most 1,000 bytes, without NUL or other control characters"
                .into(),
        ));
    }
    Ok(())
}

pub use workers::Running;
