//! Retention: an ended instance's history goes once its period has passed; running instances
//! stay however old; message ids stay for the deduplication window; outbox rows stay until
//! every consumer has passed them.

use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::common::{client, eventually, TestDb};
use longrun::store::{ActivityHistory, Removed, Retention};
use longrun::{Delivery, Engine, Message, ProcessDefinition};

fn order() -> ProcessDefinition {
    ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json")).unwrap()
}

/// Place order `key` and, unless `finish` is false, take it to the end.
async fn order_run(engine: &Engine, key: &str, finish: bool) -> Uuid {
    let Delivery::Started { instance_id, .. } = engine
        .send(Message::new("OrderPlaced", key, format!("{key}-placed")))
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    if finish {
        for name in ["GoodsFetched", "PaymentReceived", "GoodsShipped"] {
            engine
                .send(Message::new(name, key, format!("{key}-{name}")))
                .await
                .unwrap();
        }
    }
    instance_id
}

async fn caught_up(db: &TestDb) {
    eventually("the activity projection catches up", || async {
        db.store
            .project_all(&ActivityHistory, Utc::now, |_| {})
            .await
            .unwrap();
        db.store.projections().await.unwrap()[0].behind == 0
    })
    .await;
}

/// Rows of `table` that belong to instance `id`.
async fn rows_of(db: &TestDb, table: &str, id: Uuid) -> i64 {
    db.count(table, &format!("WHERE instance_id = '{id}'"))
        .await
}

fn hours(default: i64) -> Retention {
    Retention {
        default_period: Some(Duration::hours(default)),
        ..Retention::default()
    }
}

#[tokio::test]
async fn ended_history_goes_after_its_period_and_running_instances_stay() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&order()).await.unwrap();
    // The activity projection is registered (as an engine's first batch does).
    caught_up(&db).await;
    let done: Vec<Uuid> = vec![
        order_run(&engine, "o1", true).await,
        order_run(&engine, "o2", true).await,
    ];
    let running = order_run(&engine, "o3", false).await;
    let policy = hours(1);
    let later = Utc::now() + Duration::days(1);

    // Not yet past the period: nothing is due.
    let now = db
        .store
        .retention_preview(&policy, Utc::now())
        .await
        .unwrap();
    assert_eq!((now.instances, now.instances_held), (0, 0));

    // Past it, but the activity projection has not applied their streams: held, not removed.
    let held = db.store.retention_preview(&policy, later).await.unwrap();
    assert_eq!((held.instances, held.instances_held), (0, 2));

    caught_up(&db).await;
    let running_events = rows_of(&db, "events", running).await;
    let running_activity = rows_of(&db, "activity", running).await;
    let mut expected = Removed {
        instances: 2,
        ..Removed::default()
    };
    for id in &done {
        expected.events += rows_of(&db, "events", *id).await;
        expected.activity += rows_of(&db, "activity", *id).await;
        expected.projection_progress += rows_of(&db, "projection_progress", *id).await;
    }
    assert!(expected.events > 10 && expected.activity > 5);
    let preview = db.store.retention_preview(&policy, later).await.unwrap();
    assert_eq!(preview, expected, "the dry run counts what goes");
    assert_eq!(
        db.count("instances", "").await,
        3,
        "a dry run removes nothing"
    );

    let mut batches = 0;
    let removed = db
        .store
        .apply_retention(
            &Retention {
                batch: 1,
                ..policy.clone()
            },
            later,
            |_| batches += 1,
        )
        .await
        .unwrap();
    assert_eq!(removed, expected);
    assert_eq!(batches, 2, "one instance per batch, progress after each");
    for id in &done {
        for table in ["instances", "events", "activity", "projection_progress"] {
            assert_eq!(rows_of(&db, table, *id).await, 0, "{table} of {id}");
        }
    }
    // The running instance, older than the period, is whole and replays to its state.
    assert_eq!(rows_of(&db, "events", running).await, running_events);
    assert_eq!(rows_of(&db, "activity", running).await, running_activity);
    assert!(db
        .store
        .replay(running)
        .await
        .unwrap()
        .differences
        .is_empty());
    // It still takes its messages and completes.
    for name in ["GoodsFetched", "PaymentReceived", "GoodsShipped"] {
        engine
            .send(Message::new(name, "o3", format!("o3-{name}")))
            .await
            .unwrap();
    }
    assert_eq!(
        db.store.instance(running).await.unwrap().status,
        "completed"
    );

    let again = db
        .store
        .apply_retention(&policy, later, |_| {})
        .await
        .unwrap();
    assert_eq!((again.instances, again.events), (0, 0));
}

