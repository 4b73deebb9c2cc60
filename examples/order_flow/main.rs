//! The reference scenario: checkout, order, payment, inventory, shipping and the customer are
//! in-process services that talk only through longrun messages.
//!
//! Checkout publishes `OrderPlaced` (an event), which starts an order instance. The order
//! process sends the commands `RetrievePayment` (to payment) and `FetchGoods` (to inventory),
//! waits for `PaymentReceived` and `GoodsFetched` (whichever comes first is buffered until the
//! order waits for it), sends `ShipGoods` (to shipping), waits for `GoodsShipped` and publishes
//! `OrderCompleted`, which a notification service counts.
//!
//! With `--expired-cards F`, payment answers `PaymentFailed` for a fraction F of the orders:
//! the order then waits for `CreditCardUpdated` for at most the card window (`--card-window`,
//! default `P14D`), reminding the customer halfway. A fraction `--card-updated` of those
//! customers update the card when reminded, and the payment is retried (a loop back to the
//! gateway); for the others the window closes: the goods branch is ended, the goods are
//! released, the payment refunded and the order cancelled. The process runs on a
//! fast clock then (the window passes in about six seconds), and the example says so.
//!
//! With `--review-above A`, orders above the amount A wait for a manual review (a user task
//! for the group `sales`) before payment. With `--call-customer`, an expired card gets
//! customer service a task to call the customer, due in seven days and escalated to the
//! supervisors when overdue; the card window still cancels the order. Simulated clerks
//! (`people.rs`) claim and complete these tasks: sales approves every review, customer service
//! calls only the customers of even-numbered orders, the supervisors the others once
//! escalated, and a called customer who meant to update the card does.
//!
//! With `--per-line`, the goods are fetched line by line: `FetchGoods` goes out once per order
//! line (a multi-instance send over `lines`), and inventory answers `GoodsFetched` once it has
//! every line of the order. With `--warehouse-closed`, the warehouse closes while the orders
//! wait for their goods: inventory holds their fetches, and the signal `WarehouseClosed`
//! (thrown once every order is placed) ends each order's wait for the goods; the orders then
//! wait for the signal `WarehouseOpen` and fetch again. Inventory answers each order once
//! (its reply's id is the order's), so the fetch it held and the one sent again yield one
//! `GoodsFetched`.
//!
//! ```text
//! cargo run --release --example order_flow -- --orders 1000
//! cargo run --release --example order_flow -- --orders 1000 --per-line --warehouse-closed
//! cargo run --release --example order_flow -- --orders 1000 --expired-cards 0.2 --card-updated 0.5
//! cargo run --release --example order_flow -- --orders 1000 --expired-cards 0.2 --card-updated 0.5 \
//!     --review-above 80 --call-customer
//! ```
//! Prints one order's history, then `orders=N parallel=P completed=C cancelled=X ...`; exits
//! non-zero unless every order ended as its card implies and fetched payment and goods in
//! parallel.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use longrun::definition::{parse_duration, Compensation, MultiInstance, TimerSpec};
use people::People;

mod people;
use longrun::store::{pg_config, StoreConfig};
use longrun::{
    Clock, Engine, EngineConfig, HandlerError, Message, OutboxMessage, ProcessDefinition,
    ScaledClock, Store, SystemClock,
};

