//! Signals: thrown by a process or by `Engine::signal`, broadcast in chunks to every instance
//! waiting for them when thrown, once each, and starting the processes that start on them.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::common::TestDb;
use longrun::{Engine, EngineConfig, Error, ManualClock, Message, ProcessDefinition, StartRequest};

fn engine_on(db: &TestDb, clock: &ManualClock, batch: usize) -> Engine {
    Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig {
            signal_batch: batch,
            ..EngineConfig::default()
        })
        .build()
        .unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0).unwrap())
}

/// Waits for the signal `Open`, then ends; or is interrupted by `Closed` while it waits for
/// the message `Never`.
fn waiter() -> ProcessDefinition {
    ProcessDefinition::builder("waiter")
        .wait_signal("wait_open", "Open")
        .output("opening")
        .receive("wait_forever", "Never")
        .or_signal("Closed", "closed")
        .end("done")
        .end("closed")
        .build()
        .unwrap()
}

async fn step_of(db: &TestDb, id: Uuid) -> (String, Option<String>) {
    let v = db.store.instance(id).await.unwrap();
    (v.status, v.current_step)
}

async fn received(db: &TestDb, signal: Uuid) -> i64 {
    db.count(
        "events",
        &format!("WHERE event_type = 'MessageCorrelated' AND data->>'message_id' = '{signal}'"),
    )
    .await
}

#[tokio::test]
async fn a_signal_reaches_every_instance_waiting_for_it_when_thrown_and_no_other() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock, 500);
    engine.deploy(&waiter()).await.unwrap();
    let a = engine
        .start(StartRequest::new("waiter", "a"))
        .await
        .unwrap();
    let b = engine
        .start(StartRequest::new("waiter", "b"))
        .await
        .unwrap();
    let open = engine.signal("Open", json!({"at": "9:00"})).await.unwrap();
    // Waits only from after the throw: not a receiver.
    clock.advance(chrono::Duration::seconds(1));
    let late = engine
        .start(StartRequest::new("waiter", "late"))
        .await
        .unwrap();
    assert_eq!(engine.deliver_signals().await.unwrap(), 2);
    for id in [a, b] {
        assert_eq!(step_of(&db, id).await.1.as_deref(), Some("wait_forever"));
        assert_eq!(
            db.store.instance(id).await.unwrap().variables["opening"]["at"],
            "9:00"
        );
    }
    assert_eq!(step_of(&db, late).await.1.as_deref(), Some("wait_open"));
    assert_eq!(received(&db, open).await, 2);
    // Delivered and finished: nothing more happens.
    assert_eq!(engine.deliver_signals().await.unwrap(), 0);
    let view = db.store.signals(10).await.unwrap();
    assert_eq!(
        (view[0].delivered, view[0].finished_at.is_some()),
        (2, true)
    );
    // A boundary signal interrupts the wait for a message.
    engine.signal("Closed", json!(null)).await.unwrap();
    assert_eq!(engine.deliver_signals().await.unwrap(), 2);
    for id in [a, b] {
        assert_eq!(
            step_of(&db, id).await,
            ("completed".into(), Some("closed".into()))
        );
    }
    assert_eq!(
        db.count("subscriptions", "WHERE message_name = 'signal:Closed'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_process_throws_a_signal_that_starts_and_reaches_others() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock, 500);
    engine.deploy(&waiter()).await.unwrap();
    let audit = ProcessDefinition::builder("audit")
        .start_on_signal("Open")
        .end("logged")
        .build()
        .unwrap();
    engine.deploy(&audit).await.unwrap();
    let opener = ProcessDefinition::builder("opener")
        .signal("announce", "Open")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&opener).await.unwrap();
    let w = engine
        .start(StartRequest::new("waiter", "w"))
        .await
        .unwrap();
    let o = engine
        .start(StartRequest::new("opener", "o"))
        .await
        .unwrap();
    assert_eq!(
        step_of(&db, o).await.0,
        "completed",
        "the thrower goes on at once"
    );
    // One receiver and one instance of the process that starts on it.
    assert_eq!(engine.deliver_signals().await.unwrap(), 2);
    assert_eq!(engine.deliver_signals().await.unwrap(), 0, "once");
    assert_eq!(step_of(&db, w).await.1.as_deref(), Some("wait_forever"));
    assert_eq!(db.count("instances", "WHERE process_id = 'audit'").await, 1);
    let thrown = db.store.signals(10).await.unwrap();
    assert_eq!(thrown[0].thrown_by, Some(o));
    let history = db.store.history(o).await.unwrap();
    assert!(history.iter().any(|h| h.event_type == "SignalThrown"));
}

#[tokio::test]
async fn a_broadcast_goes_in_chunks_and_another_engine_finishes_what_one_left() {
    let db = TestDb::new().await;
    let clock = clock();
    let first = engine_on(&db, &clock, 10);
    let second = engine_on(&db, &clock, 10);
    first.deploy(&waiter()).await.unwrap();
    let ids = first
        .start_many(
            (0..35)
                .map(|i| StartRequest::new("waiter", format!("k{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let open = first.signal("Open", json!({})).await.unwrap();
    // The first engine delivers two chunks and stops (as if killed between chunks) ...
    for _ in 0..2 {
        first.deliver_signal_chunk().await.unwrap();
    }
    assert_eq!(received(&db, open).await, 20);
    // ... and two engines race over the rest: each instance receives it once.
    let (x, y) = tokio::join!(first.deliver_signals(), second.deliver_signals());
    assert_eq!(x.unwrap() + y.unwrap(), 15);
    assert_eq!(received(&db, open).await, 35);
    for id in ids {
        assert_eq!(step_of(&db, id).await.1.as_deref(), Some("wait_forever"));
    }
    let view = db.store.signals(1).await.unwrap();
    assert_eq!(view[0].delivered, 35);
}

#[tokio::test]
async fn bad_signals_are_refused_and_messages_cannot_pose_as_signals() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock, 500);
    for (name, payload) in [("", json!({})), ("Open", json!([1])), (" Open", json!({}))] {
        assert!(
            matches!(engine.signal(name, payload).await, Err(Error::BadInput(_))),
            "{name}"
        );
    }
    engine.deploy(&waiter()).await.unwrap();
    engine
        .start(StartRequest::new("waiter", "a"))
        .await
        .unwrap();
    let spoof = engine
        .send(Message::new("signal:Open", "", "spoof-1"))
        .await;
    assert!(matches!(spoof, Err(Error::BadInput(_))), "{spoof:?}");
    assert_eq!(db.count("signals", "").await, 0);
}

#[tokio::test]
async fn a_running_engine_delivers_a_signal_by_itself() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone()).build().unwrap();
    engine.deploy(&waiter()).await.unwrap();
    let id = engine
        .start(StartRequest::new("waiter", "r"))
        .await
        .unwrap();
    let running = engine.run();
    engine.signal("Open", json!({"by": "ops"})).await.unwrap();
    crate::common::eventually("the signal reaches the instance", || async {
        step_of(&db, id).await.1.as_deref() == Some("wait_forever")
    })
    .await;
    running.shutdown().await;
}
