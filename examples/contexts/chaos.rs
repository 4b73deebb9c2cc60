//! The moving parts of the example (the context engines, the bridges, the monitor), started
//! so that any of them can be killed and started again (`--kills N`), and the audit that checks
//! afterwards, in SQL across the schemas, that nothing was lost or done twice.
//!
//! A kill is abrupt: the part's tasks are aborted where they are (a transaction in flight is
//! rolled back, handler results not yet recorded are lost, leases stay until they lapse), as
//! when its process dies; the part then starts again from what the database holds.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use longrun::store::pg_config;
use longrun::{Engine, Running};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
type BuildEngine = Box<dyn Fn() -> std::result::Result<Engine, longrun::Error>>;
type SpawnTask = Box<dyn Fn(watch::Receiver<bool>) -> JoinHandle<()>>;

enum Kind {
    Engine(BuildEngine, Option<(Engine, Running)>),
    Task(SpawnTask, Option<JoinHandle<()>>),
}

struct Part {
    name: String,
    kind: Kind,
}

/// The parts, running; [`Parts::kill`] kills one and starts it again.
pub struct Parts {
    parts: Vec<Part>,
    stop: watch::Receiver<bool>,
    /// What each kill hit, in order.
    pub killed: Vec<String>,
}

impl Parts {
    /// Parts that stop when `stop` says true.
    pub fn new(stop: watch::Receiver<bool>) -> Parts {
        Parts {
            parts: Vec::new(),
            stop,
            killed: Vec::new(),
        }
    }

    /// A context's engine, built (with its handlers) by `build` each time it starts.
    pub fn engine(&mut self, name: &str, build: BuildEngine) -> Result<()> {
        let engine = build()?;
        let running = engine.run();
        self.parts.push(Part {
            name: name.to_string(),
            kind: Kind::Engine(build, Some((engine, running))),
        });
        Ok(())
    }

    /// A task (a bridge, the monitor) that `spawn` starts each time, running until stopped.
    pub fn task(&mut self, name: &str, spawn: SpawnTask) {
        let handle = spawn(self.stop.clone());
        self.parts.push(Part {
            name: name.to_string(),
            kind: Kind::Task(spawn, Some(handle)),
        });
    }

    /// Kill the `k`th victim (a spread over the parts) where it is, and start it again after
    /// `down`.
    pub async fn kill(&mut self, k: usize, down: Duration) -> Result<()> {
        let n = self.parts.len();
        let part = &mut self.parts[(k * 7 + 3) % n];
        match &mut part.kind {
            // Dropping the workers aborts them mid-flight; the engine goes with them.
            Kind::Engine(_, running) => drop(running.take()),
            Kind::Task(_, handle) => {
                if let Some(h) = handle.take() {
                    h.abort();
                    let _ = h.await;
                }
            }
        }
        self.killed.push(part.name.clone());
        tokio::time::sleep(down).await;
        match &mut part.kind {
            Kind::Engine(build, running) => {
                let engine = build()?;
                let r = engine.run();
                *running = Some((engine, r));
            }
            Kind::Task(spawn, handle) => *handle = Some(spawn(self.stop.clone())),
        }
        Ok(())
    }

    /// Stop everything (the caller has sent the stop): engines shut down, tasks end.
    pub async fn stop(self) {
        for part in self.parts {
            match part.kind {
                Kind::Engine(_, Some((_, running))) => running.shutdown().await,
                Kind::Task(_, Some(handle)) => {
                    let _ = handle.await;
                }
                _ => {}
            }
        }
    }
}

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    /// Messages a source's outbox sent on a bridged route that never reached the target's inbox.
    pub missing: i64,
    /// Messages on the routes, all told.
    pub routed: i64,
    /// Instances started twice for one order (one process, one business key).
    pub twice: i64,
    /// Milestones the contexts published, and those the monitor kept, per context.
    pub milestones: Vec<(String, i64, i64)>,
}

impl Audit {
    /// Whether every message crossed, nothing started twice and the monitor's counts equal
    /// the contexts' own.
    pub fn clean(&self) -> bool {
        self.missing == 0 && self.twice == 0 && self.milestones.iter().all(|(_, a, b)| a == b)
    }
}

/// Check the schemas against each other: `routes` as (source schema, target schema, topics),
/// `contexts` as (name in the monitor, schema), the monitor's schema. Bridges and the monitor
/// go on after the orders ended (a cancelled order's compensations are still crossing): the
/// audit is read again for up to `settle` until it is clean.
pub async fn audit(
    routes: &[(String, String, Vec<String>)],
    contexts: &[(&str, String)],
    monitor: &str,
    settle: Duration,
) -> Result<Audit> {
    let (c, conn) = pg_config(None)?.connect().await?;
    tokio::spawn(conn);
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        let audit = read(&c, routes, contexts, monitor).await?;
        if audit.clean() || tokio::time::Instant::now() > deadline {
            return Ok(audit);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn read(
    c: &tokio_postgres::Client,
    routes: &[(String, String, Vec<String>)],
    contexts: &[(&str, String)],
    monitor: &str,
) -> Result<Audit> {
    let mut audit = Audit::default();
    for (from, to, topics) in routes {
        let row = c
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE i.message_id IS NULL), count(*)
                     FROM \"{from}\".outbox o
                     LEFT JOIN \"{to}\".inbox i ON i.message_id = o.message_id::text
                     WHERE o.topic = ANY($1)"
                ),
                &[topics],
            )
            .await?;
        audit.missing += row.get::<_, i64>(0);
        audit.routed += row.get::<_, i64>(1);
    }
    for (name, schema) in contexts {
        audit.twice += c
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM \"{schema}\".instances
                     GROUP BY process_id, business_key HAVING count(*) > 1) t"
                ),
                &[],
            )
            .await?
            .get::<_, i64>(0);
        let sent: i64 = c
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{schema}\".outbox WHERE topic = 'longrun.milestones'"
                ),
                &[],
            )
            .await?
            .get(0);
        let kept: i64 = c
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{monitor}\".monitor_milestones WHERE context = $1"
                ),
                &[name],
            )
            .await?
            .get(0);
        audit.milestones.push((name.to_string(), sent, kept));
    }
    Ok(audit)
}
