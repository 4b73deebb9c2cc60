//! The element fixtures (`tests/fixtures/bpmn/*_modeler.bpmn`, written by
//! `generate_elements.py` as the Camunda Modeler saves them) deployed and run on real engines:
//! timer starts, signals, inclusive gateways, mappings with FEEL, a Camunda 7 file, and start
//! and end events. Each also exports and imports back to the same definition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::common::{eventually, wait_ended, TestDb};
use longrun::machine::Status;
use longrun::{
    Delivery, Engine, EngineConfig, HandlerError, JobContext, ManualClock, Message, StartRequest,
};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bpmn")
        .join(format!("{name}_modeler.bpmn"));
    std::fs::read_to_string(path).unwrap()
}

fn config() -> EngineConfig {
    EngineConfig {
        poll_interval: std::time::Duration::from_millis(20),
        ..EngineConfig::default()
    }
}

/// Deploy the fixture, check that its export imports to the same definition; its process id.
async fn deploy(db: &TestDb, name: &str) -> String {
    deploy_at(db, name, Utc::now()).await
}

/// Deploy at `now` (a timer start's schedule begins at its deployment).
async fn deploy_at(db: &TestDb, name: &str, now: chrono::DateTime<Utc>) -> String {
    let deployed = db.store.deploy_bpmn(&fixture(name), now).await.unwrap();
    let def = db
        .store
        .definition(&deployed.process, deployed.version)
        .await
        .unwrap();
    let exported = longrun::bpmn::export(def.definition()).xml;
    assert_eq!(
        &longrun::bpmn::import(&exported).unwrap(),
        def.definition(),
        "{name} round-trips"
    );
    deployed.process
}

/// Calls per handler, shared by the handlers that count themselves.
type Calls = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

fn record(calls: &Calls, handler: &str, job: &JobContext) {
    calls
        .lock()
        .unwrap()
        .entry(handler.to_string())
        .or_default()
        .push(job.variables.clone());
}

