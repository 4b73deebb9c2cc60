//! The reference scenario's happy path: checkout, order, payment, inventory and shipping are
//! in-process services that talk only through longrun messages.
//!
//! Checkout publishes `OrderPlaced` (an event), which starts an order instance. The order
//! process sends the commands `RetrievePayment` (to payment) and `FetchGoods` (to inventory),
//! waits for `PaymentReceived` and `GoodsFetched` (whichever comes first is buffered until the
//! order waits for it), sends `ShipGoods` (to shipping), waits for `GoodsShipped` and publishes
//! `OrderCompleted`, which a notification service counts.
//!
//! ```text
//! cargo run --release --example order_flow -- --orders 1000
//! ```
//! Prints one order's history, then `orders=N completed=C ...`; exits non-zero unless every
//! order completed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use longrun::store::{pg_config, StoreConfig};
use longrun::{Engine, HandlerError, Message, OutboxMessage, ProcessDefinition, Store};

#[derive(Parser, Debug)]
struct Args {
    /// How many orders checkout places.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// The schema to use (migrated if needed).
    #[arg(long, default_value = "longrun")]
    schema: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

/// The order process, built in Rust: the same model as `examples/definitions/order.json`.
fn order_process() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .start_on_message("OrderPlaced")
        .send("retrieve_payment", "RetrievePayment")
        .to("payment")
        .send("fetch_goods", "FetchGoods")
        .to("inventory")
        .receive("payment_received", "PaymentReceived")
        .output("payment")
        .receive("goods_fetched", "GoodsFetched")
        .output("goods")
        .send("ship_goods", "ShipGoods")
        .to("shipping")
        .receive("goods_shipped", "GoodsShipped")
        .output("shipment")
        .send("order_completed", "OrderCompleted")
        .end("done")
        .build()
        .expect("the order process is valid")
}

/// A participant: answers each command it receives with one reply message, whose id is derived
/// from the command's id, so a redelivered command yields a duplicate the engine ignores.
fn participant(
    reply: &'static str,
    body: fn(&OutboxMessage) -> serde_json::Value,
) -> impl Fn(Engine, OutboxMessage) -> longrun::runtime::BoxFuture<Result<(), HandlerError>> + Send + Sync
{
    move |engine: Engine, cmd: OutboxMessage| {
        Box::pin(async move {
            let msg = Message::new(
                reply,
                cmd.key.clone(),
                format!("{}:{reply}", cmd.message_id),
            )
            .payload(body(&cmd));
            engine
                .send(msg)
                .await
                .map_err(|e| HandlerError::new(e.to_string()))?;
            Ok(())
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("order_flow: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let def = order_process();
    let from_json = ProcessDefinition::from_json(include_str!("definitions/order.json"))?;
    assert_eq!(
        def, from_json,
        "the builder and the JSON document must be the same model"
    );

    let store = Store::connect_with(
        pg_config(None)?,
        StoreConfig {
            schema: args.schema.clone(),
            pool_size: 16,
        },
    )
    .await?;
    store.migrate().await?;

    // The engine and the participants share one store here; in production each bounded
    // context would be its own service reading its topic through a `Consumer`.
    let completed_events = Arc::new(AtomicUsize::new(0));
    let engine = {
        let counter = completed_events.clone();
        Engine::builder(store.clone())
            .subscriber(
                "payment",
                &["payment"],
                participant("PaymentReceived", |cmd| {
                    json!({ "charged": cmd.payload["amount"], "paymentId": format!("pay-{}", cmd.key) })
                }),
            )
            .subscriber(
                "inventory",
                &["inventory"],
                participant("GoodsFetched", |cmd| {
                    json!({ "items": cmd.payload["items"], "pickList": format!("pick-{}", cmd.key) })
                }),
            )
            .subscriber(
                "shipping",
                &["shipping"],
                participant("GoodsShipped", |cmd| {
                    json!({ "tracking": format!("track-{}", cmd.key) })
                }),
            )
            .subscriber("notifications", &["OrderCompleted"], move |_: Engine, _event: OutboxMessage| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            })
            .build()?
    };
    let deployed = engine.deploy(&def).await?;
    println!("order process version {} deployed", deployed.version);

    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let started = Instant::now();

    // Checkout places the orders: each `OrderPlaced` starts one order instance.
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run_id = &run_id[run_id.len() - 8..];
    let mut instances = std::collections::HashSet::new();
    let mut sends = Vec::new();
    for i in 0..args.orders {
        let engine = engine.clone();
        let order_id = format!("{run_id}-{i:06}");
        sends.push(tokio::spawn(async move {
            let msg = Message::new(
                "OrderPlaced",
                order_id.clone(),
                format!("checkout:{order_id}"),
            )
            .payload(json!({ "orderId": order_id, "amount": 10 + (i % 90), "items": 1 + (i % 5) }));
            engine.send(msg).await
        }));
    }
    for s in sends {
        match s.await?? {
            longrun::Delivery::Started { instance_id } => {
                instances.insert(instance_id);
            }
            other => return Err(format!("OrderPlaced was not started on: {other:?}").into()),
        }
    }

    let mut completed = 0usize;
    let mut failed = 0usize;
    let mut last_report = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_s);
    while completed + failed < args.orders {
        match tokio::time::timeout_at(deadline, ended.recv()).await {
            Err(_) => break,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => break,
            Ok(Ok(e)) if instances.contains(&e.instance_id) => match e.status {
                longrun::machine::Status::Completed => completed += 1,
                _ => failed += 1,
            },
            Ok(Ok(_)) => {}
        }
        if last_report.elapsed() > Duration::from_secs(1) {
            eprintln!("progress: {completed}/{} orders completed", args.orders);
            last_report = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    // Let the notification service see the last OrderCompleted events.
    let wait_events = tokio::time::Instant::now() + Duration::from_secs(10);
    while completed_events.load(Ordering::Relaxed) < completed
        && tokio::time::Instant::now() < wait_events
    {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.shutdown().await;

    if let Some(sample) = instances.iter().next() {
        let view = store.instance(*sample).await?;
        println!(
            "sample order {} (instance {}): {}",
            view.business_key, view.instance_id, view.status
        );
        for h in store.history(*sample).await? {
            let detail = h.data.get("step").and_then(|s| s.as_str()).unwrap_or("");
            let name = h.data.get("name").and_then(|s| s.as_str()).unwrap_or("");
            println!(
                "  {:>2} {:<18} {:<18} {}",
                h.seq, h.event_type, detail, name
            );
        }
    }
    let events = completed_events.load(Ordering::Relaxed);
    println!(
        "orders={} completed={} failed={} order_completed_events={} elapsed_s={:.2} orders_per_s={:.0}",
        args.orders,
        completed,
        failed,
        events,
        elapsed,
        completed as f64 / elapsed
    );
    Ok(completed == args.orders && failed == 0 && events >= completed)
}
