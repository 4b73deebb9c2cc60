//! Embedded subprocesses against a real database: a modeler-made diagram whose subprocess
//! completes, throws an error its boundary catches, or is interrupted by its boundary timer;
//! nothing inside is left behind, and its export round-trips.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use crate::common::{wait_ended, TestDb};
use longrun::machine::Status;
use longrun::{Engine, EngineConfig, JobContext, ManualClock, Message, StartRequest};

const FIXTURE: &str = include_str!("../fixtures/bpmn/subprocess_modeler.bpmn");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modelers_subprocess_completes_is_caught_or_is_interrupted_and_leaves_nothing() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..EngineConfig::default()
        })
        .handler("check_documents", |job: JobContext| async move {
            Ok(json!({"approved": job.variables["complete"] == json!(true)}))
        })
        .handler("ship", |_: JobContext| async move {
            Ok(json!({"shipped": true}))
        })
        .handler("notify_rejection", |_: JobContext| async move {
            Ok(json!({"notified": true}))
        })
        .build()
        .unwrap();
    let deployed = db
        .store
        .deploy_bpmn(FIXTURE, longrun::Clock::now(&clock))
        .await
        .unwrap();
    assert_eq!(deployed.process, "document_review");
    let def = db.store.definition("document_review", 1).await.unwrap();
    let review = def.step("activity_review").unwrap();
    assert_eq!(review.kind.type_name(), "subprocess");
    assert_eq!(
        def.step("activity_check").unwrap().within.as_deref(),
        Some("activity_review")
    );

    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let n = 30;
    let mut ids = Vec::new();
    for i in 0..n {
        let key = format!("o{i}");
        ids.push(
            engine
                .start(
                    StartRequest::new("document_review", &key).variables(json!({"orderId": key})),
                )
                .await
                .unwrap(),
        );
    }
    assert_eq!(db.count("subscriptions", "").await, n as i64);
    assert_eq!(
        db.count("timers", "WHERE kind = 'boundary'").await,
        n as i64
    );
    // A third complete, a third incomplete (rejected inside, caught by the boundary), a
    // third never send their documents (the boundary timer ends the review).
    for i in 0..2 * n / 3 {
        engine
            .send(
                Message::new("Documents received", format!("o{i}"), format!("docs-{i}"))
                    .payload(json!({"complete": i < n / 3})),
            )
            .await
            .unwrap();
    }
    crate::common::eventually("the reviews that got documents end", || async {
        db.count("instances", "WHERE status <> 'running'").await == (2 * n / 3) as i64
    })
    .await;
    clock.advance(Duration::days(2));
    engine.fire_due_timers().await.unwrap();
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(
        ends.iter().all(|e| e.status == Status::Completed),
        "{ends:?}"
    );
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        let expected = if i < n / 3 {
            "event_shipped"
        } else if i < 2 * n / 3 {
            "event_declined"
        } else {
            "event_timedout"
        };
        assert_eq!(view.current_step.as_deref(), Some(expected), "o{i}");
        let replay = db.store.replay(*id).await.unwrap();
        assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    }
    assert_eq!(
        db.count("events", "WHERE event_type = 'SubprocessCompleted'")
            .await,
        (n / 3) as i64
    );
    assert_eq!(
        db.count(
            "events",
            "WHERE event_type = 'BusinessErrorCaught' AND data->>'code' = 'REJECTED'"
        )
        .await,
        (n / 3) as i64
    );
    // Nothing inside is left waiting.
    for table in ["jobs", "subscriptions", "timers"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
    // The activity history shows the subprocess as a step of its own.
    longrun::Engine::builder(db.store.clone())
        .build()
        .unwrap()
        .run()
        .shutdown()
        .await;
    crate::common::eventually("the activity projection catches up", || async {
        db.count(
            "activity",
            "WHERE kind = 'subprocess' AND ended_at IS NOT NULL",
        )
        .await
            == n as i64
    })
    .await;

    // Exported, it imports to the same definition and deploys as the same version.
    let exported = longrun::bpmn::export(def.definition()).xml;
    assert!(exported.contains("<bpmn:subProcess id=\"activity_review\""));
    assert!(exported.contains("isExpanded=\"false\""));
    assert_eq!(&longrun::bpmn::import(&exported).unwrap(), def.definition());
}
