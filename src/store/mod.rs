//! Postgres storage: the only place that runs SQL.
//!
//! A [`Store`] is a connection pool plus the statements of `sql/`, rendered for one schema. It
//! is cheap to clone. The engine and the command line use it; so can participants reading the
//! outbox through a [`Consumer`].

mod browse;
mod buffered;
mod config;
mod conn;
mod consumer;
mod effects;
mod engines;
mod error;
mod inbox;
mod jobs;
mod locks;
mod migrate;
mod probe;
mod projection;
mod read;
mod retention;
mod signals;
pub mod sql;
mod start_timers;
mod storage;
mod stored_state;
mod tasks;
mod timers;
mod tls;
mod transition;
mod versions;
mod write;

pub use browse::{
    CountsLag, IncidentPage, InstanceFilter, InstancePage, Position, StepCount, VersionSummary,
};
pub use config::{pg_config, validate_schema, Layout, Roles, StoreConfig, DEFAULT_SCHEMA};
pub use consumer::{Consumer, OutboxMessage};
pub use engines::EngineView;
pub use error::{Error, Result};
pub(crate) use inbox::has_nul;
pub use inbox::{Delivery, Message};
pub use jobs::ClaimedJob;
pub use migrate::{
    migration_files, migration_script, migrations_for as migrations_for_schema, migrations_with,
    FileFormat, Migration,
};
pub use probe::WorkWaiting;
pub use projection::{
    builtin_projection, ActivityHistory, HorizonHolder, InstanceEvents, Projection,
    ProjectionStatus, StoredEvent,
};
pub use read::{
    describe_event, DeadLetter, HistoryEntry, IncidentView, InstanceView, ProcessVersion, Replay,
    Waiting,
};
pub use retention::{
    Removed, Retention, DEFAULT_DEDUP_WINDOW, DEFAULT_OUTBOX_RETENTION, DEFAULT_RETENTION,
};
pub use signals::SignalView;
pub use start_timers::StartTimerView;
pub use storage::{Storage, TableSize};
pub use tasks::{Task, TaskDetail, TaskPage, TaskQuery, MAX_PAGE as MAX_TASK_PAGE};
pub(crate) use timers::Fired;
pub use timers::{InstanceTimer, TimerView};
pub use tls::{Connection, PgConfig, SslMode};
pub use versions::{MigrationReport, Refused};

pub(crate) use conn::{CallerTx, Conn};
pub(crate) use jobs::Finished;
pub(crate) use signals::throw_in as throw_signals_in;
pub(crate) use transition::{Applied, Lease, Work};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use uuid::Uuid;

use crate::definition::{Process, ProcessDefinition};
use sql::Queries;

