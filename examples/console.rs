//! A service that runs a delivery process and mounts the operations console at `/ops`.
//!
//! The process reserves stock, charges the card (an expired card fails twice and raises an
//! incident), waits for the courier's `PickedUp` message and notifies the customer. Reserving
//! and charging are undone (released, refunded) when an order is cancelled.
//!
//! ```text
//! cargo run --example console -- --seed 200 --listen 127.0.0.1:8080
//! ```
//! then open <http://127.0.0.1:8080/ops/>. `--seed N` places N orders: every tenth has an
//! expired card (an incident at `charge_card`), six in ten are picked up (they complete), the
//! others wait at `await_pickup`. Orders alternate between the regions north and south (a
//! variable to filter on). Retrying an incident with the variables `{"card": "renewed"}`
//! lets it go on. The seed also opens N/10 refund reviews, user tasks for the group `sales`
//! (every other one overdue), for the task list, and N/10 pickings (a subprocess whose
//! multi-instance step picks three lines each, then waits for `Packed`). The process prints
//! `seeded N` when the seeded orders have settled.
//!
//! The demo's stand-in for authentication makes every request the user `demo-operator` in
//! the group `sales`; a request may name another demo user and groups in `x-demo-user` and
//! `x-demo-groups` (the browser tests act as clerks this way). A real service sets the user
//! and groups headers from its own session and never from what the client sent.

use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use clap::Parser;
use serde_json::json;

use longrun::console::Console;
use longrun::definition::{Compensation, MultiInstance, RetryPolicy, UserTask};
use longrun::expr::Type;
use longrun::monitor::{Flow, Monitor};
use longrun::store::{pg_config, StoreConfig};
use longrun::{
    Engine, EngineConfig, HandlerError, JobContext, Message, ProcessDefinition, StartRequest, Store,
};

#[derive(Parser, Debug)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The schema to use (migrated if needed). Its own by default, so that it does not meet
    /// the command-line walk-through's `longrun` schema.
    #[arg(long, default_value = "console_demo")]
    schema: String,
    /// Place this many orders at start.
    #[arg(long, default_value_t = 0)]
    seed: usize,
}

/// The delivery process.
fn delivery() -> ProcessDefinition {
    let handler = |h: &str| Compensation::Handler { handler: h.into() };
    ProcessDefinition::builder("delivery")
        .retry(RetryPolicy::new(2, "PT0.2S"))
        .service("reserve_stock", "reserve")
        .compensate(handler("release"))
        .milestone("reserved")
        .next("charge_card")
        .service("charge_card", "charge")
        .compensate(handler("refund"))
        .milestone("charged")
        .next("await_pickup")
        .receive("await_pickup", "PickedUp")
        .next("notify_customer")
        .service("notify_customer", "notify")
        .next("delivered")
        .end("delivered")
        .milestone("delivered")
        .build()
        .expect("a valid definition")
}

/// A refund review: a user task for `sales`, due when `review_by` says, that must say
/// whether the refund is approved.
fn refund_review() -> ProcessDefinition {
    ProcessDefinition::builder("refund_review")
        .user_task(
            "approve_refund",
            UserTask::new()
                .candidate_groups(["sales"])
                .due("=review_by")
                .form("refund-review")
                .field("approved", Type::Boolean)
                .field("note", Type::String),
        )
        .end("reviewed")
        .build()
        .expect("a valid definition")
}

/// Picking: an embedded subprocess that picks every line of the order (a multi-instance
/// step) and waits for the packer's `Packed`; a `WarehouseClosed` signal ends it.
fn picking() -> ProcessDefinition {
    ProcessDefinition::builder("picking")
        .subprocess("pack", |b| {
            b.service("pick", "pick")
                .for_each(
                    MultiInstance::over("lines")
                        .element("line")
                        .collect("picked", None),
                )
                .receive("await_packing", "Packed")
                .end("packed")
        })
        .or_signal("WarehouseClosed", "closed")
        .end("shipped")
        .end("closed")
        .build()
        .expect("a valid definition")
}

