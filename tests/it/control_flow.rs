//! Gateways, parallel branches and call activities against a real database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::common::{client, TestDb};
use longrun::{
    Engine, EngineConfig, JobContext, ManualClock, Message, ProcessDefinition, StartRequest,
};

fn fast_config() -> EngineConfig {
    EngineConfig {
        poll_interval: StdDuration::from_millis(20),
        maintenance_interval: StdDuration::from_millis(20),
        ..EngineConfig::default()
    }
}

async fn events_of(db: &TestDb, id: Uuid) -> Vec<(String, Value)> {
    db.store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.event_type, h.data))
        .collect()
}

fn count(events: &[(String, Value)], f: impl Fn(&str, &Value) -> bool) -> usize {
    events.iter().filter(|(t, d)| f(t, d)).count()
}

type Barriers = Arc<Mutex<HashMap<Uuid, Arc<Barrier>>>>;

/// A handler that waits until the other branch's handler of the same instance is also
/// running, so that both branches finish in the same instant.
fn rendezvous(
    barriers: Barriers,
) -> impl Fn(
    JobContext,
) -> futures_util::future::BoxFuture<'static, Result<Value, longrun::HandlerError>>
       + Send
       + Sync
       + 'static {
    move |job: JobContext| {
        let barrier = barriers
            .lock()
            .unwrap()
            .entry(job.instance_id)
            .or_insert_with(|| Arc::new(Barrier::new(2)))
            .clone();
        Box::pin(async move {
            barrier.wait().await;
            Ok(json!({ "by": job.step }))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_whose_branches_finish_together_on_two_engines_goes_on_exactly_once() {
    let db = TestDb::new().await;
    let def = ProcessDefinition::builder("fj")
        .parallel("fork", ["left", "right"])
        .service("left", "left")
        .output("l")
        .next("join")
        .service("right", "right")
        .output("r")
        .next("join")
        .join("join")
        .send("after", "Joined")
        .end("done")
        .build()
        .unwrap();
    let barriers: Barriers = Arc::default();
    // Each engine runs one branch's handler: the two completions race for the instance.
    let a = Engine::builder(db.store.clone())
        .config(fast_config())
        .handler("left", rendezvous(barriers.clone()))
        .build()
        .unwrap();
    let b = Engine::builder(db.store.clone())
        .config(fast_config())
        .handler("right", rendezvous(barriers.clone()))
        .build()
        .unwrap();
    a.deploy(&def).await.unwrap();
    let mut ended = a.subscribe_ended();
    let mut ended_b = b.subscribe_ended();
    let (ra, rb) = (a.run(), b.run());
    let ids = a
        .start_many(
            (0..40)
                .map(|i| StartRequest::new("fj", format!("k{i}")))
                .collect(),
        )
        .await
        .unwrap();
    // An instance ends on whichever engine applied the second arrival.
    let mut seen = std::collections::HashSet::new();
    while seen.len() < ids.len() {
        tokio::select! {
            Ok(e) = ended.recv() => { seen.insert(e.instance_id); }
            Ok(e) = ended_b.recv() => { seen.insert(e.instance_id); }
            _ = tokio::time::sleep(StdDuration::from_secs(60)) => panic!("instances did not end"),
        }
    }
    ra.shutdown().await;
    rb.shutdown().await;
    for id in &ids {
        let events = events_of(&db, *id).await;
        let joined = count(&events, |t, d| t == "JoinArrived" && d["arrived"] == 2);
        let waited = count(&events, |t, d| t == "JoinArrived" && d["arrived"] == 1);
        assert_eq!((waited, joined), (1, 1), "{id}: {events:?}");
        assert_eq!(
            count(&events, |t, d| t == "MessageSent" && d["step"] == "after"),
            1
        );
        assert_eq!(count(&events, |t, _| t == "InstanceCompleted"), 1);
        let view = db.store.instance(*id).await.unwrap();
        assert_eq!(view.status, "completed");
        let replay = db.store.replay(*id).await.unwrap();
        assert!(replay.differences.is_empty(), "{:?}", replay.differences);
        assert_eq!(view.variables["l"], json!({"by": "left"}));
        assert_eq!(view.variables["r"], json!({"by": "right"}));
    }
    assert_eq!(
        db.count("outbox", "WHERE name = 'Joined'").await,
        ids.len() as i64
    );
    assert_eq!(db.count("jobs", "").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_gateway_whose_message_and_timer_arrive_together_takes_one_path() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
    let def = ProcessDefinition::builder("gw")
        .event_gateway("outcome")
        .on_message("PaymentReceived", "paid")
        .on_timer("PT1H", "timed_out")
        .send("paid", "Paid")
        .end("paid_end")
        .send("timed_out", "TimedOut")
        .end("timed_out_end")
        .build()
        .unwrap();
    let timers = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let sender = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    timers.deploy(&def).await.unwrap();
    let n = 30;
    let ids = timers
        .start_many(
            (0..n)
                .map(|i| StartRequest::new("gw", format!("k{i}")))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(db.count("subscriptions", "").await, n as i64);
    assert_eq!(db.count("timers", "").await, n as i64);
    clock.advance(Duration::hours(1));
    // The timers fall due and the messages arrive at once, from two engines.
    let messages: Vec<Message> = (0..n)
        .map(|i| Message::new("PaymentReceived", format!("k{i}"), format!("m{i}")))
        .collect();
    let sends = async {
        let mut out = Vec::new();
        for chunk in messages.chunks(3) {
            out.extend(sender.send_many(chunk.to_vec()).await.unwrap());
        }
        out
    };
    let (fired, delivered) = tokio::join!(timers.fire_due_timers(), sends);
    fired.unwrap();
    let mut by_message = 0;
    let mut by_timer = 0;
    for id in &ids {
        let events = events_of(&db, *id).await;
        let m = count(&events, |t, _| t == "MessageCorrelated");
        let t = count(&events, |t, _| t == "TimerFired");
        assert_eq!(m + t, 1, "{id}: exactly one path: {events:?}");
        assert_eq!(count(&events, |t, _| t == "InstanceCompleted"), 1);
        by_message += m;
        by_timer += t;
    }
    assert_eq!(by_message + by_timer, n);
    assert_eq!(db.count("outbox", "").await, n as i64);
    assert_eq!(
        db.count("outbox", "WHERE name = 'Paid'").await,
        by_message as i64
    );
    assert_eq!(db.count("timers", "").await, 0);
    assert_eq!(db.count("subscriptions", "").await, 0);
    // A message that lost the race is not lost: it is kept in the inbox (buffered).
    let correlated = delivered
        .iter()
        .filter(|d| matches!(d, Ok(longrun::Delivery::Correlated { .. })))
        .count();
    assert_eq!(correlated, by_message);
    assert_eq!(
        db.count("inbox", "WHERE status = 'buffered'").await,
        by_timer as i64
    );
    println!("gateway race: {by_message} by message, {by_timer} by timer");
}

fn credit_check() -> ProcessDefinition {
    ProcessDefinition::builder("credit_check")
        .receive("scored", "CreditScored")
        .output("score")
        .end("done")
        .build()
        .unwrap()
}

fn with_credit_check() -> ProcessDefinition {
    ProcessDefinition::builder("loan")
        .call("check", "credit_check")
        .payload(["amount"])
        .output("credit")
        .exclusive("decide")
        .when("credit.score.value >= 600", "grant")
        .otherwise("refuse")
        .send("grant", "LoanGranted")
        .end("granted")
        .send("refuse", "LoanRefused")
        .end("refused")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_call_activity_runs_a_child_and_maps_its_result_back() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    // The called process must be deployed first.
    let e = engine.deploy(&with_credit_check()).await.unwrap_err();
    assert!(e.to_string().contains("not deployed"), "{e}");
    assert_eq!(db.count("definitions", "").await, 0);
    engine.deploy(&credit_check()).await.unwrap();
    engine.deploy(&with_credit_check()).await.unwrap();

    let parent = engine
        .start(StartRequest::new("loan", "l-1").variables(json!({"amount": 900, "ssn": "x"})))
        .await
        .unwrap();
    let children: Vec<(Uuid, Value)> = db
        .sql()
        .await
        .query(
            &format!(
                "SELECT instance_id, variables FROM \"{}\".instances WHERE process_id = 'credit_check'",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(children.len(), 1);
    let (child, vars) = &children[0];
    assert_eq!(*vars, json!({"amount": 900}), "only the listed input");
    assert_eq!(
        db.store
            .instance(parent)
            .await
            .unwrap()
            .waiting_for
            .as_deref(),
        Some(format!("child credit_check {child}").as_str())
    );

    let explained = db.store.explain(parent).await.unwrap().join("\n");
    assert!(
        explained.contains(&format!(
            "at step check it waits for its child instance {child} of process credit_check"
        )),
        "{explained}"
    );
    assert_eq!(
        db.count("report_stuck", "").await,
        0,
        "a parent waiting for its child is not stuck"
    );
    // The child completes when its message comes (by the shared business key); the parent
    // goes on in the same transaction.
    engine
        .send(Message::new("CreditScored", "l-1", "s-1").payload(json!({"value": 710})))
        .await
        .unwrap();
    assert_eq!(db.store.instance(*child).await.unwrap().status, "completed");
    let view = db.store.instance(parent).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.variables["credit"]["score"], json!({"value": 710}));
    assert_eq!(db.count("outbox", "WHERE name = 'LoanGranted'").await, 1);
    let parent_events = events_of(&db, parent).await;
    assert_eq!(count(&parent_events, |t, _| t == "ChildStarted"), 1);
    assert_eq!(count(&parent_events, |t, _| t == "ChildCompleted"), 1);
    let child_events = events_of(&db, *child).await;
    assert_eq!(child_events[0].1["parent"]["instance_id"], json!(parent));
}

#[tokio::test]
async fn cancelling_the_parent_cancels_its_child() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&credit_check()).await.unwrap();
    engine.deploy(&with_credit_check()).await.unwrap();
    let parent = engine
        .start(StartRequest::new("loan", "l-2").variables(json!({"amount": 1})))
        .await
        .unwrap();
    engine.cancel(parent, "customer withdrew").await.unwrap();
    assert_eq!(db.store.instance(parent).await.unwrap().status, "cancelled");
    let statuses: Vec<String> = db
        .sql()
        .await
        .query(
            &format!(
                "SELECT status FROM \"{}\".instances WHERE process_id = 'credit_check'",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, vec!["cancelled".to_string()]);
    assert_eq!(db.count("subscriptions", "").await, 0);
    // A child that fails fails its parent; nothing is left waiting.
    let p2 = engine
        .start(StartRequest::new("loan", "l-3").variables(json!({"amount": 1})))
        .await
        .unwrap();
    let child: Uuid = db
        .sql()
        .await
        .query_one(
            &format!(
                "SELECT instance_id FROM \"{}\".instances WHERE process_id = 'credit_check' AND business_key = 'l-3'",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    engine.cancel(child, "bureau down").await.unwrap();
    let view = db.store.instance(p2).await.unwrap();
    assert_eq!(view.status, "failed");
    assert!(view.error.unwrap().contains("ended cancelled"));
}

#[tokio::test]
async fn a_child_that_ends_while_its_parent_is_paused_moves_it_on_resume() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&credit_check()).await.unwrap();
    engine.deploy(&with_credit_check()).await.unwrap();
    let parent = engine
        .start(StartRequest::new("loan", "l-4").variables(json!({"amount": 1})))
        .await
        .unwrap();
    engine.pause(parent).await.unwrap();
    engine
        .send(Message::new("CreditScored", "l-4", "s-4").payload(json!({"value": 100})))
        .await
        .unwrap();
    assert_eq!(db.store.instance(parent).await.unwrap().status, "running");
    engine.resume(parent).await.unwrap();
    let view = db.store.instance(parent).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(db.count("outbox", "WHERE name = 'LoanRefused'").await, 1);
}

/// A terminate end ends the instance at once: the other branch's wait, its subscription and
/// its boundary timer go in the same transaction.
#[tokio::test]
async fn a_terminate_end_ends_every_other_branch() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("race")
        .parallel("fork", ["wait", "done_early"])
        .receive("wait", "Go")
        .timeout_after("P1D", "late")
        .end("normal")
        .end("late")
        .terminate("done_early")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(longrun::StartRequest::new("race", "k1"))
        .await
        .unwrap();
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.current_step.as_deref(), Some("done_early"));
    for table in ["subscriptions", "timers", "jobs"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
    assert!(db.store.replay(id).await.unwrap().differences.is_empty());
}

/// A service step's headers reach its handler with each job.
#[tokio::test]
async fn a_handler_gets_its_steps_headers() {
    let db = TestDb::new().await;
    type Seen = Vec<(String, std::collections::BTreeMap<String, String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let engine = {
        let seen = seen.clone();
        Engine::builder(db.store.clone())
            .config(fast_config())
            .handler("notify", move |job: JobContext| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((job.step.clone(), job.headers.clone()));
                    Ok(Value::Null)
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("mail")
        .service("confirm", "notify")
        .header("template", "order-confirmation")
        .header("channel", "email")
        .service("plain", "notify")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine
        .start(longrun::StartRequest::new("mail", "m1"))
        .await
        .unwrap();
    crate::common::wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "confirm");
    assert_eq!(
        seen[0].1.get("template").map(String::as_str),
        Some("order-confirmation")
    );
    assert_eq!(seen[0].1.len(), 2);
    assert!(seen[1].1.is_empty(), "{seen:?}");
}

/// Extras for an order: wrap it (a gift), expedite it (express), or, with neither, pack it;
/// the inclusive join waits for exactly the branches taken.
fn extras() -> ProcessDefinition {
    ProcessDefinition::builder("extras")
        .inclusive("extras")
        .when("gift == true", "wrap")
        .when("express == true", "expedite")
        .otherwise("pack")
        .receive("wrap", "Wrapped")
        .next("together")
        .receive("expedite", "Expedited")
        .next("together")
        .send("pack", "Packed")
        .next("together")
        .inclusive_join("together")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_inclusive_gateway_takes_every_route_that_holds_and_its_join_waits_for_those() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&extras()).await.unwrap();
    let start =
        |key: &str, vars: Value| engine.start(StartRequest::new("extras", key).variables(vars));
    let status = |id: Uuid| {
        let store = db.store.clone();
        async move { store.instance(id).await.unwrap().status }
    };
    // Both routes: the join waits for both branches.
    let both = start("both", json!({"gift": true, "express": true}))
        .await
        .unwrap();
    engine
        .send(Message::new("Wrapped", "both", "w-both"))
        .await
        .unwrap();
    assert_eq!(status(both).await, "running", "one of two arrived");
    engine
        .send(Message::new("Expedited", "both", "e-both"))
        .await
        .unwrap();
    assert_eq!(status(both).await, "completed");
    let events = events_of(&db, both).await;
    assert_eq!(
        count(&events, |t, d| t == "JoinArrived" && d["expected"] == 2),
        2
    );
    assert_eq!(
        count(&events, |t, d| t == "InclusiveForked"
            && d["branches"] == json!(["wrap", "expedite"])
            && d["join"] == "together"),
        1
    );
    // One route: the join goes on after that one.
    let gift = start("gift", json!({"gift": true, "express": false}))
        .await
        .unwrap();
    engine
        .send(Message::new("Wrapped", "gift", "w-gift"))
        .await
        .unwrap();
    assert_eq!(status(gift).await, "completed");
    // None: the default, at once.
    let plain = start("plain", json!({"gift": false, "express": false}))
        .await
        .unwrap();
    assert_eq!(status(plain).await, "completed");
    let events = events_of(&db, plain).await;
    assert_eq!(
        count(&events, |t, d| t == "MessageSent" && d["name"] == "Packed"),
        1
    );
}

#[test]
fn an_inclusive_gateway_whose_routes_meet_no_join_is_refused() {
    let e = ProcessDefinition::builder("p")
        .inclusive("fork")
        .when("a == true", "x")
        .otherwise("y")
        .end("x")
        .end("y")
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("must all lead to one inclusive_join"), "{e}");
}

/// A card check that ends with the business error `CardDeclined` for a declined card.
fn card_check() -> ProcessDefinition {
    ProcessDefinition::builder("card_check")
        .exclusive("ok")
        .when("declined == true", "declined")
        .otherwise("fine")
        .error_end("declined", "CardDeclined")
        .end("fine")
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_error_end_in_a_called_process_takes_the_callers_error_route() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&card_check()).await.unwrap();
    let checkout = ProcessDefinition::builder("checkout")
        .call("check", "card_check")
        .on_error("CardDeclined", "ask_again")
        .end("paid")
        .send("ask_again", "AskForAnotherCard")
        .end("asked")
        .build()
        .unwrap();
    engine.deploy(&checkout).await.unwrap();
    let unrouted = ProcessDefinition::builder("strict")
        .call("check", "card_check")
        .end("paid")
        .build()
        .unwrap();
    engine.deploy(&unrouted).await.unwrap();
    let start = |process: &str, key: &str, declined: bool| {
        engine.start(StartRequest::new(process, key).variables(json!({ "declined": declined })))
    };
    let declined = start("checkout", "d", true).await.unwrap();
    let fine = start("checkout", "f", false).await.unwrap();
    let strict = start("strict", "s", true).await.unwrap();
    let view = |id: Uuid| {
        let store = db.store.clone();
        async move { store.instance(id).await.unwrap() }
    };
    let d = view(declined).await;
    assert_eq!(
        (d.status.as_str(), d.current_step.as_deref()),
        ("completed", Some("asked"))
    );
    let events = events_of(&db, declined).await;
    assert_eq!(
        count(&events, |t, d| t == "BusinessErrorCaught"
            && d["code"] == "CardDeclined"),
        1
    );
    assert_eq!(view(fine).await.current_step.as_deref(), Some("paid"));
    // Without a route, the caller fails and says which error.
    let s = view(strict).await;
    assert_eq!(s.status, "failed");
    assert!(s
        .error
        .unwrap_or_default()
        .contains("business error CardDeclined"));
    // The child itself failed with the code.
    let children = db
        .count(
            "instances",
            "WHERE process_id = 'card_check' AND status = 'failed'",
        )
        .await;
    assert_eq!(children, 2);
}

#[tokio::test]
async fn input_and_output_mappings_shape_what_a_handler_sees_and_sets() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        .config(fast_config())
        .handler("charge", |job: JobContext| async move {
            // The input mappings are there besides the instance's variables.
            assert_eq!(job.variables["orderId"], "o-7");
            assert_eq!(job.variables["currency"], "EUR");
            Ok(json!({"charge": {"id": "c-1"}, "noise": true}))
        })
        .build()
        .unwrap();
    let def = ProcessDefinition::builder("mapped")
        .service("charge", "charge")
        .map_input("=order.id", "orderId")
        .map_input("EUR", "currency")
        .map_output("=charge.id", "paymentId")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine
        .start(StartRequest::new("mapped", "m").variables(json!({"order": {"id": "o-7"}})))
        .await
        .unwrap();
    crate::common::wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    let v = db.store.instance(id).await.unwrap();
    assert_eq!(v.status, "completed");
    assert_eq!(v.variables["paymentId"], "c-1");
    assert!(v.variables.get("noise").is_none(), "{}", v.variables);
    assert!(v.variables.get("orderId").is_none(), "{}", v.variables);
}
