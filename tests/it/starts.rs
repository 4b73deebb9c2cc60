//! Idempotent starts: an idempotency key, and a business key unique among running instances.

use longrun::definition::UniqueKey;
use longrun::{Error, Message, ProcessDefinition, StartRequest};
use uuid::Uuid;

use crate::common::{client, TestDb};

fn waiting(unique: Option<UniqueKey>) -> ProcessDefinition {
    let mut b = ProcessDefinition::builder("p");
    if let Some(u) = unique {
        b = b.unique_business_key(u);
    }
    b.receive("wait", "Go")
        .key("k")
        .end("done")
        .build()
        .unwrap()
}

async fn twenty_at_once(engine: &longrun::Engine, request: StartRequest) -> Vec<Uuid> {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (e, r) = (engine.clone(), request.clone());
            tokio::spawn(async move { e.start(r).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids
}

#[tokio::test]
async fn twenty_concurrent_starts_with_one_idempotency_key_make_one_instance() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&waiting(None)).await.unwrap();
    let request = StartRequest::new("p", "order-1")
        .variables(serde_json::json!({ "k": "k1" }))
        .idempotency_key("checkout-42");
    let ids = twenty_at_once(&engine, request.clone()).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(db.count("instances", "").await, 1);
    assert_eq!(
        db.count("events", "").await,
        db.count("events", &format!("WHERE instance_id = '{}'", ids[0]))
            .await
    );
    // Once it ended, the same key still names it: a retried request never starts another.
    engine.send(Message::new("Go", "k1", "go-1")).await.unwrap();
    assert_eq!(engine.start(request).await.unwrap(), ids[0]);
    assert_eq!(db.count("instances", "").await, 1);
    // Another key, or the same key for another process, is another instance.
    let other = engine
        .start(StartRequest::new("p", "order-1").idempotency_key("checkout-43"))
        .await
        .unwrap();
    assert_ne!(other, ids[0]);
    // In one batch, twice the same key is one instance.
    let batch = engine
        .start_many(vec![
            StartRequest::new("p", "b").idempotency_key("twice"),
            StartRequest::new("p", "b").idempotency_key("twice"),
        ])
        .await
        .unwrap();
    assert_eq!(batch[0], batch[1]);
    assert_eq!(db.count("instances", "").await, 3);
    let bad = engine
        .start(StartRequest::new("p", "c").idempotency_key("a\nb"))
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::BadInput(_)), "{bad}");
}

#[tokio::test]
async fn without_a_key_twenty_starts_make_twenty_instances() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&waiting(None)).await.unwrap();
    let ids = twenty_at_once(&engine, StartRequest::new("p", "order-1")).await;
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 20);
}

#[tokio::test]
async fn a_unique_business_key_returns_the_running_instance() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine
        .deploy(&waiting(Some(UniqueKey::ReturnExisting)))
        .await
        .unwrap();
    let request = StartRequest::new("p", "order-1").variables(serde_json::json!({ "k": "k1" }));
    let ids = twenty_at_once(&engine, request.clone()).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(db.count("instances", "").await, 1);
    // Unique among running instances only: once it ended, the key starts a new one.
    engine.send(Message::new("Go", "k1", "go-1")).await.unwrap();
    let next = engine.start(request).await.unwrap();
    assert_ne!(next, ids[0]);
    assert_eq!(db.count("instances", "WHERE status = 'running'").await, 1);
}

#[tokio::test]
async fn a_unique_business_key_can_refuse_a_second_start() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine
        .deploy(&waiting(Some(UniqueKey::Refuse)))
        .await
        .unwrap();
    let first = engine
        .start(StartRequest::new("p", "order-1"))
        .await
        .unwrap();
    match engine.start(StartRequest::new("p", "order-1")).await {
        Err(Error::AlreadyRunning { instance, .. }) => assert_eq!(instance, first),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    // Twenty at once: exactly one wins, the others are refused naming it.
    engine
        .start(StartRequest::new("p", "order-2"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let e = engine.clone();
            tokio::spawn(async move { e.start(StartRequest::new("p", "order-3")).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::AlreadyRunning { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        db.count("instances", "WHERE business_key = 'order-3'")
            .await,
        1
    );
    // The JSON form says the same.
    let def: ProcessDefinition = serde_json::from_value(serde_json::json!({
        "process": "q",
        "unique_business_key": "refuse",
        "steps": [{ "id": "done", "type": "end" }]
    }))
    .unwrap();
    assert_eq!(def.unique_business_key, Some(UniqueKey::Refuse));
}

/// While the engine runs, concurrent starts share transactions; each caller still gets its own
/// outcome: a bad request fails alone and the others start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_are_grouped_and_one_bad_request_fails_alone() {
    let db = TestDb::new().await;
    let engine = longrun::Engine::builder(db.store.clone()).build().unwrap();
    engine.deploy(&crate::common::waits_for_go()).await.unwrap();
    let running = engine.run();
    let mut calls = Vec::new();
    for i in 0..60 {
        let engine = engine.clone();
        calls.push(tokio::spawn(async move {
            let request = match i {
                7 => StartRequest::new("p", "bad").variables(serde_json::json!([1, 2])),
                23 => StartRequest::new("nope", "k23"),
                _ => StartRequest::new("p", format!("k{i}"))
                    .variables(serde_json::json!({ "k": format!("k{i}") })),
            };
            engine.start(request).await
        }));
    }
    let mut ok = 0;
    for (i, call) in calls.into_iter().enumerate() {
        match (i, call.await.unwrap()) {
            (7, Err(e)) => assert!(e.to_string().contains("object"), "{e}"),
            (23, Err(e)) => assert!(e.to_string().contains("nope"), "{e}"),
            (7 | 23, Ok(id)) => panic!("request {i} started {id}"),
            (_, Ok(_)) => ok += 1,
            (_, Err(e)) => panic!("request {i} failed: {e}"),
        }
    }
    running.shutdown().await;
    assert_eq!(ok, 58);
    assert_eq!(db.count("instances", "").await, 58);
}

#[tokio::test]
async fn each_of_several_message_starts_starts_an_instance_at_its_own_step() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("orders")
        .start_on_message("WebOrder")
        .also_start_on_message("PhoneOrder", Some("call_back"))
        .receive("confirm", "Confirmed")
        .end("done")
        .receive("call_back", "CalledBack")
        .end("called")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut started = Vec::new();
    for (name, key) in [("WebOrder", "w1"), ("PhoneOrder", "p1")] {
        match engine
            .send(Message::new(name, key, format!("{name}-{key}")))
            .await
            .unwrap()
        {
            longrun::Delivery::Started { instance_id, .. } => started.push(instance_id),
            other => panic!("{name}: {other:?}"),
        }
    }
    let step = |i: usize| {
        let store = db.store.clone();
        let id = started[i];
        async move { store.instance(id).await.unwrap().current_step }
    };
    assert_eq!(step(0).await.as_deref(), Some("confirm"));
    assert_eq!(step(1).await.as_deref(), Some("call_back"));
    // A redelivery starts none; an explicit start begins at the first step.
    let again = engine
        .send(Message::new("PhoneOrder", "p1", "PhoneOrder-p1"))
        .await
        .unwrap();
    assert!(
        matches!(again, longrun::Delivery::Duplicate { .. }),
        "{again:?}"
    );
    let explicit = engine
        .start(StartRequest::new("orders", "x1"))
        .await
        .unwrap();
    assert_eq!(
        db.store
            .instance(explicit)
            .await
            .unwrap()
            .current_step
            .as_deref(),
        Some("confirm")
    );
    assert_eq!(db.count("instances", "").await, 3);
}
