//! No input stops a worker: a result the database refuses, or a transition that panics, is
//! set aside (an incident, a failed instance) with the reason, and every other item of its
//! batch goes on.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{eventually, wait_ended, TestDb};
use longrun::failpoint::PANIC_IN_DECIDE;
use longrun::{Engine, EngineConfig, JobContext, ManualClock, ProcessDefinition, StartRequest};

fn quick() -> EngineConfig {
    EngineConfig {
        poll_interval: std::time::Duration::from_millis(10),
        max_poll_interval: std::time::Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

/// Text no compression shrinks: a correlation key far over the btree index row limit.
fn random_text(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

async fn incident_errors(db: &TestDb, id: Uuid) -> Vec<String> {
    let c = db.sql().await;
    c.query(
        &format!(
            "SELECT data->>'error' FROM \"{}\".events WHERE instance_id = $1 AND event_type = 'IncidentRaised'",
            db.schema()
        ),
        &[&id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn a_result_the_database_refuses_becomes_an_incident_and_the_rest_of_its_batch_goes_on() {
    let db = TestDb::new().await;
    let def = ProcessDefinition::builder("keyed")
        .service("make_key", "make_key")
        .output("key")
        .receive("wait", "Go")
        .key("key")
        .end("done")
        .build()
        .unwrap();
    let n = 20;
    // Every handler waits for the others, so the results arrive together, one batch.
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let poison = random_text(6000);
    let engine = Engine::builder(db.store.clone())
        .config(quick())
        .handler("make_key", {
            let (barrier, poison) = (barrier.clone(), poison.clone());
            move |job: JobContext| {
                let (barrier, poison) = (barrier.clone(), poison.clone());
                async move {
                    barrier.wait().await;
                    let me = job.variables["me"].as_str().unwrap_or_default().to_string();
                    Ok(Value::String(if me == "poison" { poison } else { me }))
                }
            }
        })
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let me = if i == 7 {
            "poison".to_string()
        } else {
            format!("k{i}")
        };
        let id = engine
            .start(StartRequest::new("keyed", &me).variables(json!({ "me": me })))
            .await
            .unwrap();
        ids.push(id);
    }
    let running = engine.run();
    let bad = ids[7];
    eventually(
        "every good instance waits and the bad one has an incident",
        || async {
            db.count("subscriptions", "").await == (n - 1) as i64
                && !incident_errors(&db, bad).await.is_empty()
        },
    )
    .await;
    let errors = incident_errors(&db, bad).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("could not record the handler's result")
            && errors[0].contains("database error")
            && errors[0].contains("54000"),
        "the incident carries the database's message: {}",
        errors[0]
    );
    // No job is left for a lease to lapse; the good ones went on at once.
    assert_eq!(db.count("jobs", "").await, 0);
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        assert_eq!(view.status, "running", "{i}");
        if i != 7 {
            assert_eq!(view.current_step.as_deref(), Some("wait"), "{i}");
        }
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_transition_that_panics_is_set_aside_and_the_workers_go_on() {
    let db = TestDb::new().await;
    let def = ProcessDefinition::builder("work")
        .service("work", "work")
        .end("done")
        .build()
        .unwrap();
    let n = 10;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let engine = Engine::builder(db.store.clone())
        .config(quick())
        .handler("work", {
            let barrier = barrier.clone();
            move |job: JobContext| {
                let barrier = barrier.clone();
                async move {
                    if job.variables["together"] == json!(true) {
                        barrier.wait().await;
                    }
                    Ok(Value::Null)
                }
            }
        })
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let mut ids = Vec::new();
    for i in 0..n {
        let key = if i == 3 {
            PANIC_IN_DECIDE.to_string()
        } else {
            format!("w{i}")
        };
        ids.push(
            engine
                .start(StartRequest::new("work", &key).variables(json!({ "together": true })))
                .await
                .unwrap(),
        );
    }
    let bad = ids[3];
    let good: Vec<Uuid> = ids.iter().copied().filter(|i| *i != bad).collect();
    let running = engine.run();
    wait_ended(&mut ended, &good).await;
    eventually("the panicking instance has an incident", || async {
        !incident_errors(&db, bad).await.is_empty()
    })
    .await;
    let errors = incident_errors(&db, bad).await;
    assert!(errors[0].contains("panicked"), "{errors:?}");
    // The workers are alive: a new instance runs to its end on the same engine.
    let later = engine.start(StartRequest::new("work", "after")).await;
    let later = later.unwrap();
    wait_ended(&mut ended, &[later]).await;
    running.shutdown().await;
}

#[tokio::test]
async fn a_timer_whose_transition_panics_fails_its_instance_and_the_others_fire() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
    let def = ProcessDefinition::builder("later")
        .wait_for("wait", "PT1H")
        .end("done")
        .build()
        .unwrap();
    let engine = Engine::builder(db.store.clone())
        .config(quick())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let mut ids = Vec::new();
    for i in 0..6 {
        let key = if i == 2 {
            PANIC_IN_DECIDE.to_string()
        } else {
            format!("t{i}")
        };
        ids.push(
            engine
                .start(StartRequest::new("later", &key))
                .await
                .unwrap(),
        );
    }
    let running = engine.run();
    clock.advance(Duration::hours(2));
    let all = wait_ended(&mut ended, &ids).await;
    for e in all {
        let view = db.store.instance(e.instance_id).await.unwrap();
        if e.instance_id == ids[2] {
            assert_eq!(view.status, "failed");
        } else {
            assert_eq!(view.status, "completed", "{}", e.instance_id);
        }
    }
    let c = db.sql().await;
    let error: String = c
        .query_one(
            &format!(
                "SELECT data->>'error' FROM \"{}\".events WHERE instance_id = $1 AND event_type = 'InstanceFailed'",
                db.schema()
            ),
            &[&ids[2]],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        error.contains("could not be fired") && error.contains("panicked"),
        "{error}"
    );
    assert_eq!(
        db.count("timers", "").await,
        0,
        "the bad timer is not taken again"
    );
    running.shutdown().await;
}
