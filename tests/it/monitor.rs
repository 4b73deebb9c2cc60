//! Central monitoring: two contexts (order, payment) bridged over PostgreSQL publish their
//! milestones; a monitor reads both into a central schema, where each order's timeline runs
//! across the contexts and the flow's stages, durations and stuck orders are counted.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use crate::common::{eventually, TestDb};
use longrun::bridge::Bridge;
use longrun::definition::RetryPolicy;
use longrun::monitor::{Flow, Monitor};
use longrun::{
    Engine, EngineConfig, HandlerError, JobContext, ManualClock, Message, ProcessDefinition,
};

fn order() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .start_on_message("OrderPlaced")
        .send("retrieve_payment", "RetrievePayment")
        .to("payment")
        .milestone("order placed")
        .receive("payment_received", "PaymentReceived")
        .milestone("paid")
        .end("done")
        .milestone("completed")
        .build()
        .unwrap()
}

fn payment() -> ProcessDefinition {
    ProcessDefinition::builder("payment")
        .start_on_message("RetrievePayment")
        .service("charge", "charge")
        .retry(RetryPolicy::new(1, "PT1S"))
        .milestone("charged")
        .send("paid", "PaymentReceived")
        .end("done")
        .build()
        .unwrap()
}

const FLOW: &str = r#"{"flow": "order", "stages": [
    {"milestone": "order placed", "limit": "PT1H"},
    {"milestone": "charged", "limit": "PT1H"},
    {"milestone": "paid"},
    {"milestone": "completed"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_follows_orders_across_contexts_and_finds_the_stuck_one() {
    let (orders, payments, central) = (
        TestDb::new().await,
        TestDb::new().await,
        TestDb::new().await,
    );
    // One clock for both contexts, set in the past so that a stage's limit has run out.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let engine = |db: &TestDb| {
        Engine::builder(db.store.clone())
            .clock(Arc::new(clock.clone()))
            .config(EngineConfig {
                poll_interval: std::time::Duration::from_millis(20),
                ..EngineConfig::default()
            })
    };
    let o = engine(&orders).build().unwrap();
    let p = engine(&payments)
        .handler("charge", |job: JobContext| async move {
            match job.variables["amount"].as_i64() {
                Some(0) => Err(HandlerError::new("the card was refused")),
                _ => Ok(json!({"charged": true})),
            }
        })
        .build()
        .unwrap();
    o.deploy(&order()).await.unwrap();
    p.deploy(&payment()).await.unwrap();
    let running = (o.run(), p.run());
    for i in 0..5 {
        let key = format!("o{i}");
        let amount = if i == 4 { 0 } else { 10 + i };
        o.send(
            Message::new("OrderPlaced", &key, format!("{key}-placed"))
                .payload(json!({"amount": amount})),
        )
        .await
        .unwrap();
    }
    let to_payment = Bridge::new(
        &orders.store,
        &payments.store,
        "order-to-payment",
        vec!["payment".into()],
    )
    .unwrap()
    .clock(Arc::new(clock.clone()))
    .unwrap();
    let to_order = Bridge::new(
        &payments.store,
        &orders.store,
        "payment-to-order",
        vec!["PaymentReceived".into()],
    )
    .unwrap()
    .clock(Arc::new(clock.clone()))
    .unwrap();
    clock.advance(Duration::minutes(1));
    to_payment.drain().await.unwrap();
    eventually("four are charged, one has an incident", || async {
        payments
            .count("events", "WHERE event_type = 'MilestoneReached'")
            .await
            == 4
            && payments.count("jobs", "").await == 0
    })
    .await;
    clock.advance(Duration::minutes(1));
    to_order.drain().await.unwrap();
    eventually("four orders complete", || async {
        orders
            .count("instances", "WHERE status = 'completed'")
            .await
            == 4
    })
    .await;
    running.0.shutdown().await;
    running.1.shutdown().await;

    let monitor = Monitor::new(&central.store, "central")
        .unwrap()
        .source("order", &orders.store)
        .unwrap()
        .source("payment", &payments.store)
        .unwrap();
    monitor
        .define(&Flow::from_json(FLOW).unwrap())
        .await
        .unwrap();
    let got = monitor.drain().await.unwrap();
    // 5 placed, 4 charged, 4 paid, 4 completed.
    assert_eq!((got.kept, got.duplicates), (17, 0));

    // One order's timeline runs across both contexts, in order, under its business key.
    let timeline = monitor.timeline("o1").await.unwrap();
    let steps: Vec<(&str, &str)> = timeline
        .iter()
        .map(|r| (r.context.as_str(), r.milestone.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("order", "order placed"),
            ("payment", "charged"),
            ("order", "paid"),
            ("order", "completed")
        ]
    );
    let trace = timeline[0].traceparent.clone().unwrap();
    assert!(timeline
        .iter()
        .all(|r| r.traceparent.as_deref() == Some(&trace)));

    // The flow: four completed, one still at "order placed", and stuck there.
    let stages = central.store.report("flow_stages", 10).await.unwrap();
    let counts: Vec<(String, i64)> = stages
        .iter()
        .map(|s| {
            (
                s["milestone"].as_str().unwrap().to_string(),
                s["traces"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("order placed".to_string(), 1),
            ("charged".to_string(), 0),
            ("paid".to_string(), 0),
            ("completed".to_string(), 4)
        ]
    );
    let durations = central.store.report("flow_durations", 10).await.unwrap();
    assert_eq!(durations.len(), 3, "{durations:?}");
    assert_eq!(durations[0]["traces"], 4);
    assert_eq!(durations[0]["p50_seconds"], 60.0, "{durations:?}");
    assert_eq!(durations[1]["p95_seconds"], 60.0, "{durations:?}");
    assert_eq!(durations[2]["p50_seconds"], 0.0, "{durations:?}");
    let stuck = central.store.report("flow_stuck", 10).await.unwrap();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0]["trace_key"], "o4");
    assert_eq!(stuck[0]["milestone"], "order placed");

    // Read again from the start (a crash before the checkpoints moved): nothing changes.
    for db in [&orders, &payments] {
        db.sql()
            .await
            .execute(
                &format!(
                    "UPDATE \"{}\".consumer_checkpoints SET last_xid = '0', last_instance = '00000000-0000-0000-0000-000000000000', last_seq = 0 WHERE name = 'monitor:central'",
                    db.schema()
                ),
                &[],
            )
            .await
            .unwrap();
    }
    let again = monitor.drain().await.unwrap();
    assert_eq!((again.kept, again.duplicates), (0, 17));
    assert_eq!(central.count("monitor_milestones", "").await, 17);
    // A flow document with a problem is refused with it.
    let e = Flow::from_json(r#"{"flow": "x", "stages": [{"milestone": "a"}, {"milestone": "a"}]}"#)
        .unwrap_err();
    assert!(e.to_string().contains("is a stage already"), "{e}");
}
