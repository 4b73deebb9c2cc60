//! The load generator behind `longrun bench`: N instances of a three-step process run by K
//! engines on a fresh schema, measured against what Postgres itself can commit on the same
//! machine in the same run.
//!
//! Two workloads: `service` (three service steps run by in-process no-op handlers) and
//! `messages` (three send/receive pairs answered by a participant subscriber). Figures:
//! instances and steps per second, commits per step (from `pg_stat_database`), start-to-end
//! latency percentiles, the commit ceiling (single-row insert commits per second over the same
//! number of connections) and the ratio of instances per second to that ceiling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use longrun::store::{pg_config, Error, Result, StoreConfig};
use longrun::{
    Ended, Engine, EngineConfig, JobContext, Message, OutboxMessage, ProcessDefinition, Running,
    StartRequest, Store,
};

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Database URL (`None`: as [`pg_config`] finds it).
    pub database_url: Option<String>,
    /// The schema to create, use and drop.
    pub schema: String,
    /// Instances to run.
    pub instances: usize,
    /// Engines, as tasks in this process (or per process with `processes`).
    pub engines: usize,
    /// `service` or `messages`.
    pub workload: Workload,
    /// Instances started per start transaction.
    pub start_batch: usize,
    /// Pooled connections per engine.
    pub pool_size: usize,
    /// Seconds to measure the commit ceiling for (0: skip it).
    pub ceiling_seconds: f64,
    /// Whether the engines keep the activity history (the default engine setting).
    pub activity_history: bool,
    /// Concurrent callers, each starting one instance at a time with `Engine::start` and
    /// waiting for it to be accepted, as a web service's request handlers do; 0: starts in
    /// batches of `start_batch` instead.
    #[serde(default)]
    pub callers: usize,
    /// Whether the bench schema is made in the partitioned layout (docs/SCALING.md).
    #[serde(default)]
    pub partitioned: bool,
}

/// The workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Three service steps, no-op in-process handlers.
    Service,
    /// Three send/receive pairs answered by an in-process participant.
    Messages,
}

/// What one run of engines measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunFigures {
    /// Instances that completed.
    pub completed: usize,
    /// Wall time from the first start to the last end, seconds.
    pub seconds: f64,
    /// Start-to-end latencies, milliseconds.
    pub latencies_ms: Vec<f64>,
}

/// The three-step process of a workload.
pub fn process(workload: Workload) -> ProcessDefinition {
    let b = ProcessDefinition::builder("bench");
    let b = match workload {
        Workload::Service => b
            .service("one", "noop")
            .service("two", "noop")
            .service("three", "noop"),
        Workload::Messages => b
            .send("ask_one", "Work")
            .to("participant")
            .receive("one", "Done1")
            .send("ask_two", "Work")
            .to("participant")
            .receive("two", "Done2")
            .send("ask_three", "Work")
            .to("participant")
            .receive("three", "Done3"),
    };
    b.end("done").build().expect("the bench process is valid")
}

pub async fn store(cfg: &BenchConfig, pool_size: usize) -> Result<Store> {
    Store::connect_with(
        pg_config(cfg.database_url.as_deref())?,
        StoreConfig {
            schema: cfg.schema.clone(),
            pool_size,
            layout: if cfg.partitioned {
                longrun::store::Layout::Partitioned
            } else {
                longrun::store::Layout::Plain
            },
            ..StoreConfig::default()
        },
    )
    .await
}

/// A plain connection.
async fn connect(cfg: &BenchConfig) -> Result<tokio_postgres::Client> {
    let (client, conn) = pg_config(cfg.database_url.as_deref())?.connect().await?;
    tokio::spawn(conn);
    Ok(client)
}

/// A reading of the engine's and the server's CPU and of the WAL position (see [`crate::cpu`]).
pub async fn cpu_sample(cfg: &BenchConfig) -> Result<crate::cpu::Sample> {
    let c = connect(cfg).await?;
    crate::cpu::Sample::take(&c).await
}

/// Commits of this database so far, after asking every backend's pending statistics to be
/// flushed (closed connections flush theirs on exit).
pub async fn commits(cfg: &BenchConfig) -> Result<i64> {
    let c = connect(cfg).await?;
    c.batch_execute(include_str!("../../sql/queries/bench_flush_stats.sql"))
        .await?;
    let row = c
        .query_one(include_str!("../../sql/queries/bench_commits.sql"), &[])
        .await?;
    Ok(row.get(0))
}

