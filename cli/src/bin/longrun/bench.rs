//! `longrun bench`: the load generator's command (the generator is `longrun_cli::bench`).

use uuid::Uuid;

use longrun::Error;

use crate::args::*;
use crate::util::*;

pub(crate) async fn bench(cli: &Cli, a: &BenchArgs) -> Result<(), Failure> {
    use longrun_cli::bench::{self, BenchConfig, Workload};
    use std::sync::Arc;

    let workload = match a.workload.as_str() {
        "service" => Workload::Service,
        "messages" => Workload::Messages,
        other => {
            return Err(Failure::Input(format!(
                "unknown workload \"{other}\" (service or messages)"
            )))
        }
    };
    if a.instances == 0 || a.engines == 0 || a.processes == 0 || a.pool_size == 0 {
        return Err(Failure::Input(
            "--instances, --engines, --processes and --pool-size must be at least 1".into(),
        ));
    }
    let schema = if a.child || cli.schema != "longrun" {
        cli.schema.clone()
    } else {
        format!("bench_{}", &Uuid::new_v4().simple().to_string()[..12])
    };
    if a.private_cluster && !a.child {
        return on_private_cluster(cli, a).await;
    }
    let cfg = BenchConfig {
        database_url: cli.database_url.clone(),
        schema,
        instances: a.instances,
        engines: a.engines,
        workload,
        start_batch: a.start_batch,
        pool_size: a.pool_size,
        ceiling_seconds: a.ceiling_seconds,
        activity_history: !a.no_activity_history,
        callers: a.callers,
        partitioned: a.layout == "partitioned",
    };
    if a.child {
        let figures =
            bench::run_engines(&cfg, a.instances, a.engines, true, Arc::default()).await?;
        println!("{}", serde_json::to_string(&figures).expect("serializable"));
        return Ok(());
    }
    match a.tasks {
        Some(n) => eprintln!("bench: schema {}, task list with {n} open tasks", cfg.schema),
        None if a.complete_tasks.is_some() => eprintln!(
            "bench: schema {}, {} task completions by concurrent callers",
            cfg.schema,
            a.complete_tasks.unwrap_or(0)
        ),
        None if a.signal.is_some() => eprintln!(
            "bench: schema {}, one signal to {} waiting instances",
            cfg.schema,
            a.signal.unwrap_or(0)
        ),
        None => eprintln!(
            "bench: schema {}, {} instances, workload {:?}, {} engine(s) x {} process(es), {} connections each",
            cfg.schema, a.instances, workload, a.engines, a.processes, a.pool_size
        ),
    }
    let created = bench::setup(&cfg).await?;
    let result = bench_body(&cfg, a).await;
    if a.keep {
        eprintln!("bench: kept schema {}", created.name());
    } else {
        bench::teardown(&cfg, created).await?;
    }
    let line = result?;
    println!("{line}");
    Ok(())
}

