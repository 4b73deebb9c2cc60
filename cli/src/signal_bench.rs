//! `longrun bench --signal N`: N instances wait for a signal (started through the engine),
//! then one signal reaches them all, chunk by chunk; the time per instance is its cost.

use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use longrun::store::Result;
use longrun::{Engine, EngineConfig, ProcessDefinition, StartRequest};

use crate::bench::{store, BenchConfig};

/// What `--signal` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SignalFigures {
    /// Instances waiting for the signal.
    pub waiting: usize,
    /// Seconds starting them took.
    pub start_seconds: f64,
    /// Instances that received the signal.
    pub reached: usize,
    /// Seconds from the throw to the last chunk's commit.
    pub broadcast_seconds: f64,
    /// Instances per chunk.
    pub chunk: usize,
}

/// Start `n` waiting instances, throw one signal, deliver it in chunks of `chunk`;
/// `progress` hears (phase, done so far).
pub async fn run(
    cfg: &BenchConfig,
    n: usize,
    chunk: usize,
    mut progress: impl FnMut(&str, usize),
) -> Result<SignalFigures> {
    let engine = Engine::builder(store(cfg, 8).await?)
        .config(EngineConfig {
            signal_batch: chunk,
            activity_history: cfg.activity_history,
            ..EngineConfig::default()
        })
        .build()?;
    let def = ProcessDefinition::builder("bench_signal")
        .wait_signal("wait", "Go")
        .end("done")
        .build()
        .expect("a valid definition");
    engine.deploy(&def).await?;
    let started = Instant::now();
    let mut made = 0;
    while made < n {
        let batch = 500.min(n - made);
        let requests = (made..made + batch)
            .map(|i| StartRequest::new("bench_signal", format!("s{i}")))
            .collect();
        engine.start_many(requests).await?;
        made += batch;
        if made % 10_000 == 0 || made == n {
            progress("started", made);
        }
    }
    let start_seconds = started.elapsed().as_secs_f64();
    let thrown = Instant::now();
    engine.signal("Go", json!({})).await?;
    let mut reached = 0;
    let mut reported = 0;
    while let Some(k) = engine.deliver_signal_chunk().await? {
        reached += k;
        if reached - reported >= 10_000 {
            progress("reached", reached);
            reported = reached;
        }
    }
    Ok(SignalFigures {
        waiting: n,
        start_seconds,
        reached,
        broadcast_seconds: thrown.elapsed().as_secs_f64(),
        chunk,
    })
}
