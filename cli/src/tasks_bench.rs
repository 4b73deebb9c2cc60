//! `longrun bench --tasks N`: N open user tasks (copied server-side from one instance that
//! really waits at its task), then the latency of what a task list does with them: a group's
//! first page, the first page of several groups, a deep page, someone's own list, a claim and
//! a completion.

use std::time::Instant;

use chrono::Duration;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use longrun::definition::UserTask;
use longrun::expr::Type;
use longrun::store::{Result, TaskQuery};
use longrun::{Engine, ProcessDefinition, StartRequest};

use crate::bench::{percentile, store, BenchConfig};

/// The process whose instances wait at a task for `all` and their own group.
pub fn process() -> ProcessDefinition {
    ProcessDefinition::builder("bench_task")
        .user_task(
            "review",
            UserTask::new()
                .candidate_groups(["all", "=group"])
                .due("=due")
                .field("ok", Type::Boolean),
        )
        .end("done")
        .build()
        .expect("a valid definition")
}

/// p50 and p99 of one operation, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    Latency {
        p50_ms: percentile(&mut ms, 50.0),
        p99_ms: percentile(&mut ms, 99.0),
    }
}

/// What `--tasks` measured.
#[derive(Debug, Clone, Serialize)]
pub struct TaskFigures {
    /// Open tasks at the start of the measurements.
    pub open_tasks: i64,
    /// Seconds the copies took.
    pub fill_seconds: f64,
    /// The first page (50) of the group every task is offered to.
    pub group_first_page: Latency,
    /// The first page of three groups of a tenth of the tasks each.
    pub groups_first_page: Latency,
    /// The page after 10,000 tasks of the big group (following cursors).
    pub deep_page: Latency,
    /// A clerk's own list (the tasks they claimed).
    pub mine_first_page: Latency,
    /// A claim.
    pub claim: Latency,
    /// A completion (the instance goes on and ends).
    pub complete: Latency,
}

async fn timed<F, Fut, T>(samples: usize, mut f: F) -> Result<Vec<f64>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        f(i).await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// Fill the (migrated, empty) bench schema with `n` open tasks and measure `samples` of each
/// operation; `progress` hears how many tasks are open so far.
pub async fn run(
    cfg: &BenchConfig,
    n: usize,
    samples: usize,
    mut progress: impl FnMut(usize),
) -> Result<TaskFigures> {
    let engine = Engine::builder(store(cfg, 4).await?).build()?;
    engine.deploy(&process()).await?;
    let due = (engine.now() + Duration::days(1)).to_rfc3339();
    let template = engine
        .start(
            StartRequest::new("bench_task", "template").variables(json!({
                "group": "g0", "due": due,
            })),
        )
        .await?;
    let (client, conn) = longrun::store::pg_config(cfg.database_url.as_deref())?
        .connect()
        .await?;
    tokio::spawn(conn);
    let sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_tasks_prefill.sql"),
        &cfg.schema,
    );
    let started = Instant::now();
    crate::prefill::copy_in_chunks(&client, &sql, template, n, "tasks prefill", &mut progress)
        .await?;
    for table in ["instances", "events", "tasks", "task_candidates"] {
        client
            .batch_execute(&format!("VACUUM ANALYZE \"{}\".{table}", cfg.schema))
            .await?;
    }
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        eprintln!("tasks: no CHECKPOINT ({e}); the measurements may include one");
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    let open_tasks: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".tasks", cfg.schema),
            &[],
        )
        .await?
        .get(0);

    let group = |groups: &[&str]| TaskQuery {
        candidate_groups: groups.iter().map(|g| g.to_string()).collect(),
        limit: 50,
        ..TaskQuery::default()
    };
    let big = group(&["all"]);
    let group_first_page = timed(samples, |_| engine.tasks(&big)).await?;
    let three = group(&["g1", "g4", "g7"]);
    let groups_first_page = timed(samples, |_| engine.tasks(&three)).await?;
    // The cursor after 10,000 tasks of the big group.
    let mut deep = TaskQuery {
        limit: 500,
        ..big.clone()
    };
    for _ in 0..20 {
        deep.after = engine.tasks(&deep).await?.next;
    }
    deep.limit = 50;
    let deep_page = timed(samples, |_| engine.tasks(&deep)).await?;
    // Claims of tasks spread over the list (the ids of copies spread by the hash).
    let picks: Vec<Uuid> = client
        .query(
            &format!(
                "SELECT task_id FROM \"{}\".tasks ORDER BY task_id LIMIT $1",
                cfg.schema
            ),
            &[&(samples as i64)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let clerks: Vec<String> = (0..picks.len())
        .map(|i| format!("clerk-{}", i % 20))
        .collect();
    let claim = timed(picks.len(), |i| engine.claim(picks[i], &clerks[i])).await?;
    let mine = TaskQuery {
        assignee: Some("clerk-3".into()),
        limit: 50,
        ..TaskQuery::default()
    };
    let mine_first_page = timed(samples, |_| engine.tasks(&mine)).await?;
    let complete = timed(picks.len(), |i| {
        engine.complete(picks[i], &clerks[i], json!({"ok": true}))
    })
    .await?;
    Ok(TaskFigures {
        open_tasks,
        fill_seconds,
        group_first_page: latency(group_first_page),
        groups_first_page: latency(groups_first_page),
        deep_page: latency(deep_page),
        mine_first_page: latency(mine_first_page),
        claim: latency(claim),
        complete: latency(complete),
    })
}