/// The store: a pool and the statements for one schema.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    schema: String,
    roles: Roles,
    layout: Layout,
    q: Queries,
    pg: PgConfig,
    definitions: RwLock<HashMap<(String, i32), Arc<Process>>>,
    /// The buckets that live in one place (`engines::bucket_groups`), read once.
    groups: tokio::sync::OnceCell<Arc<Vec<Vec<i16>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connect with the default settings (see [`pg_config`] for how `url` is found).
    pub async fn connect(url: Option<&str>) -> Result<Store> {
        Store::connect_with(pg_config(url)?, StoreConfig::default()).await
    }

    /// Connect with explicit settings. Checks that the database answers.
    pub async fn connect_with(mut pg: PgConfig, config: StoreConfig) -> Result<Store> {
        config.validate()?;
        if let Some(m) = config.ssl_mode {
            pg.set_ssl_mode(m);
        }
        if let Some(r) = &config.ssl_root_cert {
            pg.set_ssl_root_cert(r.clone());
        }
        if pg
            .get_connect_timeout()
            .is_none_or(|t| *t > config.connect_timeout)
        {
            pg.connect_timeout(config.connect_timeout);
        }
        let mut options = pg.get_options().unwrap_or_default().to_string();
        for (name, d) in [
            ("statement_timeout", config.statement_timeout),
            ("lock_timeout", config.lock_timeout),
        ] {
            if let Some(d) = d {
                options.push_str(&format!(" -c {name}={}", d.as_millis()));
            }
        }
        let mut session = pg.tokio_config().clone();
        session.options(options.trim());
        let manager = Manager::from_config(
            session,
            pg.tls()?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.pool_wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                q: Queries::new(&config.schema),
                schema: config.schema,
                roles: config.roles,
                layout: config.layout,
                pg,
                definitions: RwLock::new(HashMap::new()),
                groups: tokio::sync::OnceCell::new(),
            }),
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The role names the migrations use.
    pub fn roles(&self) -> &Roles {
        &self.inner.roles
    }

    /// The layout the migrations create a new schema with (an existing one keeps its own).
    pub fn layout(&self) -> Layout {
        self.inner.layout
    }

    /// The connection settings (e.g. for a dedicated LISTEN connection).
    pub fn pg_config(&self) -> &PgConfig {
        &self.inner.pg
    }

    pub(crate) fn q(&self) -> &Queries {
        &self.inner.q
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client> {
        Ok(self.inner.pool.get().await?)
    }

    /// A lock key namespaced by the schema, so tenants in other schemas never contend.
    pub(crate) fn lock_key(&self, parts: &[&str]) -> String {
        let mut k = self.inner.schema.clone();
        for p in parts {
            k.push('\u{1f}');
            k.push_str(p);
        }
        k
    }

    /// Deploy a definition: validated, then stored as a new immutable version unless the same
    /// document was deployed before (then its version is returned).
    pub async fn deploy(&self, def: &ProcessDefinition, now: DateTime<Utc>) -> Result<Deployed> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let d = self.deploy_in(&tx, def, now).await?;
        tx.commit().await?;
        Ok(d)
    }

    pub(crate) async fn deploy_in(
        &self,
        c: &impl Conn,
        def: &ProcessDefinition,
        now: DateTime<Utc>,
    ) -> Result<Deployed> {
        def.validate()?;
        let q = self.q();
        for step in &def.steps {
            if let crate::definition::StepKind::Call { process, .. } = &step.kind {
                if *process != def.process && self.latest_in(c, process).await.is_err() {
                    return Err(Error::BadInput(format!(
                        "step \"{}\" calls process \"{process}\", which is not deployed; deploy it first",
                        step.id
                    )));
                }
            }
        }
        let checksum = def.checksum();
        locks::Locks::definition(&def.process).take(self, c).await?;
        if let Some(row) = c
            .rows(&q.definition_by_checksum, &[&def.process, &checksum])
            .await?
            .first()
        {
            return Ok(Deployed {
                process: def.process.clone(),
                version: row.get("version"),
                created: false,
            });
        }
        let doc = serde_json::to_value(def)?;
        let start = def.start.as_ref().map(|s| s.message.clone());
        let start_messages: Vec<String> = def
            .start
            .iter()
            .chain(&def.starts)
            .map(|s| s.message.clone())
            .collect();
        let receives = def.received_messages();
        let retention_ms = def
            .retention_period()
            .map_err(Error::BadInput)?
            .map(|d| d.num_milliseconds());
        let rows = c
            .rows(
                &q.definition_insert,
                &[
                    &def.process,
                    &checksum,
                    &doc,
                    &start,
                    &receives,
                    &now,
                    &retention_ms,
                    &def.start_signal,
                    &start_messages,
                ],
            )
            .await?;
        let version: i32 = rows[0].get("version");
        // The latest version's timer start is the process's schedule.
        match &def.start_timer {
            Some(t) => {
                let first = t.schedule(now).map_err(Error::BadInput)?.first;
                c.exec(&q.start_timer_set, &[&def.process, &version, &first])
                    .await?;
            }
            None => {
                c.exec(&q.start_timer_clear, &[&def.process]).await?;
            }
        }
        Ok(Deployed {
            process: def.process.clone(),
            version,
            created: true,
        })
    }

    /// Deploy a BPMN 2.0 document (see [`crate::bpmn::import`]): the model it describes is
    /// deployed like any definition, and the document is kept with its version, so
    /// [`Store::definition_source`] gives it back with its layout.
    pub async fn deploy_bpmn(&self, xml: &str, now: DateTime<Utc>) -> Result<Deployed> {
        let def = crate::bpmn::import(xml).map_err(|e| Error::BadInput(e.to_string()))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let d = self.deploy_in(&tx, &def, now).await?;
        tx.exec(
            &self.q().definition_set_source,
            &[&d.process, &d.version, &xml],
        )
        .await?;
        tx.commit().await?;
        Ok(d)
    }

    /// Whether an instance with this id exists.
    pub(crate) async fn instance_exists_in(&self, c: &impl Conn, id: Uuid) -> Result<bool> {
        Ok(!c.rows(&self.q().instance_exists, &[&id]).await?.is_empty())
    }

    /// The running instance of `process` with this business key, among instances whose
    /// version keeps keys unique.
    pub(crate) async fn running_by_key_in(
        &self,
        c: &impl Conn,
        process: &str,
        business_key: &str,
    ) -> Result<Option<Uuid>> {
        let rows = c
            .rows(
                &self.q().instance_running_by_key,
                &[&process, &business_key],
            )
            .await?;
        Ok(rows.first().map(|r| r.get("instance_id")))
    }

    /// The BPMN document a version was deployed from, if it was.
    pub async fn definition_source(&self, process: &str, version: i32) -> Result<Option<String>> {
        let c = self.client().await?;
        let rows = c
            .rows(&self.q().definition_source, &[&process, &version])
            .await?;
        match rows.first() {
            Some(r) => Ok(r.get("source_bpmn")),
            None => Err(Error::ProcessNotFound(format!("{process} v{version}"))),
        }
    }

    /// One version of a definition, compiled for running (cached: versions are immutable).
    /// Derefs to the [`ProcessDefinition`] document.
    pub async fn definition(&self, process: &str, version: i32) -> Result<Arc<Process>> {
        let cached = self
            .inner
            .definitions
            .read()
            .expect("not poisoned")
            .get(&(process.to_string(), version))
            .cloned();
        if let Some(d) = cached {
            return Ok(d);
        }
        let c = self.client().await?;
        self.definition_in(&c, process, version).await
    }

    pub(crate) async fn definition_in(
        &self,
        c: &impl Conn,
        process: &str,
        version: i32,
    ) -> Result<Arc<Process>> {
        let key = (process.to_string(), version);
        if let Some(d) = self
            .inner
            .definitions
            .read()
            .expect("not poisoned")
            .get(&key)
        {
            return Ok(d.clone());
        }
        let rows = c
            .rows(&self.q().definition_get, &[&process, &version])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::ProcessNotFound(format!("{process} v{version}")))?;
        let def: ProcessDefinition = serde_json::from_value(row.get("document"))?;
        // Compiled once per version and process: never again on a transition.
        let def = Arc::new(crate::definition::compile(def));
        self.inner
            .definitions
            .write()
            .expect("not poisoned")
            .insert(key, def.clone());
        Ok(def)
    }

    /// Append events as they are, one transaction for the whole slice, through the one writer
    /// but without deciding and without touching `instances`. For benchmarks and imports only:
    /// it bypasses the state machine, so the caller must keep each stream's `seq` contiguous.
    #[cfg(feature = "bench-internals")]
    pub async fn append_events_raw(
        &self,
        rows: &[(Uuid, i64, crate::machine::Event)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut fx = write::Effects::default();
        for (id, seq, event) in rows {
            fx.ev_instance.push(*id);
            fx.ev_seq.push(*seq);
            fx.ev_type.push(event.type_name().to_string());
            fx.ev_data.push(event.clone());
            fx.ev_at.push(now);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        write::write(&tx, self.q(), now, None, &HashMap::new(), &fx).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// The read horizon of catch-up readers: every events or outbox row with an xid below it
    /// is committed or rolled back for good (`sql/queries/read_horizon.sql`). Read it in a
    /// statement of its own, before the read it bounds.
    pub(crate) async fn read_horizon(&self, c: &impl Conn) -> Result<i64> {
        let rows = c.rows(&self.q().read_horizon, &[]).await?;
        let horizon: i64 = rows.first().map_or(0, |r| r.get("horizon"));
        // A negative value would read as a huge xid8 and let a reader pass rows in flight.
        Ok(horizon.max(0))
    }

    /// Enter a caller's transaction: lock a longrun table in it (so readers count it from now
    /// on) and, if it had an xid already, take the xid its rows will carry.
    pub(crate) async fn caller_tx<'t, 'c>(
        &self,
        tx: &'t tokio_postgres::Transaction<'c>,
    ) -> Result<CallerTx<'t, 'c>> {
        let rows = tx.query(&self.q().caller_tx_enter, &[]).await?;
        let assigned: Option<i64> = rows.first().and_then(|r| r.get("assigned"));
        let xid = match assigned {
            None => None,
            Some(_) => {
                let c = self.client().await?;
                let next = c.rows(&self.q().next_xid, &[]).await?;
                next.first().map(|r| r.get("next"))
            }
        };
        Ok(CallerTx { tx, xid })
    }

    /// Send a wake-up hint to the engines listening on this schema: in `tx` (delivered when it
    /// commits) or on its own.
    pub(crate) async fn notify(&self, tx: Option<&tokio_postgres::Transaction<'_>>) -> Result<()> {
        let schema = self.schema();
        match tx {
            Some(tx) => {
                tx.execute(&self.q().notify, &[&schema]).await?;
            }
            None => {
                let c = self.client().await?;
                c.exec(&self.q().notify, &[&schema]).await?;
            }
        }
        Ok(())
    }

    /// A dedicated connection listening for wake-up hints; each hint arrives as `()`. The
    /// channel closes when the connection does.
    pub(crate) async fn listen(&self) -> Result<tokio::sync::mpsc::Receiver<()>> {
        use futures_util::StreamExt;
        let (client, mut conn) = self.inner.pg.connect().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (keep_tx, keep_rx) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        tokio::spawn(async move {
            // The client, once LISTEN ran, waits in this channel: it lives as long as the pump.
            let _client = keep_rx;
            loop {
                tokio::select! {
                    m = messages.next() => match m {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                            let _ = tx.try_send(());
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    _ = tx.closed() => return,
                }
            }
        });
        client.batch_execute(&self.q().listen).await?;
        let _ = keep_tx.send(client);
        Ok(rx)
    }

    /// Point `tag` at `version` of `process` (creating or moving the tag).
    pub async fn tag(
        &self,
        process: &str,
        tag: &str,
        version: i32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let ok = tag.len() <= 63
            && tag.starts_with(|c: char| c.is_ascii_lowercase())
            && tag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(Error::BadInput(format!(
                "invalid tag \"{tag}\" (lowercase letters, digits, _ and -, starting with a letter)"
            )));
        }
        let c = self.client().await?;
        self.definition_in(&c, process, version).await?;
        c.exec(&self.q().tag_set, &[&process, &tag, &version, &now])
            .await?;
        Ok(())
    }

    /// The version `tag` names.
    pub(crate) async fn tagged_in(&self, c: &impl Conn, process: &str, tag: &str) -> Result<i32> {
        let rows = c.rows(&self.q().tag_get, &[&process, &tag]).await?;
        rows.first()
            .map(|r| r.get("version"))
            .ok_or_else(|| Error::ProcessNotFound(format!("{process} tagged {tag}")))
    }

    /// Whether this store's role has more rights than an engine needs.
    pub async fn privileges(&self) -> Result<Privileges> {
        let c = self.client().await?;
        let rows = c
            .rows(&self.q().privileges_check, &[&self.schema()])
            .await?;
        Ok(rows
            .first()
            .map(|r| Privileges {
                superuser: r.get("rolsuper"),
                owner: r.get("owner"),
            })
            .unwrap_or_default())
    }

    /// Whether the server runs autovacuum. Without it, what longrun deletes (ended jobs,
    /// subscriptions and timers, history past its retention) is never reclaimed unless a DBA
    /// runs VACUUM, and the tables keep growing.
    pub async fn autovacuum(&self) -> Result<bool> {
        let c = self.client().await?;
        let rows = c.rows(&self.q().autovacuum_setting, &[]).await?;
        Ok(rows.first().is_none_or(|r| r.get("autovacuum")))
    }

    /// The latest version of a process.
    pub(crate) async fn latest_in(
        &self,
        c: &impl Conn,
        process: &str,
    ) -> Result<(i32, Arc<Process>)> {
        let rows = c.rows(&self.q().definition_latest, &[&process]).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::ProcessNotFound(process.to_string()))?;
        let version: i32 = row.get("version");
        Ok((version, self.definition_in(c, process, version).await?))
    }
}

/// What the store's role may do beyond what an engine needs (see docs/SECURITY.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Privileges {
    /// It is a superuser.
    pub superuser: bool,
    /// It owns the schema, or is a member of the role that does.
    pub owner: bool,
}

/// The result of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Deployed {
    /// The process id.
    pub process: String,
    /// The version the document has.
    pub version: i32,
    /// Whether this deploy created the version (false: the same document was there already).
    pub created: bool,
}
