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
//! ```
//! Ends with `orders=N completed=C cancelled=X monitored=M stuck=S ...`; exits non-zero unless
//! every order ended as its card implies, every completed order's timeline spans the four
//! contexts, and the monitor saw every order end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use longrun::bridge::Bridge;
use longrun::definition::{parse_duration, Compensation, RetryPolicy};
use longrun::monitor::{Flow, Monitor};
use longrun::store::{pg_config, StoreConfig};
use longrun::{
    Clock, Delivery, Engine, EngineConfig, HandlerError, JobContext, Message, OutboxMessage,
    ProcessDefinition, ScaledClock, Store, SystemClock,
};

#[derive(Parser, Debug)]
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
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

const CARD_WINDOW: &str = "P14D";

fn order() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .start_on_message("OrderPlaced")
        .parallel("placed", ["retrieve_payment", "fetch_goods"])
        .milestone("order placed")
        .send("retrieve_payment", "RetrievePayment")
        .to("payment")
        .compensate(Compensation::Send {
            send: "RefundPayment".into(),
            to: Some("payment".into()),
        })
        .event_gateway("payment_outcome")
        .on_message("PaymentReceived", "paid")
        .on_message("PaymentFailed", "give_up")
        .exclusive("paid")
        .otherwise("payment_and_goods")
        .milestone("paid")
        .send("fetch_goods", "FetchGoods")
        .to("inventory")
        .compensate(Compensation::Send {
            send: "ReleaseGoods".into(),
            to: Some("inventory".into()),
        })
        .receive("goods_fetched", "GoodsFetched")
        .join("payment_and_goods")
        .send("ship_goods", "ShipGoods")
        .to("shipping")
        .receive("goods_shipped", "GoodsShipped")
        .send("order_completed", "OrderCompleted")
        .end("done")
        .milestone("completed")
        .compensate_all("give_up")
        .send("order_cancelled", "OrderCancelled")
        .end("cancelled")
        .milestone("cancelled")
        .build()
        .expect("the order process is valid")
}

fn payment() -> ProcessDefinition {
    ProcessDefinition::builder("payment")
        .start_on_message("RetrievePayment")
        .service("charge", "charge")
        .on_error("CardExpired", "remind")
        .milestone("charged")
        .send("received", "PaymentReceived")
        .end("done")
        .send("remind", "CardReminder")
        .to("customer")
        .receive("wait_card", "CreditCardUpdated")
        .timeout_after(CARD_WINDOW, "failed")
        .next("charge")
        .send("failed", "PaymentFailed")
        .end("gave_up")
        .build()
        .expect("the payment process is valid")
}

fn refund() -> ProcessDefinition {
    ProcessDefinition::builder("refund")
        .start_on_message("RefundPayment")
        .service("refund", "refund")
        .end("done")
        .build()
        .expect("the refund process is valid")
}

fn fetch() -> ProcessDefinition {
    ProcessDefinition::builder("fetch")
        .start_on_message("FetchGoods")
        .service("pick", "pick")
        .milestone("picked")
        .send("fetched", "GoodsFetched")
        .end("done")
        .build()
        .expect("the fetch process is valid")
}

fn release() -> ProcessDefinition {
    ProcessDefinition::builder("release")
        .start_on_message("ReleaseGoods")
        .service("put_back", "put_back")
        .end("done")
        .build()
        .expect("the release process is valid")
}

fn shipment() -> ProcessDefinition {
    ProcessDefinition::builder("shipment")
        .start_on_message("ShipGoods")
        .service("ship", "ship")
        .retry(RetryPolicy::new(50, "PT0.05S"))
        .milestone("shipped")
        .send("shipped_event", "GoodsShipped")
        .end("done")
        .build()
        .expect("the shipment process is valid")
}