fn count(calls: &Calls, handler: &str) -> usize {
    calls.lock().unwrap().get(handler).map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_start_fires_once_per_morning_across_two_engines() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 5, 0, 0).unwrap());
    let calls: Calls = Arc::default();
    let engine = || {
        let calls = calls.clone();
        Engine::builder(db.store.clone())
            .clock(Arc::new(clock.clone()))
            // The clock runs three days ahead in well under a second: with the default
            // five-minute job lease, a job still in flight on one engine would be taken over by
            // the other hour after hour (lapsed leases), and a loaded run could end with the
            // last taker's run fenced out and nobody's lease lapsing again. Takeovers are not
            // what this test is about.
            .config(EngineConfig {
                job_lease: Duration::days(7),
                ..config()
            })
            .handler("compile_report", move |job: JobContext| {
                record(&calls, "compile_report", &job);
                async move { Ok(json!({"compiled": true})) }
            })
            .build()
            .unwrap()
    };
    let (a, b) = (engine(), engine());
    let now = longrun::Clock::now(&clock);
    assert_eq!(
        deploy_at(&db, "timer_start", now).await,
        "daily_stock_report"
    );
    let (ra, rb) = (a.run(), b.run());
    // Three mornings, hour by hour, both engines firing at once each time.
    for _ in 0..(3 * 24) {
        clock.advance(Duration::hours(1));
        let (x, y) = tokio::join!(a.fire_start_timers(), b.fire_start_timers());
        x.unwrap();
        y.unwrap();
    }
    eventually("three reports are compiled", || async {
        db.count("instances", "WHERE status = 'completed'").await == 3
    })
    .await;
    ra.shutdown().await;
    rb.shutdown().await;
    assert_eq!(db.count("instances", "").await, 3, "once per morning");
    assert_eq!(count(&calls, "compile_report"), 3);
    let keys: Vec<String> = db
        .sql()
        .await
        .query(
            &format!(
                "SELECT business_key FROM \"{}\".instances ORDER BY 1",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        keys,
        [
            "2026-05-01T06:00:00.000Z",
            "2026-05-02T06:00:00.000Z",
            "2026-05-03T06:00:00.000Z"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_start_resume_interrupt_and_are_thrown_by_end_events() {
    let db = TestDb::new().await;
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let engine = Engine::builder(db.store.clone())
        .config(config())
        .handler("count_stock", move |job: JobContext| {
            record(&c, "count_stock", &job);
            async move { Ok(json!({"counted": 1200})) }
        })
        .build()
        .unwrap();
    assert_eq!(deploy(&db, "signal_catch").await, "pick_order");
    assert_eq!(deploy(&db, "signal_start").await, "stock_take");
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let mut ids = Vec::new();
    for i in 0..6 {
        let key = format!("p{i}");
        let req = StartRequest::new("pick_order", &key).variables(json!({"orderId": key}));
        ids.push(engine.start(req).await.unwrap());
    }
    assert_eq!(
        db.count(
            "subscriptions",
            "WHERE message_name = 'signal:Warehouse open'"
        )
        .await,
        6
    );
    // The count starts a stock take, whose signal end event opens the warehouse.
    engine.signal("Inventory count", json!({})).await.unwrap();
    eventually("every order waits for its goods", || async {
        db.count("subscriptions", "WHERE message_name = 'Goods picked'")
            .await
            == 6
    })
    .await;
    assert_eq!(count(&calls, "count_stock"), 1);
    // Three are picked (they throw `Order picked`); the warehouse closes on the others.
    for i in 0..3 {
        let d = engine
            .send(Message::new(
                "Goods picked",
                format!("p{i}"),
                format!("pick-{i}"),
            ))
            .await
            .unwrap();
        assert!(matches!(d, Delivery::Correlated { .. }), "{d:?}");
    }
    eventually("three are picked", || async {
        db.count("instances", "WHERE status = 'completed'").await == 4
    })
    .await;
    engine.signal("Warehouse closed", json!({})).await.unwrap();
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        let end = if i < 3 {
            "event_done"
        } else {
            "event_onhold_end"
        };
        assert_eq!(view.current_step.as_deref(), Some(end), "p{i}");
    }
    let thrown = |name: &'static str| {
        let db = &db;
        async move { db.count("signals", &format!("WHERE name = '{name}'")).await }
    };
    assert_eq!(thrown("Inventory count").await, 1);
    assert_eq!(
        thrown("Warehouse open").await,
        1,
        "the stock take's end event"
    );
    assert_eq!(thrown("Order picked").await, 3);
    assert_eq!(thrown("Warehouse closed").await, 1);
    assert_eq!(thrown("Order on hold").await, 3);
    for table in ["jobs", "subscriptions", "timers"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inclusive_gateway_runs_every_extra_that_applies_and_ships_once() {
    let db = TestDb::new().await;
    let calls: Calls = Arc::default();
    let mut builder = Engine::builder(db.store.clone()).config(config());
    for h in ["wrap_gift", "insure_parcel", "ship"] {
        let c = calls.clone();
        builder = builder.handler(h, move |job: JobContext| {
            record(&c, h, &job);
            async move { Ok(json!({})) }
        });
    }
    let engine = builder.build().unwrap();
    assert_eq!(deploy(&db, "inclusive").await, "order_extras");
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let mut ids = Vec::new();
    for (i, (gift, insured)) in [(true, true), (true, false), (false, true), (false, false)]
        .into_iter()
        .enumerate()
    {
        let req = StartRequest::new("order_extras", format!("x{i}"))
            .variables(json!({"giftWrap": gift, "insured": insured}));
        ids.push(engine.start(req).await.unwrap());
    }
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
    assert_eq!(count(&calls, "wrap_gift"), 2);
    assert_eq!(count(&calls, "insure_parcel"), 2);
    assert_eq!(count(&calls, "ship"), 4, "the join went on once per order");
    // The fork recorded which branches it started: two, one, one, and the default.
    let forked: Vec<i64> = db
        .sql()
        .await
        .query(
            &format!(
                "SELECT jsonb_array_length(data->'branches')::bigint FROM \"{}\".events \
                 WHERE event_type = 'InclusiveForked' ORDER BY instance_id",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(forked, [2, 1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_feed_the_job_its_result_maps_back_and_feel_decides() {
    let db = TestDb::new().await;
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let c2 = calls.clone();
    let engine = Engine::builder(db.store.clone())
        .config(config())
        .handler("create_invoice", move |job: JobContext| {
            record(&c, "create_invoice", &job);
            let template = job.headers.get("template").cloned();
            async move {
                Ok(json!({"number": format!("INV-{}", template.unwrap_or_default()), "scratch": 1}))
            }
        })
        .handler("approve_invoice", move |job: JobContext| {
            record(&c2, "approve_invoice", &job);
            async move { Ok(json!({})) }
        })
        .build()
        .unwrap();
    assert_eq!(deploy(&db, "mappings").await, "invoice");
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let orders = [
        json!({"total": 1000, "country": "de", "lines": [1, 2]}), // 1190, DE, 2 lines: approve
        json!({"total": 1000, "country": "fr", "lines": [1, 2]}), // not domestic
        json!({"total": 500, "country": "de", "lines": [1, 2]}),  // 595: small
        json!({"total": 2000, "country": "de", "lines": [1]}),    // one line
    ];
    let mut ids = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let req = StartRequest::new("invoice", format!("i{i}")).variables(json!({"order": order}));
        ids.push(engine.start(req).await.unwrap());
    }
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
    assert_eq!(count(&calls, "approve_invoice"), 1);
    let seen = calls.lock().unwrap()["create_invoice"].clone();
    let grosses: Vec<f64> = seen.iter().map(|v| v["gross"].as_f64().unwrap()).collect();
    let mut sorted = grosses.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, [595.0, 1190.0, 1190.0, 2380.0]);
    assert!(seen
        .iter()
        .all(|v| v["country"] == "DE" || v["country"] == "FR"));
    for id in &ids {
        let v = db.store.instance(*id).await.unwrap().variables;
        // Only what the output mapping names is set, from the result.
        assert_eq!(v["invoiceNumber"], "INV-invoice-v2");
        assert!(
            v.get("scratch").is_none() && v.get("number").is_none(),
            "{v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camunda_7_file_runs_its_class_delegate_retries_inputs_and_error_variables() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let calls: Calls = Arc::default();
    let (c, c2) = (calls.clone(), calls.clone());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(config())
        .handler("com.acme.payment.ChargeCard", move |job: JobContext| {
            record(&c, "charge", &job);
            let amount = job.variables["amountDue"].as_i64().unwrap();
            let attempt = job.attempt;
            async move {
                match amount {
                    // Declined: the error boundary, without retries.
                    13 => Err(HandlerError::business(
                        "CARD_DECLINED",
                        "insufficient funds",
                    )),
                    // A flaky bank: the first attempt fails, the retry a minute later works.
                    _ if amount % 2 == 1 && attempt == 1 => Err(HandlerError::new("timeout")),
                    _ => Ok(json!({"charged": amount})),
                }
            }
        })
        .handler("declineNotifier", move |job: JobContext| {
            record(&c2, "notify", &job);
            async move { Ok(json!({})) }
        })
        .build()
        .unwrap();
    assert_eq!(deploy(&db, "camunda7").await, "payment");
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let mut ids = Vec::new();
    for (i, amount) in [100, 2000, 13, 1001].into_iter().enumerate() {
        let req = StartRequest::new("payment", format!("pay{i}"))
            .variables(json!({"order": {"amount": amount}}));
        ids.push(engine.start(req).await.unwrap());
    }
    eventually("the flaky charge waits for its retry", || async {
        db.count("instances", "WHERE status <> 'running'").await == 3
    })
    .await;
    clock.advance(Duration::minutes(1));
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
    let ends: Vec<Option<String>> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(db.store.instance(*id).await.unwrap().current_step);
        }
        v
    };
    assert_eq!(
        ends,
        [
            Some("event_paid".into()),
            Some("event_paid".into()),
            Some("event_declined".into()),
            Some("event_paid".into())
        ]
    );
    assert_eq!(count(&calls, "charge"), 5, "one retry, for the odd amount");
    assert!(calls.lock().unwrap()["charge"]
        .iter()
        .all(|v| v["currency"] == "EUR"));
    let declined = db.store.instance(ids[2]).await.unwrap().variables;
    assert_eq!(declined["declineCode"], "CARD_DECLINED");
    assert_eq!(declined["declineMessage"], "insufficient funds");
    assert_eq!(count(&calls, "notify"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_a_terminate_end_and_a_message_end_event() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        .config(config())
        .handler("register_claim", |job: JobContext| async move {
            Ok(json!({"claimId": job.variables["claimNo"]}))
        })
        .handler("assess_claim", |job: JobContext| async move {
            let no = job.variables["claimNo"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Ok(json!({"fraud": no.ends_with('x')}))
        })
        .build()
        .unwrap();
    assert_eq!(deploy(&db, "end_events").await, "claim");
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let mut ids = Vec::new();
    // Two filed (the plain start), two received (the message start); one of each a fraud.
    for key in ["c1", "c2x"] {
        ids.push(
            engine
                .start(StartRequest::new("claim", key).variables(json!({"claimNo": key})))
                .await
                .unwrap(),
        );
    }
    for key in ["c3", "c4x"] {
        match engine
            .send(
                Message::new("Claim received", key, format!("received-{key}"))
                    .payload(json!({"claimNo": key})),
            )
            .await
            .unwrap()
        {
            Delivery::Started { instance_id, also } => {
                assert!(also.is_empty());
                ids.push(instance_id)
            }
            other => panic!("{other:?}"),
        }
    }
    // The frauds end at the terminate end, their document wait withdrawn; the others wait.
    eventually("the frauds are terminated", || async {
        db.count("instances", "WHERE status = 'completed'").await == 2
    })
    .await;
    eventually("the genuine claims wait for documents", || async {
        db.count("subscriptions", "WHERE message_name = 'Documents received'")
            .await
            == 2
    })
    .await;
    for key in ["c1", "c3"] {
        engine
            .send(Message::new(
                "Documents received",
                key,
                format!("docs-{key}"),
            ))
            .await
            .unwrap();
    }
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        let end = if view.business_key.ends_with('x') {
            "event_rejected"
        } else {
            "event_settled_end"
        };
        assert_eq!(view.current_step.as_deref(), Some(end), "claim {i}");
    }
    // The message end event sent once per settled claim.
    assert_eq!(db.count("outbox", "WHERE name = 'Claim settled'").await, 2);
    for table in ["jobs", "subscriptions", "timers"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
}