#[tokio::test]
async fn a_definitions_own_period_wins_over_the_default_and_older_than_over_both() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let kept_two_days = ProcessDefinition::builder("brief")
        .retention("P2D")
        .end("done")
        .build()
        .unwrap();
    let default = ProcessDefinition::builder("plain")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&kept_two_days).await.unwrap();
    engine.deploy(&default).await.unwrap();
    assert_eq!(
        db.scalar("SELECT count(*) FROM {schema}.definitions WHERE retention = interval '2 days'")
            .await,
        1,
        "the period is a column a DBA reads"
    );
    for p in ["brief", "plain"] {
        engine
            .start(longrun::StartRequest::new(p, "k"))
            .await
            .unwrap();
    }
    caught_up(&db).await;
    let keep_for_ever = Retention {
        default_period: None,
        ..Retention::default()
    };
    let day = Utc::now() + Duration::days(1);
    let three_days = Utc::now() + Duration::days(3);
    assert_eq!(
        db.store
            .retention_preview(&keep_for_ever, day)
            .await
            .unwrap()
            .instances,
        0
    );
    assert_eq!(
        db.store
            .retention_preview(&hours(1), day)
            .await
            .unwrap()
            .instances,
        1,
        "only plain, on the default of an hour"
    );
    assert_eq!(
        db.store
            .retention_preview(&keep_for_ever, three_days)
            .await
            .unwrap()
            .instances,
        1,
        "brief after its two days; plain never"
    );
    let older_than = Retention {
        older_than: Some(Duration::hours(12)),
        ..keep_for_ever
    };
    let removed = db
        .store
        .apply_retention(&older_than, day, |_| {})
        .await
        .unwrap();
    assert_eq!(removed.instances, 2);
    assert_eq!(db.count("instances", "").await, 0);
}

#[tokio::test]
async fn message_ids_are_remembered_for_the_window_then_forgotten() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&order()).await.unwrap();
    order_run(&engine, "o1", true).await;
    // Nobody waits for this one: it stays buffered, whatever its age.
    engine
        .send(Message::new("PaymentReceived", "nobody", "buffered-1"))
        .await
        .unwrap();
    let settled = db.count("inbox", "WHERE status <> 'buffered'").await;
    assert_eq!(settled, 4);
    let policy = Retention {
        default_period: None,
        ..Retention::default()
    };
    let within = Utc::now() + Duration::days(6);
    let after = Utc::now() + Duration::days(8);
    let r = db
        .store
        .apply_retention(&policy, within, |_| {})
        .await
        .unwrap();
    assert_eq!(r.inbox, 0, "within the default window of 7 days");
    assert_eq!(r.locks, 0, "lock rows taken within the window stay");
    // The correlations of the order and of the buffered message each left a lock row.
    let locks = db.count("locks", "").await;
    assert!(locks >= 4, "{locks} lock rows");
    let again = engine
        .send(Message::new("OrderPlaced", "o1", "o1-placed"))
        .await
        .unwrap();
    assert!(
        matches!(again, Delivery::Duplicate { .. }),
        "a redelivery within the window is a duplicate: {again:?}"
    );
    assert_eq!(
        db.store
            .retention_preview(&policy, after)
            .await
            .unwrap()
            .inbox,
        4
    );
    let r = db
        .store
        .apply_retention(&policy, after, |_| {})
        .await
        .unwrap();
    assert_eq!(r.inbox, 4);
    assert_eq!(db.count("inbox", "").await, 1, "the buffered message stays");
    assert_eq!(r.locks, locks, "idle lock rows go with the window");
    assert_eq!(db.count("locks", "").await, 0);
}

