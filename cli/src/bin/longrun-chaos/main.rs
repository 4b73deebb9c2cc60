//! The chaos harness: several engine processes work through the reference scenario on a
//! private PostgreSQL cluster (a clerk in each process approving the larger orders' user
//! tasks) while the harness kills engines with SIGKILL, restarts them, and
//! stops PostgreSQL in immediate mode and starts it again. When every order has ended it checks
//! the invariants in SQL (`sql/chaos/invariants.sql`) and prints each one's violations.
//!
//! ```text
//! longrun-chaos run --instances 500 --engines 3 --kills 5 --pg-restarts 1      # small (CI)
//! longrun-chaos run --instances 10000 --engines 3 --kills 20 --pg-restarts 2   # large
//! longrun-chaos run ... --seed 42                                              # replay a run
//! ```
//!
//! The seed decides the orders (expired cards, card updates, duplicates), the flaky handler's
//! failures and the schedule of kills and restarts; it is printed first. Exit status 0 only if
//! every invariant holds.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use longrun_cli::cluster::Cluster;
use serde_json::{json, Value};

use longrun::definition::{Compensation, MultiInstance, RetryPolicy, TimerSpec, UserTask};
use longrun::store::{pg_config, ActivityHistory, Layout, StoreConfig};
use longrun::{
    Engine, EngineConfig, HandlerError, JobContext, Message, OutboxMessage, ProcessDefinition,
    Store,
};

mod worker;

use worker::{fence_worker, worker};

const SCHEMA: &str = "chaos";
const APP: &str = "chaos_app";

#[derive(Parser, Debug)]
#[command(
    name = "longrun-chaos",
    about = "Crash, restart and duplicate-storm tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the harness on a private, throwaway PostgreSQL cluster.
    Run(RunArgs),
    /// (Internal, for the fencing test) an engine whose `slow` handler records its start, waits
    /// `--hold-ms` and returns; its job lease is `--lease-ms`.
    FenceWorker {
        /// Connection string (default: DATABASE_URL, else what psql would use).
        #[arg(long)]
        conn: Option<String>,
        /// The longrun schema.
        #[arg(long)]
        schema: String,
        /// How long the handler takes.
        #[arg(long, default_value_t = 1500)]
        hold_ms: u64,
        /// The job lease.
        #[arg(long, default_value_t = 500)]
        lease_ms: i64,
    },
    /// (Internal) one engine process of a run.
    Worker {
        /// Connection string of the private cluster.
        #[arg(long)]
        conn: String,
        /// The run's seed.
        #[arg(long)]
        seed: u64,
        /// Which engine this is.
        #[arg(long)]
        index: usize,
    },
}

#[derive(Parser, Debug, Clone)]
struct RunArgs {
    /// Orders placed.
    #[arg(long, default_value_t = 500)]
    instances: usize,
    /// Engine processes.
    #[arg(long, default_value_t = 3)]
    engines: usize,
    /// Engine processes killed with SIGKILL (and restarted) during the run.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Times PostgreSQL is stopped in immediate mode and started again during the run.
    #[arg(long, default_value_t = 1)]
    pg_restarts: usize,
    /// The seed; default: from the clock. Printed, so a failing run can be replayed.
    #[arg(long)]
    seed: Option<u64>,
    /// Port of the private cluster.
    #[arg(long, default_value_t = 54329)]
    port: u16,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
    /// Keep the cluster's directory (and leave the cluster stopped) for inspection.
    #[arg(long)]
    keep: bool,
    /// Break two invariants on purpose before checking (a lost side effect, a wrong end
    /// state), to show the checks catch them: the run must then fail.
    #[arg(long)]
    sabotage: bool,
    /// The schema's layout: plain, or partitioned (each bucketed table `PARTITION BY HASH
    /// (bucket)`, see docs/SCALING.md).
    #[arg(long, default_value = "plain", value_parser = ["plain", "partitioned"])]
    layout: String,
}

/// A deterministic draw in [0, 1) from the seed and some values.
fn draw(seed: u64, what: impl Hash) -> f64 {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    what.hash(&mut h);
    (h.finish() % 1_000_000) as f64 / 1_000_000.0
}

