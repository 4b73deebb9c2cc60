//! The retention soak behind `longrun bench --soak-minutes N`: instances of the service
//! workload start at a steady rate and complete for N minutes while retention removes what
//! ended longer ago than a short period, every few seconds, as an engine does in the
//! background. Every minute it samples the schema's total size; at the end it compares the
//! start-to-end latency of instances that ran while a retention pass was removing rows with
//! those that did not, and replays instances that wait all along (older than the period, so
//! never to be touched) to check nothing of theirs went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use longrun::store::{Error, Removed, Result, Retention};
use longrun::{Engine, EngineConfig, JobContext, ProcessDefinition, StartRequest};

use crate::bench::{percentile, process, store, BenchConfig, Workload};

/// How the soak runs.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// How long instances keep starting.
    pub minutes: u64,
    /// Instances started per second.
    pub rate: usize,
    /// The retention period of the soak's processes.
    pub retention: chrono::Duration,
    /// How often retention runs.
    pub every: Duration,
    /// Instances that wait for a message that never comes, from the first second to the last.
    pub waiting: usize,
}

/// One minute of the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Minutes since the start.
    pub minute: u64,
    /// Bytes of every table of the schema, indexes and TOAST included.
    pub total_bytes: i64,
    /// Instance rows in the schema (running and ended, not yet removed).
    pub instances: i64,
    /// Instances that completed so far.
    pub completed: usize,
    /// Rows retention removed so far, all tables.
    pub removed_rows: i64,
    /// p99 start-to-end latency of the instances that ended in this minute, ms.
    pub p99_ms: f64,
}

/// What the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakFigures {
    /// One sample per minute.
    pub samples: Vec<Sample>,
    /// Everything retention removed.
    pub removed: Removed,
    /// Retention passes, and the seconds they took in all.
    pub passes: usize,
    /// Seconds spent removing.
    pub removing_seconds: f64,
    /// p50 and p99 latency of instances that ran while a pass removed rows (ms), and how many.
    pub during: (f64, f64, usize),
    /// The same for instances that ran while none did.
    pub outside: (f64, f64, usize),
    /// Waiting instances replayed at the end, and how many differed from their stored state
    /// or lost events.
    pub waiting_checked: usize,
    /// Of those, how many were damaged (should be 0).
    pub waiting_damaged: usize,
}