#[tokio::test]
async fn outbox_rows_stay_until_every_consumer_of_their_topic_has_passed_them() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&order()).await.unwrap();
    order_run(&engine, "o1", true).await;
    let topics: Vec<String> = db
        .sql()
        .await
        .query(
            &format!("SELECT DISTINCT topic FROM \"{}\".outbox", db.schema()),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(topics.len() >= 2, "{topics:?}");
    let sent = db.count("outbox", "").await;
    // One consumer reads the first topic and has not read anything yet.
    let reader = db.store.consumer("reader", vec![topics[0].clone()], "test");
    let first = reader.poll(Utc::now(), 1000).await.unwrap().unwrap();
    let on_first = first.len() as i64;
    assert!(on_first > 0);
    let policy = Retention {
        default_period: None,
        ..Retention::default()
    };
    let young = Utc::now() + Duration::days(1);
    let old = Utc::now() + Duration::days(8);
    assert_eq!(
        db.store
            .apply_retention(&policy, young, |_| {})
            .await
            .unwrap()
            .outbox,
        0,
        "younger than the outbox retention"
    );
    let r = db
        .store
        .apply_retention(&policy, old, |_| {})
        .await
        .unwrap();
    assert_eq!(
        (r.outbox, r.outbox_held),
        (sent - on_first, on_first),
        "topics nobody reads go; the unread topic stays"
    );
    reader.ack(Utc::now(), &first).await.unwrap();
    let r = db
        .store
        .apply_retention(&policy, old, |_| {})
        .await
        .unwrap();
    assert_eq!((r.outbox, r.outbox_held), (on_first, 0));
    assert_eq!(db.count("outbox", "").await, 0);
}

#[tokio::test]
async fn a_bad_retention_period_is_refused_at_deploy() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    for bad in ["P0D", "soon", "-P1D", "P200Y"] {
        let def = ProcessDefinition::builder("p")
            .retention(bad)
            .end("done")
            .build();
        let err = match def {
            Err(e) => e.to_string(),
            Ok(d) => engine.deploy(&d).await.unwrap_err().to_string(),
        };
        assert!(err.contains("retention"), "{bad}: {err}");
    }
    assert_eq!(db.count("definitions", "").await, 0);
    let bad = Retention {
        batch: 0,
        ..Retention::default()
    };
    let err = db.store.apply_retention(&bad, Utc::now(), |_| {}).await;
    assert!(err.unwrap_err().to_string().contains("batch"));
}

#[tokio::test]
async fn engines_remove_what_is_due_in_the_background() {
    use std::sync::Arc;
    let db = TestDb::new().await;
    let clock = longrun::ManualClock::new(Utc::now());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(longrun::EngineConfig {
            retention: Some(Duration::hours(1)),
            retention_interval: Some(std::time::Duration::from_millis(20)),
            ..Default::default()
        })
        .build()
        .unwrap();
    engine.deploy(&order()).await.unwrap();
    let running = engine.run();
    let done = order_run(&engine, "o1", true).await;
    let waiting = order_run(&engine, "o2", false).await;
    // The engine's activity projection applies their streams; within the hour nothing goes.
    eventually("the projection applies the ended stream", || async {
        db.count(
            "projection_progress",
            &format!("WHERE instance_id = '{done}'"),
        )
        .await
            == 1
    })
    .await;
    assert_eq!(db.count("instances", "").await, 2);
    clock.advance(Duration::hours(2));
    eventually("the ended order's history is removed", || async {
        rows_of(&db, "events", done).await == 0 && rows_of(&db, "instances", done).await == 0
    })
    .await;
    running.shutdown().await;
    assert_eq!(rows_of(&db, "instances", waiting).await, 1);
    assert!(db
        .store
        .replay(waiting)
        .await
        .unwrap()
        .differences
        .is_empty());
}
