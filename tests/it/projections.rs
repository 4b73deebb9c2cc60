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
}