#[derive(Parser, Debug)]
struct Args {
    /// How many orders checkout places.
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// The schema to use (migrated if needed). Its own by default, so that it does not meet
    /// the command-line walk-through's `longrun` schema.
    #[arg(long, default_value = "order_flow")]
    schema: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// Fraction of orders whose card has expired.
    #[arg(long, default_value_t = 0.0)]
    expired_cards: f64,
    /// Fraction of those customers who update their card when reminded.
    #[arg(long, default_value_t = 0.0)]
    card_updated: f64,
    /// How long an order waits for the card update (ISO 8601).
    #[arg(long, default_value = "P14D")]
    card_window: String,
    /// Fraction of shipping calls that fail transiently (retried until they succeed).
    #[arg(long, default_value_t = 0.0)]
    flaky_shipping: f64,
    /// Orders above this amount (10 to 99) wait for a manual review by the group `sales`
    /// before payment; a simulated clerk approves them.
    #[arg(long)]
    review_above: Option<u32>,
    /// An expired card gets customer service a task to call the customer (due in 7 days,
    /// escalated to `supervisors` when overdue); called customers who meant to update their
    /// card do. The card window still cancels the order.
    #[arg(long)]
    call_customer: bool,
    /// Fetch the goods line by line: one `FetchGoods` per order line (a multi-instance send);
    /// inventory answers once it has every line.
    #[arg(long)]
    per_line: bool,
    /// Close the warehouse while the orders wait for their goods: the signal `WarehouseClosed`
    /// ends those waits, the orders wait for `WarehouseOpen` and fetch again.
    #[arg(long)]
    warehouse_closed: bool,
}

/// What the goods branch does beyond the reference model.
#[derive(Debug, Clone, Copy, Default)]
struct Goods {
    per_line: bool,
    warehouse_closed: bool,
}

/// The order process, built in Rust: with the default window and no people, the same model
/// as `examples/definitions/order.json`.
fn order_process(window: &str, reminder: &str, people: People, goods: Goods) -> ProcessDefinition {
    let start = ProcessDefinition::builder("order").start_on_message("OrderPlaced");
    // With --review-above: large orders wait for sales' review first.
    let fork = match people.review_above {
        Some(limit) => start
            .exclusive("needs_review")
            .when(format!("amount > {limit}"), "manual_review")
            .otherwise("fetch_in_parallel")
            .user_task("manual_review", people::review_task())
            .exclusive("review_decision")
            .when("approved == true", "fetch_in_parallel")
            .otherwise("order_rejected"),
        None => start.parallel("fetch_in_parallel", ["retrieve_payment", "fetch_goods"]),
    };
    let fork = match people.review_above {
        Some(_) => fork.parallel("fetch_in_parallel", ["retrieve_payment", "fetch_goods"]),
        None => fork,
    };
    let gateway = fork
        // Payment and goods are fetched in parallel.
        .send("retrieve_payment", "RetrievePayment")
        .to("payment")
        .compensate(Compensation::Send {
            send: "RefundPayment".into(),
            to: Some("payment".into()),
        })
        // Whichever answer comes first decides: paid, or the card failed.
        .event_gateway("payment_outcome")
        .on_message("PaymentReceived", "payment_and_goods")
        .output("payment");
    // The card window: the customer has until then to update the card. With
    // --call-customer, customer service calls them first (supervisors when overdue), and the
    // window is the one payment states (`retryUntil`), so the call does not lengthen it.
    let waiting = if people.call_customer {
        let (timer, assign) = people::call_escalation();
        gateway
            .on_message("PaymentFailed", "call_customer")
            .user_task("call_customer", people::call_task())
            .escalate(timer, assign)
            .or_message("CreditCardUpdated", "retry_payment")
            .interrupt_on(TimerSpec::Until("retryUntil".into()), "give_up")
            .receive("wait_card", "CreditCardUpdated")
            .interrupt_on(TimerSpec::Until("retryUntil".into()), "give_up")
    } else {
        gateway
            .on_message("PaymentFailed", "wait_card")
            .receive("wait_card", "CreditCardUpdated")
            .timeout_after(window, "give_up")
            .remind(
                TimerSpec::After(reminder.into()),
                "CardReminder",
                Some("customer"),
            )
    };
    let fetch = waiting
        // A loop: the payment is retried and its outcome awaited again.
        .send("retry_payment", "RetrievePayment")
        .to("payment")
        .next("payment_outcome")
        .send("fetch_goods", "FetchGoods")
        .to("inventory")
        .compensate(Compensation::Send {
            send: "ReleaseGoods".into(),
            to: Some("inventory".into()),
        });
    // With --per-line: one FetchGoods per order line.
    let fetch = if goods.per_line {
        fetch.for_each(MultiInstance::over("lines").element("line"))
    } else {
        fetch
    };
    let fetched = fetch
        .receive("goods_fetched", "GoodsFetched")
        .output("goods");
    // With --warehouse-closed: a closing ends the wait; the order waits for the reopening and
    // fetches again.
    let fetched = if goods.warehouse_closed {
        fetched
            .or_signal("WarehouseClosed", "wait_reopen")
            .next("payment_and_goods")
            .wait_signal("wait_reopen", "WarehouseOpen")
            .next("fetch_goods")
    } else {
        fetched
    };
    let ended = fetched
        .join("payment_and_goods")
        .send("ship_goods", "ShipGoods")
        .to("shipping")
        .receive("goods_shipped", "GoodsShipped")
        .output("shipment")
        .send("order_completed", "OrderCompleted")
        .end("done")
        // The card window closed: undo what was done (the goods branch ends too).
        .compensate_all("give_up")
        .send("order_cancelled", "OrderCancelled")
        .end("cancelled");
    let ended = match people.review_above {
        Some(_) => ended
            .send("order_rejected", "OrderRejected")
            .end("rejected"),
        None => ended,
    };
    ended.build().expect("the order process is valid")
}

