//! The reference scenario as four bounded contexts, each its own longrun schema and engine,
//! bridged over PostgreSQL, and a central monitor that follows every order across them.
//!
//! - order (`<prefix>_order`): the order process. It sends `RetrievePayment`, `FetchGoods` and
//!   `ShipGoods` as commands and waits for the replies; on a failed payment it undoes what it
//!   did (`ReleaseGoods`, `RefundPayment`) and cancels.
//! - payment (`<prefix>_payment`): a payment process per order: charge the card; an expired
//!   card reminds the customer and waits for `CreditCardUpdated` for at most the card window,
//!   then answers `PaymentReceived` or `PaymentFailed`. `RefundPayment` starts a refund.
//! - inventory (`<prefix>_inventory`): fetch the goods (`GoodsFetched`); `ReleaseGoods` puts
//!   them back.
//! - shipping (`<prefix>_shipping`): ship with a carrier that fails now and then
//!   (`--flaky-shipping`), retried until it goes through (`GoodsShipped`).
//!
//! No context reads another's tables: six bridges carry the commands and replies from outbox to
//! inbox, exactly once in effect. Each order runs under one trace (its order id) in every
//! context. Milestones (order placed, paid, picked, charged, shipped, completed or cancelled)
//! go to the monitor's schema (`<prefix>_monitor`), which counts the flow's stages and finds
//! the stuck orders.
//!
//! ```text
//! cargo run --release --example contexts -- --orders 1000
//! cargo run --release --example contexts -- --orders 1000 --expired-cards 0.2 --card-updated 0.5 --flaky-shipping 0.3
//! cargo run --release --example contexts --features nats -- --orders 1000 --bridge nats
//! cargo run --release --example contexts --features rabbitmq -- --orders 1000 --bridge rabbitmq
//! cargo run --release --example contexts -- --orders 400 --expired-cards 0.2 --card-updated 0.5 --flaky-shipping 0.3 --kills 11
//! ```
//! With `--kills N`, one of the moving parts (a context's engine, a bridge, the monitor) is
//! killed every 0.6 s while the orders run and started again (see `chaos.rs`).
//!
//! Ends with `orders=N completed=C cancelled=X monitored=M stuck=S`; exits non-zero unless
//! every order ended as its card implies, every completed order's timeline spans the four
//! contexts, the monitor saw every order end, and the audit across the schemas is clean (every
//! routed message in its target's inbox, nothing started twice, the monitor's milestones equal
//! the contexts' own).

mod chaos;
mod processes;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use longrun::bridge::Bridge;
use longrun::definition::parse_duration;
use longrun::monitor::{Flow, Monitor};
use longrun::store::{pg_config, StoreConfig};
use longrun::{
    Clock, Delivery, Engine, EngineConfig, HandlerError, JobContext, Message, OutboxMessage,
    ScaledClock, Store, SystemClock,
};
use processes::*;

type BuildEngine = Box<dyn Fn() -> Result<Engine, longrun::Error>>;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// How many orders checkout places.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// The schemas' prefix: `<prefix>_order`, `_payment`, `_inventory`, `_shipping` and
    /// `_monitor` (migrated if needed).
    #[arg(long, default_value = "contexts")]
    prefix: String,
    /// Fraction of orders whose card has expired.
    #[arg(long, default_value_t = 0.0)]
    expired_cards: f64,
    /// Fraction of those customers who update their card when reminded.
    #[arg(long, default_value_t = 0.0)]
    card_updated: f64,
    /// Fraction of carrier calls that fail (retried until they go through).
    #[arg(long, default_value_t = 0.0)]
    flaky_shipping: f64,
    /// How the contexts are bridged: postgres, nats (JetStream at --nats-url; build with
    /// `--features nats`) or rabbitmq (at --amqp-url; `--features rabbitmq`).
    #[arg(long, default_value = "postgres")]
    bridge: String,
    /// The NATS server, with --bridge nats.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The RabbitMQ server, with --bridge rabbitmq.
    #[arg(long, default_value = "amqp://127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Kill this many of the moving parts (a context's engine, a bridge, the monitor) while
    /// the orders are placed and run, one every 0.6 s, each started again 0.3 s later; with the
    /// PostgreSQL bridges. The audit at the end then shows whether anything was lost or done
    /// twice.
    #[arg(long, default_value_t = 0)]
    kills: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

const CARD_WINDOW: &str = "P14D";

/// Deterministic spread: whether order `i` falls in a fraction `f` (`salt`s differ per choice).
fn pick(i: usize, salt: u64, f: f64) -> bool {
    let mut z = (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z % 1_000_000) as f64) < f * 1_000_000.0
}