/// `--private-cluster`: the same bench on a cluster made for it, removed afterwards.
async fn on_private_cluster(cli: &Cli, a: &BenchArgs) -> Result<(), Failure> {
    use longrun_cli::cluster::{free_port, Cluster};
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| Failure::Other(e.to_string());
    let port = free_port().map_err(failed)?;
    eprintln!("bench: creating a private PostgreSQL cluster (initdb) on port {port} ...");
    let mut cluster = Cluster::create(port, &format!("longrun-bench-{port}")).map_err(failed)?;
    cluster.listen_tcp();
    if let Err(e) = cluster.start() {
        cluster.destroy();
        return Err(failed(e));
    }
    let mut inner = cli.clone();
    inner.database_url = Some(format!(
        "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    ));
    let mut args = a.clone();
    args.private_cluster = false;
    let result = Box::pin(bench(&inner, &args)).await;
    cluster.destroy();
    result
}

pub(crate) async fn bench_body(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
) -> Result<String, Failure> {
    use longrun_cli::bench;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    if let Some(secs) = a.idle_seconds {
        if secs <= 0.0 {
            return Err(Failure::Input("--idle-seconds must be positive".into()));
        }
        let qps = bench::idle_queries(cfg, secs).await?;
        return Ok(format!("idle_seconds={secs:.0} queries_per_s={qps:.2}"));
    }
    if let Some(n) = a.prefill {
        return prefilled(cfg, a, n).await;
    }
    if let Some(n) = a.tasks {
        return tasks(cfg, a, n).await;
    }
    if let Some(n) = a.complete_tasks {
        let callers = if a.callers == 0 { 64 } else { a.callers };
        if n == 0 {
            return Err(Failure::Input("--complete-tasks must be at least 1".into()));
        }
        let f = longrun_cli::acts_bench::run(cfg, n, callers, |phase, done| {
            if done % 10_000 == 0 || done == n {
                eprintln!("tasks: {phase} {done}/{n}")
            }
        })
        .await?;
        return Ok(format!(
            "complete_tasks={} callers={callers} seconds={:.2} completions_per_s={:.0} commits_per_completion={:.3}",
            f.completed,
            f.seconds,
            f.completed as f64 / f.seconds,
            f.commits as f64 / f.completed.max(1) as f64
        ));
    }
    if let Some(n) = a.signal {
        if n == 0 || a.signal_chunk == 0 {
            return Err(Failure::Input(
                "--signal and --signal-chunk must be at least 1".into(),
            ));
        }
        let t = std::time::Instant::now();
        let f = longrun_cli::signal_bench::run(cfg, n, a.signal_chunk, |phase, done| {
            eprintln!(
                "signal: {phase} {done}/{n}, {:.0} s",
                t.elapsed().as_secs_f64()
            )
        })
        .await?;
        return Ok(format!(
            "signal waiting={} reached={} chunk={} start_s={:.1} broadcast_s={:.2} instances_per_s={:.0} us_per_instance={:.0}",
            f.waiting,
            f.reached,
            f.chunk,
            f.start_seconds,
            f.broadcast_seconds,
            f.reached as f64 / f.broadcast_seconds,
            f.broadcast_seconds * 1e6 / f.reached.max(1) as f64
        ));
    }
    if let Some(minutes) = a.soak_minutes {
        return soak(cfg, a, minutes).await;
    }
    if let Some(n) = a.timers {
        if n == 0 {
            return Err(Failure::Input("--timers must be at least 1".into()));
        }
        let mut late = bench::timer_lateness(cfg, n, std::time::Duration::from_secs(2)).await?;
        let early = late.iter().filter(|l| **l < 0.0).count();
        return Ok(format!(
            "timers={} fired={} early={} lateness_p50_ms={:.1} lateness_p99_ms={:.1} lateness_max_ms={:.1}",
            n,
            late.len(),
            early,
            bench::percentile(&mut late, 50.0),
            bench::percentile(&mut late, 99.0),
            bench::percentile(&mut late, 100.0),
        ));
    }
    let _foreign = if a.foreign_tx {
        Some(bench::hold_foreign_tx(cfg).await?)
    } else {
        None
    };
    if let Some(minutes) = a.minutes {
        return sustained(cfg, a, minutes).await;
    }
    let cpu_before = bench::cpu_sample(cfg).await?;
    let window = std::time::Instant::now();
    let commits_before = bench::commits(cfg).await?;
    let progress = Arc::new(AtomicUsize::new(0));
    let reporter = {
        let progress = progress.clone();
        let total = a.instances;
        tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let n = progress.load(Ordering::Relaxed);
                eprintln!(
                    "progress: {n}/{total} instances completed, {:.0}/s, rss {} MiB",
                    n as f64 / t0.elapsed().as_secs_f64(),
                    rss_mib()
                );
            }
        })
    };
    let figures = if a.latency {
        bench::run_latency(cfg, a.instances).await
    } else if a.processes > 1 {
        run_children(cfg, a, progress.clone()).await
    } else {
        bench::run_engines(cfg, a.instances, a.engines, false, progress.clone()).await
    };
    reporter.abort();
    let mut figures = figures?;
    if !a.latency {
        figures.latencies_ms = bench::latencies_from_table(cfg).await?;
    }
    // Closed connections flush their statistics as their backends exit.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let commits = bench::commits(cfg).await? - commits_before - 2;
    let cost = cpu_before.until(&bench::cpu_sample(cfg).await?);
    let window = window.elapsed().as_secs_f64();
    let steps = figures.completed * 3;
    let connections = a.engines * a.processes * a.pool_size;
    let ceiling = if a.ceiling_seconds > 0.0 {
        bench::commit_ceiling(
            cfg,
            if a.latency { 1 } else { connections },
            a.ceiling_seconds,
        )
        .await?
    } else {
        f64::NAN
    };
    let ips = figures.completed as f64 / figures.seconds;
    if figures.completed < a.instances {
        return Err(Failure::Other(format!(
            "only {} of {} instances completed",
            figures.completed, a.instances
        )));
    }
    let n = figures.completed as f64;
    let (engine_s, pg_s) = (
        cost.engine_s.unwrap_or(f64::NAN),
        cost.server_s.unwrap_or(f64::NAN),
    );
    Ok(format!(
        "instances={} seconds={:.2} instances_per_s={:.0} steps_per_s={:.0} commits_per_step={:.3} p50_ms={:.2} p99_ms={:.2} pg_commit_ceiling={:.0} ratio={:.2} \
         engine_cpu_s={engine_s:.2} pg_cpu_s={pg_s:.2} cores_busy={:.2} engine_us_per_instance={:.0} pg_us_per_instance={:.0} wal_bytes_per_instance={:.0}",
        figures.completed,
        figures.seconds,
        ips,
        steps as f64 / figures.seconds,
        commits as f64 / steps as f64,
        bench::percentile(&mut figures.latencies_ms, 50.0),
        bench::percentile(&mut figures.latencies_ms, 99.0),
        ceiling,
        ips / ceiling,
        (engine_s + pg_s) / window,
        engine_s * 1e6 / n,
        pg_s * 1e6 / n,
        cost.wal_bytes / n,
    ))
}