/// The reference scenario with a fast card window and a flaky fee handler.
fn process() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .start_on_message("OrderPlaced")
        .retry(RetryPolicy {
            max_attempts: 20,
            initial_interval: "PT0.2S".into(),
            backoff: 1.5,
            max_interval: Some("PT2S".into()),
            jitter: true,
        })
        .parallel("fetch_in_parallel", ["retrieve_payment", "fetch_goods"])
        .send("retrieve_payment", "RetrievePayment")
        .to("payment")
        .compensate(Compensation::Send {
            send: "RefundPayment".into(),
            to: Some("payment".into()),
        })
        .event_gateway("payment_outcome")
        .on_message("PaymentReceived", "payment_and_goods")
        .output("payment")
        .on_message("PaymentFailed", "wait_card")
        .receive("wait_card", "CreditCardUpdated")
        .timeout_after("PT20S", "give_up")
        .remind(
            TimerSpec::After("PT10S".into()),
            "CardReminder",
            Some("customer"),
        )
        .send("retry_payment", "RetrievePayment")
        .to("payment")
        .next("payment_outcome")
        .send("fetch_goods", "FetchGoods")
        .to("inventory")
        .compensate(Compensation::Send {
            send: "ReleaseGoods".into(),
            to: Some("inventory".into()),
        })
        .receive("goods_fetched", "GoodsFetched")
        .output("goods")
        .join("payment_and_goods")
        // Each line of the order is packed by its own job, all at once (a flaky packer):
        // engines are killed while the elements run.
        .service("pack_line", "pack_line")
        .for_each(
            MultiInstance::over("lines")
                .element("line")
                .collect("packed", Some("sku")),
        )
        // The warehouse opens its doors again and again (a signal the harness throws every
        // quarter second): an order waits for the next opening, delivered in small chunks
        // while engines are killed.
        .wait_signal("warehouse_open", "WarehouseOpen")
        // Larger orders wait for a clerk's approval (clerks in the engine processes claim and
        // complete them while engines are killed).
        .exclusive("needs_approval")
        .when("amount > 80", "approve")
        .otherwise("charge_fee")
        .user_task(
            "approve",
            UserTask::new()
                .candidate_groups(["clerks"])
                .field("approved", longrun::expr::Type::Boolean),
        )
        .service("charge_fee", "charge_fee")
        .output("fee")
        .send("ship_goods", "ShipGoods")
        .to("shipping")
        .receive("goods_shipped", "GoodsShipped")
        .output("shipment")
        .send("order_completed", "OrderCompleted")
        .end("done")
        .compensate_all("give_up")
        .send("order_cancelled", "OrderCancelled")
        .end("cancelled")
        .build()
        .expect("the chaos process is valid")
}

fn sql(text: &str) -> String {
    longrun::store::sql::render(&text.replace("__app__", &format!("\"{APP}\"")), SCHEMA)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args).await,
        Cmd::Worker { conn, seed, index } => worker(conn, seed, index).await.map(|_| true),
        Cmd::FenceWorker {
            conn,
            schema,
            hold_ms,
            lease_ms,
        } => fence_worker(conn, schema, hold_ms, lease_ms)
            .await
            .map(|_| true),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            let detail = e
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(|e| e.as_db_error())
                .map(|d| format!(": {} ({})", d.message(), d.code().code()))
                .unwrap_or_default();
            eprintln!("longrun-chaos: {e}{detail}");
            std::process::ExitCode::from(2)
        }
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A private cluster in a temporary directory, run as the `postgres` user when we are root.
async fn connect(conn: &str, pool: usize) -> AnyResult<Store> {
    connect_layout(conn, pool, Layout::Plain).await
}

/// As [`connect`], with the layout the migrations make a new schema with.
async fn connect_layout(conn: &str, pool: usize, layout: Layout) -> AnyResult<Store> {
    Ok(Store::connect_with(
        pg_config(Some(conn))?,
        StoreConfig {
            schema: SCHEMA.into(),
            pool_size: pool,
            layout,
            ..StoreConfig::default()
        },
    )
    .await?)
}

/// Retry an async operation through a database outage (up to a minute).
async fn through_outage<T, F, Fut>(what: &str, mut f: F) -> AnyResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AnyResult<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() < deadline => {
                tracing::info!(error = %e, "{what}: retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("{what}: {e}").into()),
        }
    }
}

fn spawn_worker(conn: &str, seed: u64, index: usize, dir: &Path) -> AnyResult<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("engine-{index}.log")))?;
    Ok(Command::new(std::env::current_exe()?)
        .args([
            "worker",
            "--conn",
            conn,
            "--seed",
            &seed.to_string(),
            "--index",
            &index.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

async fn run(args: RunArgs) -> AnyResult<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(1)
    });
    println!(
        "chaos seed={seed} instances={} engines={} kills={} pg_restarts={} layout={} (replay: longrun-chaos run --instances {} --engines {} --kills {} --pg-restarts {} --layout {} --seed {seed})",
        args.instances, args.engines, args.kills, args.pg_restarts, args.layout,
        args.instances, args.engines, args.kills, args.pg_restarts, args.layout
    );
    let cluster = Cluster::create(args.port, &format!("longrun-chaos-{seed}"))?;
    println!(
        "private cluster in {} on port {}",
        cluster.dir.display(),
        cluster.port
    );
    cluster.start()?;
    let result = drive(&args, seed, &cluster).await;
    let _ = cluster.stop("fast");
    if args.keep {
        println!("kept {}", cluster.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&cluster.dir);
    }
    result
}

