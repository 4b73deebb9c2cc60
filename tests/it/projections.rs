//! Catch-up projections and the activity history.

use std::time::Duration as StdDuration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{client, TestDb};
use longrun::definition::RetryPolicy;
use longrun::store::ActivityHistory;
use longrun::{Engine, EngineConfig, JobContext, Message, ProcessDefinition, StartRequest};

async fn activity_rows(db: &TestDb) -> Vec<Value> {
    db.sql()
        .await
        .query(
            &format!(
                "SELECT row_to_json(a)::text FROM (SELECT instance_id, seq, process_id, version, step_id, kind, \
                 started_at, ended_at, duration_ms, outcome, attempts FROM \"{}\".activity \
                 ORDER BY instance_id, seq) a",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
}

async fn catch_up(db: &TestDb) -> usize {
    db.store
        .project_all(&ActivityHistory, chrono::Utc::now, |_| {})
        .await
        .unwrap()
}

/// Catch up until no committed event is left unread. Events are read only below the oldest
/// running transaction, and other tests' transactions run meanwhile in the same cluster, so
/// this may take a few rounds.
async fn caught_up(db: &TestDb) {
    crate::common::eventually("the projection catches up", || async {
        catch_up(db).await;
        db.store.projections().await.unwrap()[0].behind == 0
    })
    .await;
}

#[tokio::test]
async fn the_activity_history_has_one_row_per_step_execution() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let order = ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json"))
        .unwrap();
    engine.deploy(&order).await.unwrap();
    for (name, id) in [
        ("OrderPlaced", "c1"),
        ("GoodsFetched", "g1"),
        ("PaymentReceived", "p1"),
        ("GoodsShipped", "s1"),
    ] {
        engine.send(Message::new(name, "o1", id)).await.unwrap();
    }
    caught_up(&db).await;
    let rows = activity_rows(&db).await;
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["step_id"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary,
        vec![
            s(
                "fetch_in_parallel",
                "parallel",
                "forked into retrieve_payment, fetch_goods"
            ),
            s("retrieve_payment", "send", "sent RetrievePayment"),
            s("fetch_goods", "send", "sent FetchGoods"),
            s(
                "payment_outcome",
                "event_gateway",
                "message PaymentReceived"
            ),
            s("goods_fetched", "receive", "message GoodsFetched"),
            s("payment_and_goods", "join", "arrived 1 of 2"),
            s("payment_and_goods", "join", "arrived 2 of 2"),
            s("ship_goods", "send", "sent ShipGoods"),
            s("goods_shipped", "receive", "message GoodsShipped"),
            s("order_completed", "send", "sent OrderCompleted"),
            s("done", "end", "completed"),
        ]
    );
    assert!(rows
        .iter()
        .all(|r| r["duration_ms"].is_number() && r["version"] == 1));
    // Caught up: nothing more to read; the checkpoint says so.
    assert_eq!(catch_up(&db).await, 0);
    let status = db.store.projections().await.unwrap();
    assert_eq!(status[0].name, "activity");
    assert_eq!(status[0].behind, 0);
    assert_eq!(
        status[0].events,
        db.count("events", "").await,
        "every event applied once"
    );
    // The reporting view over it answers per step.
    let report = db.store.report("activity", 100).await.unwrap();
    assert!(report
        .iter()
        .any(|r| r["step_id"] == "goods_shipped" && r["executions"] == 1));
}

#[tokio::test]
async fn an_event_committed_late_is_projected_late_not_skipped() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("w")
        .receive("wait", "Go")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    // A transaction takes its id first and commits last.
    let mut c = db.sql().await;
    let tx = c.transaction().await.unwrap();
    let late = engine
        .start_tx(&tx, StartRequest::new("w", "late"))
        .await
        .unwrap();
    let early = engine.start(StartRequest::new("w", "early")).await.unwrap();
    // The committed instance is behind the open transaction: not read yet.
    catch_up(&db).await;
    assert_eq!(db.count("activity", "").await, 0);
    tx.commit().await.unwrap();
    caught_up(&db).await;
    let ids: Vec<Uuid> = activity_rows(&db)
        .await
        .iter()
        .map(|r| serde_json::from_value(r["instance_id"].clone()).unwrap())
        .collect();
    assert!(ids.contains(&late) && ids.contains(&early), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_built_while_engines_write_equals_its_rebuild() {
    let db = TestDb::new().await;
    let def = ProcessDefinition::builder("par")
        .retry(RetryPolicy::new(3, "PT0.1S"))
        .parallel("fork", ["a", "b"])
        .service("a", "work")
        .next("join")
        .service("b", "work")
        .next("join")
        .join("join")
        .service("c", "work")
        .end("done")
        .build()
        .unwrap();
    let config = || EngineConfig {
        poll_interval: StdDuration::from_millis(10),
        max_poll_interval: StdDuration::from_millis(50),
        projection_batch: 300,
        ..EngineConfig::default()
    };
    let engine = |flaky: bool| {
        Engine::builder(db.store.clone())
            .config(config())
            .handler("work", move |job: JobContext| async move {
                // Some first attempts fail, so retries show in the history.
                if flaky && job.attempt == 1 && job.step == "c" {
                    return Err(longrun::HandlerError::new("try again"));
                }
                Ok(json!({ job.step.clone(): job.attempt }))
            })
            .build()
            .unwrap()
    };
    let (a, b) = (engine(true), engine(false));
    a.deploy(&def).await.unwrap();
    let (ra, rb) = (a.run(), b.run());
    let mut ids = Vec::new();
    for chunk in 0..6 {
        let starter = if chunk % 2 == 0 { &a } else { &b };
        ids.extend(
            starter
                .start_many(
                    (0..50)
                        .map(|i| StartRequest::new("par", format!("k{chunk}-{i}")))
                        .collect(),
                )
                .await
                .unwrap(),
        );
    }
    crate::common::eventually("all instances end", || async {
        db.count("instances", "WHERE status = 'completed'").await == ids.len() as i64
    })
    .await;
    crate::common::eventually("the live projection catches up", || async {
        db.store.projections().await.unwrap()[0].behind == 0
            && db.count("activity", "WHERE ended_at IS NULL").await == 0
    })
    .await;
    ra.shutdown().await;
    rb.shutdown().await;
    caught_up(&db).await;
    let live = activity_rows(&db).await;
    let live_counters = counters_match(&db, "par").await;
    // fork, a, b, join twice, c, end: seven rows per instance.
    assert_eq!(live.len(), ids.len() * 7);
    assert!(
        live.iter().any(|r| r["attempts"].as_i64() > Some(1)),
        "retries recorded"
    );

    db.store
        .reset_projection(&ActivityHistory, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(db.count("activity", "").await, 0);
    caught_up(&db).await;
    let rebuilt = activity_rows(&db).await;
    assert_eq!(live, rebuilt);
    assert_eq!(counters_match(&db, "par").await, live_counters);
}

/// The per-step counters, checked against the aggregate of the activity rows they summarise,
/// and the per-version counters against the instances table; returns the step counters.
async fn counters_match(db: &TestDb, process: &str) -> Vec<longrun::store::StepCount> {
    let c = db.sql().await;
    let s = format!("\"{}\"", db.schema());
    let aggregate: Vec<(String, i64, i64, i64, i64)> = c
        .query(
            &format!(
                "SELECT step_id, count(*) FILTER (WHERE ended_at IS NULL), \
                 count(*) FILTER (WHERE ended_at IS NULL AND incident), \
                 count(*) FILTER (WHERE ended_at IS NOT NULL AND NOT {{CANCELLED}}), \
                 count(*) FILTER (WHERE ended_at IS NOT NULL AND {{CANCELLED}}) \
                 FROM {s}.activity WHERE process_id = $1 AND version = 1 GROUP BY step_id ORDER BY step_id"
            )
            .replace(
                "{CANCELLED}",
                "(outcome IN ('cancelled', 'failed') OR outcome LIKE 'interrupted: cancelled%')",
            ),
            &[&process],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let counters = db.store.step_counts(process, 1).await.unwrap();
    let as_tuples: Vec<(String, i64, i64, i64, i64)> = counters
        .iter()
        .filter(|s| s.waiting + s.incidents + s.completed + s.cancelled > 0)
        .map(|s| {
            (
                s.step.clone(),
                s.waiting,
                s.incidents,
                s.completed,
                s.cancelled,
            )
        })
        .collect();
    assert_eq!(as_tuples, aggregate);
    let by_status: Vec<(String, i64)> = c
        .query(
            &format!(
                "SELECT status, count(*) FROM {s}.instances WHERE process_id = $1 \
                 GROUP BY status ORDER BY status"
            ),
            &[&process],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let summary = db
        .store
        .version_summaries()
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.process == process)
        .unwrap();
    let mut counted: Vec<(String, i64)> = [
        ("cancelled", summary.cancelled),
        ("completed", summary.completed),
        ("failed", summary.failed),
        ("running", summary.running),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(s, n)| (s.to_string(), n))
    .collect();
    counted.sort();
    assert_eq!(counted, by_status);
    assert_eq!(
        summary.incidents,
        counters.iter().map(|s| s.incidents).sum::<i64>()
    );
    counters
}

fn count_of(counters: &[longrun::store::StepCount], step: &str) -> [i64; 4] {
    counters
        .iter()
        .find(|s| s.step == step)
        .map_or([0; 4], |s| {
            [s.waiting, s.incidents, s.completed, s.cancelled]
        })
}

#[tokio::test]
async fn the_console_counters_follow_waits_incidents_and_cancels_across_batches() {
    let db = TestDb::new().await;
    let def = ProcessDefinition::builder("cnt")
        .retry(RetryPolicy::new(1, "PT0.1S"))
        .service("charge", "charge")
        .compensate(longrun::definition::Compensation::Handler {
            handler: "refund".into(),
        })
        .next("await_go")
        .receive("await_go", "Go")
        .next("done")
        .end("done")
        .build()
        .unwrap();
    let engine = Engine::builder(db.store.clone())
        .config(EngineConfig {
            poll_interval: StdDuration::from_millis(10),
            max_poll_interval: StdDuration::from_millis(50),
            ..EngineConfig::default()
        })
        .handler("charge", |job: JobContext| async move {
            if job.variables["bad"] == true {
                return Err(longrun::HandlerError::new("card declined"));
            }
            Ok(json!({}))
        })
        .handler("refund", |_job: JobContext| async move { Ok(json!({})) })
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let running = engine.run();
    let keys: Vec<String> = (0..15)
        .map(|i| format!("ok{i}"))
        .chain((0..5).map(|i| format!("bad{i}")))
        .collect();
    let ids = engine
        .start_many(
            keys.iter()
                .map(|k| {
                    StartRequest::new("cnt", k).variables(json!({"bad": k.starts_with("bad")}))
                })
                .collect(),
        )
        .await
        .unwrap();
    crate::common::eventually("15 wait for Go and 5 have incidents", || async {
        db.count("subscriptions", "").await == 15
            && db
                .scalar("SELECT count(*) FROM {schema}.report_incidents")
                .await
                == 5
    })
    .await;
    caught_up(&db).await;
    let counters = counters_match(&db, "cnt").await;
    assert_eq!(count_of(&counters, "charge"), [5, 5, 15, 0]);
    assert_eq!(count_of(&counters, "await_go"), [15, 0, 0, 0]);

    // Five go on, three waiting ones are cancelled (their charge compensated), one with an
    // incident is cancelled, one is paused (it still waits at its step).
    for key in &keys[..5] {
        engine
            .send(Message::new("Go", key.clone(), format!("go-{key}")))
            .await
            .unwrap();
    }
    for id in &ids[5..8] {
        engine
            .act(
                *id,
                longrun::Action::Cancel {
                    reason: "customer".into(),
                },
                "alice",
            )
            .await
            .unwrap();
    }
    engine
        .act(
            ids[15],
            longrun::Action::Cancel {
                reason: "gave up".into(),
            },
            "bob",
        )
        .await
        .unwrap();
    engine
        .act(ids[10], longrun::Action::Pause, "carol")
        .await
        .unwrap();
    crate::common::eventually("five complete and four are cancelled", || async {
        db.count("instances", "WHERE status = 'completed'").await == 5
            && db.count("instances", "WHERE status = 'cancelled'").await == 4
    })
    .await;
    running.shutdown().await;
    caught_up(&db).await;
    let counters = counters_match(&db, "cnt").await;
    // charge: 15 completed, 3 compensations (a refund job at the step) completed, the
    // incident's execution cancelled.
    assert_eq!(count_of(&counters, "charge"), [4, 4, 18, 1]);
    assert_eq!(count_of(&counters, "await_go"), [7, 0, 5, 3]);
    assert_eq!(count_of(&counters, "done"), [0, 0, 5, 0]);

    // Who asked is in the history.
    let history = db.store.history(ids[15]).await.unwrap();
    let cancelled = history
        .iter()
        .find(|h| h.event_type == "InstanceCancelled")
        .unwrap();
    assert_eq!(cancelled.data["by"], "bob");
    assert_eq!(
        longrun::store::describe_event(&cancelled.data),
        "reason: gave up (by bob)"
    );

    // A rebuild gives the same counters.
    db.store
        .reset_projection(&ActivityHistory, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(db.count("step_counts", "").await, 0);
    caught_up(&db).await;
    assert_eq!(counters_match(&db, "cnt").await, counters);
}