/// A transaction with an xid, open in the `postgres` database of the same cluster until the
/// returned client is dropped: what another application's idle session after a write looks
/// like to longrun.
pub async fn hold_foreign_tx(cfg: &BenchConfig) -> Result<tokio_postgres::Client> {
    let mut pg = pg_config(cfg.database_url.as_deref())?;
    pg.dbname("postgres");
    pg.application_name("longrun_bench_foreign_tx");
    let (client, conn) = pg.connect().await?;
    tokio::spawn(conn);
    client
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await?;
    Ok(client)
}

/// The schema a bench run created: only [`teardown`] of this value drops a schema, so the bench
/// can never drop one it did not create.
#[derive(Debug)]
#[must_use = "pass it to teardown to drop the bench schema"]
pub struct CreatedSchema(String);

impl CreatedSchema {
    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// Create the bench schema (refusing one that exists already, whatever its name), migrate it
/// and deploy the workload's process.
pub async fn setup(cfg: &BenchConfig) -> Result<CreatedSchema> {
    longrun::store::validate_schema(&cfg.schema)?;
    let c = connect(cfg).await?;
    let create = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_create_schema.sql"),
        &cfg.schema,
    );
    if let Err(e) = c.batch_execute(&create).await {
        if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_SCHEMA) {
            return Err(Error::BadInput(format!(
                "schema \"{}\" exists already: the bench only runs in a schema it creates itself \
                 (and drops afterwards); leave --schema out, or name a schema that does not exist",
                cfg.schema
            )));
        }
        return Err(e.into());
    }
    let created = CreatedSchema(cfg.schema.clone());
    let ready = async {
        let s = store(cfg, 2).await?;
        s.migrate().await?;
        Engine::builder(s)
            .build()?
            .deploy(&process(cfg.workload))
            .await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = ready.await {
        let _ = teardown(cfg, created).await;
        return Err(e);
    }
    Ok(created)
}

/// Drop the schema [`setup`] created.
pub async fn teardown(cfg: &BenchConfig, schema: CreatedSchema) -> Result<()> {
    let c = connect(cfg).await?;
    c.batch_execute(&longrun::store::sql::render(
        include_str!("../../sql/queries/bench_drop_schema.sql"),
        &schema.0,
    ))
    .await?;
    Ok(())
}

fn engine_config(cfg: &BenchConfig) -> EngineConfig {
    EngineConfig {
        poll_interval: Duration::from_millis(200),
        activity_history: cfg.activity_history,
        ..EngineConfig::default()
    }
}

/// `engines` engines on the bench schema, with the workload's handler or participant, not yet
/// running.
pub async fn build_engines(cfg: &BenchConfig, engines: usize) -> Result<Vec<Engine>> {
    let mut all = Vec::new();
    for _ in 0..engines {
        let s = store(cfg, cfg.pool_size).await?;
        let mut b = Engine::builder(s).config(engine_config(cfg));
        b = match cfg.workload {
            Workload::Service => b.handler("noop", |_job: JobContext| async { Ok(Value::Null) }),
            Workload::Messages => b.subscriber(
                "participant",
                &["participant"],
                |engine: Engine, m: OutboxMessage| async move {
                    let step = m.payload.get("step").and_then(Value::as_u64).unwrap_or(0) + 1;
                    let reply = Message::new(
                        format!("Done{step}"),
                        m.key.clone(),
                        m.message_id.to_string(),
                    )
                    .payload(serde_json::json!({ "step": step }));
                    engine
                        .send(reply)
                        .await
                        .map_err(|e| longrun::HandlerError::new(e.to_string()))?;
                    Ok(())
                },
            ),
        };
        all.push(b.build()?);
    }
    Ok(all)
}

/// Run every engine of `all`; the receiver hears the ends of the instances of all of them.
pub(crate) fn run_all(all: &[Engine]) -> (Vec<Running>, broadcast::Receiver<Ended>) {
    let (tx, rx) = broadcast::channel(1 << 16);
    let mut running = Vec::new();
    for e in all {
        let mut sub = e.subscribe_ended();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(x) = sub.recv().await {
                let _ = tx.send(x);
            }
        });
        running.push(e.run());
    }
    (running, rx)
}