/// Stands in for the host's authentication: every request is the demo operator in the group
/// `sales`, unless it names a demo user (`x-demo-user`, `x-demo-groups`). A real service
/// checks its session or token, sets the headers from the user it finds, and removes any such
/// header the client sent.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let user = headers
        .get("x-demo-user")
        .cloned()
        .unwrap_or(HeaderValue::from_static("demo-operator"));
    let groups = headers
        .get("x-demo-groups")
        .cloned()
        .unwrap_or(HeaderValue::from_static("sales"));
    headers.insert("x-longrun-user", user);
    headers.insert("x-longrun-groups", groups);
    next.run(request).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let store = Store::connect_with(
        pg_config(None)?,
        StoreConfig {
            schema: args.schema.clone(),
            ..StoreConfig::default()
        },
    )
    .await?;
    store.migrate().await?;
    let ok = |_job: JobContext| async move { Ok::<_, HandlerError>(json!({})) };
    let engine = Engine::builder(store)
        .config(EngineConfig {
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        })
        .handler("reserve", ok)
        .handler("release", ok)
        .handler("refund", ok)
        .handler("notify", ok)
        .handler("pick", |job: JobContext| async move {
            Ok(json!({ "sku": job.variables["line"]["sku"] }))
        })
        .handler("charge", |job: JobContext| async move {
            if job.variables["card"] == "expired" {
                return Err(HandlerError::new("card expired"));
            }
            Ok(json!({ "charged": job.variables["amount"] }))
        })
        .build()?;
    engine.deploy(&delivery()).await?;
    engine.deploy(&refund_review()).await?;
    engine.deploy(&picking()).await?;
    let running = engine.run();

    // The console, mounted under /ops behind the host's authentication.
    // The flows page: this schema is also its own central monitor, with one context (itself).
    let console = Console::new(engine.clone())
        .context("orders", "./")
        .router();
    let app =
        axum::Router::new().nest_service("/ops", console.layer(middleware::from_fn(authenticate)));

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("console at http://{}/ops/", listener.local_addr()?);
    let monitor = Monitor::new(engine.store(), "console-demo")?.source("orders", engine.store())?;
    monitor
        .define(&Flow::from_json(
            r#"{"flow": "delivery", "stages": [{"milestone": "reserved", "limit": "PT1H"},
                {"milestone": "charged", "limit": "P2D"}, {"milestone": "delivered"}]}"#,
        )?)
        .await?;
    let seeded = if args.seed > 0 {
        Some(seed(&engine, args.seed).await?)
    } else {
        None
    };
    // What the seed reached, then whatever comes.
    monitor.drain().await?;
    if let Some(line) = seeded {
        println!("{line}");
    }
    let (_stop_monitor, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { monitor.run(stop).await });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    running.shutdown().await;
    Ok(())
}

/// Place `n` orders and wait until each has settled where the seed puts it.
async fn seed(engine: &Engine, n: usize) -> Result<String, Box<dyn std::error::Error>> {
    let counts = || async {
        let counts = engine.store().step_counts("delivery", 1).await?;
        let get = |step: &str| counts.iter().find(|c| c.step == step).cloned();
        Ok::<_, longrun::Error>([
            get("charge_card").map_or(0, |c| c.incidents),
            get("await_pickup").map_or(0, |c| c.waiting),
            get("delivered").map_or(0, |c| c.completed),
        ])
    };
    let before = counts().await?;
    let packing = || async {
        let counts = engine.store().step_counts("picking", 1).await?;
        let get = |step: &str| counts.iter().find(|c| c.step == step).cloned();
        Ok::<_, longrun::Error>([
            get("pack").map_or(0, |c| c.waiting),
            get("pick").map_or(0, |c| c.completed),
        ])
    };
    let packing_before = packing().await?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    let requests: Vec<StartRequest> = (0..n)
        .map(|i| {
            StartRequest::new("delivery", format!("order-{run}-{i}")).variables(json!({
                "amount": 10 + i % 90,
                "region": if i % 2 == 0 { "north" } else { "south" },
                "card": if i % 10 == 3 { "expired" } else { "valid" },
            }))
        })
        .collect();
    for chunk in requests.chunks(500) {
        engine.start_many(chunk.to_vec()).await?;
    }
    // Refund reviews: every other one overdue by an hour, the others due in two days.
    let now = engine.now();
    let reviews: Vec<StartRequest> = (0..n / 10)
        .map(|i| {
            let due = if i % 2 == 0 {
                now - chrono::Duration::hours(1)
            } else {
                now + chrono::Duration::days(2)
            };
            StartRequest::new("refund_review", format!("refund-{run}-{i}"))
                .variables(json!({ "review_by": due.to_rfc3339(), "amount": 20 + i }))
        })
        .collect();
    engine.start_many(reviews).await?;
    // Pickings of three lines each: picked, then waiting for the packer inside `pack`.
    let pickings: Vec<StartRequest> = (0..n / 10)
        .map(|i| {
            StartRequest::new("picking", format!("picking-{run}-{i}")).variables(json!({
                "lines": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]
            }))
        })
        .collect();
    engine.start_many(pickings).await?;
    let picked: Vec<Message> = (0..n)
        .filter(|i| i % 10 != 3 && i % 10 < 7)
        .map(|i| {
            let key = format!("order-{run}-{i}");
            Message::new("PickedUp", key.clone(), format!("pickup-{key}"))
        })
        .collect();
    for chunk in picked.chunks(500) {
        for r in engine.send_many(chunk.to_vec()).await? {
            r?;
        }
    }
    let incidents = (0..n).filter(|i| i % 10 == 3).count();
    let completed = picked.len();
    let waiting = n - incidents - completed;
    // Settled when the counters show it (they come from the activity projection).
    let expected = [incidents, waiting, completed].map(|n| n as i64);
    loop {
        let now = counts().await?;
        let packs = packing().await?;
        if (0..3).all(|i| now[i] - before[i] >= expected[i])
            && packs[0] - packing_before[0] >= (n / 10) as i64
            && packs[1] - packing_before[1] >= (n / 10) as i64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(format!(
        "seeded {n}: {completed} completed, {waiting} waiting for pickup, {incidents} incidents"
    ))
}
