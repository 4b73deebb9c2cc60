use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::common::{eventually, wait_ended, TestDb};
use longrun::definition::TimerSpec;
use longrun::machine::Status;
use longrun::{
    Delivery, Engine, EngineConfig, JobContext, ManualClock, Message, ProcessDefinition,
    StartRequest,
};

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
}

fn engine_on(db: &TestDb, clock: &ManualClock) -> Engine {
    Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// The card window: wait for `CreditCardUpdated` at most 14 days, reminding after 7.
fn card_window() -> ProcessDefinition {
    ProcessDefinition::builder("card")
        .receive("wait_card", "CreditCardUpdated")
        .timeout_after("P14D", "cancel_order")
        .remind(
            TimerSpec::After("P7D".into()),
            "CardReminder",
            Some("customer"),
        )
        .send("retry_payment", "RetrievePayment")
        .to("payment")
        .end("paid")
        .send("cancel_order", "OrderCancelled")
        .end("cancelled")
        .build()
        .unwrap()
}

async fn outbox_names(db: &TestDb) -> Vec<String> {
    let c = db.sql().await;
    c.query(
        &format!(
            "SELECT name FROM \"{}\".outbox ORDER BY xid, instance_id, seq",
            db.schema()
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn no_card_update_within_fourteen_days_cancels_the_order() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&card_window()).await.unwrap();
    let id = engine
        .start(StartRequest::new("card", "o-1"))
        .await
        .unwrap();
    assert_eq!(db.count("timers", "").await, 2);

    clock.advance(Duration::days(14) - Duration::seconds(1));
    assert_eq!(
        engine.fire_due_timers().await.unwrap(),
        1,
        "only the 7-day reminder"
    );
    assert_eq!(db.store.instance(id).await.unwrap().status, "running");
    clock.advance(Duration::seconds(1));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);

    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.current_step.as_deref(), Some("cancelled"));
    assert_eq!(outbox_names(&db).await, ["CardReminder", "OrderCancelled"]);
    for table in ["timers", "subscriptions"] {
        assert_eq!(db.count(table, "").await, 0, "{table} left behind");
    }
    // A card update after the window finds nobody waiting.
    let late = engine
        .send(Message::new("CreditCardUpdated", "o-1", "late"))
        .await
        .unwrap();
    assert!(matches!(late, Delivery::Buffered { .. }));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
}

#[tokio::test]
async fn a_reminder_after_seven_days_keeps_the_wait_and_an_update_ends_it() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&card_window()).await.unwrap();
    let id = engine
        .start(StartRequest::new("card", "o-1"))
        .await
        .unwrap();
    clock.advance(Duration::days(7));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(
        view.current_step.as_deref(),
        Some("wait_card"),
        "still waiting"
    );
    assert_eq!(outbox_names(&db).await, ["CardReminder"]);

    // The update comes on day 10: the 14-day timer is cancelled with the wait.
    clock.advance(Duration::days(3));
    let d = engine
        .send(Message::new("CreditCardUpdated", "o-1", "u1"))
        .await
        .unwrap();
    assert_eq!(d, Delivery::Correlated { instance_id: id });
    assert_eq!(
        db.store.instance(id).await.unwrap().current_step.as_deref(),
        Some("paid")
    );
    assert_eq!(db.count("timers", "").await, 0);
    clock.advance(Duration::days(30));
    assert_eq!(
        engine.fire_due_timers().await.unwrap(),
        0,
        "a cancelled timer never fires"
    );
    let types: Vec<String> = db
        .store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event_type)
        .collect();
    assert_eq!(types.iter().filter(|t| *t == "TimerFired").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "TimerCancelled").count(), 1);
}

#[tokio::test]
async fn a_timer_step_waits_until_the_date_in_a_variable() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let def = ProcessDefinition::builder("dated")
        .wait_until("until_deadline", "deadline")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(
            StartRequest::new("dated", "k").variables(json!({"deadline": "2026-03-02T12:00:00Z"})),
        )
        .await
        .unwrap();
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(
        view.waiting_for.as_deref(),
        Some("timer due 2026-03-02T12:00:00.000Z")
    );
    clock.set(Utc.with_ymd_and_hms(2026, 3, 2, 11, 59, 59).unwrap());
    assert_eq!(
        engine.fire_due_timers().await.unwrap(),
        0,
        "never before due"
    );
    clock.set(Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap());
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(db.store.instance(id).await.unwrap().status, "completed");

    // A variable that holds no date fails the instance with the reason, at once.
    let bad = engine
        .start(StartRequest::new("dated", "k2").variables(json!({"deadline": "soon"})))
        .await
        .unwrap();
    let view = db.store.instance(bad).await.unwrap();
    assert_eq!(view.status, "failed");
    assert!(view.error.unwrap().contains("not an RFC 3339 date-time"));
}