static SHIP_CALLS: AtomicUsize = AtomicUsize::new(0);
static SHIP_FAILURES: AtomicUsize = AtomicUsize::new(0);
static REFUNDS: AtomicUsize = AtomicUsize::new(0);
static RELEASES: AtomicUsize = AtomicUsize::new(0);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("contexts: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The engine of context `i` (order, payment, inventory, shipping) with its handlers.
fn context_engine(
    i: usize,
    store: &Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    flaky: f64,
) -> Result<Engine, longrun::Error> {
    let engine = Engine::builder(store.clone()).clock(clock).config(config);
    match i {
        0 => engine.build(),
        1 => engine
            .handler("charge", |job: JobContext| async move {
                let v = &job.variables;
                if v["cardExpired"] == json!(true) && v["cardUpdated"] != json!(true) {
                    return Err(HandlerError::business("CardExpired", "the card has expired"));
                }
                Ok(json!({"charged": v["amount"]}))
            })
            .handler("refund", |_: JobContext| async move {
                REFUNDS.fetch_add(1, Ordering::Relaxed);
                Ok(json!({"refunded": true}))
            })
            // The customer, reminded, updates the card if they meant to.
            .subscriber(
                "customer",
                &["customer"],
                |engine: Engine, reminder: OutboxMessage| async move {
                    if reminder.payload["willUpdateCard"] == json!(true) {
                        let msg = Message::new(
                            "CreditCardUpdated",
                            reminder.key.clone(),
                            format!("{}:updated", reminder.message_id),
                        )
                        .payload(json!({"cardUpdated": true}))
                        .traced_by(&reminder);
                        engine
                            .send(msg)
                            .await
                            .map_err(|e| HandlerError::new(e.to_string()))?;
                    }
                    Ok(())
                },
            )
            .build(),
        2 => engine
            .handler("pick", |job: JobContext| async move {
                Ok(json!({"pickList": format!("pick-{}", job.variables["orderId"].as_str().unwrap_or(""))}))
            })
            .handler("put_back", |_: JobContext| async move {
                RELEASES.fetch_add(1, Ordering::Relaxed);
                Ok(json!({"released": true}))
            })
            .build(),
        _ => engine
            .handler("ship", move |job: JobContext| async move {
                let n = SHIP_CALLS.fetch_add(1, Ordering::Relaxed);
                if pick(n, 3, flaky) {
                    SHIP_FAILURES.fetch_add(1, Ordering::Relaxed);
                    return Err(HandlerError::new("carrier unavailable"));
                }
                Ok(json!({"tracking": format!("track-{}", job.variables["orderId"].as_str().unwrap_or(""))}))
            })
            .build(),
    }
}

async fn store(prefix: &str, context: &str) -> Result<Store, Box<dyn std::error::Error>> {
    let store = Store::connect_with(
        pg_config(None)?,
        StoreConfig {
            schema: format!("{prefix}_{context}"),
            pool_size: 8,
            ..StoreConfig::default()
        },
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    match args.bridge.as_str() {
        "postgres" => {}
        "nats" if cfg!(feature = "nats") => {}
        "nats" => return Err("--bridge nats: build the example with --features nats".into()),
        "rabbitmq" if cfg!(feature = "rabbitmq") => {}
        "rabbitmq" => {
            return Err("--bridge rabbitmq: build the example with --features rabbitmq".into())
        }
        other => return Err(format!("--bridge {other}: postgres, nats or rabbitmq").into()),
    }
    if args.kills > 0 && args.bridge != "postgres" {
        return Err("--kills: with the PostgreSQL bridges (--bridge postgres)".into());
    }
    if !(0.0..=1.0).contains(&args.expired_cards)
        || !(0.0..=1.0).contains(&args.card_updated)
        || !(0.0..0.95).contains(&args.flaky_shipping)
    {
        return Err(
            "--expired-cards and --card-updated are fractions from 0 to 1, --flaky-shipping below 0.95"
                .into(),
        );
    }
    let window = parse_duration(CARD_WINDOW)?;
    // With expired cards, the card window passes on a fast clock (about 6 s), the same in
    // every context.
    // Process time per real time.
    let speed = if args.expired_cards > 0.0 {
        window.num_seconds() as f64 / 6.0
    } else {
        1.0
    };
    let clock: Arc<dyn Clock> = if args.expired_cards > 0.0 {
        let factor = window.num_seconds() as f64 / 6.0;
        println!(
            "fast clock: 1 s of real time is {:.1} h of process time (the {CARD_WINDOW} card window passes in ~6 s)",
            factor / 3600.0
        );
        Arc::new(ScaledClock::new(chrono::Utc::now(), factor))
    } else {
        Arc::new(SystemClock)
    };
    let p = &args.prefix;
    let (order_db, payment_db, inventory_db, shipping_db, monitor_db) = (
        store(p, "order").await?,
        store(p, "payment").await?,
        store(p, "inventory").await?,
        store(p, "shipping").await?,
        store(p, "monitor").await?,
    );
    let config = EngineConfig {
        // Replies that come before their order waits must outlive the card window.
        message_ttl: window * 3,
        poll_interval: Duration::from_millis(50),
        // Killed engines leave jobs leased: with kills, their leases lapse and are taken
        // over soon: after 3 s of real time (the leases run on the engines' clock).
        job_lease: if args.kills > 0 {
            chrono::Duration::milliseconds((3000.0 * speed) as i64)
        } else {
            EngineConfig::default().job_lease
        },
        maintenance_interval: if args.kills > 0 {
            Duration::from_millis(500)
        } else {
            EngineConfig::default().maintenance_interval
        },
        ..EngineConfig::default()
    };
    let flaky = args.flaky_shipping;
    // The contexts' engines, each built with its handlers whenever it (re)starts.
    let build = |i: usize| -> BuildEngine {
        let store = [&order_db, &payment_db, &inventory_db, &shipping_db][i].clone();
        let (clock, config) = (clock.clone(), config.clone());
        Box::new(move || context_engine(i, &store, clock.clone(), config.clone(), flaky))
    };
    // Deploy through engines without handlers; checkout sends through the order context's.
    let o = Engine::builder(order_db.clone())
        .clock(clock.clone())
        .config(config.clone())
        .build()?;
    o.deploy(&order()).await?;
    let deployer = |store: &Store| Engine::builder(store.clone()).build();
    deployer(&payment_db)?.deploy(&payment()).await?;
    deployer(&payment_db)?.deploy(&refund()).await?;
    deployer(&inventory_db)?.deploy(&fetch()).await?;
    deployer(&inventory_db)?.deploy(&release()).await?;
    deployer(&shipping_db)?.deploy(&shipment()).await?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut parts = chaos::Parts::new(stop.clone());
    for (i, name) in ["order", "payment", "inventory", "shipping"]
        .into_iter()
        .enumerate()
    {
        parts.engine(&format!("{name} engine"), build(i))?;
    }

    // The bridges: commands out of the order context, replies back into it.
    let routes: [(&Store, &Store, &str, &[&str]); 6] = [
        (&order_db, &payment_db, "order-to-payment", &["payment"]),
        (
            &order_db,
            &inventory_db,
            "order-to-inventory",
            &["inventory"],
        ),
        (&order_db, &shipping_db, "order-to-shipping", &["shipping"]),
        (
            &payment_db,
            &order_db,
            "payment-to-order",
            &["PaymentReceived", "PaymentFailed"],
        ),
        (
            &inventory_db,
            &order_db,
            "inventory-to-order",
            &["GoodsFetched"],
        ),
        (
            &shipping_db,
            &order_db,
            "shipping-to-order",
            &["GoodsShipped"],
        ),
    ];
    // A killed bridge's or monitor's hold on its checkpoint lapses after this.
    let lease = chrono::Duration::seconds(2);
    // The broker bridges' halves (the PostgreSQL bridges are parts, below).
    #[cfg_attr(not(any(feature = "nats", feature = "rabbitmq")), allow(unused_mut))]
    let mut bridges: Vec<tokio::task::JoinHandle<Result<(), String>>> = Vec::new();
    for (from, to, name, topics) in routes {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        #[cfg(feature = "nats")]
        if args.bridge == "nats" {
            // Each route is two halves: the source's outbox to the stream, the stream to the
            // target's inbox; the stream and subjects are this prefix's own.
            use longrun::bridge::nats::{NatsConfig, NatsDelivery, NatsPublisher};
            let config = NatsConfig {
                stream: format!("CONTEXTS_{}", args.prefix.to_uppercase()),
                prefix: format!("contexts_{}", args.prefix),
                ..NatsConfig::new(&args.nats_url)
            };
            let out = NatsPublisher::connect(from, config.clone(), name, topics.clone()).await?;
            let into = NatsDelivery::connect(config, to, name, topics)
                .await?
                .clock(clock.clone())?;
            let (s1, s2) = (stop.clone(), stop.clone());
            bridges.push(tokio::spawn(async move {
                out.run(s1).await.map_err(|e| e.to_string())
            }));
            bridges.push(tokio::spawn(async move {
                into.run(s2).await.map_err(|e| e.to_string())
            }));
            continue;
        }
        #[cfg(feature = "rabbitmq")]
        if args.bridge == "rabbitmq" {
            // The queue (bound to the route's topics) first, so nothing published is lost.
            use longrun::bridge::rabbitmq::{RabbitConfig, RabbitDelivery, RabbitPublisher};
            let config = RabbitConfig {
                exchange: format!("contexts_{}", args.prefix),
                ..RabbitConfig::new(&args.amqp_url)
            };
            let queue = format!("{}_{name}", args.prefix);
            let into = RabbitDelivery::connect(config.clone(), to, &queue, topics.clone())
                .await?
                .clock(clock.clone())?;
            let out = RabbitPublisher::connect(from, config, name, topics).await?;
            let (s1, s2) = (stop.clone(), stop.clone());
            bridges.push(tokio::spawn(async move {
                out.run(s1).await.map_err(|e| e.to_string())
            }));
            bridges.push(tokio::spawn(async move {
                into.run(s2).await.map_err(|e| e.to_string())
            }));
            continue;
        }
        let bridge = Bridge::new(from, to, name, topics)?
            .clock(clock.clone())?
            .lease(lease);
        parts.task(
            name,
            Box::new(move |stop| {
                let bridge = bridge.clone();
                tokio::spawn(async move { bridge.run(stop).await })
            }),
        );
    }
    let monitor = Monitor::new(&monitor_db, "central")?
        .source("order", &order_db)?
        .source("payment", &payment_db)?
        .source("inventory", &inventory_db)?
        .source("shipping", &shipping_db)?
        .lease(lease);
    monitor.define(&Flow::from_json(FLOW)?).await?;
    {
        let monitor = monitor.clone();
        parts.task(
            "monitor",
            Box::new(move |stop| {
                let monitor = monitor.clone();
                tokio::spawn(async move {
                    if let Err(e) = monitor.run(stop).await {
                        eprintln!("monitor: {e}");
                    }
                })
            }),
        );
    }

    // Checkout places the orders: each `OrderPlaced` starts an order instance under the
    // order's trace.
    let started = Instant::now();
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run_id = run_id[run_id.len() - 8..].to_string();
    // Replies end the orders in whichever engine delivers them (a bridge's): count the ended
    // orders in the order context's table, against what earlier runs left there.
    let ended_orders = || async {
        let counts = order_db.count_by_status("order").await?;
        Ok::<i64, longrun::Error>(
            counts
                .iter()
                .filter(|(s, _)| s != "running")
                .map(|(_, n)| n)
                .sum(),
        )
    };
    let before = ended_orders().await?;
    // Checkout places the orders while the parts run (and, with --kills, die).
    // Checkout places the orders while the parts run (and, with --kills, die): a web service
    // embedding an engine of the order context, each request one concurrent `send` (a running
    // engine groups them into shared transactions).
    let checkout = o.run();
    let placing = {
        let (o, run_id, args) = (o.clone(), run_id.clone(), args.clone());
        tokio::spawn(async move {
            let mut sends = Vec::new();
            for i in 0..args.orders {
                let o = o.clone();
                let order_id = format!("{run_id}-{i:06}");
                let expired = pick(i, 1, args.expired_cards);
                let will_update = expired && pick(i, 2, args.card_updated);
                let traceparent = format!(
                    "00-{:032x}-{:016x}-01",
                    uuid::Uuid::new_v4().as_u128(),
                    i as u64 + 1
                );
                sends.push(tokio::spawn(async move {
                    let msg =
                        Message::new("OrderPlaced", &order_id, format!("checkout:{order_id}"))
                            .payload(json!({
                                "orderId": order_id, "amount": 10 + (i % 90),
                                "cardExpired": expired, "willUpdateCard": will_update
                            }))
                            .trace(&order_id, traceparent);
                    let delivery = o.send(msg).await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((delivery, order_id, expired && !will_update))
                }));
            }
            let mut instances = std::collections::HashMap::new();
            for s in sends {
                match s.await.map_err(|e| e.to_string())?? {
                    (Delivery::Started { instance_id, .. }, order_id, cancel) => {
                        instances.insert(instance_id, (order_id, cancel));
                    }
                    (other, ..) => {
                        return Err(format!("OrderPlaced was not started on: {other:?}"))
                    }
                }
            }
            Ok(instances)
        })
    };
    let mut done = 0usize;
    let mut last_report = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let mut last_kill = Instant::now();
    while done < args.orders && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if parts.killed.len() < args.kills && last_kill.elapsed() > Duration::from_millis(300) {
            parts
                .kill(parts.killed.len(), Duration::from_millis(300))
                .await?;
            eprintln!("killed and restarted: {}", parts.killed.last().unwrap());
            last_kill = Instant::now();
        }
        done = (ended_orders().await? - before).max(0) as usize;
        if last_report.elapsed() > Duration::from_secs(1) {
            eprintln!("progress: {done}/{} orders ended", args.orders);
            last_report = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let instances = placing.await??;

    // How each order ended, and what the monitor saw of it.
    let (mut completed, mut cancelled, mut wrong, mut monitored, mut spanning) = (0, 0, 0, 0, 0);
    let settle = tokio::time::Instant::now() + Duration::from_secs(30);
    for (id, (order_id, expect_cancel)) in &instances {
        let view = order_db.instance(*id).await?;
        let is_cancelled = view.current_step.as_deref() == Some("cancelled");
        completed += usize::from(view.status == "completed" && !is_cancelled);
        cancelled += usize::from(is_cancelled);
        if view.status != "completed" || is_cancelled != *expect_cancel {
            wrong += 1;
        }
        // The monitor reads on its own; give it a moment to see the end.
        let end = if is_cancelled {
            "cancelled"
        } else {
            "completed"
        };
        let timeline = loop {
            let t = monitor.timeline(order_id).await?;
            if t.iter().any(|r| r.milestone == end) || tokio::time::Instant::now() > settle {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        monitored += usize::from(timeline.iter().any(|r| r.milestone == end));
        let contexts: std::collections::HashSet<&str> =
            timeline.iter().map(|r| r.context.as_str()).collect();
        spanning += usize::from(is_cancelled || contexts.len() == 4);
    }
    let stuck = monitor_db.report("flow_stuck", 100_000).await?.len();
    let stages = monitor_db.report("flow_stages", 100).await?;
    // Everything crossed once and the monitor's counts are the contexts' own.
    let route_schemas: Vec<(String, String, Vec<String>)> = routes
        .iter()
        .map(|(from, to, _, topics)| {
            let topics = topics.iter().map(|t| t.to_string()).collect();
            (from.schema().to_string(), to.schema().to_string(), topics)
        })
        .collect();
    let context_schemas = [
        ("order", order_db.schema().to_string()),
        ("payment", payment_db.schema().to_string()),
        ("inventory", inventory_db.schema().to_string()),
        ("shipping", shipping_db.schema().to_string()),
    ];
    let audit = chaos::audit(
        &route_schemas,
        &context_schemas,
        monitor_db.schema(),
        Duration::from_secs(30),
    )
    .await?;
    let _ = stop_tx.send(true);
    for b in bridges {
        let _ = b.await;
    }
    let parts_killed = parts.killed.clone();
    parts.stop().await;
    checkout.shutdown().await;
    for s in &stages {
        println!(
            "stage {:<14} traces {}",
            s["milestone"].as_str().unwrap_or(""),
            s["traces"]
        );
    }
    let expect_cancelled = instances.values().filter(|(_, c)| *c).count();
    let milestones: Vec<String> = audit
        .milestones
        .iter()
        .map(|(c, sent, kept)| format!("{c}:{sent}/{kept}"))
        .collect();
    println!(
        "kills={} routed={} missing={} started_twice={} milestones_sent/kept={}",
        parts_killed.len(),
        audit.routed,
        audit.missing,
        audit.twice,
        milestones.join(",")
    );
    if !parts_killed.is_empty() {
        println!("killed: {}", parts_killed.join(", "));
    }
    println!(
        "expected_cancelled={expect_cancelled} unexpected={wrong} spanning_four_contexts={spanning} shipping_retries={} refunds={} releases={} elapsed_s={elapsed:.2} orders_per_s={:.0}",
        SHIP_FAILURES.load(Ordering::Relaxed),
        REFUNDS.load(Ordering::Relaxed),
        RELEASES.load(Ordering::Relaxed),
        done as f64 / elapsed
    );
    println!(
        "orders={} completed={completed} cancelled={cancelled} monitored={monitored} stuck={stuck}",
        args.orders
    );
    Ok(done == args.orders
        && wrong == 0
        && cancelled == expect_cancelled
        && completed + cancelled == args.orders
        && monitored == args.orders
        && spanning == args.orders
        && stuck == 0
        && audit.clean())
}