/// Run the soak on the bench schema `cfg` (created by [`crate::bench::setup`]); `sample` is
/// called with each minute's figures as they come.
pub async fn soak(
    cfg: &BenchConfig,
    soak: &SoakConfig,
    mut sample: impl FnMut(&Sample),
) -> Result<SoakFigures> {
    let s = store(cfg, cfg.pool_size).await?;
    let period = format!("PT{}S", soak.retention.num_seconds().max(1));
    let mut work = process(Workload::Service);
    work.retention = Some(period.clone());
    let waits = ProcessDefinition::builder("soak_wait")
        .retention(period)
        .receive("wait", "Never")
        .end("done")
        .build()
        .map_err(|e| Error::BadInput(e.to_string()))?;
    let engine = Engine::builder(s.clone())
        .config(EngineConfig {
            poll_interval: Duration::from_millis(200),
            activity_history: cfg.activity_history,
            // The soak runs retention itself, to know when a pass removes rows.
            retention_interval: None,
            ..EngineConfig::default()
        })
        .handler("noop", |_job: JobContext| async { Ok(Value::Null) })
        .build()?;
    engine.deploy(&work).await?;
    engine.deploy(&waits).await?;
    let waiting = engine
        .start_many(
            (0..soak.waiting)
                .map(|i| StartRequest::new("soak_wait", format!("w{i}")))
                .collect(),
        )
        .await?;
    let mut waiting_events = Vec::new();
    for id in &waiting {
        waiting_events.push(s.history(*id).await?.len());
    }
    let running = engine.run();

    // Start-to-end latency of each instance, with when it started and ended.
    let starts: Arc<Mutex<HashMap<uuid::Uuid, Instant>>> = Arc::default();
    let done: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let mut ended = engine.subscribe_ended();
    let collector = {
        let (starts, done) = (starts.clone(), done.clone());
        tokio::spawn(async move {
            while let Ok(e) = ended.recv().await {
                let now = Instant::now();
                if let Some(t0) = starts.lock().expect("not poisoned").remove(&e.instance_id) {
                    done.lock().expect("not poisoned").push((t0, now));
                }
            }
        })
    };
    // Retention every `every`, each pass's span kept when it removed anything.
    let passes: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let removed: Arc<Mutex<(Removed, usize, f64)>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let retainer = {
        let (s, engine, passes, removed) =
            (s.clone(), engine.clone(), passes.clone(), removed.clone());
        let mut stop = stop_rx.clone();
        let every = soak.every;
        // As an engine runs it in the background (batches of 100, a pause after each).
        let policy = Retention {
            default_period: None,
            dedup_window: chrono::Duration::minutes(1).max(soak.retention),
            outbox_retention: soak.retention,
            ..EngineConfig::default().retention_policy()
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return Ok::<(), Error>(()),
                }
                let t0 = Instant::now();
                let r = s.apply_retention(&policy, engine.now(), |_| {}).await?;
                let t1 = Instant::now();
                let mut total = removed.lock().expect("not poisoned");
                total.1 += 1;
                total.2 += (t1 - t0).as_secs_f64();
                if r.rows() > 0 {
                    passes.lock().expect("not poisoned").push((t0, t1));
                }
                let t = &mut total.0;
                t.instances += r.instances;
                t.events += r.events;
                t.activity += r.activity;
                t.projection_progress += r.projection_progress;
                t.inbox += r.inbox;
                t.outbox += r.outbox;
                t.locks += r.locks;
                t.instances_held = r.instances_held;
                t.outbox_held = r.outbox_held;
            }
        })
    };

    let began = Instant::now();
    let end = began + Duration::from_secs(soak.minutes * 60);
    let tick = Duration::from_millis(100);
    let per_tick = (soak.rate / 10).max(1);
    let mut next_sample = began + Duration::from_secs(60);
    let mut samples = Vec::new();
    let mut n = 0usize;
    let mut seen = 0usize;
    let mut next = tokio::time::Instant::now();
    while Instant::now() < end {
        next += tick;
        tokio::time::sleep_until(next).await;
        let reqs: Vec<StartRequest> = (0..per_tick)
            .map(|j| StartRequest::new("bench", format!("s{}", n + j)))
            .collect();
        n += per_tick;
        let t0 = Instant::now();
        let ids = engine.start_many(reqs).await?;
        {
            let mut st = starts.lock().expect("not poisoned");
            for id in ids {
                st.insert(id, t0);
            }
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(60);
            let storage = s.storage(false).await?;
            let finished = done.lock().expect("not poisoned");
            let mut minute: Vec<f64> = finished[seen..]
                .iter()
                .map(|(a, b)| (*b - *a).as_secs_f64() * 1000.0)
                .collect();
            let completed = finished.len();
            drop(finished);
            seen = completed;
            let x = Sample {
                minute: began.elapsed().as_secs() / 60,
                total_bytes: storage.total_bytes(),
                instances: storage.ended_instances + storage.running_instances,
                completed,
                removed_rows: removed.lock().expect("not poisoned").0.rows(),
                p99_ms: percentile(&mut minute, 99.0),
            };
            sample(&x);
            samples.push(x);
        }
    }
    let _ = stop_tx.send(true);
    retainer
        .await
        .map_err(|e| Error::BadInput(e.to_string()))??;
    running.shutdown().await;
    collector.abort();

    // Latency of instances whose life overlapped a pass that removed rows, and of the others.
    let passes = passes.lock().expect("not poisoned").clone();
    let (mut during, mut outside) = (Vec::new(), Vec::new());
    for (a, b) in done.lock().expect("not poisoned").iter() {
        let ms = (*b - *a).as_secs_f64() * 1000.0;
        if passes.iter().any(|(p0, p1)| a <= p1 && p0 <= b) {
            during.push(ms);
        } else {
            outside.push(ms);
        }
    }
    let stats = |v: &mut Vec<f64>| (percentile(v, 50.0), percentile(v, 99.0), v.len());
    // The waiting instances are older than the period and must be whole.
    let mut damaged = 0;
    for (id, events) in waiting.iter().zip(&waiting_events) {
        let whole = s
            .history(*id)
            .await
            .map(|h| h.len() == *events)
            .unwrap_or(false)
            && s.replay(*id)
                .await
                .map(|r| r.differences.is_empty())
                .unwrap_or(false);
        if !whole {
            damaged += 1;
        }
    }
    let total = removed.lock().expect("not poisoned").clone();
    Ok(SoakFigures {
        samples,
        removed: total.0,
        passes: total.1,
        removing_seconds: total.2,
        during: stats(&mut during),
        outside: stats(&mut outside),
        waiting_checked: waiting.len(),
        waiting_damaged: damaged,
    })
}
