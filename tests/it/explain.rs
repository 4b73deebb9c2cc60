use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use crate::common::TestDb;
use longrun::{Engine, ManualClock, ProcessDefinition, StartRequest};

fn says(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[tokio::test]
async fn explain_names_the_cause_for_each_kind_of_wait() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    for def in [
        ProcessDefinition::builder("msg")
            .receive("wait", "Go")
            .end("done"),
        ProcessDefinition::builder("tmr")
            .wait_for("nap", "PT1H")
            .end("done"),
        ProcessDefinition::builder("job")
            .service("work", "h")
            .timeout("PT1S")
            .end("done"),
    ] {
        engine.deploy(&def.build().unwrap()).await.unwrap();
    }
    let msg = engine.start(StartRequest::new("msg", "a")).await.unwrap();
    let tmr = engine.start(StartRequest::new("tmr", "b")).await.unwrap();
    let job = engine.start(StartRequest::new("job", "c")).await.unwrap();

    let e = db.store.explain(msg).await.unwrap();
    assert!(
        says(
            &e,
            "at step wait it waits for message Go with key a since 2026-05-01T08:00:00"
        ),
        "{e:?}"
    );
    let e = db.store.explain(tmr).await.unwrap();
    assert!(
        says(
            &e,
            "timer-step timer at step nap is due at 2026-05-01T09:00:00"
        ),
        "{e:?}"
    );
    let e = db.store.explain(job).await.unwrap();
    assert!(
        says(&e, "at step work it waits for handler h (not claimed yet)"),
        "{e:?}"
    );
    assert!(says(&e, "timeout timer at step work"), "{e:?}");

    clock.advance(Duration::seconds(1));
    engine.fire_due_timers().await.unwrap();
    let e = db.store.explain(job).await.unwrap();
    assert!(says(&e, "open incident at step work: \"the handler did not finish within PT1S\" after 1 attempts"), "{e:?}");

    engine.pause(msg).await.unwrap();
    let e = db.store.explain(msg).await.unwrap();
    assert!(says(&e, "paused by an operator"), "{e:?}");
    assert!(
        !says(&e, "waits for message"),
        "a paused instance waits for nothing: {e:?}"
    );

    engine.cancel(tmr, "no longer needed").await.unwrap();
    let e = db.store.explain(tmr).await.unwrap();
    assert!(says(&e, "is cancelled"), "{e:?}");
}

#[tokio::test]
async fn the_stuck_report_finds_the_instance_nothing_can_move_and_no_other() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone()).build().unwrap();
    let def = ProcessDefinition::builder("msg")
        .receive("wait", "Go")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let ok = engine
        .start(StartRequest::new("msg", "fine"))
        .await
        .unwrap();
    let lost = engine
        .start(StartRequest::new("msg", "lost"))
        .await
        .unwrap();
    let paused = engine
        .start(StartRequest::new("msg", "paused"))
        .await
        .unwrap();
    engine.pause(paused).await.unwrap();
    // Deliberately break one: nothing waits for it any more.
    let c = db.sql().await;
    c.execute(
        &format!(
            "DELETE FROM \"{}\".subscriptions WHERE instance_id = $1",
            db.schema()
        ),
        &[&lost],
    )
    .await
    .unwrap();
    let stuck = db.store.report("stuck", 100).await.unwrap();
    let ids: Vec<&str> = stuck
        .iter()
        .map(|r| r["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [lost.to_string()]);
    let e = db.store.explain(lost).await.unwrap();
    assert!(e.iter().any(|l| l.contains("nothing can move it")), "{e:?}");
    let waiting = db.store.report("waiting", 100).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["instance_id"], serde_json::json!(ok.to_string()));
    assert!(db.store.report("nope", 10).await.is_err());
    let by_status = db.store.report("instances", 10).await.unwrap();
    assert_eq!(by_status[0]["instances"], serde_json::json!(3));
}
