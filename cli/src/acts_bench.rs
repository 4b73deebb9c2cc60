//! `longrun bench --complete-tasks N --callers C`: N instances wait at a user task, then C
//! concurrent callers complete them, each one task at a time with `Engine::complete` (what a
//! task list's web handlers do): completions per second, and transactions per completion.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use uuid::Uuid;

use longrun::definition::UserTask;
use longrun::store::{Error, Result, TaskQuery};
use longrun::{Engine, EngineConfig, ProcessDefinition, StartRequest};

use crate::bench::{commits, store, BenchConfig};

/// What `--complete-tasks` measured.
#[derive(Debug, Clone)]
pub struct ActsFigures {
    /// Tasks completed.
    pub completed: usize,
    /// Seconds from the first completion to the last.
    pub seconds: f64,
    /// Transactions committed in the database while they were completed.
    pub commits: i64,
}

/// Start `n` instances waiting at a task, then complete them from `callers` callers.
pub async fn run(
    cfg: &BenchConfig,
    n: usize,
    callers: usize,
    mut progress: impl FnMut(&str, usize),
) -> Result<ActsFigures> {
    let engine = Engine::builder(store(cfg, cfg.pool_size).await?)
        .config(EngineConfig {
            activity_history: cfg.activity_history,
            ..EngineConfig::default()
        })
        .build()?;
    let def = ProcessDefinition::builder("bench_tasks")
        .user_task("review", UserTask::new().candidate_groups(["bench"]))
        .end("done")
        .build()
        .expect("a valid definition");
    engine.deploy(&def).await?;
    let mut made = 0;
    while made < n {
        let batch = 500.min(n - made);
        let requests = (made..made + batch)
            .map(|i| StartRequest::new("bench_tasks", format!("t{i}")))
            .collect();
        engine.start_many(requests).await?;
        made += batch;
        progress("started", made);
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(n);
    let mut query = TaskQuery {
        candidate_groups: vec!["bench".into()],
        limit: 500,
        ..TaskQuery::default()
    };
    loop {
        let page = engine.tasks(&query).await?;
        ids.extend(page.tasks.iter().map(|t| t.task_id));
        match page.next {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    if ids.len() != n {
        return Err(Error::BadInput(format!(
            "{} tasks open, not {n}",
            ids.len()
        )));
    }
    let queue = Arc::new(Mutex::new(ids));
    let running = engine.run();
    let commits_before = commits(cfg).await?;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..callers.max(1) {
        let engine = engine.clone();
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let next = queue.lock().expect("not poisoned").pop();
                let Some(task) = next else {
                    return Ok::<usize, Error>(done);
                };
                engine.complete(task, "bench", json!({})).await?;
                done += 1;
            }
        }));
    }
    let mut completed = 0;
    for w in workers {
        completed += w
            .await
            .map_err(|e| Error::BadInput(format!("a caller failed: {e}")))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    running.shutdown().await;
    let commits = commits(cfg).await? - commits_before;
    Ok(ActsFigures {
        completed,
        seconds,
        commits,
    })
}