async fn drive(args: &RunArgs, seed: u64, cluster: &Cluster) -> AnyResult<bool> {
    let conn = cluster.conn();
    let store = connect_layout(&conn, 4, args.layout.parse()?).await?;
    store.migrate().await?;
    {
        let c = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(c.1);
        c.0.batch_execute(&sql(include_str!("../../../../sql/chaos/setup.sql")))
            .await?;
    }
    let client = Engine::builder(store.clone()).build()?;
    client.deploy(&process()).await?;

    let mut workers: Vec<Child> = (0..args.engines)
        .map(|i| spawn_worker(&conn, seed, i, &cluster.dir))
        .collect::<AnyResult<_>>()?;

    // Checkout places the orders, each sent one to three times (same message id).
    let n = args.instances;
    let mut orders = tokio::spawn({
        let client = client.clone();
        async move {
            for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
                let mut batch: Vec<Message> = Vec::new();
                for &i in chunk {
                    let expired = draw(seed, ("expired", i)) < 0.2;
                    let update = expired && draw(seed, ("update", i)) < 0.5;
                    let copies = 1 + (draw(seed, ("copies", i)) * 3.0) as usize;
                    let id = format!("order-{i:06}");
                    for _ in 0..copies {
                        batch.push(
                            Message::new("OrderPlaced", id.clone(), format!("checkout:{id}"))
                                .payload(json!({"orderId": id, "amount": 10 + i % 90,
                                                "cardExpired": expired, "willUpdateCard": update,
                                                "lines": (0..1 + i % 3)
                                                    .map(|l| json!({"sku": format!("{id}-{l}")}))
                                                    .collect::<Vec<_>>()})),
                        );
                    }
                }
                // A message refused by an outage is sent again until it is taken (a copy
                // that was taken after all is reported as a duplicate: harmless).
                let give_up = Instant::now() + Duration::from_secs(120);
                while !batch.is_empty() {
                    let out = through_outage("placing orders", || {
                        let (client, batch) = (client.clone(), batch.clone());
                        async move { Ok(client.send_many(batch).await?) }
                    })
                    .await?;
                    let failed: Vec<Message> = batch
                        .iter()
                        .zip(&out)
                        .filter(|(_, r)| r.is_err())
                        .map(|(m, _)| m.clone())
                        .collect();
                    if !failed.is_empty() {
                        if Instant::now() > give_up {
                            return Err(format!(
                                "placing orders: {} messages still refused: {:?}",
                                failed.len(),
                                out.iter().find(|r| r.is_err())
                            )
                            .into());
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    batch = failed;
                }
            }
            AnyResult::Ok(())
        }
    });

    // Disruptions, spread over the first part of the run.
    let plan: Vec<&str> = std::iter::repeat_n("kill", args.kills)
        .chain(std::iter::repeat_n("pg", args.pg_restarts))
        .collect();
    let mut order: Vec<(f64, &str)> = plan
        .iter()
        .enumerate()
        .map(|(k, what)| (draw(seed, (k, what)), *what))
        .collect();
    order.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let ended_sql = sql(include_str!("../../../../sql/chaos/ended.sql"));
    let (mut kills, mut restarts) = (0, 0);
    let mut next = 0;
    let mut last_report = Instant::now();
    let mut done = 0i64;
    let mut orders_placed = false;
    loop {
        if let Some((at, what)) = order.get(next) {
            // Disruptions fall in the first ~70% of the expected progress.
            if done as f64 >= at * 0.7 * n as f64 {
                next += 1;
                if *what == "kill" {
                    let k = (draw(seed, ("victim", next)) * workers.len() as f64) as usize;
                    let _ = workers[k].kill();
                    let _ = workers[k].wait();
                    kills += 1;
                    println!(
                        "[{:>5.1}s] SIGKILL engine {k} ({done}/{n} ended)",
                        started.elapsed().as_secs_f64()
                    );
                    tokio::time::sleep(Duration::from_millis(
                        200 + (draw(seed, ("pause", next)) * 800.0) as u64,
                    ))
                    .await;
                    workers[k] = spawn_worker(&conn, seed, k, &cluster.dir)?;
                } else {
                    println!(
                        "[{:>5.1}s] PostgreSQL: immediate stop ({done}/{n} ended)",
                        started.elapsed().as_secs_f64()
                    );
                    cluster.stop("immediate")?;
                    tokio::time::sleep(Duration::from_millis(
                        500 + (draw(seed, ("down", next)) * 1500.0) as u64,
                    ))
                    .await;
                    cluster.start()?;
                    restarts += 1;
                    println!(
                        "[{:>5.1}s] PostgreSQL: started again",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        // A refused throw (PostgreSQL is down) is simply the next one's to make up.
        let _ = client.signal("WarehouseOpen", json!({})).await;
        let counts = async {
            let c = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
            tokio::spawn(c.1);
            let row = c.0.query_one(&ended_sql, &[]).await?;
            AnyResult::Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        }
        .await;
        if let Ok((ended, _)) = counts {
            done = ended;
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            println!(
                "[{:>5.1}s] progress: {done}/{n} orders ended",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if !orders_placed && orders.is_finished() {
            // If placing the orders failed, say why now rather than wait for the timeout.
            (&mut orders).await??;
            orders_placed = true;
        }
        if done >= n as i64 && next >= order.len() {
            break;
        }
        if Instant::now() > deadline {
            println!("timed out after {} s with {done}/{n} ended", args.timeout_s);
            break;
        }
    }
    if !orders_placed {
        if !orders.is_finished() {
            return Err("timed out placing the orders".into());
        }
        orders.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();

    // Quiesce: let the relays deliver the last messages, late messages expire and the
    // projection catch up, then stop the engines gracefully.
    let quiet_deadline = Instant::now() + Duration::from_secs(90);
    let invariants_sql = sql(include_str!("../../../../sql/chaos/invariants.sql"));
    let check = || async {
        let c = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(c.1);
        let rows = c.0.query(&invariants_sql, &[&(n as i64)]).await?;
        AnyResult::Ok(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                .collect::<Vec<_>>(),
        )
    };
    let mut results = check().await?;
    while results.iter().any(|r| r.1 > 0) && Instant::now() < quiet_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        results = check().await?;
    }
    for w in &mut workers {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
    }
    for w in &mut workers {
        let _ = w.wait();
    }
    if args.sabotage {
        let c = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(c.1);
        c.0.batch_execute(&sql(include_str!("../../../../sql/chaos/sabotage.sql")))
            .await?;
        println!("sabotage: deleted one side effect and changed one end state");
    }
    results = check().await?;

    // The projection rebuilt from scratch equals the live one.
    let digest_sql = sql(include_str!("../../../../sql/chaos/activity_digest.sql"));
    let digest = || async {
        let c = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(c.1);
        let r = c.0.query_one(&digest_sql, &[]).await?;
        AnyResult::Ok((r.get::<_, String>(0), r.get::<_, i64>(1)))
    };
    let live = digest().await?;
    store
        .reset_projection(&ActivityHistory, chrono::Utc::now())
        .await?;
    store
        .project_all(&ActivityHistory, chrono::Utc::now, |_| {})
        .await?;
    let rebuilt = digest().await?;
    results.push((
        format!(
            "projections equal their rebuild ({} activity rows, and the counters)",
            live.1
        ),
        i64::from(live != rebuilt),
    ));

    println!("invariants after {elapsed:.1} s, {kills} kills, {restarts} PostgreSQL restarts:");
    let mut ok = true;
    for (name, violations) in &results {
        println!("  {violations:>6}  {name}");
        ok &= *violations == 0;
    }
    let stats = async {
        let c = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(c.1);
        let r =
            c.0.query_one(&sql(include_str!("../../../../sql/chaos/stats.sql")), &[])
                .await?;
        AnyResult::Ok((
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4),
            r.get::<_, i64>(5),
            r.get::<_, i64>(6),
            r.get::<_, i64>(7),
            [r.get::<_, i64>(8), r.get::<_, i64>(9), r.get::<_, i64>(10)],
        ))
    }
    .await?;
    println!(
        "chaos seed={seed} ok={ok} orders={n} cancelled={} late_card_updates={} inbound_messages={} dead_letters={} redelivered_effects={} handler_retries={} tasks_completed={} task_claims={} elements={} signals={} signal_receivers={} kills={kills} pg_restarts={restarts} elapsed_s={elapsed:.1}",
        stats.3, stats.4, stats.0, stats.5, stats.1, stats.2, stats.6, stats.7, stats.8[0], stats.8[1], stats.8[2]
    );
    Ok(ok && kills == args.kills && restarts == args.pg_restarts)
}
