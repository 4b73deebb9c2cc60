//! The probe's one statement sees each kind of waiting work: due jobs for the engine's
//! handlers, outbox messages after a subscriber's checkpoint, events after a projection's
//! checkpoint. An idle engine relies on it to wake its workers.

use serde_json::Value;

use crate::common::{client, eventually, wait_ended, TestDb};
use longrun::{Engine, JobContext, OutboxMessage, ProcessDefinition, StartRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_sees_each_kind_of_waiting_work() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        .handler("probed_step", |_job: JobContext| async { Ok(Value::Null) })
        .subscriber(
            "probed_sub",
            &["probed_topic"],
            |_e: Engine, _m: OutboxMessage| async { Ok(()) },
        )
        .build()
        .unwrap();
    let def = ProcessDefinition::builder("probed")
        .send("ping", "Ping")
        .to("probed_topic")
        .service("work", "probed_step")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let waits = ProcessDefinition::builder("probed_waits")
        .receive("reply", "ProbedReply")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&waits).await.unwrap();
    let nothing = engine.work_waiting().await.unwrap();
    assert!(!nothing.jobs && !nothing.signals && !nothing.start_timers);
    assert!(nothing.next_timer.is_none());

    // Run once: the subscriber's checkpoint and the activity projection's exist and catch up.
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let first = engine
        .start(StartRequest::new("probed", "p1"))
        .await
        .unwrap();
    wait_ended(&mut ended, &[first]).await;
    eventually("the subscriber and the projection caught up", || async {
        let w = engine.work_waiting().await.unwrap();
        !w.jobs && w.consumers.is_empty() && w.projections.is_empty()
    })
    .await;
    running.shutdown().await;

    // Work another process created while this engine was stopped: a job due for its handler,
    // a message after its subscriber's checkpoint, events after its projection's.
    client(&db.store)
        .start(StartRequest::new("probed", "p2"))
        .await
        .unwrap();
    let w = engine.work_waiting().await.unwrap();
    assert!(w.jobs, "{w:?}");
    assert_eq!(w.consumers, vec!["probed_sub".to_string()], "{w:?}");
    assert_eq!(w.projections, vec!["activity".to_string()], "{w:?}");
    // An engine without the handler and the subscriber sees none of it but the projection.
    let other = client(&db.store).work_waiting().await.unwrap();
    assert!(!other.jobs && other.consumers.is_empty(), "{other:?}");
    assert!(!w.lapsed && !w.expired, "{w:?}");

    // The job leased by an engine that died, its lease run out; a buffered message past its
    // time to live (no instance waits for that key).
    let sql = db.sql().await;
    let schema = db.schema();
    sql.execute(
        &format!(
            "UPDATE \"{schema}\".jobs SET lease_token = gen_random_uuid(), lease_owner = 'gone', \
             lease_expires_at = now() - interval '1 minute'"
        ),
        &[],
    )
    .await
    .unwrap();
    let d = client(&db.store)
        .send(longrun::Message::new("ProbedReply", "nobody-yet", "m-1"))
        .await
        .unwrap();
    assert!(matches!(d, longrun::Delivery::Buffered { .. }), "{d:?}");
    assert!(!engine.work_waiting().await.unwrap().expired);
    sql.execute(
        &format!("UPDATE \"{schema}\".inbox SET expires_at = now() - interval '1 minute'"),
        &[],
    )
    .await
    .unwrap();
    let w = engine.work_waiting().await.unwrap();
    assert!(w.lapsed && w.expired && !w.jobs, "{w:?}");
}
