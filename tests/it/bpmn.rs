//! BPMN: a process drawn as the modeler saves it is deployed unchanged, runs the reference
//! scenario, and exports with its layout kept; files outside the subset are refused.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use crate::common::{wait_ended, TestDb};
use longrun::machine::Status;
use longrun::{
    Delivery, Engine, EngineConfig, JobContext, ManualClock, Message, ProcessDefinition,
};

const FIXTURE: &str = include_str!("../fixtures/bpmn/order_modeler.bpmn");

fn audit() -> ProcessDefinition {
    ProcessDefinition::builder("audit")
        .send("log", "AuditLogged")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_modeler_fixture_runs_the_reference_scenario_and_keeps_its_layout() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..EngineConfig::default()
        })
        .handler("review_order", |_: JobContext| async move {
            Ok(json!({"reviewed": true}))
        })
        .build()
        .unwrap();
    engine.deploy(&audit()).await.unwrap();
    let deployed = db
        .store
        .deploy_bpmn(FIXTURE, longrun::Clock::now(&clock))
        .await
        .unwrap();
    assert_eq!(
        (deployed.process.as_str(), deployed.version),
        ("order_modeler", 1)
    );
    // Exported as it was deployed: its layout kept.
    assert_eq!(
        db.store
            .definition_source("order_modeler", 1)
            .await
            .unwrap()
            .as_deref(),
        Some(FIXTURE)
    );
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let place = |key: &str, amount: i64| {
        Message::new("OrderPlaced", key, format!("checkout-{key}")).payload(
            json!({"orderId": key, "amount": amount, "vip": false, "holdUntil": "2026-05-01T08:30:00Z"}),
        )
    };
    let mut ids = Vec::new();
    for (key, amount) in [("o1", 10), ("o2", 5000), ("o3", 10)] {
        match engine.send(place(key, amount)).await.unwrap() {
            Delivery::Started { instance_id, .. } => ids.push(instance_id),
            other => panic!("{other:?}"),
        }
    }
    // o1 and o2: payment and goods in parallel, then shipped.
    for key in ["o1", "o2"] {
        for name in ["GoodsFetched", "PaymentReceived"] {
            engine
                .send(Message::new(name, key, format!("{name}-{key}")))
                .await
                .unwrap();
        }
    }
    // o1 goes straight to shipping; o2, a large order, is reviewed and held until 08:30.
    crate::common::eventually("o1 ships, o2 is held", || async {
        db.count("subscriptions", "WHERE message_name = 'GoodsShipped'")
            .await
            == 1
            && db.count("timers", "WHERE kind = 'step'").await == 1
    })
    .await;
    clock.advance(Duration::hours(1));
    engine.fire_due_timers().await.unwrap();
    crate::common::eventually("both orders wait for their shipment", || async {
        db.count("subscriptions", "WHERE message_name = 'GoodsShipped'")
            .await
            == 2
    })
    .await;
    for key in ["o1", "o2"] {
        engine
            .send(Message::new("GoodsShipped", key, format!("shipped-{key}")))
            .await
            .unwrap();
    }
    // o3: the card failed and is never updated: reminded after 7 days, cancelled after 14.
    engine
        .send(Message::new("PaymentFailed", "o3", "failed-o3"))
        .await
        .unwrap();
    crate::common::eventually("both orders cool off", || async {
        db.count("timers", "WHERE kind = 'step'").await == 2
    })
    .await;
    clock.advance(Duration::hours(1));
    engine.fire_due_timers().await.unwrap();
    clock.advance(Duration::days(7));
    engine.fire_due_timers().await.unwrap();
    clock.advance(Duration::days(7));
    engine.fire_due_timers().await.unwrap();
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(
        ends.iter().all(|e| e.status == Status::Completed),
        "{ends:?}"
    );

    let step = |i: usize| {
        let store = db.store.clone();
        let id = ids[i];
        async move { store.instance(id).await.unwrap() }
    };
    assert_eq!(step(0).await.current_step.as_deref(), Some("endevent_done"));
    let o2 = step(1).await;
    assert_eq!(
        o2.variables["reviewed"],
        json!(true),
        "the large order was reviewed"
    );
    assert_eq!(
        step(2).await.current_step.as_deref(),
        Some("endevent_cancelled")
    );
    let names = |n: &str| {
        let db = &db;
        let n = n.to_string();
        async move { db.count("outbox", &format!("WHERE name = '{n}'")).await }
    };
    assert_eq!(names("OrderCompleted").await, 2);
    assert_eq!(
        names("AuditLogged").await,
        2,
        "the call activity ran the audit process"
    );
    assert_eq!(names("CardReminder").await, 1);
    assert_eq!(names("RefundPayment").await, 1);
    assert_eq!(names("ReleaseGoods").await, 1);
    assert_eq!(names("OrderCancelled").await, 1);
}

#[tokio::test]
async fn files_outside_the_subset_are_refused_with_their_location_and_write_nothing() {
    let db = TestDb::new().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bpmn/refused");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 7);
    for f in files {
        let xml = std::fs::read_to_string(&f).unwrap();
        let e = db.store.deploy_bpmn(&xml, Utc::now()).await.unwrap_err();
        let text = e.to_string();
        let located = text
            .split(':')
            .take(2)
            .all(|p| p.trim().chars().all(|c| c.is_ascii_digit()) && !p.trim().is_empty());
        assert!(located, "{}: {text}", f.display());
        assert!(
            matches!(e, longrun::Error::BadInput(_)),
            "{}: {e:?}",
            f.display()
        );
    }
    assert_eq!(db.count("definitions", "").await, 0);
}