/// Run `instances` instances on `engines` engines in this process; `progress` is told how many
/// completed so far. With `shared`, engines in other processes work on the same schema, so
/// ends are counted from the table only. The engines are dropped (their connections closed)
/// before returning.
pub async fn run_engines(
    cfg: &BenchConfig,
    instances: usize,
    engines: usize,
    shared: bool,
    progress: Arc<AtomicUsize>,
) -> Result<RunFigures> {
    let all = build_engines(cfg, engines).await?;
    // Only one engine may hold the participant consumer; the others still run jobs.
    let (running, mut rx) = run_all(&all);

    let started = Instant::now();
    let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut starters = Vec::new();
    let per_engine = instances.div_ceil(engines.max(1));
    if cfg.callers > 0 {
        let per_caller = instances.div_ceil(cfg.callers);
        for c in 0..cfg.callers {
            let n = per_caller.min(instances.saturating_sub(c * per_caller));
            let e = all[c % all.len()].clone();
            let tag = tag.clone();
            starters.push(tokio::spawn(async move {
                for j in 0..n {
                    let r = StartRequest::new("bench", format!("{tag}-c{c}-{j}"))
                        .variables(serde_json::json!({ "step": 0 }));
                    e.start(r).await?;
                }
                Ok::<(), Error>(())
            }));
        }
    }
    for (i, e) in all.iter().enumerate().filter(|_| cfg.callers == 0) {
        let n = per_engine.min(instances.saturating_sub(i * per_engine));
        let e = e.clone();
        let batch = cfg.start_batch.max(1);
        let tag = tag.clone();
        starters.push(tokio::spawn(async move {
            let mut left = n;
            while left > 0 {
                let k = left.min(batch);
                let reqs = (0..k)
                    .map(|j| {
                        StartRequest::new("bench", format!("{tag}-e{i}-{}", n - left + j))
                            .variables(serde_json::json!({ "step": 0 }))
                    })
                    .collect();
                e.start_many(reqs).await?;
                left -= k;
            }
            Ok::<(), Error>(())
        }));
    }
    // Ends are counted from this process's engines as they commit them, and from the table
    // (engines in other processes may finish instances started here).
    let ended_sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_ended.sql"),
        &cfg.schema,
    );
    let probe = connect(cfg).await?;
    let pattern = format!("{tag}-%");
    let (mut local, mut in_table) = (0usize, 0usize);
    let mut seen = 0usize;
    let guard = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while seen < instances {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(_) if !shared => local += 1,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) if !shared => local += n as usize,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
            _ = tick.tick() => {
                let n: i64 = probe.query_one(&ended_sql, &[&pattern]).await?.get(0);
                in_table = n as usize;
                if tokio::time::Instant::now() > guard {
                    break;
                }
            }
        }
        seen = local.max(in_table);
        progress.store(seen.min(instances), Ordering::Relaxed);
    }
    let n: i64 = probe.query_one(&ended_sql, &[&pattern]).await?.get(0);
    let seconds = started.elapsed().as_secs_f64();
    for s in starters {
        s.await.map_err(|e| Error::BadInput(e.to_string()))??;
    }
    for r in running {
        r.shutdown().await;
    }
    drop(all);
    Ok(RunFigures {
        completed: n as usize,
        seconds,
        latencies_ms: Vec::new(),
    })
}

/// Bytes of every table of the bench schema, indexes and TOAST included.
pub async fn storage(cfg: &BenchConfig) -> Result<i64> {
    Ok(store(cfg, 1).await?.storage(false).await?.total_bytes())
}

/// Start-to-end times of every ended instance in the bench schema, from the table's stamps.
pub async fn latencies_from_table(cfg: &BenchConfig) -> Result<Vec<f64>> {
    let sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_latencies.sql"),
        &cfg.schema,
    );
    let c = connect(cfg).await?;
    Ok(c.query(&sql, &[]).await?.iter().map(|r| r.get(0)).collect())
}

