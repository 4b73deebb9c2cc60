//! The sustained run behind `longrun bench --minutes N`: the workload runs for N minutes with
//! a fixed number of instances in flight (each end lets another start, as a service under
//! steady load would), and the instances completed in each minute are counted. Run once with
//! `--foreign-tx` and once without, it says how much of its throughput longrun keeps while
//! another application's transaction stays open for that long.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use longrun::store::{pg_config, Error, Result};
use longrun::StartRequest;

use crate::bench::{build_engines, run_all, BenchConfig};

/// How the sustained run goes.
#[derive(Debug, Clone)]
pub struct SustainConfig {
    /// How long it runs.
    pub minutes: u64,
    /// Instances started and not yet ended, kept at this number.
    pub in_flight: usize,
}

/// One minute of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    /// Minutes since the start (1 is the first).
    pub minute: u64,
    /// Instances that ended in this minute.
    pub completed: usize,
    /// Dead row versions in the schema's tables at the minute's end (statistics).
    pub dead_rows: i64,
    /// The table with the most of them.
    pub most_dead: String,
}

/// What the run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SustainFigures {
    /// One entry per minute.
    pub minutes: Vec<Minute>,
    /// Instances that ended within the run.
    pub completed: usize,
    /// Its length, seconds.
    pub seconds: f64,
}

/// Run the workload for `sc.minutes` minutes on `engines` engines, calling `on_minute` as each
/// minute ends. Instances still running at the end are left (the schema is dropped after).
pub async fn sustain(
    cfg: &BenchConfig,
    engines: usize,
    sc: &SustainConfig,
    mut on_minute: impl FnMut(&Minute),
) -> Result<SustainFigures> {
    if sc.minutes == 0 || sc.in_flight == 0 {
        return Err(Error::BadInput(
            "a sustained run needs at least one minute and one instance in flight".into(),
        ));
    }
    let all = build_engines(cfg, engines).await?;
    let (running, mut rx) = run_all(&all);

    let ended = Arc::new(AtomicUsize::new(0));
    let room = Arc::new(Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let starter = {
        let (ended, room, stop) = (ended.clone(), room.clone(), stop.clone());
        let engines = all.clone();
        let (in_flight, batch) = (sc.in_flight, cfg.start_batch.clamp(1, sc.in_flight));
        let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
        tokio::spawn(async move {
            let mut started = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let open = started - ended.load(Ordering::Relaxed).min(started);
                if open + batch > in_flight {
                    // Woken by ends; the timeout only guards against a missed wake-up.
                    let _ = tokio::time::timeout(Duration::from_millis(100), room.notified()).await;
                    continue;
                }
                let reqs = (started..started + batch)
                    .map(|j| {
                        StartRequest::new("bench", format!("{tag}-s{j}"))
                            .variables(serde_json::json!({ "step": 0 }))
                    })
                    .collect();
                engines[(started / batch) % engines.len()]
                    .start_many(reqs)
                    .await?;
                started += batch;
            }
            Ok::<usize, Error>(started)
        })
    };

    let (probe, conn) = pg_config(cfg.database_url.as_deref())?.connect().await?;
    tokio::spawn(conn);
    let dead_sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_dead_rows.sql"),
        &cfg.schema,
    );
    let t0 = Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_secs(sc.minutes * 60);
    let mut next_minute = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut minutes = Vec::new();
    let (mut total, mut this_minute) = (0usize, 0usize);
    loop {
        tokio::select! {
            r = rx.recv() => {
                let n = match r {
                    Ok(_) => 1,
                    Err(broadcast::error::RecvError::Lagged(n)) => n as usize,
                    Err(_) => break,
                };
                total += n;
                this_minute += n;
                ended.fetch_add(n, Ordering::Relaxed);
                room.notify_one();
            }
            _ = tokio::time::sleep_until(next_minute) => {
                let row = probe.query_one(&dead_sql, &[]).await?;
                let m = Minute {
                    minute: minutes.len() as u64 + 1,
                    completed: this_minute,
                    dead_rows: row.get("dead"),
                    most_dead: row.get("most"),
                };
                on_minute(&m);
                minutes.push(m);
                this_minute = 0;
                if next_minute >= end {
                    break;
                }
                next_minute += Duration::from_secs(60);
            }
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    room.notify_one();
    starter
        .await
        .map_err(|e| Error::BadInput(e.to_string()))??;
    for r in running {
        r.shutdown().await;
    }
    drop(all);
    Ok(SustainFigures {
        minutes,
        completed: total,
        seconds,
    })
}