pub(crate) async fn run_children(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
    progress: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<longrun_cli::bench::RunFigures, longrun::Error> {
    let exe = std::env::current_exe().map_err(|e| Error::BadInput(e.to_string()))?;
    let per = a.instances.div_ceil(a.processes);
    let started = std::time::Instant::now();
    let mut children = Vec::new();
    for p in 0..a.processes {
        let n = per.min(a.instances.saturating_sub(p * per));
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(["--schema", &cfg.schema, "bench", "--child"])
            .args([
                "--instances",
                &n.to_string(),
                "--engines",
                &a.engines.to_string(),
            ])
            .args([
                "--workload",
                &a.workload,
                "--start-batch",
                &a.start_batch.to_string(),
            ])
            .args(["--pool-size", &a.pool_size.to_string()])
            .args(["--callers", &a.callers.to_string()])
            .args(a.no_activity_history.then_some("--no-activity-history"))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &cfg.database_url {
            cmd.env("DATABASE_URL", url);
        }
        children.push(
            cmd.spawn()
                .map_err(|e| Error::BadInput(format!("cannot start a bench process: {e}")))?,
        );
    }
    let mut all = longrun_cli::bench::RunFigures::default();
    for child in children {
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::BadInput(e.to_string()))?;
        if !out.status.success() {
            return Err(Error::BadInput(format!(
                "a bench process failed: {}",
                out.status
            )));
        }
        let f: longrun_cli::bench::RunFigures = serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::BadInput(format!("bad output from a bench process: {e}")))?;
        all.completed += f.completed;
        all.latencies_ms.extend(f.latencies_ms);
        progress.store(all.completed, std::sync::atomic::Ordering::Relaxed);
    }
    all.seconds = started.elapsed().as_secs_f64();
    Ok(all)
}

/// This process's resident memory, MiB (Linux; 0 elsewhere).
pub(crate) fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// `--soak-minutes`: the retention soak (see `longrun_cli::soak`), a table of size over time.
async fn soak(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
    minutes: u64,
) -> Result<String, Failure> {
    use longrun_cli::soak::{soak, SoakConfig};
    if minutes == 0 || a.rate == 0 {
        return Err(Failure::Input(
            "--soak-minutes and --rate must be at least 1".into(),
        ));
    }
    let retention = longrun::definition::parse_duration(&a.soak_retention)
        .map_err(|e| Failure::Input(format!("--soak-retention: {e}")))?;
    let config = SoakConfig {
        minutes,
        rate: a.rate,
        retention,
        every: std::time::Duration::from_secs(5),
        waiting: 100,
    };
    println!(
        "| minute | total MB | instance rows | completed | rows removed | p99 ms (that minute) |"
    );
    println!("|---|---|---|---|---|---|");
    let f = soak(cfg, &config, |s| {
        println!(
            "| {} | {:.1} | {} | {} | {} | {:.1} |",
            s.minute,
            s.total_bytes as f64 / 1e6,
            s.instances,
            s.completed,
            s.removed_rows,
            s.p99_ms
        );
    })
    .await?;
    Ok(format!(
        "soak minutes={minutes} rate={} retention={} passes={} removing_s={:.1} removed_instances={} removed_rows={} \
         during_p50_ms={:.1} during_p99_ms={:.1} during_n={} outside_p50_ms={:.1} outside_p99_ms={:.1} outside_n={} \
         p99_ratio={:.2} waiting_checked={} waiting_damaged={}",
        a.rate,
        a.soak_retention,
        f.passes,
        f.removing_seconds,
        f.removed.instances,
        f.removed.rows(),
        f.during.0,
        f.during.1,
        f.during.2,
        f.outside.0,
        f.outside.1,
        f.outside.2,
        f.during.1 / f.outside.1,
        f.waiting_checked,
        f.waiting_damaged,
    ))
}