/// Start-to-end latency of one instance at a time, `instances` times, on one engine.
pub async fn run_latency(cfg: &BenchConfig, instances: usize) -> Result<RunFigures> {
    let s = store(cfg, cfg.pool_size).await?;
    let mut b = Engine::builder(s).config(engine_config(cfg));
    if cfg.workload == Workload::Service {
        b = b.handler("noop", |_job: JobContext| async { Ok(Value::Null) });
    } else {
        return Err(Error::BadInput(
            "the latency mode runs the service workload".into(),
        ));
    }
    let engine = b.build()?;
    let running = engine.run();
    let mut ended = engine.subscribe_ended();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(instances);
    for i in 0..instances {
        let t0 = Instant::now();
        let id = engine
            .start(StartRequest::new("bench", format!("lat-{i}")))
            .await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), ended.recv()).await {
                Ok(Ok(e)) if e.instance_id == id => break,
                Ok(Ok(_)) => continue,
                _ => return Err(Error::BadInput(format!("instance {id} did not end"))),
            }
        }
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    running.shutdown().await;
    Ok(RunFigures {
        completed: latencies.len(),
        seconds,
        latencies_ms: latencies,
    })
}

/// Single-row insert commits per second that Postgres sustains over `connections`
/// connections for `seconds` (pgbench-style, measured by this process).
pub async fn commit_ceiling(cfg: &BenchConfig, connections: usize, seconds: f64) -> Result<f64> {
    let setup = connect(cfg).await?;
    let table = format!("\"{}\".bench_ceiling", cfg.schema);
    setup
        .batch_execute(
            &include_str!("../../sql/queries/bench_ceiling_table.sql").replace("__table__", &table),
        )
        .await?;
    let insert =
        include_str!("../../sql/queries/bench_ceiling_insert.sql").replace("__table__", &table);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let c = connect(cfg).await?;
        let insert = insert.clone();
        tasks.push(tokio::spawn(async move {
            let stmt = c.prepare(&insert).await?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                c.execute(&stmt, &[&(n as i64)]).await?;
                n += 1;
            }
            Ok::<u64, tokio_postgres::Error>(n)
        }));
    }
    let t0 = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| Error::BadInput(e.to_string()))??;
    }
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

/// The percentile `p` (0..=100) of `v`, nearest rank.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Queries per second that an idle engine (one handler, one subscriber) makes over `seconds`.
pub async fn idle_queries(cfg: &BenchConfig, seconds: f64) -> Result<f64> {
    let before = commits(cfg).await?;
    {
        let s = store(cfg, 2).await?;
        let engine = Engine::builder(s)
            .handler("noop", |_job: JobContext| async { Ok(Value::Null) })
            .subscriber("idle", &["nobody"], |_e: Engine, _m: OutboxMessage| async {
                Ok(())
            })
            .build()?;
        let running = engine.run();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        running.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The two statements of `commits` itself are not the engine's.
    let after = commits(cfg).await? - 2;
    Ok((after - before) as f64 / seconds)
}

/// Timer lateness on real time: `count` instances each wait until a date spread evenly over
/// one second that starts `lead` from now; one engine fires them. Returns each timer's
/// lateness in milliseconds (never negative if no timer fires early).
pub async fn timer_lateness(cfg: &BenchConfig, count: usize, lead: Duration) -> Result<Vec<f64>> {
    let s = store(cfg, cfg.pool_size).await?;
    let engine = Engine::builder(s).config(engine_config(cfg)).build()?;
    let def = ProcessDefinition::builder("bench_timer")
        .wait_until("wait", "due")
        .end("done")
        .build()
        .expect("valid");
    engine.deploy(&def).await?;
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let base = chrono::Utc::now() + chrono::Duration::from_std(lead).unwrap_or_default();
    let reqs: Vec<StartRequest> = (0..count)
        .map(|i| {
            let due =
                base + chrono::Duration::microseconds((i as i64 * 1_000_000) / count.max(1) as i64);
            StartRequest::new("bench_timer", format!("t{i}"))
                .variables(serde_json::json!({ "due": due.to_rfc3339() }))
        })
        .collect();
    for chunk in reqs.chunks(500) {
        engine.start_many(chunk.to_vec()).await?;
    }
    let mut done = 0;
    while done < count {
        match tokio::time::timeout(Duration::from_secs(60), ended.recv()).await {
            Ok(Ok(_)) => done += 1,
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => done += n as usize,
            _ => break,
        }
    }
    running.shutdown().await;
    let sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_timer_lateness.sql"),
        &cfg.schema,
    );
    let c = connect(cfg).await?;
    Ok(c.query(&sql, &[]).await?.iter().map(|r| r.get(0)).collect())
}