static REFUNDS: AtomicUsize = AtomicUsize::new(0);
static SHIP_CALLS: AtomicUsize = AtomicUsize::new(0);
static SHIP_FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Deterministic spread: whether order `i` falls in a fraction `f` (different `salt`s give
/// independent-looking choices).
fn pick(i: usize, salt: u64, f: f64) -> bool {
    // splitmix64 of (i, salt): well spread, and the same on every run.
    let mut z = (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z % 1_000_000) as f64) < f * 1_000_000.0
}

/// What a participant answers to a message: a reply name and payload, or nothing.
type Reply = Option<(&'static str, serde_json::Value)>;

/// A participant: answers each message it receives with at most one reply, whose id is
/// derived from the incoming message's id, so a redelivered message yields a duplicate reply
/// that the engine ignores.
fn participant(
    answer: fn(&OutboxMessage) -> Reply,
) -> impl Fn(Engine, OutboxMessage) -> longrun::runtime::BoxFuture<Result<(), HandlerError>> + Send + Sync
{
    move |engine: Engine, cmd: OutboxMessage| {
        Box::pin(async move {
            let Some((reply, body)) = answer(&cmd) else {
                return Ok(());
            };
            let msg = Message::new(
                reply,
                cmd.key.clone(),
                format!("{}:{reply}", cmd.message_id),
            )
            .payload(body)
            .traced_by(&cmd);
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
    let window = parse_duration(&args.card_window)?;
    // The reminder goes out halfway through the window.
    let half = window.num_seconds() / 2;
    let reminder = if half % 86_400 == 0 {
        format!("P{}D", half / 86_400)
    } else {
        format!("PT{}S", half.max(1))
    };
    let people = People {
        review_above: args.review_above,
        call_customer: args.call_customer,
    };
    let goods = Goods {
        per_line: args.per_line,
        warehouse_closed: args.warehouse_closed,
    };
    let def = order_process(&args.card_window, &reminder, people, goods);
    if args.card_window == "P14D"
        && people.review_above.is_none()
        && !people.call_customer
        && !goods.per_line
        && !goods.warehouse_closed
    {
        let from_json = ProcessDefinition::from_json(include_str!("../definitions/order.json"))?;
        assert_eq!(
            def, from_json,
            "the builder and the JSON document must be the same model"
        );
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
    let flaky = args.flaky_shipping;

    let store = Store::connect_with(
        pg_config(None)?,
        StoreConfig {
            schema: args.schema.clone(),
            pool_size: 16,
            ..StoreConfig::default()
        },
    )
    .await?;
    store.migrate().await?;

    // With expired cards, weeks of waiting run on a fast clock: the window takes ~6 s, so that
    // a customer's answer to the reminder (at half the window) arrives within it on a loaded
    // machine (at ~2 s, a CI run on the partitioned layout cancelled 22 orders whose answer
    // came too late); ~12 s with --call-customer, so that the simulated clerks call within it,
    // and with --warehouse-closed, whose closing and reopening keep the machine busy while the
    // customers answer their reminders.
    let clock: Arc<dyn Clock> = if args.expired_cards > 0.0 {
        let real = if args.call_customer || args.warehouse_closed {
            12.0
        } else {
            6.0
        };
        let factor = window.num_seconds() as f64 / real;
        println!(
            "fast clock: 1 s of real time is {:.1} h of process time (the {} card window passes in ~{real} s)",
            factor / 3600.0,
            args.card_window
        );
        Arc::new(ScaledClock::new(chrono::Utc::now(), factor))
    } else {
        Arc::new(SystemClock)
    };

    // The engine and the participants share one store here; in production each bounded
    // context would be its own service reading its topic through a `Consumer`.
    let completed_events = Arc::new(AtomicUsize::new(0));
    let cancelled_events = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    // Whether the warehouse is open; while it is closed, inventory holds the fetches.
    let (open_tx, open_rx) = tokio::sync::watch::channel(true);
    // The lines of each order inventory has fetched (with --per-line).
    let lines_fetched: Arc<std::sync::Mutex<HashMap<String, HashSet<i64>>>> = Arc::default();
    let engine = {
        let (done, cancelled, released) = (
            completed_events.clone(),
            cancelled_events.clone(),
            released.clone(),
        );
        let per_line = args.per_line;
        Engine::builder(store.clone())
            .clock(clock)
            .config(EngineConfig {
                // Goods fetched early must outlive the card window.
                message_ttl: window * 3,
                ..EngineConfig::default()
            })
            .subscriber(
                "payment",
                &["payment"],
                move |engine: Engine, cmd: OutboxMessage| async move {
                    let p = &cmd.payload;
                    if cmd.name == "RefundPayment" {
                        // A compensation: nothing was charged on an expired card; no reply.
                        REFUNDS.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    let (reply, body) = if p["cardExpired"] == json!(true) && p["cardUpdated"] != json!(true) {
                        // Payment says until when the card may be updated: the window from now.
                        let until = (engine.now() + window).to_rfc3339();
                        ("PaymentFailed", json!({ "reason": "card expired", "retryUntil": until }))
                    } else {
                        ("PaymentReceived", json!({ "charged": p["amount"], "paymentId": format!("pay-{}", cmd.key) }))
                    };
                    let msg = Message::new(reply, cmd.key.clone(), format!("{}:{reply}", cmd.message_id))
                        .payload(body);
                    engine.send(msg).await.map_err(|e| HandlerError::new(e.to_string()))?;
                    Ok(())
                },
            )
            .subscriber(
                "inventory",
                &["inventory"],
                move |engine: Engine, cmd: OutboxMessage| {
                    let released = released.clone();
                    let mut open = open_rx.clone();
                    let lines_fetched = lines_fetched.clone();
                    async move {
                        if cmd.name == "ReleaseGoods" {
                            released.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                        // A closed warehouse fetches nothing until it opens again.
                        open.wait_for(|open| *open).await.map_err(|e| HandlerError::new(e.to_string()))?;
                        if per_line {
                            // One line: answer once every line of the order is in.
                            let p = &cmd.payload;
                            let mut seen = lines_fetched.lock().unwrap();
                            let lines = seen.entry(cmd.key.clone()).or_default();
                            lines.insert(p["line"]["n"].as_i64().unwrap_or(-1));
                            if lines.len() < p["lines"].as_array().map_or(0, Vec::len) {
                                return Ok(());
                            }
                        }
                        // One answer per order: a fetch sent again yields a duplicate.
                        let reply = Message::new("GoodsFetched", cmd.key.clone(), format!("{}:GoodsFetched", cmd.key))
                            .payload(json!({ "items": cmd.payload["items"], "pickList": format!("pick-{}", cmd.key) }));
                        engine.send(reply).await.map_err(|e| HandlerError::new(e.to_string()))?;
                        Ok(())
                    }
                },
            )
            .subscriber(
                "shipping",
                &["shipping"],
                move |engine: Engine, cmd: OutboxMessage| async move {
                    // A flaky carrier: fails transiently with probability --flaky-shipping;
                    // the relay retries the message until it goes through.
                    let n = SHIP_CALLS.fetch_add(1, Ordering::Relaxed);
                    if pick(n, 3, flaky) {
                        SHIP_FAILURES.fetch_add(1, Ordering::Relaxed);
                        return Err(HandlerError::new("carrier unavailable"));
                    }
                    let reply = Message::new("GoodsShipped", cmd.key.clone(), format!("{}:GoodsShipped", cmd.message_id))
                        .payload(json!({ "tracking": format!("track-{}", cmd.key) }));
                    engine.send(reply).await.map_err(|e| HandlerError::new(e.to_string()))?;
                    Ok(())
                },
            )
            .subscriber(
                "customer",
                &["customer"],
                participant(|reminder: &OutboxMessage| {
                    (reminder.payload["willUpdateCard"] == json!(true))
                        .then(|| ("CreditCardUpdated", json!({ "cardUpdated": true })))
                }),
            )
            .subscriber("notifications", &["OrderCompleted", "OrderCancelled"], move |_: Engine, event: OutboxMessage| {
                let (done, cancelled) = (done.clone(), cancelled.clone());
                async move {
                    if event.name == "OrderCompleted" {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            })
            .build()?
    };
    let deployed = engine.deploy(&def).await?;
    println!("order process version {} deployed", deployed.version);
    // `OrderPlaced` starts the latest version: a run with other options may have deployed a
    // newer model to this schema.
    let latest = store
        .definitions()
        .await?
        .iter()
        .filter(|d| d.process == "order")
        .map(|d| d.version)
        .max()
        .unwrap_or(deployed.version);
    if latest != deployed.version {
        return Err(format!(
            "the order model of these options is version {}, but version {latest} is the latest in schema {} (a run with other options deployed it), and OrderPlaced starts the latest: use another --schema",
            deployed.version, args.schema
        )
        .into());
    }

    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    // The clerks of --review-above and --call-customer (they find nothing to do otherwise).
    let (expired_f, updated_f) = (args.expired_cards, args.card_updated);
    let (clerk_work, clerks) = people::clerks(
        engine.clone(),
        Arc::new(move |i| pick(i, 1, expired_f) && pick(i, 2, updated_f)),
    );
    let started = Instant::now();
    if args.warehouse_closed {
        // Closed: inventory holds every fetch until it opens again.
        open_tx.send_replace(false);
    }

    // Checkout places the orders: each `OrderPlaced` starts one order instance.
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let run_id = &run_id[run_id.len() - 8..];
    let mut instances = std::collections::HashSet::new();
    let mut sends = Vec::new();
    for i in 0..args.orders {
        let engine = engine.clone();
        let order_id = format!("{run_id}-{i:06}");
        let expired = pick(i, 1, args.expired_cards);
        let will_update = expired && pick(i, 2, args.card_updated);
        sends.push(tokio::spawn(async move {
            let lines: Vec<_> = (0..1 + (i % 5))
                .map(|n| json!({"n": n, "sku": format!("sku-{}", (i + n) % 17), "qty": 1 + n % 3}))
                .collect();
            let msg = Message::new(
                "OrderPlaced",
                order_id.clone(),
                format!("checkout:{order_id}"),
            )
            .payload(json!({
                "orderId": order_id, "amount": 10 + (i % 90), "items": 1 + (i % 5),
                "lines": lines, "cardExpired": expired, "willUpdateCard": will_update
            }));
            engine
                .send(msg)
                .await
                .map(|d| (d, expired && !will_update, will_update))
        }));
    }
    let mut expect_cancelled = std::collections::HashSet::new();
    let mut retried = Vec::new();
    for s in sends {
        match s.await?? {
            (longrun::Delivery::Started { instance_id, .. }, cancel, retry) => {
                instances.insert(instance_id);
                if cancel {
                    expect_cancelled.insert(instance_id);
                }
                if retry {
                    retried.push(instance_id);
                }
            }
            other => return Err(format!("OrderPlaced was not started on: {other:?}").into()),
        }
    }

    // Every order is placed and those past review wait for their goods: the warehouse closes
    // (their waits end, they wait for the reopening), then opens (they fetch again).
    if args.warehouse_closed {
        for signal in ["WarehouseClosed", "WarehouseOpen"] {
            let id = engine.signal(signal, json!({})).await?;
            engine.deliver_signals().await?;
            while store
                .signals(100)
                .await?
                .iter()
                .any(|s| s.signal_id == id && s.finished_at.is_none())
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        open_tx.send_replace(true);
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

    // Which end did each order reach, and was it the one its card implies?
    let mut cancelled = 0usize;
    let mut wrong = 0usize;
    // Orders whose payment and goods were fetched in parallel: both commands went out before
    // either answer was taken.
    let mut parallel = 0usize;
    // Orders whose wait for the goods the closing ended, and orders that did not send one
    // FetchGoods per line per fetch (a paused order fetches twice, unless cancelled first).
    let mut paused = 0usize;
    let mut wrong_fetches = 0usize;
    for id in &instances {
        let history = store.history(*id).await?;
        let was_paused = history
            .iter()
            .any(|h| h.event_type == "WaitInterrupted" && h.data["step"] == "goods_fetched");
        paused += usize::from(was_paused);
        let fetches = history
            .iter()
            .filter(|h| h.event_type == "MessageSent" && h.data["name"] == "FetchGoods")
            .count();
        let first = |f: &dyn Fn(&longrun::store::HistoryEntry) -> bool| {
            history.iter().find(|h| f(h)).map(|h| h.seq)
        };
        let sent = |name: &'static str| {
            move |h: &longrun::store::HistoryEntry| {
                h.event_type == "MessageSent" && h.data["name"] == name
            }
        };
        let answered = first(&|h| {
            h.event_type == "MessageCorrelated"
                && matches!(
                    h.data["name"].as_str(),
                    Some("PaymentReceived" | "PaymentFailed" | "GoodsFetched")
                )
        });
        if let (Some(p), Some(g), Some(a)) = (
            first(&sent("RetrievePayment")),
            first(&sent("FetchGoods")),
            answered,
        ) {
            parallel += usize::from(p < a && g < a);
        }
        let view = store.instance(*id).await?;
        let is_cancelled = view.current_step.as_deref() == Some("cancelled");
        cancelled += usize::from(is_cancelled);
        let i: usize = view
            .business_key
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        let per_fetch = if args.per_line { 1 + i % 5 } else { 1 };
        let expected = per_fetch * (1 + usize::from(was_paused));
        if fetches != expected && !(is_cancelled && fetches == per_fetch) {
            wrong_fetches += 1;
        }
        if view.status != "completed" || is_cancelled != expect_cancelled.contains(id) {
            wrong += 1;
        }
    }
    let completed_orders = completed - cancelled;

    // Let the notification service see the last OrderCompleted and OrderCancelled events.
    let wait_events = tokio::time::Instant::now() + Duration::from_secs(10);
    // and the compensations of cancelled orders reach inventory and payment.
    while (completed_events.load(Ordering::Relaxed) + cancelled_events.load(Ordering::Relaxed)
        < completed
        || released.load(Ordering::Relaxed) < cancelled
        || REFUNDS.load(Ordering::Relaxed) < cancelled)
        && tokio::time::Instant::now() < wait_events
    {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clerks.abort();
    let open_tasks = engine
        .tasks(&longrun::store::TaskQuery::default())
        .await?
        .tasks
        .len();
    running.shutdown().await;

    // One cancelled order and one whose payment was retried (a second pass through the loop),
    // or any order when there are none.
    let mut samples: Vec<uuid::Uuid> = instances
        .iter()
        .find(|i| expect_cancelled.contains(i))
        .into_iter()
        .chain(retried.first())
        .copied()
        .collect();
    if samples.is_empty() {
        samples.extend(instances.iter().next());
    }
    for sample in &samples {
        let view = store.instance(*sample).await?;
        println!(
            "sample order {} (instance {}): {}",
            view.business_key, view.instance_id, view.status
        );
        for h in store.history(*sample).await? {
            let detail = h.data.get("step").and_then(|s| s.as_str()).unwrap_or("");
            let name = match (
                h.data.get("name"),
                h.data.get("pass"),
                h.data.get("branches"),
            ) {
                (Some(n), _, _) => n.as_str().unwrap_or("").to_string(),
                (_, Some(p), _) => format!("pass {p}"),
                (_, _, Some(b)) => format!("branches {b}"),
                _ => String::new(),
            };
            println!(
                "  {:>2} {:<22} {:<18} {}",
                h.seq, h.event_type, detail, name
            );
        }
    }
    let events = completed_events.load(Ordering::Relaxed);
    let cancel_events = cancelled_events.load(Ordering::Relaxed);
    let incidents = store.incidents(Some("order"), 10_000).await?.len();
    // Every review and every call done once, by the clerks, and no task left open.
    let reviews = clerk_work.reviews.load(Ordering::Relaxed);
    let calls = clerk_work.calls.load(Ordering::Relaxed);
    let escalated = clerk_work.escalated_calls.load(Ordering::Relaxed);
    let expect_reviews = match args.review_above {
        Some(limit) => (0..args.orders)
            .filter(|i| 10 + i % 90 > limit as usize)
            .count(),
        None => 0,
    };
    let expect_calls = if args.call_customer {
        (0..args.orders)
            .filter(|&i| pick(i, 1, args.expired_cards))
            .count()
    } else {
        0
    };
    let people_ok = reviews == expect_reviews
        && calls + escalated == expect_calls
        && open_tasks == 0
        && (escalated > 0)
            == (0..args.orders)
                .any(|i| args.call_customer && i % 2 == 1 && pick(i, 1, args.expired_cards));
    if !people_ok {
        eprintln!("people: {reviews} reviews of {expect_reviews} expected, {calls} + {escalated} escalated calls of {expect_calls}, {open_tasks} tasks left open");
    }
    let refunds = REFUNDS.load(Ordering::Relaxed);
    let releases = released.load(Ordering::Relaxed);
    println!(
        "orders={} parallel={} completed={} cancelled={} expected_cancelled={} failed={} unexpected={} paused={paused} wrong_fetches={wrong_fetches} shipping_retries={} incidents={} compensations={} goods_released={} payments_refunded={} order_completed_events={} order_cancelled_events={} reviews={reviews} calls={calls} escalated_calls={escalated} open_tasks={open_tasks} elapsed_s={:.2} orders_per_s={:.0}",
        args.orders,
        parallel,
        completed_orders,
        cancelled,
        expect_cancelled.len(),
        failed,
        wrong,
        SHIP_FAILURES.load(Ordering::Relaxed),
        incidents,
        refunds + releases,
        releases,
        refunds,
        events,
        cancel_events,
        elapsed,
        completed as f64 / elapsed
    );
    Ok(completed == args.orders
        && people_ok
        && wrong_fetches == 0
        && (paused > 0) == args.warehouse_closed
        && parallel == args.orders
        && failed == 0
        && releases >= cancelled
        && refunds >= cancelled
        && wrong == 0
        && cancelled == expect_cancelled.len()
        && events >= completed_orders
        && cancel_events >= cancelled)
}