const FLOW: &str = r#"{"flow": "order", "stages": [
    {"milestone": "order placed", "limit": "P30D"},
    {"milestone": "charged", "limit": "P30D"},
    {"milestone": "paid", "limit": "P30D"},
    {"milestone": "shipped", "limit": "P30D"},
    {"milestone": "completed"}]}"#;

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
        ..EngineConfig::default()
    };
    let engine = |store: &Store| {
        Engine::builder(store.clone())
            .clock(clock.clone())
            .config(config.clone())
    };
    let flaky = args.flaky_shipping;
    let contexts = [
        engine(&order_db).build()?,
        engine(&payment_db)
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
            .build()?,
        engine(&inventory_db)
            .handler("pick", |job: JobContext| async move {
                Ok(json!({"pickList": format!("pick-{}", job.variables["orderId"].as_str().unwrap_or(""))}))
            })
            .handler("put_back", |_: JobContext| async move {
                RELEASES.fetch_add(1, Ordering::Relaxed);
                Ok(json!({"released": true}))
            })
            .build()?,
        engine(&shipping_db)
            .handler("ship", move |job: JobContext| async move {
                let n = SHIP_CALLS.fetch_add(1, Ordering::Relaxed);
                if pick(n, 3, flaky) {
                    SHIP_FAILURES.fetch_add(1, Ordering::Relaxed);
                    return Err(HandlerError::new("carrier unavailable"));
                }
                Ok(json!({"tracking": format!("track-{}", job.variables["orderId"].as_str().unwrap_or(""))}))
            })
            .build()?,
    ];
    let [o, pay, inv, ship] = &contexts;
    o.deploy(&order()).await?;
    pay.deploy(&payment()).await?;
    pay.deploy(&refund()).await?;
    inv.deploy(&fetch()).await?;
    inv.deploy(&release()).await?;
    ship.deploy(&shipment()).await?;
    let running: Vec<_> = contexts.iter().map(Engine::run).collect();

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
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut bridges = Vec::new();
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
        let bridge = Bridge::new(from, to, name, topics)?.clock(clock.clone())?;
        let stop = stop.clone();
        bridges.push(tokio::spawn(async move {
            bridge.run(stop).await;
            Ok::<(), String>(())
        }));
    }
    let monitor = Monitor::new(&monitor_db, "central")?
        .source("order", &order_db)?
        .source("payment", &payment_db)?
        .source("inventory", &inventory_db)?
        .source("shipping", &shipping_db)?;
    monitor.define(&Flow::from_json(FLOW)?).await?;
    let watching = {
        let (monitor, stop) = (monitor.clone(), stop.clone());
        tokio::spawn(async move { monitor.run(stop).await })
    };

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
    let mut instances = std::collections::HashMap::new();
    for i in 0..args.orders {
        let order_id = format!("{run_id}-{i:06}");
        let expired = pick(i, 1, args.expired_cards);
        let will_update = expired && pick(i, 2, args.card_updated);
        let traceparent = format!(
            "00-{:032x}-{:016x}-01",
            uuid::Uuid::new_v4().as_u128(),
            i as u64 + 1
        );
        let msg = Message::new("OrderPlaced", &order_id, format!("checkout:{order_id}"))
            .payload(json!({
                "orderId": order_id, "amount": 10 + (i % 90),
                "cardExpired": expired, "willUpdateCard": will_update
            }))
            .trace(&order_id, traceparent);
        match o.send(msg).await? {
            Delivery::Started { instance_id, .. } => {
                instances.insert(instance_id, (order_id, expired && !will_update));
            }
            other => return Err(format!("OrderPlaced was not started on: {other:?}").into()),
        }
    }
    let mut done = 0usize;
    let mut last_report = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    while done < args.orders && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        done = (ended_orders().await? - before).max(0) as usize;
        if last_report.elapsed() > Duration::from_secs(1) {
            eprintln!("progress: {done}/{} orders ended", args.orders);
            last_report = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    // How each order ended, and what the monitor saw of it.
    let (mut completed, mut cancelled, mut wrong, mut monitored, mut spanning) = (0, 0, 0, 0, 0);
    let settle = tokio::time::Instant::now() + Duration::from_secs(30);
    for (id, (order_id, expect_cancel)) in &instances {
        let view = o.store().instance(*id).await?;
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
    let _ = stop_tx.send(true);
    for b in bridges {
        let _ = b.await;
    }
    let _ = watching.await;
    for r in running {
        r.shutdown().await;
    }
    for s in &stages {
        println!(
            "stage {:<14} traces {}",
            s["milestone"].as_str().unwrap_or(""),
            s["traces"]
        );
    }
    let expect_cancelled = instances.values().filter(|(_, c)| *c).count();
    println!(
        "orders={} completed={completed} cancelled={cancelled} expected_cancelled={expect_cancelled} unexpected={wrong} monitored={monitored} spanning_four_contexts={spanning} stuck={stuck} shipping_retries={} refunds={} releases={} elapsed_s={elapsed:.2} orders_per_s={:.0}",
        args.orders,
        SHIP_FAILURES.load(Ordering::Relaxed),
        REFUNDS.load(Ordering::Relaxed),
        RELEASES.load(Ordering::Relaxed),
        done as f64 / elapsed
    );
    Ok(done == args.orders
        && wrong == 0
        && cancelled == expect_cancelled
        && completed + cancelled == args.orders
        && monitored == args.orders
        && spanning == args.orders
        && stuck == 0)
}