#[tokio::test]
async fn a_cycle_fires_its_count_and_then_stops() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let def = ProcessDefinition::builder("nag")
        .receive("wait", "Paid")
        .remind(TimerSpec::Cycle("R3/P1D".into()), "PleasePay", None)
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine.start(StartRequest::new("nag", "k")).await.unwrap();
    for day in 1..=5 {
        clock.advance(Duration::days(1));
        let fired = engine.fire_due_timers().await.unwrap();
        assert_eq!(fired, usize::from(day <= 3), "day {day}");
    }
    assert_eq!(
        outbox_names(&db).await,
        ["PleasePay", "PleasePay", "PleasePay"]
    );
    assert_eq!(db.store.instance(id).await.unwrap().status, "running");
    assert_eq!(db.count("timers", "").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_due_while_no_engine_runs_fires_once_when_one_starts() {
    let db = TestDb::new().await;
    let clock = clock();
    let def = ProcessDefinition::builder("sleepy")
        .wait_for("nap", "PT1H")
        .end("done")
        .build()
        .unwrap();
    let client = engine_on(&db, &clock);
    client.deploy(&def).await.unwrap();
    let id = client
        .start(StartRequest::new("sleepy", "k"))
        .await
        .unwrap();
    clock.advance(Duration::hours(5)); // no engine ran meanwhile

    let engine = engine_on(&db, &clock);
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    let fired = db
        .store
        .history(id)
        .await
        .unwrap()
        .iter()
        .filter(|h| h.event_type == "TimerFired")
        .count();
    assert_eq!(fired, 1);
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_racing_for_due_timers_fire_each_once() {
    let db = TestDb::new().await;
    let clock = clock();
    let def = ProcessDefinition::builder("race")
        .wait_for("nap", "PT1M")
        .end("done")
        .build()
        .unwrap();
    let a = engine_on(&db, &clock);
    let b = engine_on(&db, &clock);
    a.deploy(&def).await.unwrap();
    a.start_many(
        (0..300)
            .map(|i| StartRequest::new("race", format!("k{i}")))
            .collect(),
    )
    .await
    .unwrap();
    clock.advance(Duration::minutes(1));
    let (fa, fb) = tokio::join!(a.fire_due_timers(), b.fire_due_timers());
    let (fa, fb) = (fa.unwrap(), fb.unwrap());
    // Whatever one skipped because the other held it, a second round picks up.
    let rest = a.fire_due_timers().await.unwrap();
    assert_eq!(
        fa + fb + rest,
        300,
        "a fired {fa}, b fired {fb}, then {rest}"
    );
    assert_eq!(
        db.count("instances", "WHERE status = 'completed'").await,
        300
    );
    assert_eq!(
        db.count("events", "WHERE event_type = 'TimerFired'").await,
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_timeout_raises_an_incident_and_its_late_result_is_dropped() {
    let db = TestDb::new().await;
    let clock = clock();
    let release = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let engine = {
        let (release, entered) = (release.clone(), entered.clone());
        Engine::builder(db.store.clone())
            .clock(Arc::new(clock.clone()))
            .config(EngineConfig {
                poll_interval: std::time::Duration::from_millis(20),
                ..EngineConfig::default()
            })
            .handler("slow", move |_job: JobContext| {
                let (release, entered) = (release.clone(), entered.clone());
                async move {
                    entered.notify_one();
                    release.notified().await;
                    Ok(Value::Null)
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("slowpoke")
        .service("work", "slow")
        .timeout("PT30S")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine
        .start(StartRequest::new("slowpoke", "k"))
        .await
        .unwrap();
    entered.notified().await;
    clock.advance(Duration::seconds(30));
    // The engine's own timer worker may fire it first; either way it fires once.
    engine.fire_due_timers().await.unwrap();
    eventually("the incident", || async {
        db.count("events", "WHERE event_type = 'IncidentRaised'")
            .await
            > 0
    })
    .await;
    assert_eq!(
        db.count("events", "WHERE event_type = 'TimerFired'").await,
        1
    );
    // No retry policy: the timeout raises an incident at once and withdraws the job.
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "running");
    assert_eq!(
        view.waiting_for.as_deref(),
        Some("incident after 1 attempts: the handler did not finish within PT30S")
    );
    assert_eq!(db.count("jobs", "").await, 0, "the job was withdrawn");
    release.notify_one();
    running.shutdown().await;
    // The late result was dropped; the operator cancels the order.
    engine.cancel(id, "gave up").await.unwrap();
    let ends = wait_ended(&mut ended, &[id]).await;
    assert_eq!(ends[0].status, Status::Cancelled);
    assert_eq!(
        db.count("events", "WHERE event_type = 'JobCompleted'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_order_survives_an_expired_card_or_is_cancelled_after_fourteen_days() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let order = ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json"))
        .unwrap();
    engine.deploy(&order).await.unwrap();
    let send = |name: &str, key: &str, id: &str| Message::new(name, key, id);

    // o1: the card expired, the customer updates it on day 3, the payment is retried.
    let o1 = match engine.send(send("OrderPlaced", "o1", "c1")).await.unwrap() {
        Delivery::Started { instance_id, .. } => instance_id,
        other => panic!("{other:?}"),
    };
    // The goods branch arrives at the join while the payment branch waits for the card.
    engine.send(send("GoodsFetched", "o1", "g1")).await.unwrap();
    engine
        .send(send("PaymentFailed", "o1", "f1"))
        .await
        .unwrap();
    let view = db.store.instance(o1).await.unwrap();
    assert_eq!(view.current_step.as_deref(), Some("wait_card"));
    assert_eq!(
        db.count("subscriptions", "").await,
        1,
        "the gateway's PaymentReceived wait is withdrawn"
    );
    clock.advance(Duration::days(3));
    engine
        .send(send("CreditCardUpdated", "o1", "u1"))
        .await
        .unwrap();
    assert_eq!(
        db.count("outbox", "WHERE name = 'RetrievePayment'").await,
        2,
        "retried"
    );
    engine
        .send(send("PaymentReceived", "o1", "p1"))
        .await
        .unwrap();
    engine.send(send("GoodsShipped", "o1", "s1")).await.unwrap();
    assert_eq!(
        db.store.instance(o1).await.unwrap().current_step.as_deref(),
        Some("done")
    );

    // o2: the card expired and nobody updates it: reminded on day 7, cancelled on day 14.
    let o2 = match engine.send(send("OrderPlaced", "o2", "c2")).await.unwrap() {
        Delivery::Started { instance_id, .. } => instance_id,
        other => panic!("{other:?}"),
    };
    engine
        .send(send("PaymentFailed", "o2", "f2"))
        .await
        .unwrap();
    clock.advance(Duration::days(7));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(db.count("outbox", "WHERE name = 'CardReminder'").await, 1);
    clock.advance(Duration::days(7));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    let view = db.store.instance(o2).await.unwrap();
    assert_eq!(view.current_step.as_deref(), Some("cancelled"));
    assert_eq!(
        db.count(
            "outbox",
            "WHERE name IN ('ReleaseGoods', 'RefundPayment', 'OrderCancelled')"
        )
        .await,
        3
    );
    // The goods branch still waited for GoodsFetched: the compensation ended it.
    assert_eq!(db.count("timers", "").await, 0);
    assert_eq!(db.count("subscriptions", "").await, 0);
}

#[tokio::test]
async fn a_paused_instance_holds_messages_and_timers_until_resumed() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let def = ProcessDefinition::builder("hold")
        .receive("wait", "Go")
        .timeout_after("P1D", "late")
        .end("done")
        .end("late")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();

    // A message for a paused instance waits in the inbox and is taken on resume.
    let a = engine.start(StartRequest::new("hold", "a")).await.unwrap();
    engine.pause(a).await.unwrap();
    assert_eq!(
        db.store.instance(a).await.unwrap().waiting_for.as_deref(),
        Some("paused by an operator")
    );
    assert_eq!(db.count("subscriptions", "").await, 0);
    assert_eq!(db.count("timers", "").await, 0);
    let d = engine.send(Message::new("Go", "a", "go-a")).await.unwrap();
    assert!(matches!(d, Delivery::Buffered { .. }), "{d:?}");
    assert!(matches!(
        engine.pause(a).await,
        Err(longrun::Error::Rejected { .. })
    ));
    engine.resume(a).await.unwrap();
    assert_eq!(
        db.store.instance(a).await.unwrap().current_step.as_deref(),
        Some("done")
    );

    // A timer due while paused fires once resumed, not before.
    let b = engine.start(StartRequest::new("hold", "b")).await.unwrap();
    engine.pause(b).await.unwrap();
    clock.advance(Duration::days(2));
    assert_eq!(engine.fire_due_timers().await.unwrap(), 0);
    assert_eq!(db.store.instance(b).await.unwrap().status, "running");
    engine.resume(b).await.unwrap();
    assert_eq!(db.count("subscriptions", "").await, 1, "the wait is back");
    assert_eq!(engine.fire_due_timers().await.unwrap(), 1);
    assert_eq!(
        db.store.instance(b).await.unwrap().current_step.as_deref(),
        Some("late")
    );
    assert_eq!(db.count("subscriptions", "").await, 0);
}