/// `--minutes N`: the workload at a steady number of instances in flight for N minutes (see
/// `longrun_cli::sustain`), a table of completions per minute.
async fn sustained(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
    minutes: u64,
) -> Result<String, Failure> {
    use longrun_cli::sustain::{sustain, SustainConfig};
    if minutes == 0 || a.in_flight == 0 || a.latency || a.processes > 1 {
        return Err(Failure::Input(
            "--minutes and --in-flight take at least 1, with one engine process and not --latency"
                .into(),
        ));
    }
    let config = SustainConfig {
        minutes,
        in_flight: a.in_flight,
    };
    println!("| minute | completed | per second | dead row versions | most in |");
    println!("|---|---|---|---|---|");
    let f = sustain(cfg, a.engines, &config, |m| {
        println!(
            "| {} | {} | {:.0} | {} | {} |",
            m.minute,
            m.completed,
            m.completed as f64 / 60.0,
            m.dead_rows,
            m.most_dead
        );
    })
    .await?;
    let first = f.minutes.first().map_or(0, |m| m.completed);
    let last = f.minutes.last().map_or(0, |m| m.completed);
    Ok(format!(
        "sustained minutes={minutes} in_flight={} foreign_tx={} completed={} seconds={:.0} instances_per_s={:.0} \
         first_minute_per_s={:.0} last_minute_per_s={:.0} last_to_first={:.2}",
        a.in_flight,
        a.foreign_tx,
        f.completed,
        f.seconds,
        f.completed as f64 / f.seconds,
        first as f64 / 60.0,
        last as f64 / 60.0,
        last as f64 / first.max(1) as f64,
    ))
}

/// `--prefill N`: the same run on the empty schema and after N ended instances' history.
async fn prefilled(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
    n: usize,
) -> Result<String, Failure> {
    use longrun_cli::{bench, prefill};
    if n == 0 || a.latency || a.processes > 1 {
        return Err(Failure::Input(
            "--prefill takes at least 1, with one engine process and not --latency".into(),
        ));
    }
    let run = |label: &'static str| async move {
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let before = bench::cpu_sample(cfg).await?;
        let f = bench::run_engines(cfg, a.instances, a.engines, false, progress).await?;
        let cost = before.until(&bench::cpu_sample(cfg).await?);
        let ips = f.completed as f64 / f.seconds;
        let per = |s: Option<f64>| s.map_or(f64::NAN, |s| s * 1e6 / f.completed as f64);
        eprintln!(
            "bench: {label}: {} instances in {:.2} s, {ips:.0}/s, rss {} MiB, engine_us_per_instance={:.0} pg_us_per_instance={:.0} wal_bytes_per_instance={:.0}",
            f.completed,
            f.seconds,
            rss_mib(),
            per(cost.engine_s),
            per(cost.server_s),
            cost.wal_bytes / f.completed as f64,
        );
        Ok::<f64, Failure>(ips)
    };
    let empty = run("empty schema").await?;
    let template = prefill::template(cfg).await?;
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    prefill::prefill(cfg, template, n, |done| {
        if last.elapsed().as_secs() >= 1 || done == n {
            last = std::time::Instant::now();
            eprintln!(
                "prefill: {done}/{n} ended instances copied, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    })
    .await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let storage = longrun_cli::bench::storage(cfg).await?;
    let full = run("after the prefill").await?;
    Ok(format!(
        "prefill={n} prefill_seconds={fill_seconds:.0} schema_mb={:.0} empty_instances_per_s={empty:.0} prefilled_instances_per_s={full:.0} prefilled_ratio={:.2} rss_mib={}",
        storage as f64 / 1e6,
        full / empty,
        rss_mib()
    ))
}

/// `--tasks N`: the task list with N open tasks (see `longrun_cli::tasks_bench`).
async fn tasks(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
    n: usize,
) -> Result<String, Failure> {
    if n == 0 || a.samples == 0 {
        return Err(Failure::Input(
            "--tasks and --samples must be at least 1".into(),
        ));
    }
    let started = std::time::Instant::now();
    let f = longrun_cli::tasks_bench::run(cfg, n, a.samples, |done| {
        eprintln!(
            "tasks: {done}/{n} open tasks, {:.0} s",
            started.elapsed().as_secs_f64()
        )
    })
    .await?;
    let l = |x: longrun_cli::tasks_bench::Latency| format!("{:.2}/{:.2}", x.p50_ms, x.p99_ms);
    Ok(format!(
        "tasks open={} fill_s={:.0} samples={} p50/p99_ms: group_first_page={} three_groups_first_page={} deep_page={} mine_first_page={} claim={} complete={}",
        f.open_tasks,
        f.fill_seconds,
        a.samples,
        l(f.group_first_page),
        l(f.groups_first_page),
        l(f.deep_page),
        l(f.mine_first_page),
        l(f.claim),
        l(f.complete),
    ))
}
